// Recipes: images/<name>/recipe.toml, checked against the recipe rows of the one key table
// (src/config/keys.cpp, ConfigFile::recipe) by the same validator as profiles, so a recipe error
// reads like a profile error: "file:line:col: 'files[].mode' must be ...", unknown keys included.
// What the key table cannot say (a base recipe needs a suite, a run names a declared secret,
// ${args.NAME} names a declared argument, the name matches the folder) is checked here.
#include "modules/image/image.hpp"

#include "config/validate.hpp"
#include "nodectl/config.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

namespace nodectl::image {

namespace fs = std::filesystem;

namespace {

// ${args.NAME} references in a text.
std::vector<std::string> arg_refs(const std::string& text) {
    static const std::regex k_re("\\$\\{args\\.([A-Za-z_][A-Za-z0-9_]*)\\}");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), k_re); it != std::sregex_iterator(); ++it) {
        out.push_back((*it)[1].str());
    }
    return out;
}

// The key table has checked the mode ("^0?[0-7]{3,4}$"): 0644 stands only for what cannot occur.
unsigned parse_mode(const std::string& s) {
    return static_cast<unsigned>(util::parse_uint(s, {.max = 07777, .base = 8}).value_or(0644));
}

}  // namespace

std::string substitute_args(const std::string& text, const std::map<std::string, std::string>& values,
                            const std::string& where, std::string& error) {
    static const std::regex k_re("\\$\\{args\\.([A-Za-z_][A-Za-z0-9_]*)\\}");
    std::string out;
    auto begin = text.cbegin();
    for (auto it = std::sregex_iterator(text.begin(), text.end(), k_re); it != std::sregex_iterator(); ++it) {
        out.append(begin, text.cbegin() + it->position());
        auto v = values.find((*it)[1].str());
        if (v == values.end()) {
            error = where + ": unknown build argument '" + (*it)[1].str() + "'";
            return {};
        }
        out += v->second;
        begin = text.cbegin() + it->position() + it->length();
    }
    out.append(begin, text.cend());
    return out;
}

namespace {

using Diags = std::vector<std::string>;

void require(Diags& diags, const ConfigView& view, std::string_view key, const std::string& what) {
    if (!view.has(key)) {
        diags.push_back(view.where() + ": '" + what + "' is required");
    }
}

Error config_error(const Diags& diags) {
    std::string msg;
    for (const auto& d : diags) {
        msg += (msg.empty() ? "" : "\n") + d;
    }
    return make_error(ErrorCode::config, msg);
}

// name, base, suite, variant and packages, and how they fit together.
void read_identity(const ConfigView& v, const std::string& file, Recipe& r, Diags& diags) {
    require(diags, v, "name", "name");
    r.name = v.str("name");
    std::string folder = fs::path(r.dir).filename().string();
    if (!r.name.empty() && fs::path(file).filename() == "recipe.toml" && r.name != folder) {
        diags.push_back(v.where("name") + ": 'name' is \"" + r.name + "\" but the recipe's folder is \"" + folder +
                        "\" (images/<name>/recipe.toml)");
    }
    r.base = v.str("base");
    r.suite = v.str("suite");
    if (r.is_base()) {
        require(diags, v, "suite", "suite");
        r.variant = v.str("variant");
    } else if (v.has("variant")) {
        diags.push_back(v.where("variant") + ": 'variant' belongs in a base recipe (this one builds on \"" + r.base +
                        "\")");
    }
    if (r.base == r.name && !r.base.empty()) {
        diags.push_back(v.where("base") + ": 'base' names the recipe itself");
    }
    r.packages = v.strings("packages");
}

// [args.NAME] and [secrets.NAME]: the names are checked here, the values by the key table.
void read_args_and_secrets(const toml::table& table, Recipe& r, Diags& diags) {
    if (const auto* args = table["args"].as_table()) {
        for (const auto& [k, node] : *args) {
            std::string name(k.str());
            if (!std::regex_match(name, std::regex("^[A-Za-z_][A-Za-z0-9_]*$"))) {
                diags.push_back(location(k.source()) + ": build argument 'args." + name +
                                "' must be a name of letters, digits and '_'");
            }
            ConfigView a(ConfigFile::recipe, node.as_table(), "args.*");
            r.args[name] = {a.str("default"), a.str("doc")};
        }
    }
    if (const auto* secrets = table["secrets"].as_table()) {
        for (const auto& [k, node] : *secrets) {
            std::string name(k.str());
            if (!std::regex_match(name, std::regex("^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))) {
                diags.push_back(location(k.source()) + ": build secret 'secrets." + name +
                                "' must be a file name of letters, digits, '.', '_' and '-'");
            }
            ConfigView s(ConfigFile::recipe, node.as_table(), "secrets.*");
            r.secrets[name] = {s.str("doc"), s.boolean("required")};
        }
    }
}

// Every ${args.NAME} in TEXT names a declared argument.
void check_arg_refs(const Recipe& r, const std::string& text, const std::string& where, const std::string& key,
                    Diags& diags) {
    for (const auto& ref : arg_refs(text)) {
        if (!r.args.count(ref)) {
            diags.push_back(where + ": '" + key + "' uses ${args." + ref + "} but [args." + ref + "] is not declared");
        }
    }
}

void read_users(const ConfigView& v, Recipe& r, Diags& diags) {
    std::set<std::string> user_names;
    for (const auto& u : v.tables("users")) {
        require(diags, u, "name", "users[].name");
        require(diags, u, "uid", "users[].uid");
        RecipeUser user{u.str("name"), u.integer("uid"),    u.has("gid") ? u.integer("gid") : u.integer("uid"),
                        u.str("home"), u.boolean("system"), u.where()};
        if (!user_names.insert(user.name).second) {
            diags.push_back(u.where("name") + ": user '" + user.name + "' is listed twice");
        }
        if (user.uid < 0 || user.uid > 65534 || user.gid < 0 || user.gid > 65534) {
            diags.push_back(u.where("uid") + ": 'users[].uid' and 'users[].gid' must be between 0 and 65534");
        }
        r.users.push_back(std::move(user));
    }
}

void read_files(const ConfigView& v, Recipe& r, Diags& diags) {
    for (const auto& f : v.tables("files")) {
        require(diags, f, "src", "files[].src");
        require(diags, f, "dest", "files[].dest");
        RecipeFile file_spec{f.str("src"),   f.str("dest"),  parse_mode(f.str("mode")),
                             f.str("owner"), f.str("group"), f.where("src")};
        check_arg_refs(r, file_spec.src, f.where("src"), "files[].src", diags);
        if (!file_spec.src.empty() && arg_refs(file_spec.src).empty()) {
            std::error_code ec;
            fs::path src = fs::path(r.dir) / file_spec.src;
            if (!fs::exists(src, ec)) {
                diags.push_back(f.where("src") + ": 'files[].src' " + src.string() + " does not exist");
            }
        }
        r.files.push_back(std::move(file_spec));
    }
}

void read_runs(const ConfigView& v, Recipe& r, Diags& diags) {
    for (const auto& run : v.tables("run")) {
        require(diags, run, "command", "run[].command");
        RecipeRun step{run.str("command"), run.strings("secrets"), run.str("when"), run.where("command")};
        check_arg_refs(r, step.command, run.where("command"), "run[].command", diags);
        for (const auto& s : step.secrets) {
            if (!r.secrets.count(s)) {
                diags.push_back(run.where("secrets") + ": 'run[].secrets' names '" + s + "' but [secrets." + s +
                                "] is not declared");
            }
        }
        if (!step.when.empty() && !r.args.count(step.when.substr(5))) {
            diags.push_back(run.where("when") + ": 'run[].when' names '" + step.when + "' but [" + step.when +
                            "] is not declared");
        }
        r.runs.push_back(std::move(step));
    }
}

void read_image_config(const ConfigView& v, Recipe& r, Diags& diags) {
    auto c = v.section("config");
    r.config.entrypoint = c.strings("entrypoint");
    r.config.cmd = c.strings("cmd");
    r.config.env = c.string_map("env");
    r.config.labels = c.string_map("labels");
    r.config.workdir = c.str("workdir");
    r.config.user = c.str("user");
    r.config.stop_signal = c.str("stop_signal");
    r.config.exposed_ports = c.strings("exposed_ports");
    r.config.volumes = c.strings("volumes");
    if (!r.config.workdir.empty() && r.config.workdir[0] != '/') {
        diags.push_back(c.where("workdir") + ": 'config.workdir' must be an absolute path or \"\"");
    }
}

}  // namespace

Result<Recipe> load_recipe(const std::string& file) {
    Diags diags;
    auto table = parse_toml_file(file, diags);
    if (!table) {
        return make_error(ErrorCode::config, diags.front());
    }
    validate_table(ConfigFile::recipe, *table, "", diags);
    if (!diags.empty()) {
        return config_error(diags);
    }
    Recipe r;
    r.file = file;
    r.dir = fs::path(file).parent_path().string();
    if (r.dir.empty()) {
        r.dir = ".";
    }
    r.text = util::read_file(file).value_or("");
    ConfigView v(ConfigFile::recipe, &*table, "");
    read_identity(v, file, r, diags);
    read_args_and_secrets(*table, r, diags);
    read_users(v, r, diags);
    read_files(v, r, diags);
    read_runs(v, r, diags);
    read_image_config(v, r, diags);
    if (!diags.empty()) {
        return config_error(diags);
    }
    return r;
}

Result<std::map<std::string, Recipe>> load_recipes(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return make_error(ErrorCode::usage, dir + ": not a directory of recipes (images/<name>/recipe.toml)");
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.is_directory() && fs::exists(e.path() / "recipe.toml")) {
            files.push_back(e.path() / "recipe.toml");
        }
    }
    std::sort(files.begin(), files.end());
    std::map<std::string, Recipe> out;
    std::string errors;
    for (const auto& f : files) {
        auto r = load_recipe(f.string());
        if (!r) {
            errors += (errors.empty() ? "" : "\n") + r.error().message;
            continue;
        }
        std::string name = r->name;
        out.emplace(name, std::move(*r));
    }
    if (!errors.empty()) {
        return make_error(ErrorCode::config, errors);
    }
    if (out.empty()) {
        return make_error(ErrorCode::usage, dir + ": no recipes (images/<name>/recipe.toml)");
    }
    // Bases: present, acyclic, and the image's suite is its base's.
    for (auto& [name, r] : out) {
        std::set<std::string> seen{name};
        const Recipe* b = &r;
        while (!b->is_base()) {
            auto it = out.find(b->base);
            if (it == out.end()) {
                errors += (errors.empty() ? "" : "\n") + b->file + ": 'base' names \"" + b->base +
                          "\", which has no recipe in " + dir;
                break;
            }
            if (!it->second.is_base()) {
                errors += (errors.empty() ? "" : "\n") + b->file + ": 'base' names \"" + b->base +
                          "\", which builds on \"" + it->second.base +
                          "\" itself; an image has one base layer and one layer of its own";
                break;
            }
            if (!seen.insert(it->first).second) {
                errors += (errors.empty() ? "" : "\n") + r.file + ": 'base' chain loops through \"" + it->first + "\"";
                break;
            }
            b = &it->second;
        }
        if (b->is_base() && &r != b) {
            if (!r.suite.empty() && r.suite != b->suite) {
                errors += (errors.empty() ? "" : "\n") + r.file + ": 'suite' is \"" + r.suite + "\" but its base \"" +
                          b->name + "\" is \"" + b->suite + "\"";
            }
            r.suite = b->suite;
        }
    }
    if (!errors.empty()) {
        return make_error(ErrorCode::config, errors);
    }
    return out;
}

}  // namespace nodectl::image

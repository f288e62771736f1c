// Loading a profile: parse it, load what it `extends` and `include`s, validate every file against
// the key table, then merge: tables merge key by key, lists of tables ([[base.files]]) are
// appended, and any other value (lists of strings too) is replaced by the later file. Merged nodes keep their source positions, so errors name the file they came from.
#include "config/profile_text.hpp"
#include "config/validate.hpp"
#include "nodectl/config.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

#include <filesystem>
#include <sstream>

namespace nodectl {

namespace fs = std::filesystem;

namespace {

// Nodes are moved, not copied: toml++ keeps a node's source position only when it is moved.
void merge_tables(toml::table& dst, toml::table&& src) {
    for (auto&& [key, node] : src) {
        auto* existing = dst.get(key);
        if (existing && existing->is_table() && node.is_table()) {
            merge_tables(*existing->as_table(), std::move(*node.as_table()));
        } else if (existing && existing->is_array_of_tables() && node.is_array_of_tables()) {
            for (auto&& element : *node.as_array()) {
                existing->as_array()->push_back(std::move(element));
            }
        } else {
            dst.insert_or_assign(key, std::move(node));
        }
    }
}

struct Loader {
    Diagnostics diags;
    std::vector<std::string> files;
    std::vector<std::string> stack;

    // `text`: the top-level file's bytes, already read (nullptr: read the file).
    void load(const fs::path& path, const std::string& referenced_at, toml::table& out,
              const std::string* text = nullptr) {
        // A pipe (`-p <(...)`, /dev/fd/N) links to "pipe:[N]", which has no canonical form: it
        // is then named as given (it cannot be included again anyway).
        std::error_code ec;
        std::string canonical = fs::weakly_canonical(path, ec).string();
        if (ec) {
            canonical = fs::absolute(path, ec).lexically_normal().string();
        }
        for (const auto& s : stack) {
            if (s == canonical) {
                diags.push_back(referenced_at + ": profile includes itself: " + util::join(stack, " -> ") + " -> " +
                                canonical);
                return;
            }
        }
        auto parsed = text ? parse_toml_text(*text, path.string(), diags) : parse_toml_file(path.string(), diags);
        if (!parsed) {
            if (!referenced_at.empty() && !fs::exists(path)) {
                diags.back() = referenced_at + ": included profile " + path.string() + " does not exist";
            }
            return;
        }
        size_t before = diags.size();
        validate_table(ConfigFile::profile, *parsed, "", diags);
        if (diags.size() != before) {
            return;
        }
        stack.push_back(canonical);
        fs::path dir = path.parent_path();
        if (auto* parent = parsed->get("extends")) {
            load(dir / std::string(*parent->as_string()), location(parent->source()), out);
        }
        if (auto* includes = parsed->get_as<toml::array>("include")) {
            for (const auto& inc : *includes) {
                load(dir / std::string(*inc.as_string()), location(inc.source()), out);
            }
        }
        stack.pop_back();
        parsed->erase("extends");
        parsed->erase("include");
        resolve_sources(*parsed, dir);
        merge_tables(out, std::move(*parsed));
        files.push_back(path.string());
    }

    // File `source`s are relative to the profile that names them; make them absolute while the
    // directory is known, and check that they exist.
    void resolve_sources(toml::table& t, const fs::path& dir) {
        auto* file_list = t.at_path("base.files").as_array();
        if (!file_list) {
            return;
        }
        for (auto& e : *file_list) {
            auto& ft = *e.as_table();
            if (auto* src = ft.get_as<std::string>("source")) {
                fs::path p = fs::path(src->get()).is_absolute() ? fs::path(src->get()) : dir / src->get();
                if (!fs::is_regular_file(p)) {
                    diags.push_back(location(src->source()) + ": 'base.files[].source' file " + p.string() +
                                    " does not exist");
                }
                *src = p.string();  // assigning the value keeps the node's source position
                auto* pin = ft.get_as<std::string>("sha256");
                if (pin && fs::is_regular_file(p)) {
                    if (auto got = util::sha256_file_hex(p.string()); got != pin->get()) {
                        diags.push_back(location(pin->source()) + ": 'base.files[].source' file " + p.string() +
                                        " has sha256 " + got + ", not the pinned " + pin->get());
                    }
                }
            }
        }
    }
};

// Rules that tie keys together; each value on its own already passed the key table.
void check_rules(const toml::table& t, Diagnostics& diags) {
    if (auto* file_list = t.at_path("base.files").as_array()) {
        for (const auto& e : *file_list) {
            const auto& ft = *e.as_table();
            std::string where = location(ft.source());
            if (!ft.contains("path")) {
                diags.push_back(where + ": [[base.files]] needs 'path'");
            }
            if (ft.contains("content") == ft.contains("source")) {
                diags.push_back(where + ": [[base.files]] needs exactly one of 'content' or 'source'");
            }
            if (ft.contains("sha256") && !ft.contains("source")) {
                diags.push_back(where + ": 'sha256' pins a 'source' file; this [[base.files]] has none");
            }
        }
    }
}

}  // namespace

Profile::Profile(toml::table merged, std::vector<std::string> files, std::string digest)
    : m_table(std::move(merged)), m_files(std::move(files)), m_digest(std::move(digest)) {}

ConfigView Profile::section(std::string_view name) const {
    return ConfigView(ConfigFile::profile, &m_table, "").section(name);
}

namespace {

Result<Profile> load(const std::string& path, const std::string* text) {
    Loader loader;
    toml::table merged;
    loader.load(path, "", merged, text);
    if (loader.diags.empty()) {
        check_rules(merged, loader.diags);
    }
    if (!loader.diags.empty()) {
        return make_error(ErrorCode::config, util::join(loader.diags, "\n"));
    }
    // The digest stands for "the same profile" when a run decides whether to resume: it covers
    // the merged settings and the content of every file they send.
    std::ostringstream canon;
    canon << toml::toml_formatter(merged);
    if (auto* file_list = merged.at_path("base.files").as_array()) {
        for (const auto& e : *file_list) {
            if (auto src = e.as_table()->get_as<std::string>("source")) {
                canon << "\n" << src->get() << " " << util::sha256_file_hex(src->get());
            }
        }
    }
    std::string digest = util::sha256_hex(canon.str());
    return Profile(std::move(merged), std::move(loader.files), std::move(digest));
}

}  // namespace

Result<Profile> load_profile(const std::string& path) {
    return load(path, nullptr);
}

Result<Profile> load_profile_text(const std::string& path, const std::string& text) {
    return load(path, &text);
}

}  // namespace nodectl

#include "config/validate.hpp"

#include "util/file.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstring>

namespace nodectl {

std::string location(const toml::source_region& src) {
    std::string path = src.path ? *src.path : std::string("<input>");
    return path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

namespace {

std::string actual_type(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    default: return "date/time";
    }
}

bool all_of_type(const toml::array& arr, toml::node_type t) {
    for (const auto& e : arr) {
        if (e.type() != t) {
            return false;
        }
    }
    return true;
}

bool type_matches(ValueType type, const toml::node& n) {
    switch (type) {
    case ValueType::section: return n.is_table();
    case ValueType::string: return n.is_string();
    case ValueType::integer: return n.is_integer();
    case ValueType::boolean: return n.is_boolean();
    case ValueType::string_list: return n.is_array() && all_of_type(*n.as_array(), toml::node_type::string);
    case ValueType::table_list: return n.is_array() && all_of_type(*n.as_array(), toml::node_type::table);
    case ValueType::string_map: {
        if (!n.is_table()) {
            return false;
        }
        for (const auto& [k, v] : *n.as_table()) {
            if (!v.is_string()) {
                return false;
            }
        }
        return true;
    }
    case ValueType::secret: {
        const auto* t = n.as_table();
        if (!t || t->size() != 1) {
            return false;
        }
        const auto* f = t->get("file");
        const auto* e = t->get("env");
        return (f && f->is_string()) || (e && e->is_string());
    }
    }
    return false;
}

// Names of the keys directly under `prefix`, for "did you mean".
std::vector<std::string> sibling_names(ConfigFile file, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& k : config_keys()) {
        std::string_view name = k.name;
        if (k.file != file || !util::starts_with(name, prefix)) {
            continue;
        }
        auto rest = name.substr(prefix.size());
        if (!rest.empty() && rest != "*" && rest.find('.') == std::string_view::npos && rest.find('[') == std::string_view::npos) {
            out.emplace_back(rest);
        }
    }
    return out;
}

// `prefix` is the key table's name of `table` ("args.*."), `shown` the file's ("args.dir.").
void validate_rows(ConfigFile file, const toml::table& table, const std::string& prefix, const std::string& shown,
                   Diagnostics& diags) {
    for (const auto& [key, node] : table) {
        std::string name = shown + std::string(key.str());
        const KeySpec* spec = find_key(file, prefix + std::string(key.str()));
        if (!spec) {
            spec = find_key(file, prefix + "*");  // a table of named entries, such as [args.NAME]
        }
        if (!spec) {
            std::string msg = location(key.source()) + ": unknown key '" + name + "'";
            auto suggestion = util::closest(key.str(), sibling_names(file, prefix));
            if (!suggestion.empty()) {
                msg += "; did you mean '" + suggestion + "'?";
            } else if (prefix.empty() && file == ConfigFile::recipe) {
                msg += " (see `nodectl image keys` for the keys a recipe takes)";
            } else if (prefix.empty()) {
                msg += " (see `nodectl profile keys` for the keys a " +
                       std::string(file == ConfigFile::profile ? "profile" : "inventory") + " takes)";
            }
            diags.push_back(msg);
            continue;
        }
        if (!type_matches(spec->type, node)) {
            diags.push_back(location(node.source()) + ": '" + name + "' must be a " +
                            std::string(type_name(spec->type)) +
                            (spec->type == ValueType::secret ? " ({ file = \"PATH\" } or { env = \"VAR\" })" : "") +
                            ", not " + actual_type(node));
            continue;
        }
        if (auto reason = check_value(*spec, node); !reason.empty()) {
            diags.push_back(location(node.source()) + ": '" + name + "' " + reason);
            continue;
        }
        // Children are looked up under the row's name ("args.*."), messages use the real one.
        std::string row(spec->name);
        if (spec->type == ValueType::section) {
            validate_rows(file, *node.as_table(), row + ".", name + ".", diags);
        } else if (spec->type == ValueType::table_list) {
            for (const auto& element : *node.as_array()) {
                validate_rows(file, *element.as_table(), row + "[].", name + "[].", diags);
            }
        }
    }
}

} // namespace

void validate_table(ConfigFile file, const toml::table& table, const std::string& prefix, Diagnostics& diags) {
    validate_rows(file, table, prefix, prefix, diags);
}

std::optional<toml::table> parse_toml_file(const std::string& path, Diagnostics& diags) {
    auto content = util::read_file(path);
    if (!content) {
        diags.push_back(path + ": cannot read file: " + std::strerror(errno));
        return std::nullopt;
    }
    return parse_toml_text(*content, path, diags);
}

std::optional<toml::table> parse_toml_text(const std::string& text, const std::string& path, Diagnostics& diags) {
    try {
        return toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        diags.push_back(location(e.source()) + ": " + std::string(e.description()));
        return std::nullopt;
    }
}

} // namespace nodectl

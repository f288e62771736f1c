#include "config/validate.hpp"

#include "util/file.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

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
        if (!rest.empty() && rest != "*" && rest.find('.') == std::string_view::npos &&
            rest.find('[') == std::string_view::npos) {
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

}  // namespace

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

namespace {

// toml++ 3.3 (Debian 12) reaches __builtin_unreachable() (undefined behaviour: in a release build,
// anything) when it asks whether many characters beyond ASCII are whitespace
// (is_non_ascii_horizontal_whitespace, U+00A1..U+049A among them). It asks only outside strings and
// comments, and in a multi-line "" string right after a backslash. So such characters reach toml++
// only where it does not ask: parse_toml_text checks the text's lexical structure here, and first
// has toml++ parse a copy with each of them replaced by 'x' (nothing toml++ can misread), so that
// the structure checked is that of valid TOML.
// Line and column of the first character beyond ASCII outside a string or comment, or first after
// a line-ending backslash.
std::optional<std::pair<size_t, size_t>> non_ascii_outside_strings(std::string_view t) {
    enum class In { code, comment, basic, literal, ml_basic, ml_literal } in = In::code;
    size_t line = 1, col = 0;
    bool escaped = false, skipping = false;  // skipping: the whitespace after a line-ending backslash
    auto at = [&t](size_t i, std::string_view s) { return t.substr(i, s.size()) == s; };
    for (size_t i = 0; i < t.size(); ++i) {
        auto c = static_cast<unsigned char>(t[i]);
        if (c == '\n') {
            ++line;
            col = 0;
        } else if ((c & 0xc0) != 0x80) {
            ++col;
        }
        if (escaped) {
            escaped = false;
            continue;
        }
        if (skipping) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                continue;
            }
            if (c >= 0x80) {
                return std::pair{line, col};
            }
            skipping = false;
        }
        switch (in) {
        case In::code:
            if (c >= 0x80) {
                return std::pair{line, col};
            }
            if (c == '#') {
                in = In::comment;
            } else if (at(i, "\"\"\"") || at(i, "'''")) {
                in = c == '"' ? In::ml_basic : In::ml_literal;
                i += 2;
                col += 2;
            } else if (c == '"' || c == '\'') {
                in = c == '"' ? In::basic : In::literal;
            }
            break;
        case In::comment: in = c == '\n' ? In::code : in; break;
        case In::basic:
        case In::literal:
            escaped = in == In::basic && c == '\\';
            if (c == '\n' || c == (in == In::basic ? '"' : '\'')) {
                in = In::code;
            }
            break;
        case In::ml_basic:
        case In::ml_literal: {
            char quote = in == In::ml_basic ? '"' : '\'';
            if (in == In::ml_basic && c == '\\') {
                size_t end = t.find_first_not_of(" \t\r", i + 1);
                skipping = end != std::string_view::npos && t[end] == '\n';
                escaped = !skipping;
            }
            if (c == static_cast<unsigned char>(quote) && at(i, std::string(3, quote))) {
                while (i + 1 < t.size() && t[i + 1] == quote) {  // up to two quotes may end the content
                    ++i;
                    ++col;
                }
                in = In::code;
            }
            break;
        }
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<toml::table> parse_toml_text(const std::string& text, const std::string& path, Diagnostics& diags) {
    if (auto where = non_ascii_outside_strings(text)) {
        diags.push_back(path + ":" + std::to_string(where->first) + ":" + std::to_string(where->second) +
                        ": a character beyond ASCII outside a string or comment (TOML allows them only there)");
        return std::nullopt;
    }
    try {
        if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
            std::string ascii;
            for (char c : text) {
                auto u = static_cast<unsigned char>(c);
                if (u < 0x80) {
                    ascii += c;
                } else if (u >= 0xc0) {
                    ascii += 'x';  // a character's first byte; the bytes that continue it are left out
                }
            }
            (void)toml::parse(ascii, path);
        }
        return toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        diags.push_back(location(e.source()) + ": " + std::string(e.description()));
        return std::nullopt;
    }
}

}  // namespace nodectl

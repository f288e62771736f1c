#include "config/validate.hpp"
#include "nodectl/config.hpp"

#include <stdexcept>

namespace nodectl {

ConfigView::ConfigView(ConfigFile file, const toml::table* table, std::string prefix)
    : m_file(file), m_table(table), m_prefix(std::move(prefix)) {}

std::string ConfigView::full(std::string_view key) const {
    return m_prefix.empty() ? std::string(key) : m_prefix + "." + std::string(key);
}

const KeySpec& ConfigView::spec(std::string_view key) const {
    const KeySpec* s = find_key(m_file, full(key));
    if (!s) {
        // Reading a key that is not in the table is a programming error, caught by the unit tests.
        throw std::logic_error("config key not in the key table: " + full(key));
    }
    return *s;
}

const toml::node* ConfigView::node(std::string_view key) const {
    spec(key);
    return m_table->get(key);
}

bool ConfigView::has(std::string_view key) const {
    return node(key) != nullptr;
}

namespace {

// Defaults are written in TOML in the key table; parse them the same way as user values.
toml::table parse_default(std::string_view text) {
    return toml::parse("v = " + std::string(text));
}

}  // namespace

// A string, integer or boolean: the profile's value, else the key table's default, else T{}.
template <class T>
T ConfigView::scalar(std::string_view key) const {
    if (const auto* n = node(key)) {
        return n->value<T>().value_or(T{});
    }
    auto d = spec(key).default_value;
    return d.empty() ? T{} : parse_default(d)["v"].template value_or<T>(T{});
}

std::string ConfigView::str(std::string_view key) const {
    return scalar<std::string>(key);
}

int64_t ConfigView::integer(std::string_view key) const {
    return scalar<int64_t>(key);
}

bool ConfigView::boolean(std::string_view key) const {
    return scalar<bool>(key);
}

std::vector<std::string> ConfigView::strings(std::string_view key) const {
    std::vector<std::string> out;
    auto collect = [&](const toml::node& n) {
        for (const auto& e : *n.as_array()) {
            out.emplace_back(*e.as_string());
        }
    };
    if (const auto* n = node(key)) {
        collect(*n);
    } else if (auto d = spec(key).default_value; !d.empty()) {
        collect(*parse_default(d)["v"].node());
    }
    return out;
}

std::map<std::string, std::string> ConfigView::string_map(std::string_view key) const {
    std::map<std::string, std::string> out;
    if (const auto* n = node(key)) {
        for (const auto& [k, v] : *n->as_table()) {
            out[std::string(k.str())] = std::string(*v.as_string());
        }
    }
    return out;
}

std::optional<SecretRef> ConfigView::secret(std::string_view key) const {
    const auto* n = node(key);
    if (!n) {
        return std::nullopt;
    }
    const auto& t = *n->as_table();
    SecretRef ref;
    ref.file = t["file"].value_or(std::string());
    ref.env = t["env"].value_or(std::string());
    return ref;
}

std::vector<ConfigView> ConfigView::tables(std::string_view key) const {
    std::vector<ConfigView> out;
    if (const auto* n = node(key)) {
        for (const auto& e : *n->as_array()) {
            out.emplace_back(m_file, e.as_table(), full(key) + "[]");
        }
    }
    return out;
}

ConfigView ConfigView::section(std::string_view key) const {
    static const toml::table k_empty;
    const auto* n = node(key);
    if (n && n->is_table()) {
        return ConfigView(m_file, n->as_table(), full(key));
    }
    ConfigView missing(m_file, &k_empty, full(key));
    missing.m_missing_where = where();
    return missing;
}

std::string ConfigView::where(std::string_view key) const {
    if (!key.empty()) {
        if (const auto* n = node(key)) {
            return location(n->source());
        }
    }
    return m_missing_where.empty() ? location(m_table->source()) : m_missing_where;
}

std::string SecretRef::describe() const {
    return file.empty() ? "environment variable " + env : "file " + file;
}

}  // namespace nodectl

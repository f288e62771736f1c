// The one table of configuration keys. Every key of a profile or an inventory has exactly one row
// here: name, type, default, validator and one line of documentation. Loading, validation,
// defaults, `nodectl profile keys` and the docs all read this table. Adding a key is one row here
// plus the code that reads it.
#include "nodectl/config.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <regex>
#include <vector>

namespace nodectl {

namespace {

std::string str_of(const toml::node& n) {
    return n.is_string() ? std::string(*n.as_string()) : std::string();
}

std::string not_empty(const toml::node& n) {
    return str_of(n).empty() ? "must not be empty" : "";
}

std::string absolute_path(const toml::node& n) {
    auto s = str_of(n);
    if (s.empty() || s[0] != '/') {
        return "must be an absolute path (starting with '/')";
    }
    if (s.find("/../") != std::string::npos || s.ends_with("/..")) {
        return "must not contain '..'";
    }
    return "";
}

std::string port(const toml::node& n) {
    auto v = n.value<int64_t>().value_or(0);
    return v >= 1 && v <= 65535 ? "" : "must be a TCP port between 1 and 65535";
}

std::string file_mode(const toml::node& n) {
    static const std::regex k_re("^0?[0-7]{3,4}$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be an octal file mode as a string, such as \"0644\"";
}

std::string sudo_mode(const toml::node& n) {
    auto s = str_of(n);
    return s == "none" || s == "nopasswd" || s == "password" ? ""
                                                             : "must be one of \"none\", \"nopasswd\", \"password\"";
}

std::string hostname(const toml::node& n) {
    // RFC 1123 labels; ${...} references are expanded per host later and checked then.
    static const std::regex k_re("^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$");
    auto s = str_of(n);
    if (s.find("${") != std::string::npos) {
        return "";
    }
    return s.size() <= 253 && std::regex_match(s, k_re) ? "" : "must be a valid host name (letters, digits, '-', '.')";
}

std::string timezone(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a zoneinfo name such as \"Etc/UTC\" or \"Europe/Berlin\"";
}

std::string http_url(const toml::node& n) {
    static const std::regex k_re("^https?://[^\\s/]+(:[0-9]+)?/?$");
    if (str_of(n).find("${") != std::string::npos) {
        return "";  // checked after per-host expansion
    }
    return str_of(n).empty() || std::regex_match(str_of(n), k_re) ? "" : "must be an http:// or https:// URL such as \"http://host:3142\"";
}

std::string hosts_lines(const toml::node& n) {
    static const std::regex k_re("^[0-9A-Fa-f.:]+(\\s+[A-Za-z0-9.-]+)+$");
    if (auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (str_of(e).find("${") != std::string::npos) {
                continue;  // checked after per-host expansion
            }
            if (util::starts_with(str_of(e), "127.0.1.1")) {
                return "must not set 127.0.1.1: that line names the host itself and belongs to base.hostname";
            }
            if (!std::regex_match(str_of(e), k_re)) {
                return "each entry must be \"ADDRESS NAME [NAME...]\", got \"" + str_of(e) + "\"";
            }
        }
    }
    return "";
}

// The first entry of a string list that does not match `re`, as a reason; "" when all match.
std::string each_matches(const toml::node& n, const std::regex& re, const std::string& what) {
    if (auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (!std::regex_match(str_of(e), re)) {
                return "each entry must be " + what + "; got \"" + str_of(e) + "\"";
            }
        }
    }
    return "";
}

std::string unit_names(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9:_.@\\\\-]+\\.(service|socket|timer|mount|automount|path|target)$");
    return each_matches(n, k_re, "a systemd unit name with its suffix, such as \"ssh.service\"");
}

std::string package_names(const toml::node& n) {
    static const std::regex k_re("^[a-z0-9][a-z0-9+.-]+$");
    return each_matches(n, k_re, "a Debian package name");
}

using enum ValueType;
constexpr auto P = ConfigFile::profile;
constexpr auto I = ConfigFile::inventory;

std::vector<KeySpec> build_table() {
    std::vector<KeySpec> keys = {
        {"extends", P, string, "", not_empty, "parent profile this one refines (path relative to this file); merged first"},
        {"include", P, string_list, "[]", nullptr, "profiles merged after `extends` and before this file, in order"},
        {"description", P, string, "", nullptr, "free text shown by `profile validate`"},

        {"base", P, section, "", nullptr, "everyday first-boot chores: hostname, time zone, apt, packages, files, units"},
        {"base.hostname", P, string, "", hostname, "host name to set; may use ${host.name} or ${vars.NAME}"},
        {"base.timezone", P, string, "", timezone, "zoneinfo name for /etc/localtime, e.g. \"Etc/UTC\""},
        {"base.hosts_entries", P, string_list, "[]", hosts_lines, "lines kept in a marked block of /etc/hosts: \"ADDRESS NAME...\""},
        {"base.apt_proxy", P, string, "", http_url, "HTTP proxy for apt (/etc/apt/apt.conf.d/01nodectl-proxy); \"\" removes it"},
        {"base.packages", P, string_list, "[]", package_names, "Debian packages that must be installed"},
        {"base.packages_absent", P, string_list, "[]", package_names, "Debian packages that must not be installed"},
        {"base.units_enabled", P, string_list, "[]", unit_names, "systemd units enabled and started"},
        {"base.units_disabled", P, string_list, "[]", unit_names, "systemd units disabled and stopped"},
        {"base.files", P, table_list, "[]", nullptr, "files with content, mode and owner ([[base.files]] tables)"},
        {"base.files[].path", P, string, "", absolute_path, "absolute path of the file (required)"},
        {"base.files[].content", P, string, "", nullptr, "the file's content (this or `source`)"},
        {"base.files[].source", P, string, "", not_empty, "local file whose content is used, relative to the profile"},
        {"base.files[].mode", P, string, "\"0644\"", file_mode, "permission bits as an octal string"},
        {"base.files[].owner", P, string, "\"root\"", not_empty, "owning user"},
        {"base.files[].group", P, string, "\"root\"", not_empty, "owning group"},
        {"base.files[].sensitive", P, boolean, "false", nullptr, "hide the content from plans and diffs (for secrets)"},

        {"defaults", I, section, "", nullptr, "connection settings for every host that does not set its own"},
        {"hosts", I, table_list, "[]", nullptr, "the hosts ([[hosts]] tables)"},
        {"hosts[].name", I, string, "", not_empty, "label on log lines and reports; defaults to the address"},
        {"hosts[].address", I, string, "", not_empty, "DNS name or IP address to connect to (required)"},
        {"hosts[].roles", I, string_list, "[]", nullptr, "roles of the host, e.g. [\"server\"]"},
        {"hosts[].vars", I, string_map, "", nullptr, "per-host variables, used in profiles as ${vars.NAME}"},
    };
    // Connection settings exist once per host and once in [defaults], with the same meaning.
    const KeySpec connection[] = {
        {"port", I, integer, "22", port, "SSH port"},
        {"user", I, string, "", not_empty, "SSH user; without it: User from ~/.ssh/config, else the local user (as ssh does)"},
        {"identity", I, string, "", not_empty, "private key file; without it ssh-agent and ~/.ssh/id_* are tried"},
        {"proxy_jump", I, string, "", not_empty, "jump host, \"[user@]host[:port]\" (like ssh -J)"},
        {"sudo", I, string, "\"none\"", sudo_mode, "how to become root: none (log in as root), nopasswd, password"},
        {"sudo_password", I, secret, "", nullptr, "sudo password: { file = \"PATH\" } or { env = \"VAR\" }"},
    };
    static std::vector<std::string> names;  // owns the generated names for the string_views
    names.reserve(std::size(connection) * 2);
    for (const char* prefix : {"defaults.", "hosts[]."}) {
        for (const auto& k : connection) {
            names.push_back(std::string(prefix) + std::string(k.name));
            KeySpec row = k;
            row.name = names.back();
            keys.push_back(row);
        }
    }
    return keys;
}

} // namespace

std::span<const KeySpec> config_keys() {
    static const std::vector<KeySpec> k_keys = build_table();
    return k_keys;
}

const KeySpec* find_key(ConfigFile file, std::string_view name) {
    for (const auto& k : config_keys()) {
        if (k.file == file && k.name == name) {
            return &k;
        }
    }
    return nullptr;
}

std::string check_expanded(ConfigFile file, std::string_view key, const std::string& value) {
    const KeySpec* spec = find_key(file, key);
    if (!spec || !spec->validate) {
        return "";
    }
    std::string reason;
    if (spec->type == ValueType::string_list) {
        toml::array arr;
        arr.push_back(value);
        reason = spec->validate(arr);
    } else {
        reason = spec->validate(toml::value<std::string>(value));
    }
    return reason;
}

std::string_view type_name(ValueType type) {
    switch (type) {
    case section: return "section";
    case string: return "string";
    case integer: return "integer";
    case boolean: return "boolean";
    case string_list: return "list of strings";
    case table_list: return "list of tables";
    case string_map: return "table";
    case secret: return "secret";
    }
    return "?";
}

} // namespace nodectl

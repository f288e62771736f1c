// Profiles and inventories: TOML files checked against the one key table (src/config/keys.cpp).
// A loaded config has passed validation; ConfigView reads it with the table's defaults applied.
#pragma once

#include "nodectl/result.hpp"

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl {

// recipe: an image recipe (images/<name>/recipe.toml); "*" in a key name matches any one name.
enum class ConfigFile { profile, inventory, recipe };
enum class ValueType { section, string, integer, boolean, string_list, table_list, string_map, secret };

// Returns the reason the value is wrong, or an empty string when it is fine.
using Validator = std::string (*)(const toml::node&);

struct KeySpec {
    std::string_view name;  // dotted path; "[]" marks an element of an array of tables
    ConfigFile file;
    ValueType type;
    std::string_view default_value;  // as written in TOML; empty means no default
    Validator validate;  // may be null
    std::string_view doc;
};

std::span<const KeySpec> config_keys();
const KeySpec* find_key(ConfigFile file, std::string_view name);
std::string_view type_name(ValueType type);
// Checks a value against its row: no control characters (outside the few multi-line keys), then
// the row's validator. "" when the value is fine, else the reason.
std::string check_value(const KeySpec& spec, const toml::node& value);
// Runs a key's checks on a value after ${...} expansion (validators let ${...} through at
// load time, since its value is only known per host). Empty string when the value is fine.
std::string check_expanded(ConfigFile file, std::string_view key, const std::string& value);

// A reference to a secret: exactly one of file or env is set. The secret's value is read only
// when a step needs it, and is never logged or put in a command line.
struct SecretRef {
    std::string file;
    std::string env;
    std::string describe() const;  // "file /x" or "env VAR", never the value
};

class Secret {
public:
    explicit Secret(std::string value) : m_value(std::move(value)) {}
    const std::string& reveal() const { return m_value; }

private:
    std::string m_value;
};

// Reads the secret; a file must not be readable by group or others.
Result<Secret> resolve_secret(const SecretRef& ref);

// Reads a validated table with the key table's defaults. `prefix` is the key path of `table`
// ("base", "base.files[]", "hosts[]").
class ConfigView {
public:
    ConfigView(ConfigFile file, const toml::table* table, std::string prefix);

    bool has(std::string_view key) const;
    std::string str(std::string_view key) const;
    int64_t integer(std::string_view key) const;
    bool boolean(std::string_view key) const;
    std::vector<std::string> strings(std::string_view key) const;
    std::map<std::string, std::string> string_map(std::string_view key) const;
    std::optional<SecretRef> secret(std::string_view key) const;
    std::vector<ConfigView> tables(std::string_view key) const;
    ConfigView section(std::string_view key) const;
    // "file:line:col" of the key's value, or of the table when the key is absent.
    std::string where(std::string_view key = {}) const;

private:
    const toml::node* node(std::string_view key) const;
    template <class T>
    T scalar(std::string_view key) const;
    std::string full(std::string_view key) const;
    const KeySpec& spec(std::string_view key) const;

    ConfigFile m_file;
    const toml::table* m_table;
    std::string m_prefix;
    std::string m_missing_where;  // a section absent from the file: where its parent is
};

class Profile {
public:
    Profile(toml::table merged, std::vector<std::string> files, std::string digest);
    ConfigView section(std::string_view name) const;
    // Files read, the profile itself last (includes first).
    const std::vector<std::string>& files() const { return m_files; }
    // sha256 of the merged profile; the journal uses it to tell whether a run can resume.
    const std::string& digest() const { return m_digest; }
    const toml::table& table() const { return m_table; }

private:
    toml::table m_table;
    std::vector<std::string> m_files;
    std::string m_digest;
};

// Loads a profile with its `extends` and `include`s, and validates it. All problems are reported
// at once, each as "file:line:col: reason".
Result<Profile> load_profile(const std::string& path);

enum class SudoMode { none, nopasswd, password };

struct HostSpec {
    std::string name;  // label on log lines; defaults to the address
    std::string address;  // DNS name or IP, or "local"
    std::optional<int> port;
    std::optional<std::string> user;
    std::optional<std::string> identity;
    std::optional<std::string> known_hosts;  // from the inventory; --known-hosts wins
    std::optional<std::string> proxy_jump;
    SudoMode sudo = SudoMode::none;
    std::optional<SecretRef> sudo_password;
    std::vector<std::string> roles;
    std::map<std::string, std::string> vars;
    bool local = false;
};

Result<std::vector<HostSpec>> load_inventory(const std::string& path);
// "user@host[:port]", "host", "[v6addr]:port".
Result<HostSpec> parse_host_arg(const std::string& arg);

// Expands ${host.name}, ${host.address} and ${vars.NAME} in a profile string.
Result<std::string> expand_vars(const std::string& text, const HostSpec& host, const std::string& where);

}  // namespace nodectl

// Inventories list hosts with their connection settings; [defaults] fill what a host leaves out.
// Hosts can also come from the command line as user@host[:port].
#include "config/ssh_destination.hpp"
#include "config/validate.hpp"
#include "nodectl/config.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <filesystem>
#include <regex>

namespace nodectl {

namespace {

SudoMode parse_sudo(const std::string& s) {
    return s == "password" ? SudoMode::password : s == "nopasswd" ? SudoMode::nopasswd : SudoMode::none;
}

}  // namespace

Result<std::vector<HostSpec>> load_inventory(const std::string& path) {
    Diagnostics diags;
    auto parsed = parse_toml_file(path, diags);
    if (parsed) {
        validate_table(ConfigFile::inventory, *parsed, "", diags);
    }
    if (!diags.empty()) {
        return make_error(ErrorCode::config, util::join(diags, "\n"));
    }
    ConfigView root(ConfigFile::inventory, &*parsed, "");
    ConfigView defaults = root.section("defaults");
    std::filesystem::path dir = std::filesystem::path(path).parent_path();

    std::vector<HostSpec> hosts;
    for (const auto& h : root.tables("hosts")) {
        if (!h.has("address")) {
            diags.push_back(h.where() + ": [[hosts]] needs 'address'");
            continue;
        }
        // A host's own value wins, then [defaults], then the key table's default.
        auto pick = [&](std::string_view key) -> const ConfigView& { return h.has(key) ? h : defaults; };
        HostSpec spec;
        spec.address = h.str("address");
        spec.name = h.has("name") ? h.str("name") : spec.address;
        if (pick("port").has("port")) {
            spec.port = static_cast<int>(pick("port").integer("port"));
        }
        if (pick("user").has("user")) {
            spec.user = pick("user").str("user");
        }
        // File names are relative to the inventory's directory.
        auto file = [&](std::string_view key) -> std::optional<std::string> {
            if (!pick(key).has(key)) {
                return std::nullopt;
            }
            auto p = std::filesystem::path(pick(key).str(key));
            return (p.is_absolute() || p.string().starts_with("~") ? p : dir / p).string();
        };
        spec.identity = file("identity");
        spec.known_hosts = file("known_hosts");
        if (pick("proxy_jump").has("proxy_jump")) {
            spec.proxy_jump = pick("proxy_jump").str("proxy_jump");
        }
        spec.sudo = parse_sudo(pick("sudo").str("sudo"));
        spec.sudo_password = pick("sudo_password").secret("sudo_password");
        if (spec.sudo == SudoMode::password && !spec.sudo_password) {
            diags.push_back(h.where() + ": host '" + spec.name +
                            "' has sudo = \"password\" but no sudo_password = { file = ... } or { env = ... }");
        }
        spec.roles = h.strings("roles");
        spec.vars = h.string_map("vars");
        for (const auto& other : hosts) {
            if (other.name == spec.name) {
                diags.push_back(h.where() + ": host name '" + spec.name + "' is used twice");
            }
        }
        hosts.push_back(std::move(spec));
    }
    if (!diags.empty()) {
        return make_error(ErrorCode::config, util::join(diags, "\n"));
    }
    return hosts;
}

bool is_ssh_host(std::string_view s) {
    static const std::regex k_name("^[A-Za-z0-9_][A-Za-z0-9._-]*$");
    static const std::regex k_v6("^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$");
    std::string str(s);
    return !s.empty() && s.size() <= 253 && (std::regex_match(str, k_name) || std::regex_match(str, k_v6));
}

std::optional<SshDestination> parse_ssh_destination(std::string_view s) {
    static const std::regex k_re(
        R"(^(?:([A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?:\[([0-9A-Fa-f:.]+)\]|([^@:\[\]]+))(?::([0-9]{1,5}))?$)");
    std::string str(s);
    std::smatch m;
    if (!std::regex_match(str, m, k_re)) {
        return std::nullopt;
    }
    SshDestination d;
    if (m[1].matched) {
        d.user = m[1].str();
    }
    d.host = m[2].matched ? m[2].str() : m[3].str();
    if (!is_ssh_host(d.host)) {
        return std::nullopt;
    }
    if (m[4].matched) {
        auto port = util::parse_uint(m[4].str(), {.max = 65535});
        if (!port || *port == 0) {
            return std::nullopt;
        }
        d.port = static_cast<int>(*port);
    }
    return d;
}

Result<HostSpec> parse_host_arg(const std::string& arg) {
    auto d = parse_ssh_destination(arg);
    if (!d) {
        return make_error(
            ErrorCode::usage,
            "'" + arg +
                "' is not a host; expected user@host[:port] (a host name or an IP address; the port must be between 1 and 65535)");
    }
    HostSpec spec;
    spec.user = d->user;
    spec.address = d->host;
    spec.port = d->port;
    spec.name = spec.address;
    return spec;
}

Result<std::string> expand_vars(const std::string& text, const HostSpec& host, const std::string& where) {
    std::string out;
    size_t pos = 0;
    while (true) {
        size_t start = text.find("${", pos);
        if (start == std::string::npos) {
            out += text.substr(pos);
            return out;
        }
        size_t end = text.find('}', start);
        if (end == std::string::npos) {
            return make_error(ErrorCode::config, where + ": unterminated ${ in \"" + text + "\"");
        }
        out += text.substr(pos, start - pos);
        std::string name = text.substr(start + 2, end - start - 2);
        if (name == "host.name") {
            out += host.name;
        } else if (name == "host.address") {
            out += host.address;
        } else if (util::starts_with(name, "vars.") && host.vars.count(name.substr(5))) {
            out += host.vars.at(name.substr(5));
        } else {
            return make_error(ErrorCode::config, where + ": unknown variable ${" + name + "} for host '" + host.name +
                                                     "' (known: ${host.name}, ${host.address}, ${vars.NAME} from the "
                                                     "inventory)");
        }
        pos = end + 1;
    }
}

}  // namespace nodectl

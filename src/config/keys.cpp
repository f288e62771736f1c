// The one table of configuration keys. Every key of a profile or an inventory has exactly one row
// here: name, type, default, validator and one line of documentation. Loading, validation,
// defaults, `nodectl profile keys` and the docs all read this table. Adding a key is one row here
// plus the code that reads it.
#include "config/ssh_destination.hpp"
#include "nodectl/config.hpp"

#include "util/net.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cstdio>
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

std::string sha256_hex(const toml::node& n) {
    static const std::regex k_re("^[0-9a-f]{64}$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a sha256 in lower-case hex (64 characters)";
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

std::string choice(const toml::node& n, std::initializer_list<const char*> allowed);

std::string sudo_mode(const toml::node& n) {
    return choice(n, {"none", "nopasswd", "password"});
}

std::string hostname(const toml::node& n) {
    // RFC 1123 labels; ${...} references are expanded per host later and checked then.
    static const std::regex k_re(
        "^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$");
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

// scheme://host[:port][/] and nothing else: the host a name or an IP address. The value is
// written between quotes into apt's configuration, so quotes, ';', braces, spaces, user info and
// paths never get through.
std::string http_url(const toml::node& n) {
    static const std::regex k_re(
        "^https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
        "|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?/?$");
    if (str_of(n).find("${") != std::string::npos) {
        return "";  // checked after per-host expansion
    }
    return str_of(n).empty() || std::regex_match(str_of(n), k_re)
               ? ""
               : "must be an http:// or https:// URL of a host name or IP address with an optional port, such as \"http://host:3142\"";
}

// An absolute path of plain characters (letters, digits, '.', '_', '-', '+', '@', ':', '/'): it is
// written unquoted into unit settings (Where=, RequiresMountsFor=, ReadWritePaths=) and mount
// options, where a space, ',' or '%' would change its meaning. "" passes (the key's default).
std::string plain_path(const toml::node& n) {
    static const std::regex k_re("^/[A-Za-z0-9._+@:/-]*$");
    auto s = str_of(n);
    if (s.empty()) {
        return "";
    }
    if (auto why = absolute_path(n); !why.empty()) {
        return why;
    }
    return std::regex_match(s, k_re)
               ? ""
               : "must be an absolute path of letters, digits and '.', '_', '-', '+', '@', ':', '/' only";
}

// [mounts.s3fs] bucket (s3fs also takes "bucket:/path") and [[backup.targets]] bucket.
std::string bucket_name(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9][A-Za-z0-9._-]{0,254}(:/[A-Za-z0-9._/-]*)?$");
    auto s = str_of(n);
    return s.empty() || std::regex_match(s, k_re) ? "" : "must be a bucket name (letters, digits, '.', '_', '-')";
}

std::string s3_region(const toml::node& n) {
    static const std::regex k_re("^[a-z0-9][a-z0-9-]*$");
    auto s = str_of(n);
    return s.empty() || std::regex_match(s, k_re) ? "" : "must be a region name such as \"eu-central-1\"";
}

std::string key_prefix(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9._=+@-][A-Za-z0-9._/=+@-]*$");
    auto s = str_of(n);
    if (s.empty()) {
        return "";
    }
    if (s.find("..") != std::string::npos || s.find("//") != std::string::npos || !std::regex_match(s, k_re)) {
        return "must be a key prefix of letters, digits and '.', '_', '-', '=', '+', '@', '/' (not starting with '/', no '..'), such as \"nodes/web1/\"";
    }
    return "";
}

// tmpfs size=: bytes with an optional k/m/g suffix, or a percentage of RAM.
std::string tmpfs_size(const toml::node& n) {
    static const std::regex k_re("^[0-9]+[kKmMgG%]?$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a tmpfs size such as \"25%\", \"512m\" or \"2g\"";
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

// "" when the string is one of `allowed`, else the reason listing them.
std::string choice(const toml::node& n, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
        if (str_of(n) == a) {
            return "";
        }
        list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    }
    return "must be one of " + list;
}

std::string root_login(const toml::node& n) {
    return choice(n, {"no", "prohibit-password"});
}

std::string ssh_host(const toml::node& n) {
    return is_ssh_host(str_of(n)) ? "" : "must be a host name or an IP address";
}

std::string ssh_jump(const toml::node& n) {
    return parse_ssh_destination(str_of(n)) ? "" : "must be \"[user@]host[:port]\" with a host name or an IP address";
}

std::string node_role(const toml::node& n) {
    return choice(n, {"standalone", "k3s-server", "k3s-server-ha", "k3s-agent"});
}

std::string cni_backend(const toml::node& n) {
    return choice(n, {"vxlan", "wireguard"});
}

std::string protocol(const toml::node& n) {
    return choice(n, {"tcp", "udp"});
}

std::string port_or_range(const toml::node& n) {
    static const std::regex k_re("^([0-9]{1,5})(-([0-9]{1,5}))?$");
    std::smatch m;
    auto s = str_of(n);
    if (!std::regex_match(s, m, k_re)) {
        return "must be a port or a range such as \"8080\" or \"51820-51821\"";
    }
    auto a = util::parse_uint(m[1].str(), {.max = 65535});
    auto b = m[3].matched ? util::parse_uint(m[3].str(), {.max = 65535}) : a;
    return a && b && *a >= 1 && *a <= *b ? "" : "must be ports between 1 and 65535, low-high";
}

std::string cidrs(const toml::node& n) {
    static const std::regex k_re(
        "^([0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:]+:[0-9A-Fa-f:]*(/[0-9]{1,3})?)$");
    return each_matches(n, k_re, "an IPv4 or IPv6 address or network such as \"198.18.0.0/15\"");
}

std::string group_names(const toml::node& n) {
    static const std::regex k_re("^[a-z_][a-z0-9_-]{0,31}$");
    return each_matches(n, k_re, "a group name (lower case letters, digits, '-', '_')");
}

std::string user_name(const toml::node& n) {
    static const std::regex k_re("^[a-z_][a-z0-9_-]{0,31}$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a user name (lower case letters, digits, '-', '_')";
}

std::string ssh_public_keys(const toml::node& n) {
    if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (str_of(e).find("${") != std::string::npos) {
                return "";  // checked after per-host expansion
            }
        }
    }
    static const std::regex k_re(
        "^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com) [A-Za-z0-9+/=]+( .*)?$");
    return each_matches(n, k_re, "an OpenSSH public key line such as \"ssh-ed25519 AAAA... comment\"");
}

std::string sysctl_map(const toml::node& n) {
    static const std::regex k_re("^[a-z0-9_]+(\\.[A-Za-z0-9_-]+)+$");
    if (const auto* t = n.as_table()) {
        for (const auto& [k, v] : *t) {
            if (!std::regex_match(std::string(k.str()), k_re)) {
                return "keys must be sysctl names such as \"net.ipv4.tcp_syncookies\"; got \"" + std::string(k.str()) +
                       "\"";
            }
        }
    }
    return "";
}

std::string cgroup_driver(const toml::node& n) {
    return choice(n, {"auto", "systemd", "cgroupfs"});
}

std::string snapshotter(const toml::node& n) {
    return choice(n, {"overlayfs", "native", "btrfs", "zfs", "fuse-overlayfs"});
}

std::string k3s_role(const toml::node& n) {
    return choice(n, {"server", "agent"});
}

std::string positive(const toml::node& n) {
    return n.value<int64_t>().value_or(0) > 0 ? "" : "must be a positive number";
}

std::string umask_value(const toml::node& n) {
    static const std::regex k_re("^0?[0-7]{3}$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be an octal umask as a string, such as \"027\"";
}

std::string max_startups(const toml::node& n) {
    static const std::regex k_re("^[0-9]+(:[0-9]+:[0-9]+)?$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be \"start:rate:full\" such as \"10:30:60\"";
}

std::string k3s_version(const toml::node& n) {
    static const std::regex k_re("^v[0-9]+\\.[0-9]+\\.[0-9]+(-rc[0-9]+)?\\+k3s[0-9]+$");
    auto s = str_of(n);
    return s.empty() || std::regex_match(s, k_re) ? "" : "must be a k3s release such as \"v1.30.6+k3s1\"";
}

// k3s.release_url, k3s.channel_url: https://HOST[:PORT][/PATH] or file:///PATH (plain http only
// with k3s.allow_insecure_http, checked where both keys are known).
std::string release_url(const toml::node& n) {
    static const std::regex k_http(
        R"(^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~%+/-]*)?$)");
    static const std::regex k_file(R"(^file:///[A-Za-z0-9._~%+/-]*$)");
    auto s = str_of(n);
    std::smatch m;
    if (std::regex_match(s, m, k_http) && util::is_host(m[1].str())) {
        return "";
    }
    return std::regex_match(s, k_file)
               ? ""
               : "must be an https:// URL (host name or IP address, then a path) or a file:/// URL";
}

std::string k3s_channel(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
    return std::regex_match(str_of(n), k_re) ? ""
                                             : "must be a channel name such as \"stable\", \"latest\" or \"v1.30\"";
}

std::string k3s_server_url(const toml::node& n) {
    static const std::regex k_re(R"(^https://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$)");
    auto s = str_of(n);
    std::smatch m;
    if (s.empty()) {
        return "";
    }
    if (std::regex_match(s, m, k_re) && util::is_host(m[1].str())) {
        if (auto p = util::parse_uint(m[2].str(), {.max = 65535}); p && *p >= 1) {
            return "";
        }
    }
    return "must be https://HOST:PORT with a host name or an IP address, such as \"https://198.18.0.2:6443\"";
}

// [mounts]: an NFS source "server:/export", mount options without ',' or spaces, an S3 URL.
std::string nfs_source(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9.:\\[\\]-]+:/[A-Za-z0-9._/+@:-]*$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be an NFS share \"server:/export/path\"";
}

std::string mount_options(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9_.:/=+-]+$");
    return each_matches(n, k_re, "a mount option without ',' or spaces, such as \"nfsvers=4.2\"");
}

std::string s3_url(const toml::node& n) {
    static const std::regex k_re("^https?://[A-Za-z0-9.:\\[\\]_-]+(/[A-Za-z0-9._/-]*)?$");
    return str_of(n).empty() || std::regex_match(str_of(n), k_re)
               ? ""
               : "must be an http:// or https:// URL (or empty for AWS)";
}

std::string k8s_names(const toml::node& n) {
    // node labels "key=value", taints "key=value:Effect", tls-san names: no spaces, no quotes.
    static const std::regex k_re("^[^\\s'\"]+$");
    if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (!std::regex_match(str_of(e), k_re)) {
                return "entries must not be empty or contain spaces or quotes; got \"" + str_of(e) + "\"";
            }
        }
    }
    return "";
}

std::string registry_endpoints(const toml::node& n) {
    static const std::regex k_re("^https?://[^\\s'\"]+$");
    if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (!std::regex_match(str_of(e), k_re)) {
                return "entries must be http:// or https:// URLs; got \"" + str_of(e) + "\"";
            }
        }
    }
    return "";
}

std::string registry_name(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9.-]+(:[0-9]+)?$|^\\*$");
    // It names a directory (/etc/containerd/certs.d/<registry>): "." and ".." would leave it.
    return std::regex_match(str_of(n), k_re) && str_of(n) != "." && str_of(n) != ".."
               ? ""
               : "must be a registry host such as \"docker.io\" or \"registry.local:5000\" (or \"*\")";
}

// Recipe values (images/<name>/recipe.toml).
std::string image_name(const toml::node& n) {
    static const std::regex k_re("^[a-z0-9][a-z0-9._-]{0,62}$");
    return std::regex_match(str_of(n), k_re) ? ""
                                             : "must be lower-case letters, digits, '.', '_' or '-' (an image name)";
}

std::string mmdebstrap_variant(const toml::node& n) {
    return choice(n, {"essential", "apt", "required", "minbase", "buildd", "important", "standard"});
}

std::string exposed_ports(const toml::node& n) {
    static const std::regex k_re("^[0-9]{1,5}(/(tcp|udp|sctp))?$");
    for (const auto& e : *n.as_array()) {
        if (!std::regex_match(str_of(e), k_re)) {
            return "must list ports as \"PORT/tcp\" or \"PORT/udp\", not \"" + str_of(e) + "\"";
        }
    }
    return "";
}

std::string absolute_paths(const toml::node& n) {
    for (const auto& e : *n.as_array()) {
        if (auto why = absolute_path(e); !why.empty()) {
            return why + " (\"" + str_of(e) + "\")";
        }
    }
    return "";
}

std::string build_arg_ref(const toml::node& n) {
    static const std::regex k_re("^args\\.[A-Za-z_][A-Za-z0-9_]*$");
    return std::regex_match(str_of(n), k_re) ? ""
                                             : "must be \"args.NAME\" (run only when that build argument is not empty)";
}

std::string owner_name(const toml::node& n) {
    static const std::regex k_re("^([0-9]+|[a-z_][a-z0-9_-]*[$]?)$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a numeric id or a user/group name of the image";
}

using enum ValueType;
constexpr auto P = ConfigFile::profile;
constexpr auto I = ConfigFile::inventory;
constexpr auto R = ConfigFile::recipe;

// [backup]
std::string backup_name(const toml::node& n) {
    static const std::regex k_re("^([A-Za-z0-9][A-Za-z0-9._-]*)?$");
    return std::regex_match(str_of(n), k_re) ? ""
                                             : "must be letters, digits, '.', '_' or '-' (it starts archive names)";
}

std::string backup_target_type(const toml::node& n) {
    return choice(n, {"directory", "s3"});
}

std::string non_negative(const toml::node& n) {
    return n.value<int64_t>().value_or(-1) >= 0 ? "" : "must be 0 or more";
}

std::string zstd_level(const toml::node& n) {
    auto v = n.value<int64_t>().value_or(0);
    return v >= 1 && v <= 19 ? "" : "must be a zstd level between 1 and 19";
}

std::string database_names(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9_$-]{1,64}$");
    if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (!std::regex_match(str_of(e), k_re)) {
                return "'" + str_of(e) + "' is not a database name nodectl accepts (letters, digits, '_', '$', '-')";
            }
        }
    }
    return "";
}

std::string any_url(const toml::node& n) {
    static const std::regex k_re("^https?://\\S+$");
    return str_of(n).empty() || std::regex_match(str_of(n), k_re) ? "" : "must be an http:// or https:// URL";
}

// [stack]
std::string dns_label(const toml::node& n) {
    // A Kubernetes namespace name (RFC 1123 label), also the prefix of the site's file names.
    static const std::regex k_re("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$");
    return std::regex_match(str_of(n), k_re)
               ? ""
               : "must be a DNS-1123 label (lower-case letters, digits, '-', at most 63): it is the site's namespace";
}

const std::regex& host_name_re() {
    static const std::regex k_re(
        "^(\\*\\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$");
    return k_re;
}

std::string host_names(const toml::node& n) {
    return each_matches(n, host_name_re(),
                        "a lower-case DNS name such as \"shop.example.org\"");  // [] : sites_from says it is needed
}

// A Prometheus duration such as "15d" or "30s".
std::string prom_duration(const toml::node& n) {
    static const std::regex k_re("^[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a Prometheus duration such as \"30s\", \"15d\"";
}

std::string dns_name(const toml::node& n) {
    return std::regex_match(str_of(n), host_name_re()) ? "" : "must be a lower-case DNS name such as \"cluster.local\"";
}

std::string host_name_or_empty(const toml::node& n) {
    return str_of(n).empty() || std::regex_match(str_of(n), host_name_re())
               ? ""
               : "must be a lower-case DNS name such as \"prometheus.example.org\", or \"\"";
}

// HOST:PORT or [IPv6]:PORT, port 1..65535.
const std::regex& host_port_re() {
    static const std::regex k_re(
        "^([a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?|\\[[0-9a-fA-F:.]+\\]):"
        "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$");
    return k_re;
}

std::string smtp_smarthost(const toml::node& n) {
    return str_of(n).empty() || std::regex_match(str_of(n), host_port_re())
               ? ""
               : "must be HOST:PORT, such as \"mail.example.org:587\"";
}

std::string host_ports(const toml::node& n) {
    return each_matches(n, host_port_re(), "HOST:PORT or [IPv6]:PORT (port 1 to 65535), such as \"198.18.0.10:9100\"");
}

std::string email_addresses(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$");
    return each_matches(n, k_re, "an e-mail address such as \"ops@example.org\"");
}

// An OCI image reference: [registry[:port]/]path[:tag][@digest].
std::string image_reference(const toml::node& n) {
    static const std::regex k_re("^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[A-Za-z0-9_.-]{1,128})?(@sha256:[0-9a-f]{64})?$");
    return std::regex_match(str_of(n), k_re)
               ? ""
               : "must be an image reference such as \"localhost/nodectl/magento:latest\" or \"NAME@sha256:DIGEST\"";
}

std::string cpu_quantity(const toml::node& n) {
    static const std::regex k_re("^([0-9]+m|[0-9]+(\\.[0-9]{1,3})?)$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a CPU quantity such as \"250m\" or \"1.5\"";
}

std::string memory_quantity(const toml::node& n) {
    static const std::regex k_re("^[1-9][0-9]*(Ki|Mi|Gi|Ti)$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be a size such as \"512Mi\" or \"10Gi\"";
}

// A Kubernetes resource quantity (apimachinery's grammar: a non-negative decimal number, then a
// binary-SI suffix Ki..Ei, a decimal-SI suffix n u m k M G T P E, or an exponent e3/E-2), or "".
std::string k8s_quantity(const toml::node& n) {
    static const std::regex k_re(
        "^\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$");
    auto s = str_of(n);
    return s.empty() || (s.size() <= 64 && std::regex_match(s, k_re))
               ? ""
               : "must be a Kubernetes quantity such as \"500m\", \"2\", \"1.5Gi\" or \"4G\" (or \"\" for none)";
}

std::string percent(const toml::node& n) {
    auto v = n.value<int64_t>().value_or(0);
    return v >= 1 && v <= 100 ? "" : "must be a percentage between 1 and 100";
}

std::string cron_schedule(const toml::node& n) {
    // Five cron fields as Kubernetes CronJobs take them (no @-macros with seconds, no TZ= prefix).
    static const std::regex k_re(
        "^[0-9*/,-]+( [0-9*/,-]+){2} [0-9A-Za-z*/,-]+ [0-9A-Za-z*/,-]+$|^@(hourly|daily|weekly|monthly|yearly)$");
    return std::regex_match(str_of(n), k_re) ? ""
                                             : "must be a cron schedule with five fields such as \"30 2 * * *\" (UTC)";
}

std::string db_identifier(const toml::node& n) {
    static const std::regex k_re("^[A-Za-z0-9_]{1,32}$");
    return std::regex_match(str_of(n), k_re) ? "" : "must be letters, digits and '_' (the images accept no other)";
}

std::string image_pull_policy(const toml::node& n) {
    return choice(n, {"IfNotPresent", "Never", "Always"});
}

std::string node_path_or_empty(const toml::node& n) {
    return str_of(n).empty() ? "" : absolute_path(n);
}

// [monitoring] listen_address: an IP address, or "" for all; ${...} is checked after expansion.
std::string listen_address(const toml::node& n) {
    auto s = str_of(n);
    if (s.empty() || s.find("${") != std::string::npos) {
        return "";
    }
    return util::is_ip_address(s) ? "" : "must be an IPv4 or IPv6 address (no brackets), or \"\" for all addresses";
}

// The table is data, one key per row: clang-format leaves it as written.
// clang-format off
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
        {"base.files[].sha256", P, string, "", sha256_hex, "sha256 of the `source` file, checked when the profile loads; first boot with a trust key requires it and uses only those bytes"},

        {"firstboot", P, section, "", nullptr, "what a signed first-boot config binds besides itself"},
        {"firstboot.bundle_sha256", P, string, "", sha256_hex, "sha256 of the bundle's manifest.json (`nodectl bundle verify` prints it); first boot uses only that bundle, and with a trust key no bundle without it"},

        {"harden", P, section, "", nullptr, "host hardening; every group is on by default and can be switched off"},
        {"harden.role", P, string, "\"standalone\"", node_role, "what the node runs: standalone, k3s-server, k3s-server-ha or k3s-agent (kernel and firewall follow it)"},
        {"harden.rollback_seconds", P, integer, "120", positive, "sshd/firewall changes are rolled back by the host after this long unless a fresh login succeeded"},
        {"harden.ssh", P, section, "", nullptr, "sshd: algorithms, host keys, logins, limits, forwarding"},
        {"harden.ssh.enabled", P, boolean, "true", nullptr, "manage sshd (off: nodectl's drop-in is removed)"},
        {"harden.ssh.permit_root_login", P, string, "\"no\"", root_login, "\"no\" or \"prohibit-password\" (root with a key only)"},
        {"harden.ssh.allow_groups", P, string_list, "[\"ssh-users\"]", group_names, "only members of these groups may log in (AllowGroups; the admin user joins them); [] allows every group. With prohibit-password, list \"root\" too"},
        {"harden.ssh.max_auth_tries", P, integer, "3", positive, "MaxAuthTries"},
        {"harden.ssh.login_grace_time", P, integer, "30", positive, "LoginGraceTime in seconds"},
        {"harden.ssh.max_startups", P, string, "\"10:30:60\"", max_startups, "MaxStartups throttling of unauthenticated connections"},
        {"harden.ssh.max_sessions", P, integer, "2", positive, "MaxSessions per connection (nodectl itself needs 2: its lock and one command)"},
        {"harden.ssh.client_alive_interval", P, integer, "300", positive, "ClientAliveInterval in seconds"},
        {"harden.ssh.client_alive_count_max", P, integer, "2", positive, "ClientAliveCountMax"},
        {"harden.ssh.banner", P, string, "\"Authorized access only. All activity on this system is logged and monitored. Unauthorized access is prohibited and will be prosecuted.\"", not_empty, "text of the login banner (/etc/issue.net, /etc/issue)"},
        {"harden.kernel", P, section, "", nullptr, "kernel: sysctl hardening and module blacklist"},
        {"harden.kernel.enabled", P, boolean, "true", nullptr, "manage kernel settings (off: nodectl's sysctl and modprobe files are removed)"},
        {"harden.kernel.sysctl", P, string_map, "", sysctl_map, "extra or overriding sysctl values, e.g. { \"vm.swappiness\" = \"10\" }"},
        {"harden.kernel.blacklist", P, string_list, "[\"cramfs\", \"freevxfs\", \"jffs2\", \"hfs\", \"hfsplus\", \"udf\", \"dccp\", \"sctp\", \"rds\", \"tipc\", \"firewire-core\"]", package_names, "kernel modules that may never load (vfat, usb-storage, overlay and squashfs stay: USB provisioning and containers need them)"},
        {"harden.firewall", P, section, "", nullptr, "nftables: input policy drop with the ports the node's role needs"},
        {"harden.firewall.enabled", P, boolean, "true", nullptr, "manage the firewall (off: nodectl's table is removed)"},
        {"harden.firewall.ssh_port", P, integer, "22", port, "port sshd listens on; opened with a per-source rate limit"},
        {"harden.firewall.ssh_rate_per_minute", P, integer, "30", positive, "new SSH connections per minute and source address before they are dropped"},
        {"harden.firewall.cluster_networks", P, string_list, "[]", cidrs, "networks of the cluster's nodes; k3s ports are open only to them (required for k3s roles)"},
        {"harden.firewall.cni", P, string, "\"vxlan\"", cni_backend, "flannel backend whose port is opened: vxlan (8472/udp) or wireguard (51820-51821/udp)"},
        {"harden.firewall.serve_http", P, boolean, "false", nullptr, "open 80/tcp and 443/tcp to everyone"},
        {"harden.firewall.rules", P, table_list, "[]", nullptr, "extra open ports ([[harden.firewall.rules]] tables)"},
        {"harden.firewall.rules[].port", P, string, "", port_or_range, "port or range, e.g. \"9100\" or \"30000-32767\" (required)"},
        {"harden.firewall.rules[].proto", P, string, "\"tcp\"", protocol, "tcp or udp"},
        {"harden.firewall.rules[].from", P, string_list, "[]", cidrs, "source networks; [] means anywhere"},
        {"harden.firewall.rules[].comment", P, string, "", nullptr, "why the port is open (kept in the ruleset)"},
        {"harden.accounts", P, section, "", nullptr, "accounts: admin user, root, password policy, lockout"},
        {"harden.accounts.enabled", P, boolean, "true", nullptr, "manage accounts and password policy"},
        {"harden.accounts.admin_user", P, string, "\"admin\"", user_name, "admin user created with sudo and SSH keys"},
        {"harden.accounts.admin_keys", P, string_list, "[]", ssh_public_keys, "authorized_keys lines of the admin user (required when root login is off); may use ${vars.NAME}"},
        {"harden.accounts.pass_max_days", P, integer, "365", positive, "PASS_MAX_DAYS in login.defs"},
        {"harden.accounts.pass_min_days", P, integer, "1", positive, "PASS_MIN_DAYS in login.defs"},
        {"harden.accounts.pass_warn_age", P, integer, "14", positive, "PASS_WARN_AGE in login.defs"},
        {"harden.accounts.umask", P, string, "\"027\"", umask_value, "default UMASK in login.defs"},
        {"harden.accounts.shell_timeout_seconds", P, integer, "900", positive, "idle interactive shells end after this long (TMOUT)"},
        {"harden.accounts.password_min_length", P, integer, "14", positive, "pam_pwquality minlen"},
        {"harden.accounts.faillock_deny", P, integer, "5", positive, "failed logins before pam_faillock locks an account"},
        {"harden.accounts.faillock_unlock_seconds", P, integer, "900", positive, "how long pam_faillock keeps an account locked"},
        {"harden.services", P, section, "", nullptr, "services: auditd, fail2ban, unattended-upgrades, time sync, AppArmor, legacy packages"},
        {"harden.services.enabled", P, boolean, "true", nullptr, "manage the hardening services"},
        {"harden.services.auditd", P, boolean, "true", nullptr, "auditd with nodectl's rule set (loaded with augenrules)"},
        {"harden.services.fail2ban", P, boolean, "true", nullptr, "fail2ban with an sshd jail on the systemd journal"},
        {"harden.services.fail2ban_maxretry", P, integer, "5", positive, "failures before fail2ban bans an address"},
        {"harden.services.fail2ban_bantime", P, integer, "3600", positive, "ban length in seconds"},
        {"harden.services.unattended_upgrades", P, boolean, "true", nullptr, "install security updates automatically"},
        {"harden.services.timesync", P, boolean, "true", nullptr, "systemd-timesyncd"},
        {"harden.services.apparmor", P, boolean, "true", nullptr, "AppArmor enabled"},
        {"harden.services.remove_legacy", P, boolean, "true", nullptr, "remove telnet, rsh, talk, nis, tftp, xinetd and friends"},
        {"harden.services.extra_packages", P, string_list, "[\"libpam-tmpdir\", \"apt-listchanges\", \"apt-show-versions\", \"debsums\", \"sysstat\"]", package_names, "audit and package tools installed too (not apt-listbugs: it fails offline; not needrestart: it brings a compiler)"},
        {"harden.services.aide", P, boolean, "true", nullptr, "AIDE file integrity database (sha512; the first one built after the apply by nodectl-aide-baseline.service)"},
        {"harden.services.fail2ban_ignore", P, string_list, "[]", cidrs, "addresses fail2ban never bans (loopback and the cluster networks always), e.g. the operators' network"},
        {"harden.filesystem", P, section, "", nullptr, "filesystem: /tmp and /dev/shm options, permissions, core dumps"},
        {"harden.filesystem.enabled", P, boolean, "true", nullptr, "manage mount options, permissions and core dumps"},
        {"harden.filesystem.tmp_size", P, string, "\"25%\"", tmpfs_size, "size of the /tmp tmpfs (tmpfs size= option)"},
        {"harden.filesystem.proc_hidepid", P, boolean, "true", nullptr, "mount /proc with hidepid=invisible: users see only their own processes"},

        {"runtime", P, section, "", nullptr, "container runtime: containerd, runc and the CNI plugins, from Debian packages or the bundle"},
        {"runtime.enabled", P, boolean, "true", nullptr, "install and configure containerd"},
        {"runtime.packages", P, string_list, "[\"containerd\", \"runc\", \"containernetworking-plugins\"]", package_names, "packages that make up the runtime"},
        {"runtime.cgroup_driver", P, string, "\"auto\"", cgroup_driver, "auto (systemd where systemd runs the host on cgroup v2, else cgroupfs), systemd or cgroupfs"},
        {"runtime.sandbox_image", P, string, "\"registry.k8s.io/pause:3.6\"", image_reference, "pause image of CRI pods"},
        {"runtime.snapshotter", P, string, "\"overlayfs\"", snapshotter, "overlayfs, or native where the root filesystem is itself an overlay (containers in containers)"},
        {"runtime.mirrors", P, table_list, "[]", nullptr, "registry mirrors ([[runtime.mirrors]] tables), written to /etc/containerd/certs.d"},
        {"runtime.mirrors[].registry", P, string, "", registry_name, "registry the mirror stands in for, e.g. \"docker.io\" (required)"},
        {"runtime.mirrors[].endpoints", P, string_list, "[]", registry_endpoints, "mirror URLs tried in order before the registry itself (required)"},

        {"k3s", P, section, "", nullptr, "k3s: the binary (online, checked against the release's sha256 file, or from the bundle), config.yaml, units, start"},
        {"k3s.role", P, string, "\"server\"", k3s_role, "server (single-node server) or agent (joins k3s.server_url; `nodectl join` sets both)"},
        {"k3s.version", P, string, "\"\"", k3s_version, "k3s release, e.g. \"v1.30.6+k3s1\"; empty: the channel's current release"},
        {"k3s.channel", P, string, "\"stable\"", k3s_channel, "release channel used when no version is given (stable, latest, v1.30)"},
        {"k3s.release_url", P, string, "\"https://github.com/k3s-io/k3s/releases/download\"", release_url, "where releases are downloaded from (a mirror of GitHub's layout): https://, or file:/// for an offline mirror"},
        {"k3s.channel_url", P, string, "\"https://update.k3s.io/v1-release/channels\"", release_url, "where channels are resolved to a version (https://)"},
        {"k3s.allow_insecure_http", P, boolean, "false", nullptr, "allow http:// in k3s.release_url and k3s.channel_url: the binary and its checksum then come unauthenticated (test mirrors only)"},
        {"k3s.airgap_images", P, boolean, "false", nullptr, "install the release's airgap image tarball into /var/lib/rancher/k3s/agent/images"},
        {"k3s.tls_san", P, string_list, "[]", k8s_names, "extra names and addresses in the API server certificate"},
        {"k3s.node_labels", P, string_list, "[]", k8s_names, "node labels, \"key=value\""},
        {"k3s.node_taints", P, string_list, "[]", k8s_names, "node taints, \"key=value:Effect\""},
        {"k3s.disable", P, string_list, "[]", k8s_names, "packaged components not deployed, e.g. [\"traefik\", \"servicelb\"] (server)"},
        {"k3s.secrets_encryption", P, boolean, "true", nullptr, "encrypt Secrets at rest (server)"},
        {"k3s.protect_kernel_defaults", P, boolean, "true", nullptr, "kubelet refuses to run when kernel parameters differ from its defaults (harden.kernel sets them)"},
        {"k3s.use_system_containerd", P, boolean, "false", nullptr, "k3s uses the system containerd ([runtime]) instead of its own, so images nodectl imports are visible to Kubernetes"},
        {"k3s.registries", P, table_list, "[]", nullptr, "registry mirrors for k3s's own containerd ([[k3s.registries]] tables, written to registries.yaml)"},
        {"k3s.registries[].registry", P, string, "", registry_name, "registry, e.g. \"docker.io\" (required)"},
        {"k3s.registries[].endpoints", P, string_list, "[]", registry_endpoints, "mirror URLs (required)"},
        {"k3s.env", P, string_map, "", nullptr, "environment of the k3s unit (its env file is mode 0600), e.g. HTTPS_PROXY"},
        {"k3s.start", P, boolean, "true", nullptr, "start k3s and wait until the node is Ready; false installs only (golden images)"},
        {"k3s.ready_timeout", P, integer, "300", positive, "seconds to wait for the node to become Ready"},
        {"k3s.api_port", P, integer, "6443", port, "port of the server's API (https-listen-port)"},
        {"k3s.server_url", P, string, "\"\"", k3s_server_url, "agent role: the server's URL, https://SERVER:6443"},
        {"k3s.token", P, secret, "", nullptr, "agent role: the join token (K10... form), { file = \"PATH\" } or { env = \"VAR\" }"},

        {"stack", P, section, "", nullptr, "the Magento stack on k3s: one namespace per site, rendered to Kubernetes objects (`nodectl stack render`, docs/stack.md)"},
        {"stack.sites", P, table_list, "[]", nullptr, "the sites ([[stack.sites]] tables)"},
        {"stack.sites[].name", P, string, "", dns_label, "the site's name: its namespace and file nodectl-NAME.yaml (required)"},
        {"stack.sites[].hosts", P, string_list, "[]", host_names, "host names the Ingress serves, the first is Magento's base URL (required)"},
        {"stack.sites[].database", P, string, "\"magento\"", db_identifier, "MariaDB database of the shop"},
        {"stack.sites[].database_user", P, string, "\"magento\"", db_identifier, "MariaDB user of the shop (all privileges on the database; the backup uses it too)"},
        {"stack.sites[].purge_acl", P, string_list, "[\"10.42.0.0/16\"]", cidrs, "networks allowed to PURGE Varnish: the cluster's pod network (k3s's cluster-cidr)"},
        {"stack.sites[].tls", P, section, "", nullptr, "the Ingress's certificate: cert_file and key, or neither for a self-signed pair"},
        {"stack.sites[].tls.cert_file", P, string, "\"\"", node_path_or_empty, "PEM certificate chain (absolute path, read when rendering); empty: self-signed"},
        {"stack.sites[].tls.key", P, secret, "", nullptr, "its PEM private key: { file = \"PATH\" } (mode 0600) or { env = \"VAR\" }"},
        {"stack.sites[].images", P, section, "", nullptr, "image references; defaults are the images `nodectl image build` makes, imported into k3s's containerd"},
        {"stack.sites[].images.magento", P, string, "\"localhost/nodectl/magento:latest\"", image_reference, "Apache + PHP with the shop (images/magento)"},
        {"stack.sites[].images.varnish", P, string, "\"localhost/nodectl/varnish:latest\"", image_reference, "Varnish (images/varnish)"},
        {"stack.sites[].images.redis", P, string, "\"localhost/nodectl/redis:latest\"", image_reference, "Redis (images/redis)"},
        {"stack.sites[].images.mariadb_master", P, string, "\"localhost/nodectl/mysql-master:latest\"", image_reference, "MariaDB master (images/mysql-master)"},
        {"stack.sites[].images.mariadb_replica", P, string, "\"localhost/nodectl/mysql-replica:latest\"", image_reference, "MariaDB replica (images/mysql-replica)"},
        {"stack.sites[].images.backup", P, string, "\"localhost/nodectl/nodectl:latest\"", image_reference, "the static nodectl binary, for the backup CronJob"},
        {"stack.sites[].images.mysqld_exporter", P, string, "\"localhost/nodectl/mysqld-exporter:latest\"", image_reference, "MariaDB's exporter, a sidecar of master and replicas when [stack.monitoring] is enabled (images/mysqld-exporter)"},
        {"stack.sites[].images.redis_exporter", P, string, "\"localhost/nodectl/redis-exporter:latest\"", image_reference, "Redis' exporter sidecar (images/redis-exporter)"},
        {"stack.sites[].images.varnish_exporter", P, string, "\"localhost/nodectl/varnish-exporter:latest\"", image_reference, "Varnish's exporter sidecar (images/varnish-exporter)"},
        {"stack.sites[].images.apache_exporter", P, string, "\"localhost/nodectl/apache-exporter:latest\"", image_reference, "Apache's exporter sidecar of the Magento pods (images/apache-exporter)"},
        {"stack.sites[].images.digests_from", P, string, "\"\"", nullptr, "the --out directory of `nodectl image build` (relative: to the profile's folder): each reference above without a digest that one of its DIR/NAME/index.json names is pinned as REF@sha256:MANIFEST; references left unpinned are reported by render and plan"},
        {"stack.sites[].images.pull_policy", P, string, "\"IfNotPresent\"", image_pull_policy, "imagePullPolicy: IfNotPresent, Never (imported images only) or Always"},
        {"stack.sites[].replicas", P, section, "", nullptr, "how many pods of each component"},
        {"stack.sites[].replicas.varnish", P, integer, "1", positive, "Varnish pods"},
        {"stack.sites[].replicas.mariadb_replicas", P, integer, "1", non_negative, "MariaDB replicas (0: master only; Magento then reads from the master)"},
        {"stack.sites[].autoscaling", P, section, "", nullptr, "the Magento Deployment's HorizontalPodAutoscaler (autoscaling/v2, CPU against requests)"},
        {"stack.sites[].autoscaling.min", P, integer, "2", positive, "fewest Magento pods (also the Deployment's replicas)"},
        {"stack.sites[].autoscaling.max", P, integer, "6", positive, "most Magento pods"},
        {"stack.sites[].autoscaling.cpu_percent", P, integer, "70", percent, "average CPU use, in percent of the requests, the autoscaler aims at"},
        {"stack.sites[].resources", P, section, "", nullptr, "requests and limits per component (every container gets both)"},
        {"stack.sites[].storage", P, section, "", nullptr, "volume sizes (PersistentVolumeClaims on k3s's local-path class)"},
        {"stack.sites[].storage.mariadb", P, string, "\"10Gi\"", memory_quantity, "the master's data volume"},
        {"stack.sites[].storage.mariadb_replica", P, string, "\"10Gi\"", memory_quantity, "each replica's data volume"},
        {"stack.sites[].quota", P, section, "", nullptr, "the namespace's ResourceQuota, rendered only when one of its keys is set (totals over every pod of the site)"},
        {"stack.sites[].quota.requests_cpu", P, string, "\"\"", k8s_quantity, "hard requests.cpu, e.g. \"8\""},
        {"stack.sites[].quota.requests_memory", P, string, "\"\"", k8s_quantity, "hard requests.memory, e.g. \"16Gi\""},
        {"stack.sites[].quota.limits_cpu", P, string, "\"\"", k8s_quantity, "hard limits.cpu"},
        {"stack.sites[].quota.limits_memory", P, string, "\"\"", k8s_quantity, "hard limits.memory"},
        {"stack.sites[].quota.requests_storage", P, string, "\"\"", k8s_quantity, "hard requests.storage (every PersistentVolumeClaim)"},
        {"stack.sites[].quota.pods", P, integer, "0", non_negative, "hard pods (0: no limit); must leave room for autoscaling.max"},
        {"stack.sites[].limit_range", P, section, "", nullptr, "the namespace's LimitRange for containers, rendered only when one of its keys is set"},
        {"stack.sites[].limit_range.default_cpu_request", P, string, "\"\"", k8s_quantity, "defaultRequest cpu of a container that sets none (nodectl's own set theirs)"},
        {"stack.sites[].limit_range.default_memory_request", P, string, "\"\"", k8s_quantity, "defaultRequest memory"},
        {"stack.sites[].limit_range.default_cpu_limit", P, string, "\"\"", k8s_quantity, "default cpu limit"},
        {"stack.sites[].limit_range.default_memory_limit", P, string, "\"\"", k8s_quantity, "default memory limit"},
        {"stack.sites[].limit_range.max_cpu", P, string, "\"\"", k8s_quantity, "max cpu limit of one container (checked against resources.*)"},
        {"stack.sites[].limit_range.max_memory", P, string, "\"\"", k8s_quantity, "max memory limit of one container (checked against resources.*)"},
        {"stack.sites[].media_host_path", P, string, "\"\"", node_path_or_empty, "pub/media from the node: the `where` of a [[mounts.s3fs]] (allow_other, uid=33) mounted on every node; empty: an emptyDir per pod (one Magento pod only)"},
        {"stack.sites[].search_endpoint", P, string, "", any_url, "OpenSearch/Elasticsearch URL Magento 2.4 needs, e.g. http://opensearch.search:9200 (required; nodectl builds no search image)"},
        {"stack.sites[].secrets", P, section, "", nullptr, "the site's secrets, as references ({ file = \"PATH\" } 0600 or { env = \"VAR\" }); one not given is generated once on the k3s server node by `nodectl apply` and kept there (0600); render never prints them"},
        {"stack.sites[].secrets.db_password", P, secret, "", nullptr, "password of the shop's MariaDB user (default: generated on the server node)"},
        {"stack.sites[].secrets.replication_password", P, secret, "", nullptr, "password of the replication user (default: generated on the server node)"},
        {"stack.sites[].secrets.redis_password", P, secret, "", nullptr, "Redis AUTH password (default: generated on the server node)"},
        {"stack.sites[].secrets.crypt_key", P, secret, "", nullptr, "Magento's crypt key (app/etc/env.php) (default: generated on the server node)"},
        {"stack.sites[].secrets.exporter_db_password", P, secret, "", nullptr, "password of MariaDB's local 'exporter' user, with [stack.monitoring] (default: generated on the server node)"},
        {"stack.sites[].secrets.exporter_redis_password", P, secret, "", nullptr, "password of Redis' 'exporter' ACL user, with [stack.monitoring] (default: generated on the server node)"},
        {"stack.sites[].backup", P, section, "", nullptr, "nightly database backup: a CronJob running `nodectl backup run` to S3"},
        {"stack.sites[].backup.enabled", P, boolean, "true", nullptr, "render the backup CronJob"},
        {"stack.sites[].backup.schedule", P, string, "\"0 2 * * *\"", cron_schedule, "cron schedule (the cluster's time zone, UTC on k3s)"},
        {"stack.sites[].backup.endpoint", P, string, "\"\"", any_url, "S3 endpoint URL (required when enabled)"},
        {"stack.sites[].backup.port", P, integer, "443", port, "TCP port of the endpoint, opened in the backup's egress NetworkPolicy"},
        {"stack.sites[].backup.region", P, string, "\"us-east-1\"", not_empty, "S3 region"},
        {"stack.sites[].backup.bucket", P, string, "\"\"", nullptr, "S3 bucket (required when enabled)"},
        {"stack.sites[].backup.prefix", P, string, "\"\"", nullptr, "key prefix, e.g. \"shop/\""},
        {"stack.sites[].backup.path_style", P, boolean, "false", nullptr, "path-style addressing (S3-compatible stores)"},
        {"stack.sites[].backup.keep_last", P, integer, "14", non_negative, "archives kept (0: all)"},
        {"stack.sites[].backup.credentials", P, secret, "", nullptr, "S3 credentials file content (awscli format or KEY=VALUE lines) (required when enabled)"},
        {"stack.monitoring", P, section, "", nullptr, "Prometheus and Alertmanager in namespace 'monitoring', exporters beside every site's services, nodectl's alert rules (docs/monitoring.md)"},
        {"stack.monitoring.enabled", P, boolean, "false", nullptr, "render the monitoring namespace (file nodectl-monitoring.yaml) and the exporter sidecars"},
        {"stack.monitoring.scrape_interval", P, string, "\"30s\"", prom_duration, "how often Prometheus scrapes and evaluates the rules"},
        {"stack.monitoring.retention", P, string, "\"15d\"", prom_duration, "how long Prometheus keeps samples"},
        {"stack.monitoring.storage", P, string, "\"10Gi\"", memory_quantity, "Prometheus' data volume (a PersistentVolumeClaim on local-path)"},
        {"stack.monitoring.node_targets", P, string_list, "[]", host_ports, "the nodes' node exporters as \"ADDRESS:PORT\" ([monitoring] of the nodes' profile, which must allow Prometheus' pod network), scraped as job 'node'; []: not scraped (NodeExporterDown cannot fire)"},
        {"stack.monitoring.cluster_domain", P, string, "\"cluster.local\"", dns_name, "the cluster's DNS domain (k3s's cluster-domain): Prometheus finds the sites' exporters through it"},
        {"stack.monitoring.tls_probe_port", P, integer, "443", port, "the port the sites' host names answer HTTPS on (Traefik's websecure entry point): the blackbox exporter probes https://HOST:PORT/ for the certificate's expiry"},
        {"stack.monitoring.images", P, section, "", nullptr, "image references of Prometheus and Alertmanager"},
        {"stack.monitoring.images.prometheus", P, string, "\"localhost/nodectl/prometheus:latest\"", image_reference, "Prometheus (images/prometheus)"},
        {"stack.monitoring.images.blackbox_exporter", P, string, "\"localhost/nodectl/blackbox-exporter:latest\"", image_reference, "the blackbox exporter that probes the sites' HTTPS certificates (images/blackbox-exporter)"},
        {"stack.monitoring.images.alertmanager", P, string, "\"localhost/nodectl/alertmanager:latest\"", image_reference, "Alertmanager (images/alertmanager)"},
        {"stack.monitoring.images.digests_from", P, string, "\"\"", nullptr, "as stack.sites[].images.digests_from"},
        {"stack.monitoring.images.pull_policy", P, string, "\"IfNotPresent\"", image_pull_policy, "imagePullPolicy of both"},
        {"stack.monitoring.alerts", P, section, "", nullptr, "where Alertmanager sends alerts (neither set: they show in Prometheus' and Alertmanager's own UIs only)"},
        {"stack.monitoring.alerts.webhook_url", P, secret, "", nullptr, "URL Alertmanager POSTs alerts to (Alertmanager's webhook JSON), a secret reference: such URLs often carry a token"},
        {"stack.monitoring.alerts.webhook_port", P, integer, "443", port, "TCP port of the webhook's host, opened in Alertmanager's egress NetworkPolicy"},
        {"stack.monitoring.alerts.group_wait", P, string, "\"30s\"", prom_duration, "how long Alertmanager waits to bundle a new group's first alerts"},
        {"stack.monitoring.alerts.group_interval", P, string, "\"5m\"", prom_duration, "how long it waits before telling of changes (new or resolved alerts) in a group already sent"},
        {"stack.monitoring.alerts.email_to", P, string_list, "[]", email_addresses, "addresses alerts are mailed to ([]: no e-mail)"},
        {"stack.monitoring.alerts.email_from", P, string, "\"\"", nullptr, "From: of the alert mails (required with email_to)"},
        {"stack.monitoring.alerts.smarthost", P, string, "\"\"", smtp_smarthost, "SMTP server HOST:PORT (required with email_to); STARTTLS is required"},
        {"stack.monitoring.alerts.smtp_username", P, string, "\"\"", nullptr, "SMTP login (\"\": none)"},
        {"stack.monitoring.alerts.smtp_password", P, secret, "", nullptr, "SMTP password (required with smtp_username)"},
        {"stack.monitoring.ingress", P, section, "", nullptr, "Prometheus and Alertmanager behind Traefik with TLS and basic authentication; neither host set (the default): not exposed"},
        {"stack.monitoring.ingress.prometheus_host", P, string, "\"\"", host_name_or_empty, "host name of Prometheus' UI (\"\": not exposed)"},
        {"stack.monitoring.ingress.alertmanager_host", P, string, "\"\"", host_name_or_empty, "host name of Alertmanager's UI (\"\": not exposed)"},
        {"stack.monitoring.ingress.tls_cert_file", P, string, "\"\"", node_path_or_empty, "PEM certificate chain for both hosts (required with a host)"},
        {"stack.monitoring.ingress.tls_key", P, secret, "", nullptr, "its PEM private key (required with a host)"},
        {"stack.monitoring.ingress.basic_auth", P, secret, "", nullptr, "htpasswd lines USER:HASH (bcrypt, `htpasswd -nbB`) allowed in (required with a host)"},
        {"mounts", P, section, "", nullptr, "network filesystems as systemd mount units: NFS (with an automount) and s3fs"},
        {"mounts.nfs", P, table_list, "[]", nullptr, "NFS client mounts ([[mounts.nfs]] tables); installs nfs-common"},
        {"mounts.nfs[].what", P, string, "", nfs_source, "the share, \"server:/export/path\" (required)"},
        {"mounts.nfs[].where", P, string, "", plain_path, "mount point, e.g. \"/mnt/backup\" (required)"},
        {"mounts.nfs[].options", P, string_list, "[\"nfsvers=4.2\", \"_netdev\", \"noatime\"]", mount_options, "mount options"},
        {"mounts.nfs[].automount", P, boolean, "true", nullptr, "mount on first access through a matching .automount (enabled) instead of at boot"},
        {"mounts.nfs[].idle_timeout", P, integer, "600", positive, "seconds unused before the automount unmounts the share (TimeoutIdleSec)"},
        {"mounts.nfs[].start", P, boolean, "true", nullptr, "start the automount (or mount) now; false: only enable it for the next boot"},
        {"mounts.s3fs", P, table_list, "[]", nullptr, "S3 buckets mounted with s3fs over FUSE ([[mounts.s3fs]] tables); installs s3fs"},
        {"mounts.s3fs[].bucket", P, string, "", bucket_name, "bucket name (required)"},
        {"mounts.s3fs[].where", P, string, "", plain_path, "mount point, e.g. \"/var/www/magento/pub/media\" (required)"},
        {"mounts.s3fs[].credentials", P, secret, "", nullptr, "ACCESS_KEY_ID:SECRET_ACCESS_KEY: { file = \"PATH\" } or { env = \"VAR\" }; written to a 0600 passwd file (required)"},
        {"mounts.s3fs[].url", P, string, "\"\"", s3_url, "endpoint of an S3-compatible store, e.g. \"https://s3.example.net\"; empty: AWS"},
        {"mounts.s3fs[].region", P, string, "\"\"", s3_region, "region (s3fs endpoint=); empty: s3fs's default"},
        {"mounts.s3fs[].path_style", P, boolean, "false", nullptr, "path-style requests (use_path_request_style), for S3-compatible stores"},
        {"mounts.s3fs[].use_cache", P, string, "\"\"", plain_path, "local cache directory (use_cache=); empty: no cache"},
        {"mounts.s3fs[].stat_cache_expire", P, integer, "900", positive, "seconds a cached stat stays valid (stat_cache_expire)"},
        {"mounts.s3fs[].max_stat_cache_size", P, integer, "100000", positive, "entries in the stat cache (max_stat_cache_size)"},
        {"mounts.s3fs[].allow_other", P, boolean, "false", nullptr, "let users other than root use the mount (allow_other), e.g. the web server"},
        {"mounts.s3fs[].options", P, string_list, "[]", mount_options, "further s3fs options, e.g. [\"uid=33\", \"gid=33\", \"umask=0022\"]"},
        {"mounts.s3fs[].start", P, boolean, "true", nullptr, "mount it now (apply fails when it cannot); false: only enable it for the next boot"},
        {"backup", P, section, "", nullptr, "nightly backups run on the node (`nodectl backup`, nodectl-backup.timer): MariaDB dumps and file trees into one tar+zstd archive, optionally encrypted, to directories (NFS) and S3"},
        {"backup.enabled", P, boolean, "true", nullptr, "install the backup timer on apply (false: units removed; `nodectl backup` still works by hand)"},
        {"backup.name", P, string, "\"\"", backup_name, "first part of archive names NAME-YYYYMMDDTHHMMSSZ; empty: the host name"},
        {"backup.schedule", P, string, "\"*-*-* 02:00:00\"", not_empty, "OnCalendar= of nodectl-backup.timer (systemd.time(7)), e.g. \"daily\" or \"*-*-* 03:30:00\""},
        {"backup.randomized_delay", P, string, "\"30min\"", not_empty, "RandomizedDelaySec= of the timer, so a fleet does not start at the same second"},
        {"backup.compression_level", P, integer, "3", zstd_level, "zstd level"},
        {"backup.compression_threads", P, integer, "1", positive, "zstd threads: 1 compresses on the run's compressing thread; with more, zstd's own workers do (2: about 6 MiB more memory)"},
        {"backup.chunk_mib", P, integer, "8", positive, "a database dump is stored as pieces of this many MiB (db/NAME.sql.000000, ...), held in memory one at a time"},
        {"backup.encryption_key_file", P, string, "\"\"", nullptr, "32-byte key (raw or 64 hex digits, mode 0600) for AES-256-GCM; empty: archives are not encrypted"},
        {"backup.metrics_file", P, string, "\"\"", plain_path, "Prometheus textfile written after each run, e.g. /var/lib/prometheus/node-exporter/nodectl_backup.prom"},
        {"backup.webhook_url", P, string, "\"\"", any_url, "a JSON report is POSTed here when a run fails (some or all targets)"},
        {"backup.pre_hooks", P, string_list, "[]", nullptr, "shell commands run before the backup; one failing stops the run"},
        {"backup.post_hooks", P, string_list, "[]", nullptr, "shell commands run after it, always ($NODECTL_BACKUP_OUTCOME is ok, partial or failed)"},
        {"backup.mariadb", P, section, "", nullptr, "MariaDB/MySQL databases, dumped with mariadb-dump --single-transaction --routines --events --triggers"},
        {"backup.mariadb.enabled", P, boolean, "true", nullptr, "dump databases"},
        {"backup.mariadb.host", P, string, "\"\"", nullptr, "TCP host of the server (also a container publishing its port); empty: the socket"},
        {"backup.mariadb.port", P, integer, "3306", port, "TCP port"},
        {"backup.mariadb.socket", P, string, "\"\"", nullptr, "Unix socket (also one bind-mounted out of a container); empty: the client's default"},
        {"backup.mariadb.user", P, string, "\"root\"", not_empty, "user the dump and restore connect as"},
        {"backup.mariadb.password", P, secret, "", nullptr, "its password: { file = \"PATH\" } or { env = \"VAR\" }; given to the tools in a 0600 option file, never in argv"},
        {"backup.mariadb.replica_host", P, string, "\"\"", nullptr, "dumps are read from this replica when set (restores still go to host/socket)"},
        {"backup.mariadb.replica_port", P, integer, "3306", port, "the replica's TCP port"},
        {"backup.mariadb.replica_socket", P, string, "\"\"", nullptr, "the replica's socket (instead of replica_host)"},
        {"backup.mariadb.databases", P, string_list, "[]", database_names, "databases to dump; []: all but information_schema, performance_schema, sys and mysql"},
        {"backup.mariadb.dump_command", P, string, "\"mariadb-dump\"", not_empty, "the dump tool (mysqldump for MySQL)"},
        {"backup.mariadb.client_command", P, string, "\"mariadb\"", not_empty, "the client used to list databases and restore (mysql for MySQL)"},
        {"backup.files", P, table_list, "[]", nullptr, "file trees ([[backup.files]] tables), stored under files/NAME/"},
        {"backup.files[].path", P, string, "", absolute_path, "the tree's root (required)"},
        {"backup.files[].name", P, string, "\"\"", backup_name, "name in the archive; empty: the last part of path"},
        {"backup.files[].include", P, string_list, "[]", nullptr, "glob patterns (fnmatch, `*` crosses '/') on the path relative to the root or the file name; []: everything"},
        {"backup.files[].exclude", P, string_list, "[]", nullptr, "glob patterns excluded (a matching directory is skipped whole)"},
        {"backup.targets", P, table_list, "[]", nullptr, "where archives go ([[backup.targets]] tables); one run writes to all at once"},
        {"backup.targets[].name", P, string, "", backup_name, "the target's name (required): `--target NAME`, metrics label"},
        {"backup.targets[].type", P, string, "\"directory\"", backup_target_type, "directory (a local disk or an NFS mount) or s3"},
        {"backup.targets[].path", P, string, "\"\"", plain_path, "directory: where archives are written (must exist)"},
        {"backup.targets[].min_free_mib", P, integer, "64", non_negative, "directory: refuse to start with less free space (also at least 1.2x the largest archive there)"},
        {"backup.targets[].endpoint", P, string, "\"\"", any_url, "s3: endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com"},
        {"backup.targets[].region", P, string, "\"us-east-1\"", s3_region, "s3: region used in signatures"},
        {"backup.targets[].bucket", P, string, "\"\"", bucket_name, "s3: bucket"},
        {"backup.targets[].prefix", P, string, "\"\"", key_prefix, "s3: key prefix, e.g. \"nodes/web1/\""},
        {"backup.targets[].path_style", P, boolean, "false", nullptr, "s3: endpoint/bucket/key addressing (S3-compatible stores)"},
        {"backup.targets[].storage_class", P, string, "\"\"", nullptr, "s3: storage class; empty: the bucket's default"},
        {"backup.targets[].credentials_file", P, string, "\"\"", nullptr, "s3: credentials file (awscli format or KEY=VALUE lines, mode 0600); empty: AWS_* environment variables"},
        {"backup.targets[].parallel_parts", P, integer, "2", positive, "s3: multipart parts in flight"},
        {"backup.targets[].keep_last", P, integer, "0", non_negative, "retention: keep the newest N archives"},
        {"backup.targets[].keep_daily", P, integer, "0", non_negative, "retention: keep the newest archive of each of the newest N days (UTC)"},
        {"backup.targets[].keep_weekly", P, integer, "0", non_negative, "retention: ... of each of the newest N ISO weeks"},
        {"backup.targets[].keep_monthly", P, integer, "0", non_negative, "retention: ... of each of the newest N months; with no keep_* set nothing is deleted"},
        {"monitoring", P, section, "", nullptr, "host monitoring: Debian's prometheus-node-exporter, its textfile collector reading `nodectl backup`'s metrics (docs/monitoring.md)"},
        {"monitoring.enabled", P, boolean, "true", nullptr, "install and run the node exporter (false: its /etc/default file is put back as nodectl found it, the service stopped and disabled; the package stays)"},
        {"monitoring.listen_address", P, string, "\"\"", listen_address, "IP address the exporter listens on, e.g. \"${host.address}\"; \"\": all addresses (nodectl's firewall opens the port only to allow_from)"},
        {"monitoring.port", P, integer, "9100", port, "TCP port of the node exporter"},
        {"monitoring.allow_from", P, string_list, "[]", cidrs, "networks [harden.firewall] opens the port to (Prometheus' networks); []: harden.firewall.cluster_networks"},
        {"monitoring.textfile_directory", P, string, "\"\"", plain_path, "directory of the textfile collector; \"\": the directory of backup.metrics_file, else Debian's /var/lib/prometheus/node-exporter"},
        // Image recipes: images/<name>/recipe.toml (docs/images.md, "Recipe format"). "*" is any name.
        {"name", R, string, "", image_name, "image name; must equal the recipe's folder name (required)"},
        {"suite", R, string, "", not_empty, "Debian suite for mmdebstrap, e.g. \"bookworm\" (required in a base recipe; an image inherits its base's)"},
        {"variant", R, string, "\"minbase\"", mmdebstrap_variant, "mmdebstrap --variant of a base recipe"},
        {"base", R, string, "", image_name, "the recipe whose rootfs this image builds on (its first layer); absent: this recipe is a base"},
        {"packages", R, string_list, "[]", package_names, "Debian packages installed (without recommends) in this recipe's layer"},
        {"users", R, table_list, "[]", nullptr, "users created in the build ([[users]] tables); an existing one is only checked"},
        {"users[].name", R, string, "", owner_name, "user name (required)"},
        {"users[].uid", R, integer, "", nullptr, "numeric uid (required)"},
        {"users[].gid", R, integer, "", nullptr, "numeric gid of its group, created with the user's name when absent (default: the uid)"},
        {"users[].home", R, string, "\"/nonexistent\"", absolute_path, "home directory (created, owned by the user, unless /nonexistent)"},
        {"users[].system", R, boolean, "false", nullptr, "a system user (useradd --system), with /usr/sbin/nologin as its shell"},
        {"files", R, table_list, "[]", nullptr, "files copied into the image ([[files]] tables), after the packages"},
        {"files[].src", R, string, "", not_empty, "file or directory, relative to the recipe's folder; may use ${args.NAME} (required)"},
        {"files[].dest", R, string, "", absolute_path, "absolute path in the image (required)"},
        {"files[].mode", R, string, "\"0644\"", file_mode, "permission bits (a directory's files keep their own modes)"},
        {"files[].owner", R, string, "\"0\"", owner_name, "numeric uid or a user of the image"},
        {"files[].group", R, string, "\"0\"", owner_name, "numeric gid or a group of the image"},
        {"run", R, table_list, "[]", nullptr, "shell commands run in the image rootfs (chroot, /bin/sh -c), in order, after files"},
        {"run[].command", R, string, "", not_empty, "the command; may use ${args.NAME} (required)"},
        {"run[].secrets", R, string_list, "[]", nullptr, "build secrets mounted at /run/secrets/NAME while this command runs, and only then"},
        {"run[].when", R, string, "", build_arg_ref, "\"args.NAME\": run only when that build argument is not empty"},
        {"args", R, section, "", nullptr, "build arguments ([args.NAME] tables), given with --arg NAME=VALUE"},
        {"args.*", R, section, "", nullptr, "one build argument"},
        {"args.*.default", R, string, "\"\"", nullptr, "value when --arg does not give one"},
        {"args.*.doc", R, string, "\"\"", nullptr, "what the argument is for (shown by `nodectl image check`)"},
        {"secrets", R, section, "", nullptr, "build secrets ([secrets.NAME] tables), given with --secret NAME=FILE; never stored in a layer"},
        {"secrets.*", R, section, "", nullptr, "one build secret"},
        {"secrets.*.doc", R, string, "\"\"", nullptr, "what the secret is for"},
        {"secrets.*.required", R, boolean, "false", nullptr, "the build fails when --secret does not give it"},
        {"config", R, section, "", nullptr, "the OCI image config"},
        {"config.entrypoint", R, string_list, "[]", nullptr, "Entrypoint"},
        {"config.cmd", R, string_list, "[]", nullptr, "Cmd"},
        {"config.env", R, string_map, "", nullptr, "environment; PATH is Debian's default unless given"},
        {"config.workdir", R, string, "\"\"", nullptr, "WorkingDir (absolute, or \"\")"},
        {"config.user", R, string, "\"\"", nullptr, "User: \"\" (root), \"name\", \"uid\" or \"uid:gid\""},
        {"config.exposed_ports", R, string_list, "[]", exposed_ports, "ExposedPorts, \"6379/tcp\""},
        {"config.volumes", R, string_list, "[]", absolute_paths, "Volumes (absolute paths)"},
        {"config.labels", R, string_map, "", nullptr, "Labels"},
        {"config.stop_signal", R, string, "\"\"", nullptr, "StopSignal, e.g. \"SIGTERM\""},

        {"defaults", I, section, "", nullptr, "connection settings for every host that does not set its own"},
        {"hosts", I, table_list, "[]", nullptr, "the hosts ([[hosts]] tables)"},
        {"hosts[].name", I, string, "", not_empty, "label on log lines and reports; defaults to the address"},
        {"hosts[].address", I, string, "", ssh_host, "DNS name or IP address to connect to (required)"},
        {"hosts[].roles", I, string_list, "[]", nullptr, "roles of the host, e.g. [\"server\"]"},
        {"hosts[].vars", I, string_map, "", nullptr, "per-host variables, used in profiles as ${vars.NAME}"},
    };
    // Connection settings exist once per host and once in [defaults], with the same meaning.
    const KeySpec connection[] = {
        {"port", I, integer, "22", port, "SSH port"},
        {"user", I, string, "", not_empty, "SSH user; without it: User from ~/.ssh/config, else the local user (as ssh does)"},
        {"identity", I, string, "", not_empty, "private key file; without it ssh-agent and ~/.ssh/id_* are tried"},
        {"known_hosts", I, string, "", not_empty, "known_hosts file the host's key is checked against (relative to the inventory); --known-hosts wins, default ~/.ssh/known_hosts"},
        {"proxy_jump", I, string, "", ssh_jump, "jump host, \"[user@]host[:port]\" (like ssh -J)"},
        {"sudo", I, string, "\"none\"", sudo_mode, "how to become root: none (log in as root), nopasswd, password"},
        {"sudo_password", I, secret, "", nullptr, "sudo password: { file = \"PATH\" } or { env = \"VAR\" }"},
    };
    // Requests and limits exist once per stack component, with the same four keys.
    struct Component {
        const char* name;
        const char* cpu_request;
        const char* memory_request;
        const char* cpu_limit;
        const char* memory_limit;
    };
    static const Component components[] = {
        {"magento", "\"500m\"", "\"768Mi\"", "\"2\"", "\"1536Mi\""},
        {"varnish", "\"100m\"", "\"384Mi\"", "\"1\"", "\"512Mi\""},
        {"redis", "\"100m\"", "\"256Mi\"", "\"500m\"", "\"1280Mi\""},
        {"mariadb", "\"250m\"", "\"512Mi\"", "\"2\"", "\"2Gi\""},
        {"backup", "\"100m\"", "\"128Mi\"", "\"1\"", "\"512Mi\""},
        {"cron", "\"200m\"", "\"512Mi\"", "\"1\"", "\"2Gi\""},
        {"exporter", "\"10m\"", "\"32Mi\"", "\"200m\"", "\"64Mi\""},
    };
    // clang-format on
    static std::vector<std::string> names;  // owns the generated names for the string_views
    names.reserve(std::size(connection) * 2 + std::size(components) * 5);
    for (const auto& c : components) {
        const std::string base = std::string("stack.sites[].resources.") + c.name;
        names.push_back(base);
        keys.push_back({names.back(), P, section, "", nullptr, "requests and limits of the component"});
        const std::pair<const char*, const char*> values[] = {{"cpu_request", c.cpu_request},
                                                              {"memory_request", c.memory_request},
                                                              {"cpu_limit", c.cpu_limit},
                                                              {"memory_limit", c.memory_limit}};
        for (const auto& [key, value] : values) {
            names.push_back(base + "." + key);
            bool cpu = std::string_view(key).starts_with("cpu");
            keys.push_back({names.back(), P, string, value, cpu ? cpu_quantity : memory_quantity,
                            cpu ? "CPU, e.g. \"250m\"" : "memory, e.g. \"512Mi\""});
        }
    }
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

}  // namespace

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

namespace {

// Keys whose text may span lines. Every other string is one line without control characters:
// values end up in unit files, config files, YAML and scripts, where a newline starts a new
// directive (an injected `ExecStartPre=` or apt option), and in terminals.
constexpr std::string_view k_multi_line_keys[] = {
    "description",   "base.files[].content", "harden.ssh.banner", "backup.pre_hooks", "backup.post_hooks",
    "run[].command", "args.*.default",       "args.*.doc",        "secrets.*.doc",    "hosts[].vars",
};

// The first control character's description, or "" when `s` has none (tab and newline are
// allowed where `multi_line`).
std::string control_character(std::string_view s, bool multi_line) {
    for (unsigned char c : s) {
        if ((c < 0x20 || c == 0x7f) && !(multi_line && (c == '\n' || c == '\t'))) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            return std::string("must be one line without control characters (found byte ") + hex + ")";
        }
    }
    return "";
}

std::string control_characters_in(const toml::node& n, bool multi_line) {
    if (const auto* s = n.as_string()) {
        return control_character(s->get(), multi_line);
    }
    if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
            if (auto why = control_characters_in(e, multi_line); !why.empty()) {
                return why;
            }
        }
    }
    if (const auto* t = n.as_table()) {
        for (const auto& [k, v] : *t) {
            if (auto why = control_character(k.str(), false); !why.empty()) {
                return "has a key that " + why;
            }
            if (auto why = control_characters_in(v, multi_line); !why.empty()) {
                return why;
            }
        }
    }
    return "";
}

}  // namespace

std::string check_value(const KeySpec& spec, const toml::node& value) {
    if (spec.type != ValueType::section && spec.type != ValueType::table_list) {
        bool multi_line = std::find(std::begin(k_multi_line_keys), std::end(k_multi_line_keys), spec.name) !=
                          std::end(k_multi_line_keys);
        if (auto why = control_characters_in(value, multi_line); !why.empty()) {
            return why;
        }
    }
    return spec.validate ? spec.validate(value) : "";
}

std::string check_expanded(ConfigFile file, std::string_view key, const std::string& value) {
    const KeySpec* spec = find_key(file, key);
    if (!spec) {
        return "";
    }
    if (spec->type == ValueType::string_list) {
        toml::array arr;
        arr.push_back(value);
        return check_value(*spec, arr);
    }
    return check_value(*spec, toml::value<std::string>(value));
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

}  // namespace nodectl

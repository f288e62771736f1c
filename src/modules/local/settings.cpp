// `nodectl local`'s settings and names: subnets, sizes, environment and bridge names, the
// rootfs cache key, where state lives. Pure functions, unit tested.
#include "modules/local/local.hpp"
#include "nodectl/target.hpp"

#include "util/digest.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>

namespace nodectl::local {

std::string Subnet::text() const {
    return address(0) + "/" + std::to_string(prefix);
}

std::string Subnet::address(uint32_t i) const {
    in_addr a{htonl(network + i)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}

bool Subnet::overlaps(const Subnet& o) const {
    int p = std::min(prefix, o.prefix);
    uint32_t mask = p == 0 ? 0 : ~uint32_t(0) << (32 - p);
    return (network & mask) == (o.network & mask);
}

Result<Subnet> parse_subnet(std::string_view cidr) {
    auto bad = [&](const std::string& why) {
        return make_error(ErrorCode::usage, "subnet '" + std::string(cidr) + "' " + why);
    };
    auto slash = cidr.find('/');
    if (slash == std::string_view::npos) {
        return bad("is not in CIDR form (for example 198.18.50.0/24)");
    }
    std::string addr(cidr.substr(0, slash));
    in_addr a{};
    if (inet_pton(AF_INET, addr.c_str(), &a) != 1) {
        return bad("does not start with an IPv4 address");
    }
    auto p = util::parse_uint(cidr.substr(slash + 1));
    if (!p || *p > 32) {
        return bad("has no prefix length between 0 and 32");
    }
    Subnet s;
    s.network = ntohl(a.s_addr);
    s.prefix = static_cast<int>(*p);
    if (s.prefix < 16 || s.prefix > 29) {
        return bad("must have a prefix length between /16 and /29");
    }
    if (s.network & (s.size() - 1)) {
        return bad("has host bits set (the network of " + addr + "/" + std::to_string(s.prefix) + " is " +
                   Subnet{s.network & ~(s.size() - 1), s.prefix}.text() + ")");
    }
    return s;
}

std::vector<Subnet> used_subnets(std::string_view ip_addr_out, std::string_view ip_route_out) {
    std::vector<Subnet> out;
    auto add = [&](const std::string& word) {
        auto slash = word.find('/');
        std::string addr = word.substr(0, slash);
        in_addr a{};
        if (inet_pton(AF_INET, addr.c_str(), &a) != 1) {
            return;
        }
        int prefix = 32;
        if (slash != std::string::npos) {
            auto p = util::parse_uint(std::string_view(word).substr(slash + 1));
            if (!p || *p > 32) {
                return;
            }
            prefix = static_cast<int>(*p);
        }
        uint32_t mask = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
        out.push_back({ntohl(a.s_addr) & mask, prefix});
    };
    for (const auto& line : util::split_lines(ip_addr_out)) {
        auto words = util::split(line, ' ');
        words.erase(std::remove(words.begin(), words.end(), ""), words.end());
        for (size_t i = 0; i + 1 < words.size(); ++i) {
            if (words[i] == "inet") {
                add(words[i + 1]);
            }
        }
    }
    for (const auto& line : util::split_lines(ip_route_out)) {
        auto words = util::split(util::trim(line), ' ');
        if (words.empty()) {
            continue;
        }
        // "198.18.3.0/24 dev ...", or "local 127.0.0.1 dev lo table local ...", "broadcast ..."
        size_t i = words[0] == "local" || words[0] == "broadcast" || words[0] == "unicast" || words[0] == "blackhole" ||
                           words[0] == "unreachable" || words[0] == "prohibit" || words[0] == "throw"
                       ? 1
                       : 0;
        if (i < words.size() && words[i] != "default") {
            add(words[i]);
        }
    }
    return out;
}

std::optional<uint64_t> parse_memory(std::string_view s) {
    if (s.empty()) {
        return std::nullopt;
    }
    uint64_t mult = 1;
    switch (s.back()) {
    case 'K':
    case 'k': mult = 1ull << 10; break;
    case 'M':
    case 'm': mult = 1ull << 20; break;
    case 'G':
    case 'g': mult = 1ull << 30; break;
    case 'T':
    case 't': mult = 1ull << 40; break;
    default: break;
    }
    if (mult != 1) {
        s.remove_suffix(1);
    }
    auto n = util::parse_uint(s);
    if (!n || *n > (1ull << 50) / mult || *n * mult < (64ull << 20)) {
        return std::nullopt;
    }
    return *n * mult;
}

std::optional<unsigned> parse_cpus(std::string_view s) {
    static const std::regex k_re("^[0-9]{1,4}(\\.[0-9]{1,2})?$");
    std::string str(s);
    if (!std::regex_match(str, k_re)) {
        return std::nullopt;
    }
    auto dot = str.find('.');
    auto whole = util::parse_uint(str.substr(0, dot));
    std::string f = dot == std::string::npos ? "0" : str.substr(dot + 1);
    auto frac = util::parse_uint(f);
    if (!whole || !frac) {  // not reached: the pattern admits digits only
        return std::nullopt;
    }
    uint64_t pct = *whole * 100 + *frac * (f.size() == 1 ? 10 : 1);
    return pct >= 1 && pct <= 102400 ? std::optional<unsigned>(static_cast<unsigned>(pct)) : std::nullopt;
}

bool valid_name(std::string_view name) {
    static const std::regex k_re("^[a-z][a-z0-9-]{0,19}$");
    return std::regex_match(std::string(name), k_re) && name.back() != '-';
}

std::string bridge_name(std::string_view name) {
    return "nlbr-" + util::sha256_hex(name).substr(0, 10);
}

Result<void> check_suite(const std::string& suite) {
    if (suite != "bookworm" && suite != "trixie" && suite != "bullseye") {
        return make_error(ErrorCode::usage, "--suite " + shell_quote(suite) + ": must be bookworm, trixie or bullseye");
    }
    return Ok{};
}

Result<void> check_bind(const std::string& bind) {
    auto parts = util::split(bind, ':');
    static const std::regex k_path("^/[A-Za-z0-9._/+@-]*$");
    bool ok = (parts.size() == 1 || parts.size() == 2) &&
              std::all_of(parts.begin(), parts.end(), [](const auto& p) { return std::regex_match(p, k_path); });
    if (!ok) {
        return make_error(ErrorCode::usage, "--bind " + shell_quote(bind) +
                                                ": expected SOURCE[:TARGET], absolute paths of letters, "
                                                "digits and . _ / + @ - (e.g. /dev/loop5 or /srv/data:/data)");
    }
    struct stat st {};
    if (::stat(parts[0].c_str(), &st) != 0) {
        return make_error(ErrorCode::usage,
                          "--bind " + shell_quote(bind) + ": " + parts[0] + " does not exist on this machine");
    }
    return Ok{};
}

Result<std::pair<std::string, std::string>> parse_var(const std::string& text) {
    auto eq = text.find('=');
    static const std::regex k_key("^[A-Za-z_][A-Za-z0-9_]*$");
    if (eq == std::string::npos || !std::regex_match(text.substr(0, eq), k_key)) {
        return make_error(ErrorCode::usage, "--var " + shell_quote(text) +
                                                ": expected KEY=VALUE with KEY of letters, digits and '_' "
                                                "(e.g. apt_proxy=http://198.18.50.1:3142)");
    }
    std::string value = text.substr(eq + 1);
    if (value.find_first_of("\n\r") != std::string::npos) {
        return make_error(ErrorCode::usage, "--var " + text.substr(0, eq) + ": the value must be one line");
    }
    return std::pair{text.substr(0, eq), value};
}

bool kernel_has_filesystem(std::string_view proc_filesystems, std::string_view fs) {
    for (const auto& line : util::split_lines(proc_filesystems)) {
        auto fields = util::split(line, '\t');
        if (!fields.empty() && util::trim(fields.back()) == fs) {
            return true;
        }
    }
    return false;
}

const std::vector<std::string>& rootfs_packages() {
    static const std::vector<std::string> k_packages = {"systemd",  "systemd-sysv", "dbus",  "openssh-server",
                                                        "iproute2", "sudo",         "tzdata"};
    return k_packages;
}

std::string rootfs_key(const std::string& suite, const std::vector<std::string>& packages) {
    auto sorted = packages;
    std::sort(sorted.begin(), sorted.end());
    return suite + "-" + util::sha256_hex(util::join(sorted, ",")).substr(0, 12);
}

namespace {

// $VAR made absolute (its paths go into overlay mounts and boot scripts), else `fallback`.
std::string root_from_env(const char* var, const char* fallback) {
    const char* e = std::getenv(var);
    if (!e || !*e) {
        return fallback;
    }
    std::error_code ec;
    auto abs = std::filesystem::absolute(e, ec).lexically_normal();
    if (!abs.has_filename()) {
        abs = abs.parent_path();  // "/a/b/" -> "/a/b"
    }
    return ec ? e : abs.string();
}

}  // namespace

std::string state_root() {
    return root_from_env("NODECTL_LOCAL_STATE_DIR", "/var/lib/nodectl/local");
}

std::string cache_root() {
    return root_from_env("NODECTL_LOCAL_CACHE_DIR", "/var/cache/nodectl/local");
}
std::string Publish::text() const {
    return address + ":" + std::to_string(host_port) + ":" + std::to_string(node_port);
}

Result<Publish> parse_publish(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return make_error(ErrorCode::usage,
                          "--publish '" + std::string(text) + "': " + why +
                              " (expected [ADDRESS:]HOST_PORT:NODE_PORT, e.g. 8443:443 or 0.0.0.0:8080:80)");
    };
    auto parts = util::split(text, ':');
    if (parts.size() != 2 && parts.size() != 3) {
        return bad("not two or three fields");
    }
    Publish p;
    if (parts.size() == 3) {
        in_addr a{};
        if (inet_pton(AF_INET, parts[0].c_str(), &a) != 1) {
            return bad("'" + parts[0] + "' is not an IPv4 address");
        }
        p.address = parts[0];
    }
    auto host_port = util::parse_uint(parts[parts.size() - 2], {.max = 65535});
    auto node_port = util::parse_uint(parts.back(), {.max = 65535});
    if (!host_port || !node_port || *host_port == 0 || *node_port == 0) {
        return bad("a port is not a number from 1 to 65535");
    }
    p.host_port = static_cast<uint16_t>(*host_port);
    p.node_port = static_cast<uint16_t>(*node_port);
    return p;
}

}  // namespace nodectl::local

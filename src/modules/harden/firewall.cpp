// Firewall: one nftables table of nodectl's own (`inet nodectl`), replaced atomically by one
// `nft -f` transaction: input policy drop, with loopback, established traffic, the ICMP that
// networks need, rate-limited SSH, the role's ports (from the cluster's networks only), the node
// exporter's port ([monitoring], from monitoring.allow_from or the cluster's networks), http(s)
// where the node serves it, and the profile's extra rules. Other tables (fail2ban's, k3s's
// kube-proxy and flannel rules) are left alone: the file deletes only its own table, never
// `flush ruleset`. Checked with `nft -c` first, persisted as /etc/nftables.conf (nftables.service),
// and guarded like sshd: a rollback timer, then a fresh login, then the timer is cancelled.
// An /etc/nftables.conf of the admin's own (neither nodectl's nor the one the nftables package
// shipped) is kept: nodectl's table goes to /etc/nodectl/nftables.nft, which that file includes
// at its end, and only nodectl's file is loaded live.
#include "modules/harden/groups.hpp"

#include "util/log.hpp"
#include "host/services.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

namespace nodectl::harden {

namespace {

constexpr const char* k_conf = "/etc/nftables.conf";
constexpr const char* k_managed_header = "# Managed by nodectl (harden.firewall)";
constexpr const char* k_own_file = "/etc/nodectl/nftables.nft";
constexpr const char* k_nftables_unit = "nftables.service";
constexpr const char* k_include_comment =
    "# Added by nodectl (harden.firewall): nodectl's own table, apart from the rules above.";

// Prints whose /etc/nftables.conf is: "nodectl" (nodectl's ruleset, or none), "shipped" (the one
// the nftables package installed, unchanged) or "admin".
constexpr const char* k_whose_conf = R"sh(f=/etc/nftables.conf
if [ ! -e "$f" ] || grep -q '^# Managed by nodectl (harden.firewall)' "$f"; then echo nodectl; exit 0; fi
shipped=$(dpkg-query -W -f='${Conffiles}\n' nftables 2>/dev/null | awk '$1 == "/etc/nftables.conf" { print $2 }')
if [ -n "$shipped" ] && [ "$(md5sum < "$f" | cut -c1-32)" = "$shipped" ]; then echo shipped; else echo admin; fi
)sh";

struct Networks {
    std::vector<std::string> v4, v6;
};

Networks split_families(const std::vector<std::string>& cidrs) {
    Networks n;
    for (const auto& c : cidrs) {
        (c.find(':') != std::string::npos ? n.v6 : n.v4).push_back(c);
    }
    return n;
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c != '"' && c != '\\' && c != '\n') {
            out += c;
        }
    }
    return out + "\"";
}

// Rules accepting `proto` to `port` from `from` (from anywhere when it is empty).
std::string allow(const std::string& proto, const std::string& port, const Networks& from, const std::string& comment) {
    std::string tail = proto + " dport " + port + " accept comment " + quoted(comment) + "\n";
    if (from.v4.empty() && from.v6.empty()) {
        return "    " + tail;
    }
    std::string out;
    if (!from.v4.empty()) {
        out += "    ip saddr { " + util::join(from.v4, ", ") + " } " + tail;
    }
    if (!from.v6.empty()) {
        out += "    ip6 saddr { " + util::join(from.v6, ", ") + " } " + tail;
    }
    return out;
}

}  // namespace

Result<std::string> render_ruleset(const ConfigView& fw, const Settings& s) {
    auto cluster = split_families(fw.strings("cluster_networks"));
    bool k8s = is_kubernetes(s.role);
    if (k8s && cluster.v4.empty() && cluster.v6.empty()) {
        return make_error(ErrorCode::config,
                          fw.where("cluster_networks") +
                              ": harden.role is a Kubernetes role, so harden.firewall.cluster_networks must list "
                              "the networks of the cluster's nodes (the k3s ports are open only to them)");
    }
    std::string port = std::to_string(s.ssh_port);
    std::string rate = std::to_string(fw.integer("ssh_rate_per_minute"));
    std::string body;
    body += "  set ssh_clients4 { type ipv4_addr; flags dynamic, timeout; timeout 1m; size 65536; }\n";
    body += "  set ssh_clients6 { type ipv6_addr; flags dynamic, timeout; timeout 1m; size 65536; }\n\n";
    body += "  chain input {\n"
            "    type filter hook input priority filter; policy drop;\n"
            "    iifname \"lo\" accept\n"
            "    ct state established,related accept\n"
            "    ct state invalid drop\n"
            "    icmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n"
            "    icmp type echo-request limit rate 20/second accept\n"
            "    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
            "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, "
            "mld-listener-report, mld2-listener-report } accept\n"
            "    icmpv6 type echo-request limit rate 20/second accept\n";
    body += "    tcp dport " + port + " ct state new update @ssh_clients4 { ip saddr limit rate over " + rate +
            "/minute burst " + rate + " packets } drop comment \"ssh: too many new connections from one address\"\n";
    body += "    tcp dport " + port + " ct state new update @ssh_clients6 { ip6 saddr limit rate over " + rate +
            "/minute burst " + rate + " packets } drop\n";
    body += "    tcp dport " + port + " accept comment \"ssh\"\n";
    if (s.role == Role::k3s_server || s.role == Role::k3s_server_ha) {
        body += allow("tcp", "6443", cluster, "k3s API server");
    }
    if (s.role == Role::k3s_server_ha) {
        body += allow("tcp", "2379-2380", cluster, "etcd (HA servers)");
    }
    if (k8s) {
        body += allow("tcp", "10250", cluster, "kubelet");
        if (fw.str("cni") == "wireguard") {
            body += allow("udp", "51820-51821", cluster, "flannel wireguard");
        } else {
            body += allow("udp", "8472", cluster, "flannel vxlan");
        }
    }
    if (s.node_exporter_port != 0) {
        body += allow("tcp", std::to_string(s.node_exporter_port), split_families(s.node_exporter_from),
                      "node exporter ([monitoring])");
    }
    if (fw.boolean("serve_http")) {
        body += allow("tcp", "{ 80, 443 }", {}, "http, https");
    }
    for (const auto& r : fw.tables("rules")) {
        auto comment = r.has("comment") ? r.str("comment") : "profile rule";
        body += allow(r.str("proto"), r.str("port"), split_families(r.strings("from")), comment);
    }
    body += "  }\n";
    if (!k8s) {
        // Kubernetes nodes forward pod traffic (k3s manages that); others forward nothing.
        body += "\n  chain forward {\n    type filter hook forward priority filter; policy drop;\n  }\n";
    }
    std::string digest = util::sha256_hex(body).substr(0, 16);
    return "#!/usr/sbin/nft -f\n" + std::string(k_managed_header) +
           ": changes here are replaced on the next apply.\n"
           "# Only nodectl's own table is replaced; fail2ban's and k3s's tables are left alone.\n"
           "table inet nodectl {}\n"
           "delete table inet nodectl\n"
           "table inet nodectl {\n"
           "  comment \"nodectl " +
           digest + "\"\n" + body + "}\n";
}

std::string include_own_ruleset(const std::string& current) {
    std::string include = "include \"" + std::string(k_own_file) + "\"";
    for (const auto& line : util::split_lines(current)) {
        if (util::trim(line) == include) {
            return current;
        }
    }
    std::string out = current;
    if (!out.empty() && !out.ends_with("\n")) {
        out += "\n";
    }
    return out + "\n" + k_include_comment + "\n" + include + "\n";
}

void set_firewall_files(ConfigSetSpec& spec, const std::string& ruleset, bool keep_admin_conf) {
    if (keep_admin_conf) {
        spec.files = {{k_conf, "", include_own_ruleset, 0755}, {k_own_file, ruleset, nullptr, 0644}};
    } else {
        spec.files = {{k_conf, ruleset, nullptr, 0755}};
    }
    spec.validate = "nft -c -f " + std::string(k_conf);
    spec.activate = "nft -f " + std::string(keep_admin_conf ? k_own_file : k_conf) + " && " +
                    host::units::enable({k_nftables_unit}, {.quiet = true}).script();
}

Result<ConfigSetSpec> firewall_group(const ConfigView& fw, const Settings& s) {
    ConfigSetSpec spec;
    spec.id = "harden/firewall";
    spec.title = "nftables firewall";
    spec.enabled = fw.boolean("enabled");
    auto ruleset = TRY(render_ruleset(fw, s));
    auto digest_at = ruleset.find("comment \"nodectl ");
    std::string marker = ruleset.substr(digest_at + 9, ruleset.find('"', digest_at + 9) - digest_at - 9);
    set_firewall_files(spec, ruleset, false);
    if (!spec.enabled) {
        // Turned off: both places nodectl may have written go back to what it found.
        spec.files.push_back({k_own_file, ruleset, nullptr, 0644});
    }
    spec.prepare = [ruleset](Target& target, ConfigSetSpec& sp) -> Result<void> {
        if (!sp.enabled) {
            return Ok{};
        }
        Command cmd;
        cmd.script = k_whose_conf;
        cmd.mutates = false;
        auto whose = util::trim(TRY(target.run_checked(cmd, "reading whose /etc/nftables.conf it is")).out);
        if (whose == "admin") {
            log::info(target.name(), "{}: {} holds rules of the admin's: kept, it includes nodectl's table from {}",
                      sp.title, k_conf, k_own_file);
        }
        set_firewall_files(sp, ruleset, whose == "admin");
        return Ok{};
    };
    spec.drift = "if ! nft list table inet nodectl 2>/dev/null | grep -qF " + shell_quote(marker) +
                 "; then echo 'nftables: the live table inet nodectl is not the ruleset nodectl persisted'; fi\n" +
                 host::units::enabled_drift(k_nftables_unit, "enable nftables.service (loads the ruleset at boot)");
    // Only a file that is nodectl's own is loaded again: the admin's or the package's may begin
    // with `flush ruleset`, which would drop every other table (Docker's, k3s's, fail2ban's).
    spec.restore_activate = "nft delete table inet nodectl 2>/dev/null\nfor f in " + std::string(k_conf) + " " +
                            k_own_file + "; do if grep -qs " + shell_quote("^" + std::string(k_managed_header)) +
                            " \"$f\"; then nft -f \"$f\"; fi; done; true";
    spec.deactivate = "nft delete table inet nodectl 2>/dev/null || true";
    spec.guard = true;
    spec.fresh_login_as_when_root = s.root_login_disabled ? s.admin_user : "";
    spec.rollback_after = s.rollback_after;

    spec.controls = {
        {"firewall.table_loaded", "nodectl's nftables table is loaded as persisted",
         "if nft list table inet nodectl 2>/dev/null | grep -qF " + shell_quote(marker) +
             "; then echo loaded; else echo 'not loaded or different'; fi",
         host::equals("loaded"), "command -v nft >/dev/null || echo 'nft is not installed'"},
        {"firewall.input_policy", "input policy drops what is not allowed",
         "nft list chain inet nodectl input | sed -n 's/.*hook input.*policy \\([a-z]*\\);.*/\\1/p'",
         host::equals("drop"), "command -v nft >/dev/null || echo 'nft is not installed'"},
        {"firewall.ssh_rate_limited", "ssh port open with a per-source rate limit",
         "nft list chain inet nodectl input | grep -c 'dport " + std::to_string(s.ssh_port) +
             " ct state new update @ssh_clients'",
         host::equals("2"), ""},
        {"firewall.persisted", "nftables.service loads the ruleset at boot",
         host::units::enabled_state(k_nftables_unit), host::equals("enabled"), ""},
    };
    return spec;
}

}  // namespace nodectl::harden

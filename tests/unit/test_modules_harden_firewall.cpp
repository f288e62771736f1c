// The harden module's firewall group: the nftables ruleset it renders from a profile for each
// role (standalone, k3s servers and agents), extra rules, and how an admin's own
// /etc/nftables.conf is kept.
#include "harden_support.hpp"
#include "result_checks.hpp"
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "modules/harden/groups.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace nodectl;
// nodectl::harden's and the test helpers' names unqualified in this file only (unity build).
namespace harden_firewall_test {
using namespace nodectl::harden;
using namespace nodectl::testing;

namespace {

// The nftables ruleset of `p`'s [harden.firewall] with `s`; it must render.
std::string ruleset_of(const Profile& p, const Settings& s) {
    return value_ok(render_ruleset(harden_view(p, "firewall"), s));
}

}  // namespace

TEST_CASE("harden firewall: input policy drop, only nodectl's own table is replaced, ssh is rate limited on its port") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\nssh_port = 2222\nssh_rate_per_minute = 12\n");
    Settings s;
    s.ssh_port = 2222;
    auto rs = ruleset_of(p, s);
    CHECK(rs.starts_with("#!/usr/sbin/nft -f\n"));
    CHECK(has_line(rs, "    type filter hook input priority filter; policy drop;"));
    CHECK_FALSE(contains(rs, "flush ruleset"));
    CHECK_FALSE(contains(rs, "flush table"));
    // The table is created empty if missing, then deleted and defined again: one transaction.
    CHECK(lines_with(rs, "delete ") == std::vector<std::string>{"delete table inet nodectl"});
    CHECK(rs.find("table inet nodectl {}") < rs.find("delete table inet nodectl"));
    std::vector<std::string> table_lines;
    for (const auto& l : lines_with(rs, "table ")) {
        if (!l.starts_with("#")) {
            table_lines.push_back(l);
        }
    }
    CHECK(table_lines ==
          std::vector<std::string>{"table inet nodectl {}", "delete table inet nodectl", "table inet nodectl {"});

    auto ssh = lines_with(rs, "dport 2222");
    REQUIRE(ssh.size() == 3);
    CHECK(contains(
        ssh[0],
        "tcp dport 2222 ct state new update @ssh_clients4 { ip saddr limit rate over 12/minute burst 12 packets } drop"));
    CHECK(contains(
        ssh[1],
        "tcp dport 2222 ct state new update @ssh_clients6 { ip6 saddr limit rate over 12/minute burst 12 packets } drop"));
    CHECK(contains(ssh[2], "tcp dport 2222 accept"));
    CHECK(lines_with(rs, "dport 22 ").empty());
    CHECK(has_line(rs, "    iifname \"lo\" accept"));
    CHECK(has_line(rs, "    ct state established,related accept"));
    // The rate limits come before the accept.
    CHECK(rs.find("@ssh_clients4 {") < rs.find("tcp dport 2222 accept"));

    // Standalone: nothing is forwarded.
    CHECK(contains(rs, "  chain forward {\n    type filter hook forward priority filter; policy drop;\n  }\n"));
    CHECK(lines_with(rs, "6443").empty());
    CHECK(lines_with(rs, "10250").empty());
    CHECK(lines_with(rs, "dport { 80, 443 }").empty());
}

TEST_CASE("harden firewall: a k3s role without cluster_networks is a config error naming the profile file and line") {
    TempDir dir;
    auto p = written_profile(dir, "# a comment\n[harden]\nrole = \"k3s-agent\"\n\n[harden.firewall]\nssh_port = 22\n");
    for (auto role : {Role::k3s_server, Role::k3s_server_ha, Role::k3s_agent}) {
        Settings s;
        s.role = role;
        auto r = render_ruleset(harden_view(p, "firewall"), s);
        check_error(r, ErrorCode::config, {dir.file("profile.toml") + ":5:", "harden.firewall.cluster_networks"});
        CHECK(error_of(firewall_group(harden_view(p, "firewall"), s)).message == r.error().message);
    }
}

TEST_CASE("harden firewall: k3s servers open 6443 and 10250 only to the cluster's networks, split into IPv4 and IPv6") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-server\"\n[harden.firewall]\n"
                                  "cluster_networks = [\"198.18.0.0/16\", \"::1/128\", \"198.19.1.0/24\"]\n");
    Settings s;
    s.role = parse_role(p.section("harden").str("role"));
    REQUIRE(s.role == Role::k3s_server);
    auto rs = ruleset_of(p, s);
    for (const std::string port : {"tcp dport 6443 ", "tcp dport 10250 ", "udp dport 8472 "}) {
        CAPTURE(port);
        auto lines = lines_with(rs, port);
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].starts_with("    ip saddr { 198.18.0.0/16, 198.19.1.0/24 } " + port));
        CHECK(lines[1].starts_with("    ip6 saddr { ::1/128 } " + port));
    }
    CHECK(lines_with(rs, "2379").empty());
    CHECK(lines_with(rs, "51820").empty());
    // Kubernetes nodes forward pod traffic: no forward chain of nodectl's.
    CHECK_FALSE(contains(rs, "chain forward"));
    CHECK(has_line(rs, "    type filter hook input priority filter; policy drop;"));
}

TEST_CASE("harden firewall: agents have no API server port; HA servers add etcd; wireguard replaces vxlan") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\ncluster_networks = [\"198.18.64.0/18\"]\n");
    Settings s;

    s.role = Role::k3s_agent;
    auto agent = ruleset_of(p, s);
    CHECK(lines_with(agent, "6443").empty());
    CHECK(lines_with(agent, "2379").empty());
    CHECK(lines_with(agent, "tcp dport 10250 ") ==
          std::vector<std::string>{"    ip saddr { 198.18.64.0/18 } tcp dport 10250 accept comment \"kubelet\""});
    CHECK(lines_with(agent, "ip6 saddr {").empty());  // no IPv6 networks given
    CHECK_FALSE(contains(agent, "chain forward"));

    s.role = Role::k3s_server_ha;
    auto ha = ruleset_of(p, s);
    CHECK(lines_with(ha, "tcp dport 2379-2380 ") ==
          std::vector<std::string>{
              "    ip saddr { 198.18.64.0/18 } tcp dport 2379-2380 accept comment \"etcd (HA servers)\""});
    CHECK(lines_with(ha, "tcp dport 6443 ").size() == 1);

    TempDir dir2;
    auto wg =
        written_profile(dir2, "[harden.firewall]\ncluster_networks = [\"198.18.64.0/18\"]\ncni = \"wireguard\"\n");
    s.role = Role::k3s_server;
    auto w = ruleset_of(wg, s);
    CHECK(lines_with(w, "udp dport 51820-51821 ") ==
          std::vector<std::string>{
              "    ip saddr { 198.18.64.0/18 } udp dport 51820-51821 accept comment \"flannel wireguard\""});
    CHECK(lines_with(w, "8472").empty());
}

TEST_CASE("harden firewall: serve_http opens 80 and 443 to everyone; extra rules with and without `from`") {
    TempDir dir;
    auto p = written_profile(
        dir,
        "[harden.firewall]\nserve_http = true\n"
        "[[harden.firewall.rules]]\nport = \"9100\"\nfrom = [\"198.18.5.0/24\", \"::1/128\"]\ncomment = \"node exporter\"\n"
        "[[harden.firewall.rules]]\nport = \"30000-32767\"\nproto = \"udp\"\n");
    Settings s;
    auto r = ruleset_of(p, s);
    CHECK(lines_with(r, "dport { 80, 443 }") ==
          std::vector<std::string>{"    tcp dport { 80, 443 } accept comment \"http, https\""});
    CHECK(lines_with(r, "dport 9100 ") ==
          std::vector<std::string>{"    ip saddr { 198.18.5.0/24 } tcp dport 9100 accept comment \"node exporter\"",
                                   "    ip6 saddr { ::1/128 } tcp dport 9100 accept comment \"node exporter\""});
    CHECK(lines_with(r, "dport 30000-32767 ") ==
          std::vector<std::string>{"    udp dport 30000-32767 accept comment \"profile rule\""});
    // Extra rules live in the input chain, before it closes.
    CHECK(r.find("dport 30000-32767") < r.find("chain forward"));

    TempDir dir2;
    auto off = written_profile(dir2, "[harden.firewall]\nserve_http = false\n");
    auto r2 = ruleset_of(off, s);
    CHECK(lines_with(r2, " 80").empty());
    CHECK(lines_with(r2, "443").empty());
}

TEST_CASE(
    "harden firewall: the group is guarded, persisted in /etc/nftables.conf and marks the live table with the ruleset's digest") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\nssh_port = 2200\n");
    Settings s;
    s.ssh_port = 2200;
    auto spec = value_ok(firewall_group(harden_view(p, "firewall"), s));
    CHECK(spec.id == "harden/firewall");
    CHECK(spec.guard);
    REQUIRE(spec.files.size() == 1);
    CHECK(spec.files[0].path == "/etc/nftables.conf");
    CHECK(spec.files[0].content == ruleset_of(p, s));
    CHECK(spec.validate == "nft -c -f /etc/nftables.conf");
    CHECK_FALSE(contains(spec.activate, "flush"));
    auto comment = lines_with(spec.files[0].content, "comment \"nodectl ");
    REQUIRE(comment.size() == 1);
    auto digest = comment[0].substr(comment[0].find("nodectl ") + 8, 16);
    CHECK(contains(spec.drift, digest));
    // A different ruleset, a different marker.
    Settings other = s;
    other.ssh_port = 2201;
    CHECK_FALSE(contains(ruleset_of(p, other), digest));
}

TEST_CASE(
    "harden firewall: an admin's own /etc/nftables.conf is kept and includes nodectl's table; only nodectl's files are reloaded") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\n");
    Settings s;
    auto spec = firewall_group(harden_view(p, "firewall"), s);
    REQUIRE(spec.ok());
    REQUIRE(spec->prepare);
    auto ruleset = spec->files[0].content;

    const std::string admin =
        "#!/usr/sbin/nft -f\nflush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 0; tcp dport 8080 accept; }\n}";
    auto edited = include_own_ruleset(admin);
    CHECK(edited.starts_with(admin + "\n"));
    CHECK(has_line(edited, "include \"/etc/nodectl/nftables.nft\""));
    CHECK(include_own_ruleset(edited) == edited);  // once
    CHECK(count_of(include_own_ruleset(edited), "include ") == 1);

    auto kept = *spec;
    set_firewall_files(kept, ruleset, true);
    REQUIRE(kept.files.size() == 2);
    CHECK(kept.files[0].path == "/etc/nftables.conf");
    REQUIRE(kept.files[0].edit);
    CHECK(kept.files[0].edit(admin) == edited);
    CHECK(kept.files[1].path == "/etc/nodectl/nftables.nft");
    CHECK(kept.files[1].content == ruleset);
    CHECK(kept.activate == "nft -f /etc/nodectl/nftables.nft && systemctl enable --quiet 'nftables.service'");
    CHECK(kept.validate == "nft -c -f /etc/nftables.conf");

    // A rollback loads a file again only when it is nodectl's (the package's file and an admin's
    // may start with `flush ruleset`, which would drop Docker's and k3s's tables too).
    CHECK(contains(spec->restore_activate, "grep -qs '^# Managed by nodectl (harden.firewall)'"));
    CHECK_FALSE(contains(spec->restore_activate, "flush"));
    CHECK(ruleset.find("# Managed by nodectl (harden.firewall)") == ruleset.find('\n') + 1);

    // Turned off, both places nodectl may have written are reverted.
    auto off = firewall_group(
        harden_view(written_profile(dir, "[harden.firewall]\nenabled = false\n", "off.toml"), "firewall"), s);
    REQUIRE(off.ok());
    REQUIRE(off->files.size() == 2);
    CHECK(off->files[1].path == "/etc/nodectl/nftables.nft");
}

}  // namespace harden_firewall_test

// [monitoring]: the node exporter's arguments, its textfile directory following the backup's
// metrics file, and the firewall opening the exporter's port only to the monitoring networks.
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "modules/harden/harden.hpp"
#include "modules/monitoring/monitoring.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::lines_with;
using nodectl::testing::profile_from;
using nodectl::testing::try_profile;

namespace {

HostSpec host_at(const std::string& address) {
    HostSpec h;
    h.name = "node1";
    h.address = address;
    return h;
}

const ConfigSetSpec* find_set(const StepList& steps, const std::string& id) {
    for (const auto& s : steps) {
        if (s->id() == id) {
            return &dynamic_cast<const ApplyConfigSet&>(*s).spec();
        }
    }
    return nullptr;
}

}  // namespace

TEST_CASE("monitoring: defaults listen on every address and read Debian's textfile directory") {
    auto p = profile_from("[monitoring]\n");
    auto s = monitoring::settings_from(p, host_at("198.18.40.2"));
    REQUIRE(s.ok());
    CHECK(monitoring::render_defaults(*s) ==
          "# Managed by nodectl ([monitoring]): changes here are replaced on the next apply.\n"
          "# Arguments of prometheus-node-exporter (see `prometheus-node-exporter --help`).\n"
          "ARGS=\"--web.listen-address=:9100 --collector.textfile.directory=/var/lib/prometheus/node-exporter\"\n");
    auto steps = monitoring::steps(ModuleContext{p, host_at("198.18.40.2")});
    REQUIRE(steps.ok());
    REQUIRE(steps->size() == 2);
    CHECK((*steps)[0]->id() == "monitoring/packages");
    const auto* set = find_set(*steps, "monitoring/node_exporter");
    REQUIRE(set);
    REQUIRE(set->files.size() == 1);
    CHECK(set->files[0].path == "/etc/default/prometheus-node-exporter");
    CHECK(set->files[0].mode == 0644);
    // The running process is compared with the file: a hand-made restart with other arguments is drift.
    CHECK(
        set->drift.find(
            "/usr/bin/prometheus-node-exporter --web.listen-address=:9100 --collector.textfile.directory=/var/lib/prometheus/node-exporter ") !=
        std::string::npos);
}

TEST_CASE("monitoring: the textfile directory is where backup.metrics_file is written; the address may be the host's") {
    auto p = profile_from(R"(
[backup]
metrics_file = "/var/lib/nodectl-metrics/backup.prom"
[monitoring]
listen_address = "${host.address}"
port = 9111
)");
    auto s = monitoring::settings_from(p, host_at("198.18.40.2"));
    REQUIRE(s.ok());
    CHECK(s->textfile_directory == "/var/lib/nodectl-metrics");
    CHECK(monitoring::exporter_args(*s) ==
          std::vector<std::string>{"--web.listen-address=198.18.40.2:9111",
                                   "--collector.textfile.directory=/var/lib/nodectl-metrics"});
    auto v6 = monitoring::settings_from(p, host_at("fd00::2"));
    REQUIRE(v6.ok());
    CHECK(monitoring::exporter_args(*v6)[0] == "--web.listen-address=[fd00::2]:9111");
    // An inventory address that is a name cannot be a listen address: refused for that host, with where.
    auto named = monitoring::settings_from(p, host_at("node1.example"));
    REQUIRE_FALSE(named.ok());
    CHECK(named.error().message.find("monitoring.listen_address") != std::string::npos);
    CHECK(named.error().message.find("node1.example") != std::string::npos);
}

TEST_CASE(
    "monitoring: a textfile directory that would not hold the backup's metrics, or a bad address, is a profile error") {
    auto p = profile_from(R"(
[backup]
metrics_file = "/var/lib/nodectl-metrics/backup.prom"
[monitoring]
textfile_directory = "/var/lib/prometheus/node-exporter"
)");
    auto s = monitoring::settings_from(p, host_at("198.18.40.2"));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("would not serve the backup's metrics") != std::string::npos);
    CHECK(s.error().message.find(":5:") != std::string::npos);
    auto same = profile_from(
        "[backup]\nmetrics_file = \"/srv/m/backup.prom\"\n[monitoring]\ntextfile_directory = \"/srv/m/\"\n");
    auto ok = monitoring::settings_from(same, host_at("198.18.40.2"));
    REQUIRE(ok.ok());
    CHECK(ok->textfile_directory == "/srv/m");

    auto bad = try_profile("[monitoring]\nlisten_address = \"0.0.0.0:9100\"\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("monitoring.listen_address") != std::string::npos);
    auto quoted = try_profile("[monitoring]\ntextfile_directory = \"/var/lib/a b\"\n");
    REQUIRE_FALSE(quoted.ok());
}

TEST_CASE("monitoring + harden: the firewall opens the exporter's port to allow_from, else to the cluster's networks") {
    auto with = [](const std::string& extra) {
        return profile_from(
            "[harden]\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n[harden.firewall]\ncluster_networks = [\"198.18.40.0/24\"]\n" +
            extra);
    };
    auto ruleset = [](const Profile& p) {
        auto steps = harden::steps(ModuleContext{p, host_at("198.18.40.2")});
        REQUIRE_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.error().message));
        const auto* fw = find_set(*steps, "harden/firewall");
        REQUIRE(fw);
        return fw->files[0].content;
    };
    // Without [monitoring] the port stays closed.
    CHECK(lines_with(ruleset(with("")), "9100").empty());
    CHECK(lines_with(ruleset(with("[monitoring]\n")), "9100") ==
          std::vector<std::string>{
              "    ip saddr { 198.18.40.0/24 } tcp dport 9100 accept comment \"node exporter ([monitoring])\""});
    CHECK(lines_with(ruleset(with("[monitoring]\nport = 9111\nallow_from = [\"198.18.41.7\", \"fd00::/64\"]\n")),
                     "9111") ==
          std::vector<std::string>{
              "    ip saddr { 198.18.41.7 } tcp dport 9111 accept comment \"node exporter ([monitoring])\"",
              "    ip6 saddr { fd00::/64 } tcp dport 9111 accept comment \"node exporter ([monitoring])\""});
    CHECK(lines_with(ruleset(with("[monitoring]\nenabled = false\n")), "9100").empty());

    // No network to open it to: refused, rather than an exporter nobody can reach (or everybody).
    auto none = profile_from("[harden]\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n[monitoring]\n");
    auto r = harden::steps(ModuleContext{none, host_at("198.18.40.2")});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("monitoring.allow_from") != std::string::npos);
    // ... unless nodectl's firewall is off.
    auto off = profile_from(
        "[harden]\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n[harden.firewall]\nenabled = false\n[monitoring]\n");
    CHECK(harden::steps(ModuleContext{off, host_at("198.18.40.2")}).ok());
}

TEST_CASE("monitoring: enabled = false leaves the package and reverts the file; no [monitoring], no steps") {
    auto p = profile_from("[monitoring]\nenabled = false\n");
    auto steps = monitoring::steps(ModuleContext{p, host_at("198.18.40.2")});
    REQUIRE(steps.ok());
    REQUIRE(steps->size() == 1);
    const auto* set = find_set(*steps, "monitoring/node_exporter");
    REQUIRE(set);
    CHECK_FALSE(set->enabled);
    CHECK(set->deactivate.find("disable --now") != std::string::npos);
    auto none = profile_from("[base]\ntimezone = \"Etc/UTC\"\n");
    auto empty = monitoring::steps(ModuleContext{none, host_at("198.18.40.2")});
    REQUIRE(empty.ok());
    CHECK(empty->empty());
}

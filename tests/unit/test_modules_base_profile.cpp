// The base module from a profile: its steps in order with host variables expanded, what it refuses,
// and regressions where two of its steps fought over /etc/hosts.
#include "fake_target.hpp"
#include "step_support.hpp"
#include "result_checks.hpp"
#include "test_support.hpp"

#include "core/runner.hpp"
#include "modules/base/base.hpp"
#include "modules/base/steps.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

using namespace nodectl;
// nodectl::base's names unqualified in this file only (unity build: see test_modules_base.cpp).
namespace base_profile_test {
using namespace nodectl::base;
using namespace nodectl::testing::steps;
using nodectl::testing::check_error;
using nodectl::testing::FakeTarget;
using nodectl::testing::load_profile_ok;
using nodectl::testing::QuietLogs;
using nodectl::testing::TempDir;
using nodectl::testing::value_ok;

// ---- the module: profile -> steps ----

TEST_CASE("base module builds its steps from the profile in order, with host variables expanded") {
    TempDir dir;
    std::string path = dir.write("p.toml", R"([base]
hostname = "${host.name}"
timezone = "Etc/UTC"
hosts_entries = ["198.18.99.1 gw"]
packages = ["curl"]
units_enabled = ["ssh.service"]
apt_proxy = ""

[[base.files]]
path = "/etc/motd"
content = "Hello ${host.name} in ${vars.site}\n"
mode = "0600"
)");
    auto profile = load_profile_ok(path);
    HostSpec host;
    host.name = "web1";
    host.address = "198.18.99.9";
    host.vars["site"] = "fra";
    auto steps = value_ok(base::steps(ModuleContext{profile, host}));
    std::vector<std::string> ids;
    for (const auto& s : steps) {
        ids.push_back(s->id());
    }
    CHECK(ids == std::vector<std::string>{"base/apt_proxy", "base/hostname", "base/timezone", "base/hosts",
                                          "base/packages", "base/file:/etc/motd", "base/units"});
    CHECK(steps[1]->title() == "hostname web1");

    // Applied to a fresh host, every step converges and the expanded values land on the host.
    QuietLogs quiet;
    FakeTarget t;
    RunOptions o = apply_options();
    auto report = run_steps(t, steps, o);
    CHECK_MESSAGE(report.ok, report.error);
    CHECK(t.host().hostname == "web1");
    CHECK(t.host().content("/etc/motd") == "Hello web1 in fra\n");
    CHECK(t.host().files.at("/etc/motd").mode == 0600);
    CHECK(t.host().content("/etc/hosts").find("198.18.99.1 gw\n") != std::string::npos);
}

TEST_CASE("base module refuses a package that is both wanted and unwanted") {
    TempDir dir;
    auto profile =
        load_profile_ok(dir.write("p.toml", "[base]\npackages = [\"curl\", \"vim\"]\npackages_absent = [\"vim\"]\n"));
    check_error(base::steps(ModuleContext{profile, host_named("h")}), ErrorCode::config,
                {"'vim' is in both", "p.toml:3:"});
}

TEST_CASE("base module: an unknown ${vars.X} for this host stops the build") {
    TempDir dir;
    auto profile = load_profile_ok(dir.write("p.toml", "[base]\nhostname = \"${vars.missing}\"\n"));
    check_error(base::steps(ModuleContext{profile, host_named("h1")}), {"unknown variable ${vars.missing}"});
}

// ---- regressions ----

// SetHostname once dropped every 127.0.1.1 line, including one inside the block ManageHostsBlock
// keeps, and the block step put it back: both steps changed /etc/hosts on every run.
// (The profile now refuses 127.0.1.1 in hosts_entries; the steps must not fight regardless.)
TEST_CASE("a 127.0.1.1 line inside the hosts block does not fight SetHostname") {
    QuietLogs quiet;
    FakeTarget t;
    auto make = [] {
        StepList s;
        s.push_back(std::make_unique<SetHostname>("web1"));
        s.push_back(std::make_unique<ManageHostsBlock>(std::vector<std::string>{"127.0.1.1 web1.internal"}));
        return s;
    };
    StepList first = make();
    REQUIRE(run_steps(t, first, apply_options()).ok);
    StepList second = make();
    HostReport r = run_steps(t, second, apply_options());
    CHECK(r.count(StepStatus::unchanged) == 2);
}

// The key table's check once rejected any entry with "${" before expansion.
TEST_CASE("hosts_entries can use ${vars.NAME}, and the expanded line is validated") {
    TempDir dir;
    auto profile = load_profile_ok(dir.write("p.toml", "[base]\nhosts_entries = [\"198.18.99.1 gw-${vars.site}\"]\n"));
    auto host = host_named("h");
    host.vars["site"] = "fra";
    auto steps = value_ok(base::steps(ModuleContext{profile, host}));
    FakeTarget t;
    apply_and_reprobe(*steps[0], t);
    CHECK(t.host().content("/etc/hosts").find("198.18.99.1 gw-fra\n") != std::string::npos);

    host.vars["site"] = "bad name!";
    check_error(base::steps(ModuleContext{profile, host}), {"p.toml:2:", "'base.hosts_entries' for host 'h'"});
}

TEST_CASE("a 127.0.1.1 line in hosts_entries is refused: it belongs to base.hostname") {
    TempDir dir;
    std::string path = dir.write("p.toml", "[base]\nhosts_entries = [\"127.0.1.1 web1\"]\n");
    check_error(load_profile(path), {"p.toml:2:17: 'base.hosts_entries' must not set 127.0.1.1"});
}

TEST_CASE("an expanded hostname is validated per host") {
    TempDir dir;
    auto profile = load_profile_ok(dir.write("p.toml", "[base]\nhostname = \"web-${vars.n}\"\n"));
    auto host = host_named("h");
    host.vars["n"] = "under_score";
    check_error(base::steps(ModuleContext{profile, host}),
                {"p.toml:2:12: 'base.hostname' for host 'h' is \"web-under_score\""});
}

TEST_CASE("/etc/hosts with a begin marker but no end marker is refused, not truncated") {
    FakeTarget t;
    std::string hosts = "127.0.0.1 localhost\n# BEGIN nodectl base.hosts_entries (managed: edits here are replaced)\n"
                        "198.18.99.7 keep-me\n";
    t.host().files["/etc/hosts"] = {hosts, 0644, "root", "root"};
    ManageHostsBlock step({"198.18.99.1 gw"});
    auto plan = step.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message.find("no '# END nodectl base.hosts_entries'") != std::string::npos);
    CHECK(t.host().content("/etc/hosts") == hosts);
}

}  // namespace base_profile_test

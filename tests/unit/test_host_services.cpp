// The host layer's systemd units: what each operation sends, the fake's model of the operations,
// and the probe fragments run by a real /bin/sh against a stand-in systemctl.
#include "fake_target.hpp"

#include "host/services.hpp"
#include "target/local_target.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace nodectl;
using nodectl::testing::FakeTarget;

namespace {

// A systemctl that answers is-enabled, is-active and show from files beside it (UNIT.enabled,
// UNIT.active, UNIT.PROPERTY), as systemd prints them.
constexpr const char* k_stub_systemctl = R"sh(#!/bin/sh
d=$(dirname "$0")
case "$1" in
  is-enabled) cat "$d/$2.enabled" 2>/dev/null || { echo "Failed to get unit file state for $2" >&2; exit 1; } ;;
  is-active)
    if [ "$2" = --quiet ]; then grep -qx active "$d/$3.active" 2>/dev/null; exit; fi
    s=$(cat "$d/$2.active" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] || exit 3 ;;
  show) cat "$d/$5.$3" 2>/dev/null ;;
  *) echo "stub systemctl: $1 not expected" >&2; exit 2 ;;
esac
)sh";

// Runs `script` in `dir`, with the stub first on PATH; its output, then its exit status if not 0.
std::string run_with_stub(const testing::TempDir& dir, const std::string& script) {
    auto r = run_process({"/usr/bin/env", "PATH=" + dir.path().string() + ":/usr/bin:/bin", "/bin/sh", "-c",
                          "cd " + shell_quote(dir.path().string()) + " || exit 9\n" + script},
                         "", std::chrono::seconds(10));
    REQUIRE(r.ok());
    return r->out + (r->exit_code == 0 ? "" : "exit " + std::to_string(r->exit_code) + "\n");
}

}  // namespace

TEST_CASE("host::units: each operation is one systemctl command, unit names quoted") {
    namespace units = host::units;
    CHECK(units::daemon_reload().script() == "systemctl daemon-reload");
    CHECK(units::enable({"apache2.service"}, {.now = true}).script() == "systemctl enable --now 'apache2.service'");
    CHECK(units::disable({"a.service", "b.timer"}, {.now = true, .quiet = true, .ignore_failure = true}).script() ==
          "systemctl disable --now --quiet 'a.service' 'b.timer' 2>/dev/null || true");
    CHECK(units::start({"aide.service"}, {.no_block = true}).script() == "systemctl start --no-block 'aide.service'");
    CHECK(units::restart({"it's here.service"}).script() == "systemctl restart 'it'\\''s here.service'");
    CHECK(units::reset_failed({"x.service"}).script() == "systemctl reset-failed 'x.service'");
    CHECK(units::script(
              {units::daemon_reload(), units::enable({"x.timer"}, {.quiet = true}), units::restart({"x.timer"})}) ==
          "systemctl daemon-reload\nsystemctl enable --quiet 'x.timer'\nsystemctl restart 'x.timer'\n");
}

TEST_CASE("host::run_unit_op: the fake applies the operation to its units and logs it") {
    FakeTarget t;
    REQUIRE(host::run_unit_op(t, host::units::enable({"apache2.service"}, {.now = true})).ok());
    REQUIRE(host::run_unit_op(t, host::units::stop({"cron.service"})).ok());
    REQUIRE(host::set_unit(t, "ssh.service", false).ok());
    CHECK(t.host().units.at("apache2.service").enabled);
    CHECK(t.host().units.at("apache2.service").active);
    CHECK(t.host().units.at("cron.service").enabled);
    CHECK_FALSE(t.host().units.at("cron.service").active);
    CHECK_FALSE(t.host().units.at("ssh.service").enabled);
    CHECK(t.host().unit_ops ==
          std::vector<std::string>{"enable --now apache2.service", "stop cron.service", "disable --now ssh.service"});

    auto missing = host::run_unit_op(t, host::units::restart({"nosuch.service"}));
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message ==
          "systemctl restart nosuch.service failed (exit 5): Failed to restart nosuch.service: Unit "
          "nosuch.service not found.");
    CHECK(host::run_unit_op(t, host::units::restart({"nosuch.service"}, {.ignore_failure = true})).ok());
}

TEST_CASE("host::units probes: drift lines, controls and conditions read the unit named, whatever its name") {
    testing::TempDir dir;
    std::ofstream(dir.file("systemctl")) << k_stub_systemctl;
    std::filesystem::permissions(dir.file("systemctl"), std::filesystem::perms(0755));
    // Run unquoted, the name would create `pwned` in the directory the scripts run in.
    const std::string unit = "web'$(touch pwned) x.service";
    std::ofstream(dir.file(unit + ".enabled")) << "enabled\n";
    std::ofstream(dir.file(unit + ".active")) << "active\n";
    std::ofstream(dir.file(unit + ".MainPID")) << "4242\n";
    namespace units = host::units;

    CHECK(run_with_stub(dir, units::enabled_drift(unit) + units::active_drift(unit)) == "");
    CHECK(run_with_stub(dir, units::state_pair(unit)) == "enabled,active\n");
    CHECK(run_with_stub(dir, "if " + units::is_active(unit) + "; then echo yes; fi") == "yes\n");
    CHECK(run_with_stub(dir, units::property(unit, "MainPID")) == "4242\n");

    std::ofstream(dir.file(unit + ".enabled")) << "disabled\n";
    std::ofstream(dir.file(unit + ".active")) << "failed\n";
    CHECK(run_with_stub(dir, units::enabled_drift(unit) + units::active_drift(unit, "mount /srv (start it)")) ==
          "enable " + unit + "\nmount /srv (start it)\n");
    CHECK(run_with_stub(dir, units::state_pair(unit)) == "disabled,failed\n");
    CHECK(run_with_stub(dir, units::active_state(unit)) == "failed\nexit 3\n");
    CHECK(run_with_stub(dir, units::enabled_drift("unknown.service")) == "enable unknown.service\n");
    CHECK_FALSE(std::filesystem::exists(dir.file("pwned")));
}

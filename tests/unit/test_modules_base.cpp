// The base module's steps against a FakeTarget: each finds what differs on a fresh host, makes it
// so, finds nothing left to do afterwards, and a second run changes nothing.
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
// nodectl::base's names unqualified in this file only: its own namespace keeps the using-directive
// out of the test files compiled together with this one (unity build).
namespace base_test {
using namespace nodectl::base;
using namespace nodectl::testing::steps;
using nodectl::testing::check_error;
using nodectl::testing::FakeHost;
using nodectl::testing::FakeTarget;
using nodectl::testing::load_profile_ok;
using nodectl::testing::probe_ok;
using nodectl::testing::QuietLogs;
using nodectl::testing::summaries;
using nodectl::testing::TempDir;
using nodectl::testing::value_ok;

namespace {

ManagedFile inline_file(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    ManagedFile f;
    f.spec.path = path;
    f.spec.content = content;
    f.spec.mode = mode;
    return f;
}

}  // namespace

// ---- WriteFile ----

TEST_CASE("WriteFile inline: fresh host gets the file with content, mode and owner") {
    FakeTarget t;
    ManagedFile f = inline_file("/etc/motd", "Welcome\n", 0644);
    f.spec.group = "adm";
    WriteFile step("base/file:/etc/motd", f);

    Plan plan = apply_and_reprobe(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary == "create /etc/motd (0644 root:adm)");
    CHECK(plan.changes[0].diff.find("+Welcome") != std::string::npos);

    REQUIRE(t.host().file_exists("/etc/motd"));
    const auto& file = t.host().files.at("/etc/motd");
    CHECK(file.content == "Welcome\n");
    CHECK(file.mode == 0644);
    CHECK(file.owner == "root");
    CHECK(file.group == "adm");
    CHECK(t.host().unknown.empty());
}

TEST_CASE("WriteFile inline: changed content is planned as a diff and rewritten") {
    FakeTarget t;
    t.host().put("/etc/motd", "old line\nsame\n");
    WriteFile step("base/file:/etc/motd", inline_file("/etc/motd", "new line\nsame\n"));

    Plan plan = apply_and_reprobe(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary == "update content of /etc/motd");
    CHECK(plan.changes[0].diff.find("-old line\n+new line\n") != std::string::npos);
    CHECK(t.host().content("/etc/motd") == "new line\nsame\n");
}

TEST_CASE("WriteFile inline: only mode and owner differ, so the file is not rewritten") {
    FakeTarget t;
    t.host().put("/etc/motd", "Welcome\n", 0600, "www-data", "www-data");
    WriteFile step("base/file:/etc/motd", inline_file("/etc/motd", "Welcome\n", 0644));

    Plan plan = apply_and_reprobe(step, t);
    auto s = summaries(plan);
    CHECK(s.size() == 2);
    CHECK(mentions(s, "/etc/motd mode 0600 -> 0644"));
    CHECK(mentions(s, "/etc/motd owner www-data:www-data -> root:root"));
    const auto& m = t.host().mutations;
    CHECK(std::none_of(m.begin(), m.end(), [](const std::string& x) { return x.rfind("write ", 0) == 0; }));
    CHECK(t.host().files.at("/etc/motd").mode == 0644);
    CHECK(t.host().files.at("/etc/motd").owner == "root");
}

TEST_CASE("WriteFile sensitive: the content never appears in the plan") {
    FakeTarget t;
    ManagedFile f = inline_file("/etc/secret.key", "hunter2\n", 0600);
    f.sensitive = true;
    WriteFile step("base/file:/etc/secret.key", f);

    Plan created = probe_ok(step, t);
    REQUIRE(created.changes.size() == 1);
    CHECK(created.changes[0].diff.empty());

    t.host().put("/etc/secret.key", "old secret\n", 0600);
    Plan updated = probe_ok(step, t);
    REQUIRE(updated.changes.size() == 1);
    CHECK(updated.changes[0].summary.find("sensitive") != std::string::npos);
    CHECK(updated.changes[0].diff.empty());
    CHECK(updated.changes[0].summary.find("hunter2") == std::string::npos);
}

// Audit: a file others may not read (a 0600 file of the profile, or one found that way on the
// host, such as /etc/shadow) had its content printed in plan diffs.
TEST_CASE("WriteFile: the content of a file that is not world-readable never appears in the plan") {
    FakeTarget t;
    WriteFile created_step("base/file:/etc/app.conf", inline_file("/etc/app.conf", "password=hunter2\n", 0640));
    Plan created = probe_ok(created_step, t);
    REQUIRE(created.changes.size() == 1);
    CHECK(created.changes[0].summary == "create /etc/app.conf (0640 root:root) (content hidden)");
    CHECK(created.changes[0].diff.empty());

    t.host().put("/etc/app.conf", "password=old-secret\n", 0640);
    Plan updated = probe_ok(created_step, t);
    REQUIRE(updated.changes.size() == 1);
    CHECK(updated.changes[0].summary == "update content of /etc/app.conf (content hidden)");
    CHECK(updated.changes[0].diff.empty());

    // World-readable as wanted, but what the host has now is not: its content is not shown either.
    t.host().put("/etc/shadow-copy", "root:$6$secret-hash:19000::::::\n", 0600);
    WriteFile over_private("base/file:/etc/shadow-copy", inline_file("/etc/shadow-copy", "public\n", 0644));
    Plan replaced = probe_ok(over_private, t);
    REQUIRE_FALSE(replaced.changes.empty());
    CHECK(replaced.changes[0].summary == "update content of /etc/shadow-copy (content hidden)");
    for (const auto& c : replaced.changes) {
        CHECK(c.diff.find("secret-hash") == std::string::npos);
    }
}

// Audit: base.apt_proxy let '"' and ';' through into /etc/apt/apt.conf.d, where they add apt
// options (root commands at the next `apt update`).
TEST_CASE("apt proxy: the drop-in refuses anything but scheme://host[:port]") {
    auto bad = apt_proxy_conf("http://x\"; APT::Update::Pre-Invoke { \"touch /tmp/pwned\"; }; //");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == ErrorCode::config);
    CHECK_FALSE(apt_proxy_conf("http://x;y"));
    CHECK_FALSE(apt_proxy_conf("http://user:pw@cache:3142"));
    REQUIRE(apt_proxy_conf("http://[fd00::1]:3142/"));

    // The key's own grammar refuses it at load time, and after ${vars...} expansion.
    CHECK(check_expanded(ConfigFile::profile, "base.apt_proxy", "http://x\";Pre-Invoke") != "");
    CHECK(check_expanded(ConfigFile::profile, "base.apt_proxy", "http://cache;3142") != "");
    CHECK(check_expanded(ConfigFile::profile, "base.apt_proxy", "http://cache:3142") == "");
    CHECK(check_expanded(ConfigFile::profile, "base.apt_proxy", "https://198.18.0.1/") == "");
}

TEST_CASE("WriteFile with source: the local file is uploaded") {
    TempDir dir;
    std::string src = dir.write("files/issue", "Debian GNU/Linux \\n \\l\n");
    FakeTarget t;
    ManagedFile f;
    f.spec.path = "/etc/issue";
    f.source = src;
    WriteFile step("base/file:/etc/issue", f);

    Plan plan = apply_and_reprobe(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary == "create /etc/issue (0644 root:root)");
    CHECK(plan.changes[0].diff.find("+Debian GNU/Linux") != std::string::npos);
    CHECK(t.host().content("/etc/issue") == "Debian GNU/Linux \\n \\l\n");
    const auto& m = t.host().mutations;
    CHECK(std::find(m.begin(), m.end(), "upload /etc/issue") != m.end());

    // The local file changes: the host's copy is now out of date.
    dir.write("files/issue", "changed\n");
    Plan again = probe_ok(step, t);
    REQUIRE(again.changes.size() == 1);
    CHECK(again.changes[0].summary == "update content of /etc/issue");
    CHECK(again.changes[0].diff.find("+changed") != std::string::npos);
}

TEST_CASE("WriteFile with source: a missing local file is an error, not an empty file") {
    FakeTarget t;
    ManagedFile f;
    f.spec.path = "/etc/issue";
    f.source = "/nonexistent/nodectl-unit/issue";
    WriteFile step("base/file:/etc/issue", f);
    auto plan = step.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message.find("/nonexistent/nodectl-unit/issue") != std::string::npos);
    CHECK(t.host().host_mutations() == 0);
}

TEST_CASE("WriteFile absent: an existing file is removed, a missing one is left alone") {
    FakeTarget t;
    t.host().put("/etc/apt/apt.conf.d/01nodectl-proxy", "Acquire::http::Proxy \"http://old:3142\";\n");
    ManagedFile f;
    f.spec.path = "/etc/apt/apt.conf.d/01nodectl-proxy";
    f.absent = true;
    WriteFile step("base/apt_proxy", f);

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) == std::vector<std::string>{"remove /etc/apt/apt.conf.d/01nodectl-proxy"});
    CHECK_FALSE(t.host().file_exists("/etc/apt/apt.conf.d/01nodectl-proxy"));
}

TEST_CASE("WriteFile: a directory where the file should be is an error") {
    FakeTarget t;
    t.host().dirs.insert("/etc/motd");
    WriteFile step("base/file:/etc/motd", inline_file("/etc/motd", "x\n"));
    auto plan = step.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message.find("not a regular file") != std::string::npos);
}

TEST_CASE("apt proxy drop-in content names the proxy") {
    CHECK(apt_proxy_conf("http://cache:3142").value() ==
          "// Managed by nodectl (base.apt_proxy).\nAcquire::http::Proxy \"http://cache:3142\";\n");
}

// ---- SetHostname ----

TEST_CASE("SetHostname: fresh host gets /etc/hostname, the kernel name and the 127.0.1.1 line") {
    FakeTarget t;
    SetHostname step("web1");

    Plan plan = apply_and_reprobe(step, t);
    auto s = summaries(plan);
    REQUIRE(s.size() == 3);
    CHECK(s[0] == "/etc/hostname: debian -> web1");
    CHECK(s[1] == "running host name: debian -> web1");
    CHECK(s[2] == "/etc/hosts: 127.0.1.1 web1");
    CHECK(plan.changes[2].diff.find("-127.0.1.1\tdebian\n+127.0.1.1\tweb1\n") != std::string::npos);

    CHECK(t.host().content("/etc/hostname") == "web1\n");
    CHECK(t.host().hostname == "web1");
    std::string hosts = t.host().content("/etc/hosts");
    CHECK(hosts.find("127.0.1.1\tweb1\n") != std::string::npos);
    CHECK(hosts.find("debian") == std::string::npos);
    // Everything else in /etc/hosts is kept.
    CHECK(hosts.find("127.0.0.1\tlocalhost\n") == 0);
    CHECK(hosts.find("::1     localhost ip6-localhost ip6-loopback\n") != std::string::npos);
}

TEST_CASE("SetHostname: a host without 127.0.1.1 line or /etc/hostname gets both") {
    FakeTarget t;
    t.host().files.erase("/etc/hostname");
    t.host().put("/etc/hosts", "127.0.0.1 localhost\n");
    SetHostname step("db-2.example.org");

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan)[0] == "/etc/hostname: (none) -> db-2.example.org");
    CHECK(t.host().content("/etc/hosts") == "127.0.0.1 localhost\n127.0.1.1\tdb-2.example.org\n");
    CHECK(t.host().content("/etc/hostname") == "db-2.example.org\n");
}

TEST_CASE("SetHostname: only the kernel name differs, so only `hostname` runs") {
    FakeTarget t;
    t.host().put("/etc/hostname", "web1\n");
    t.host().put("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1\tweb1\n");
    SetHostname step("web1");

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) == std::vector<std::string>{"running host name: debian -> web1"});
    REQUIRE(t.host().mutations.size() == 1);
    CHECK(t.host().mutations[0] == "run: hostname 'web1'");
}

// ---- SetTimezone ----

TEST_CASE("SetTimezone: fresh host gets the /etc/localtime link and /etc/timezone") {
    FakeTarget t;
    SetTimezone step("Europe/Berlin");

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) == std::vector<std::string>{"/etc/localtime: Etc/UTC -> Europe/Berlin",
                                                      "/etc/timezone: Etc/UTC -> Europe/Berlin"});
    CHECK(t.host().localtime_link == "/usr/share/zoneinfo/Europe/Berlin");
    CHECK(t.host().content("/etc/timezone") == "Europe/Berlin\n");
}

TEST_CASE("SetTimezone: a host with no /etc/localtime link and no /etc/timezone") {
    FakeTarget t;
    t.host().localtime_link.clear();
    t.host().files.erase("/etc/timezone");
    SetTimezone step("Etc/UTC");

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) ==
          std::vector<std::string>{"/etc/localtime: (none) -> Etc/UTC", "/etc/timezone: (none) -> Etc/UTC"});
    CHECK(t.host().localtime_link == "/usr/share/zoneinfo/Etc/UTC");
}

TEST_CASE("SetTimezone: a zone the host does not know is an error and changes nothing") {
    FakeTarget t;
    SetTimezone step("Mars/Olympus_Mons");
    auto plan = step.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code == ErrorCode::unsupported);
    CHECK(plan.error().message.find("Mars/Olympus_Mons") != std::string::npos);
    CHECK(plan.error().message.find("/usr/share/zoneinfo") != std::string::npos);
    CHECK(t.host().localtime_link == "/usr/share/zoneinfo/Etc/UTC");
    CHECK(t.host().host_mutations() == 0);
}

// ---- ManageHostsBlock ----

namespace {

const std::string k_begin = "# BEGIN nodectl base.hosts_entries (managed: edits here are replaced)";
const std::string k_end = "# END nodectl base.hosts_entries";

}  // namespace

TEST_CASE("ManageHostsBlock: the block is appended and the lines before it are kept") {
    FakeTarget t;
    std::string original = t.host().content("/etc/hosts");
    ManageHostsBlock step({"198.18.99.5 db db.internal", "198.18.99.6 cache"});

    Plan plan = apply_and_reprobe(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary == "/etc/hosts: 2 managed entries");
    CHECK(plan.changes[0].diff.find("+198.18.99.5 db db.internal\n") != std::string::npos);
    CHECK(t.host().content("/etc/hosts") ==
          original + k_begin + "\n198.18.99.5 db db.internal\n198.18.99.6 cache\n" + k_end + "\n");
}

TEST_CASE("ManageHostsBlock: an existing block is replaced in place; lines outside it are kept") {
    FakeTarget t;
    t.host().put("/etc/hosts", "127.0.0.1 localhost\n" + k_begin + "\n198.18.99.1 old\n198.18.99.2 gone\n" + k_end +
                                   "\n# added by hand\n198.18.97.1 router\n");
    ManageHostsBlock step({"198.18.99.1 new"});

    Plan plan = apply_and_reprobe(step, t);
    CHECK(plan.changes[0].diff.find("-198.18.99.1 old\n-198.18.99.2 gone\n+198.18.99.1 new\n") != std::string::npos);
    CHECK(t.host().content("/etc/hosts") == "127.0.0.1 localhost\n" + k_begin + "\n198.18.99.1 new\n" + k_end +
                                                "\n# added by hand\n198.18.97.1 router\n");
}

TEST_CASE("ManageHostsBlock: no entries removes the block and nothing else") {
    FakeTarget t;
    t.host().put("/etc/hosts", "127.0.0.1 localhost\n" + k_begin + "\n198.18.99.1 old\n" + k_end + "\n::1 localhost\n");
    ManageHostsBlock step({});
    apply_and_reprobe(step, t);
    CHECK(t.host().content("/etc/hosts") == "127.0.0.1 localhost\n::1 localhost\n");
}

// ---- EnsurePackages ----

TEST_CASE("EnsurePackages: missing packages are installed and unwanted ones removed") {
    FakeTarget t;
    EnsurePackages step("base/packages", {"curl", "openssh-server", "vim"}, {"cron", "telnet"});

    Plan plan = apply_and_reprobe(step, t);
    // openssh-server is already there and telnet never was: neither is touched.
    CHECK(summaries(plan) == std::vector<std::string>{"install curl vim", "remove cron"});
    CHECK(t.host().packages.count("curl") == 1);
    CHECK(t.host().packages.count("vim") == 1);
    CHECK(t.host().packages.count("cron") == 0);
    CHECK(t.host().packages.count("telnet") == 0);
    // A removed package keeps its config files ("rc"): it still counts as not installed.
    CHECK(t.host().removed_packages.count("cron") == 1);
    REQUIRE(t.host().mutations.size() == 2);
    CHECK(t.host().mutations[0].find("apt-get -o DPkg::Lock::Timeout=600 install") != std::string::npos);
    CHECK(t.host().mutations[0].find("'curl' 'vim'") != std::string::npos);
    CHECK(t.host().mutations[1].find("apt-get remove -y -q 'cron'") != std::string::npos);
}

TEST_CASE("EnsurePackages: a package apt cannot find fails the apply with apt's message") {
    FakeTarget t;
    t.host().unavailable_packages.insert("no-such-pkg");
    EnsurePackages step("base/packages", {"no-such-pkg"}, {});
    Plan plan = probe_ok(step, t);
    auto applied = step.apply(t, plan);
    REQUIRE_FALSE(applied.ok());
    CHECK(applied.error().code == ErrorCode::command);
    CHECK(applied.error().message.find("Unable to locate package no-such-pkg") != std::string::npos);
}

TEST_CASE("EnsurePackages: a host without dpkg is refused") {
    FakeTarget t;
    t.host().has_dpkg = false;
    EnsurePackages step("base/packages", {"curl"}, {});
    auto plan = step.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message.find("only Debian-family hosts") != std::string::npos);
}

// ---- EnsureUnits ----

TEST_CASE("EnsureUnits: units are enabled and started, others disabled and stopped") {
    FakeTarget t;
    t.host().units["nginx.service"] = {true, false, false};  // enabled but not running
    EnsureUnits step({"apache2.service", "nginx.service", "ssh.service"}, {"cron.service", "rsync.service"});

    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) == std::vector<std::string>{"enable and start apache2.service",
                                                      "enable and start nginx.service",
                                                      "disable and stop cron.service"});
    CHECK(t.host().units.at("apache2.service").enabled);
    CHECK(t.host().units.at("apache2.service").active);
    CHECK(t.host().units.at("nginx.service").active);
    CHECK_FALSE(t.host().units.at("cron.service").enabled);
    CHECK_FALSE(t.host().units.at("cron.service").active);
    CHECK(t.host().unit_ops == std::vector<std::string>{"enable --now apache2.service", "enable --now nginx.service",
                                                        "disable --now cron.service"});
    CHECK(t.host().host_mutations() == 3);
}

TEST_CASE("EnsureUnits: a static unit that must be disabled is stopped, and that is enough") {
    FakeTarget t;
    EnsureUnits step({}, {"systemd-journald.service"});
    Plan plan = apply_and_reprobe(step, t);
    CHECK(summaries(plan) == std::vector<std::string>{"disable and stop systemd-journald.service"});
    CHECK_FALSE(t.host().units.at("systemd-journald.service").active);
}

TEST_CASE("EnsureUnits: a unit that must run but does not exist is an error; a missing unwanted one is fine") {
    FakeTarget t;
    EnsureUnits missing_wanted({"nosuch.service"}, {});
    auto plan = missing_wanted.probe(t);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code == ErrorCode::unsupported);
    CHECK(plan.error().message.find("nosuch.service does not exist") != std::string::npos);

    EnsureUnits missing_unwanted({}, {"nosuch.service"});
    CHECK(probe_ok(missing_unwanted, t).empty());
}

// ---- every step ----

TEST_CASE("every base step: a second run changes nothing") {
    TempDir dir;
    std::string issue = dir.write("issue", "hello\n");
    struct Case {
        const char* step;
        std::function<void(FakeHost&)> prepare;  // the host before the first run, if it matters
        StepFactory make;
    };
    const std::vector<Case> cases = {
        {"WriteFile inline", nullptr,
         [] {
             return std::make_unique<WriteFile>("base/file:/etc/motd", inline_file("/etc/motd", "Welcome\n", 0600));
         }},
        {"WriteFile with source", nullptr,
         [&] {
             ManagedFile f;
             f.spec.path = "/etc/issue";
             f.source = issue;
             return std::make_unique<WriteFile>("base/file:/etc/issue", f);
         }},
        {"WriteFile absent", [](FakeHost& host) { host.put("/etc/cron.d/old-job", "* * * * * root true\n"); },
         [] {
             ManagedFile f;
             f.spec.path = "/etc/cron.d/old-job";
             f.absent = true;
             return std::make_unique<WriteFile>("base/file:/etc/cron.d/old-job", f);
         }},
        {"SetHostname", nullptr, [] { return std::make_unique<SetHostname>("web1"); }},
        {"SetTimezone", nullptr, [] { return std::make_unique<SetTimezone>("America/New_York"); }},
        {"ManageHostsBlock", nullptr,
         [] {
             return std::make_unique<ManageHostsBlock>(std::vector<std::string>{"198.18.99.5 db", "198.18.99.6 cache"});
         }},
        {"EnsurePackages", nullptr,
         [] {
             return std::make_unique<EnsurePackages>("base/packages", std::vector<std::string>{"curl", "git"},
                                                     std::vector<std::string>{"cron"});
         }},
        {"EnsureUnits", nullptr,
         [] {
             return std::make_unique<EnsureUnits>(std::vector<std::string>{"apache2.service"},
                                                  std::vector<std::string>{"cron.service"});
         }},
    };
    for (const auto& c : cases) {
        CAPTURE(c.step);
        FakeTarget t;
        if (c.prepare) {
            c.prepare(t.host());
        }
        check_second_run_changes_nothing(c.make, t);
    }
}

}  // namespace base_test

// Guarded config sets (sshd's, the firewall's) for real on this machine: the rollback timer armed
// before activation and cancelled once a fresh login proved the host is still reachable, and the
// restore when that login fails. On a host without systemd the timer is a `sleep` process, which
// these tests watch; under systemd (a unit) they are skipped.
#include "config_set_fixture.hpp"
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "target/local_target.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include <unistd.h>

using namespace nodectl;
// The test helpers' names unqualified in this file only, and this file's own helpers in a
// namespace of its own, apart from those of the files compiled together with it (unity build).
namespace config_set_guard_test {
using namespace nodectl::testing;
namespace fs = std::filesystem;

namespace {

// Forwards to a LocalTarget; answers check_fresh_login as told (recording whom for), and can read a
// file on the host just before each command runs (to see a state file that a command removes).
class WrappedLocal final : public Target {
public:
    const std::string& name() const override { return m_inner.name(); }
    Result<CommandResult> run(const Command& cmd) override {
        if (!peek_path.empty() && fs::exists(peek_path)) {
            peeked = read_text(peek_path);
        }
        return m_inner.run(cmd);
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override { return m_inner.lock(holder); }
    std::string login_user() const override { return user; }
    Result<AccessCheck> check_fresh_login(const std::string& as) override {
        fresh_login_as.push_back(as);
        return fresh_login ? fresh_login(as) : Result<AccessCheck>(AccessCheck::not_applicable);
    }
    // Every fresh login fails, as an authentication error saying `why`.
    void refuse_fresh_logins(const std::string& why) {
        fresh_login = [why](const std::string&) -> Result<AccessCheck> { return make_error(ErrorCode::auth, why); };
    }

    std::string user = "root";
    std::function<Result<AccessCheck>(const std::string&)> fresh_login;
    std::vector<std::string> fresh_login_as;
    std::string peek_path;
    std::string peeked;

private:
    LocalTarget m_inner{"wrapped"};
};

bool process_alive(pid_t pid) {
    if (::kill(pid, 0) != 0) {
        return errno != ESRCH;
    }
    // A zombie is dead for our purposes.
    auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

// Processes whose command line contains `needle` (arguments joined by spaces).
std::vector<pid_t> processes_with(const std::string& needle) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        auto name = e.path().filename().string();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) {
            continue;
        }
        auto cmdline = read_text(e.path().string() + "/cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        pid_t pid = static_cast<pid_t>(std::stol(name));
        if (contains(cmdline, needle) && pid != ::getpid() && process_alive(pid)) {
            out.push_back(pid);
        }
    }
    return out;
}

// True once no process has `needle` in its command line. A killed process takes a moment to die
// on a loaded machine, so this waits (bounded: 10 s) instead of looking once.
bool processes_gone(const std::string& needle) {
    for (int i = 0; i < 100; ++i) {
        if (processes_with(needle).empty()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

long unique_timer_seconds() {
    std::random_device rd;
    return 200000 + static_cast<long>(rd() % 700000);
}

// The rollback timer of a guarded set on a host without systemd is `sleep <seconds>`: each test
// uses a unique number of seconds, and ends the processes it started (by pid) when it finishes.
struct TimerProcesses {
    long seconds = unique_timer_seconds();
    std::string marker() const { return "sleep " + std::to_string(seconds); }
    ~TimerProcesses() {
        for (auto pid : processes_with(marker())) {
            ::kill(pid, SIGKILL);
        }
    }
};

// True, with a message, when this host runs systemd: a guarded set's rollback timer is then a
// systemd unit, not the `sleep` fallback these tests watch.
bool skipped_under_systemd() {
    if (!fs::is_directory("/run/systemd/system")) {
        return false;
    }
    MESSAGE("skipped: this host runs systemd, so the rollback timer is a systemd unit");
    return true;
}

// One guarded-set test: SetFixture's, and a rollback timer of its own.
struct GuardedFixture : SetFixture {
    TimerProcesses timers;

    // A guarded set with one file, "a.conf" holding `content`, whose fallback rollback timer is
    // this test's unique `sleep`.
    ConfigSetSpec guarded_spec(const std::string& content) const {
        auto s = spec({{dir.file("a.conf"), content, nullptr, 0644}});
        s.guard = true;
        s.rollback_after = std::chrono::seconds(timers.seconds);
        return s;
    }
};

}  // namespace

TEST_CASE(
    "harden config set: guarded on a host without systemd, the fallback timer is armed, then killed with the backup") {
    if (skipped_under_systemd()) {
        return;
    }
    GuardedFixture fx;
    WrappedLocal t;
    t.peek_path = (fx.state.rollback_dir() / "timer.pid").string();
    auto a = fx.dir.write("a.conf", "old\n");
    auto spec = fx.guarded_spec("guarded\n");
    spec.fresh_login_as_when_root = "admin";
    spec.activate = fx.logs("activated");
    ApplyConfigSet step(spec);

    apply_ok(step, t, probe_ok(step, t));
    CHECK(read_text(a) == "guarded\n");
    CHECK(fx.log_text() == "activated\n");
    CHECK(t.fresh_login_as == std::vector<std::string>{"admin"});
    CHECK_FALSE(fs::exists(fx.state.rollback_dir()));
    CHECK(fs::exists(fx.state.stamp()));
    CHECK(probe_ok(step, t).empty());

    // The timer was armed (its pid recorded) and is not running any more.
    REQUIRE_FALSE(t.peeked.empty());
    pid_t pid = static_cast<pid_t>(std::stol(util::trim(t.peeked)));
    REQUIRE(pid > 1);
    CHECK_FALSE(process_alive(pid));
    // The restore script never ran.
    CHECK(read_text(a) == "guarded\n");
}

TEST_CASE("harden config set: the fresh login is checked as the operator when the operator is not root") {
    if (skipped_under_systemd()) {
        return;
    }
    GuardedFixture fx;
    WrappedLocal t;
    t.user = "deploy";
    auto spec = fx.guarded_spec("x\n");
    spec.fresh_login_as_when_root = "admin";
    ApplyConfigSet step(spec);
    apply_ok(step, t, probe_ok(step, t));
    CHECK(t.fresh_login_as == std::vector<std::string>{""});
}

TEST_CASE("harden config set: a fresh login that fails after activation puts the previous files back") {
    if (skipped_under_systemd()) {
        return;
    }
    GuardedFixture fx;
    WrappedLocal t;
    t.refuse_fresh_logins("Permission denied (publickey)");
    auto a = fx.dir.write("a.conf", "reachable\n", 0644);
    auto spec = fx.guarded_spec("locks everyone out\n");
    spec.activate = fx.logs("activated");
    spec.restore_activate = fx.logs("restored");
    ApplyConfigSet step(spec);

    check_error(step.apply(t, probe_ok(step, t)),
                {"a fresh login failed after activating the new unit test set", "Permission denied (publickey)"});
    CHECK(t.fresh_login_as.size() == 1);  // an auth failure is not retried
    CHECK(read_text(a) == "reachable\n");
    CHECK(fx.log_text() == "activated\nrestored\n");
    CHECK_FALSE(fs::exists(fx.state.stamp()));
}

// =============================================================================================
// Regressions: each case failed against an earlier version of these sources.

TEST_CASE("harden regression: cancelling the fallback rollback timer leaves no sleep process behind") {
    // The cancel kills the `sh -c 'sleep N && sh restore.sh'` leader only; its `sleep N` lives on.
    if (skipped_under_systemd()) {
        return;
    }
    GuardedFixture fx;
    LocalTarget t;
    ApplyConfigSet step(fx.guarded_spec("guarded\n"));
    apply_ok(step, t, probe_ok(step, t));
    CHECK(processes_gone(fx.timers.marker()));
}

TEST_CASE("harden regression: a failed fresh login also cancels the fallback rollback timer") {
    // restore() stops the systemd timer only; without systemd the armed `sleep N && sh restore.sh`
    // stays and runs restore.sh again later.
    if (skipped_under_systemd()) {
        return;
    }
    GuardedFixture fx;
    WrappedLocal t;
    t.refuse_fresh_logins("denied");
    ApplyConfigSet step(fx.guarded_spec("guarded\n"));
    REQUIRE_FALSE(step.apply(t, probe_ok(step, t)).ok());
    CHECK(processes_gone(fx.timers.marker()));
}

}  // namespace config_set_guard_test

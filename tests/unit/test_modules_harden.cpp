// The harden module. First what each group renders from a profile (pure functions: the sshd
// drop-in, moduli, login.defs, fstab, sysctl values, the nftables ruleset) and which steps the
// module builds. Then ApplyConfigSet for real, on a LocalTarget running /bin/sh, against files in
// a temporary directory: apply, activation, validation failures and their restore, revert, drift,
// the rollback timer and audit.
//
// ApplyConfigSet keeps its state under /var/lib/nodectl (originals, rollback, applied). Every
// test here uses its own random id and temp directory, and StateGuard removes exactly the entries
// the test created there, plus the directories that did not exist before it.
#include "fake_target.hpp"
#include "test_support.hpp"

#include "modules/base/steps.hpp"
#include "modules/config_set/config_set.hpp"
#include "modules/harden/groups.hpp"
#include "modules/harden/harden.hpp"
#include "nodectl/module.hpp"
#include "target/local_target.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

using namespace nodectl;
// nodectl::harden's names unqualified in this file only: its own namespace keeps the using-directive
// out of the test files compiled together with this one (unity build).
namespace harden_test {
using namespace nodectl::harden;
using nodectl::testing::contains;
using nodectl::testing::lines_with;
using nodectl::testing::load_profile_ok;
using nodectl::testing::mode_of;
using nodectl::testing::probe_ok;
using nodectl::testing::QuietLogs;
using nodectl::testing::read_text;
using nodectl::testing::summaries;
using nodectl::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

// The profile `toml`, written to `dir`/`name`; it must load.
Profile written_profile(const TempDir& dir, const std::string& toml, const std::string& name = "profile.toml") {
    return load_profile_ok(dir.write(name, toml));
}

ConfigView harden_view(const Profile& p, const char* group) {
    return p.section("harden").section(group);
}

size_t count_of(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

bool has_line(const std::string& text, const std::string& line) {
    auto lines = util::split_lines(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& key) {
    std::string out;
    size_t seen = 0;
    for (const auto& [k, v] : kv) {
        if (k == key) {
            out = v;
            ++seen;
        }
    }
    CHECK_MESSAGE(seen <= 1, key << " appears " << seen << " times");
    return seen ? out : "<absent>";
}

void apply_ok(Step& step, Target& target, const Plan& plan) {
    auto r = step.apply(target, plan);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
}

std::string random_hex() {
    std::random_device rd;
    std::mt19937_64 gen(rd());
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
    return buf;
}

// What ApplyConfigSet names its state files after: the id with '/' replaced by '-'.
std::string state_name(std::string id) {
    std::replace(id.begin(), id.end(), '/', '-');
    return id;
}

// One file of a config set, whatever the header calls its type.
using SetFile = std::decay_t<decltype(ConfigSetSpec{}.files)>::value_type;

const fs::path k_state_dir = "/var/lib/nodectl";

// Removes, when the test ends, what ApplyConfigSet left under /var/lib/nodectl for one id and one
// temp directory, and the directories above them that did not exist when the test started.
class StateGuard {
public:
    StateGuard(const std::string& id, const fs::path& tmp)
        : m_entries{k_state_dir / "rollback" / state_name(id), k_state_dir / "applied" / state_name(id),
                    fs::path(original_path(tmp.string()))} {
        for (const auto& e : m_entries) {
            REQUIRE_FALSE(fs::exists(e));  // a fresh id and temp dir: nothing of ours is there yet
            for (auto p = e.parent_path(); p.string().size() >= k_state_dir.string().size(); p = p.parent_path()) {
                if (!fs::exists(p)) {
                    m_created.insert(p);
                }
            }
        }
    }
    ~StateGuard() {
        std::error_code ec;
        for (const auto& e : m_entries) {
            fs::remove_all(e, ec);
        }
        // Children sort after their parents: remove the deepest first, and only when empty.
        for (auto it = m_created.rbegin(); it != m_created.rend(); ++it) {
            fs::remove(*it, ec);
        }
    }
    StateGuard(const StateGuard&) = delete;
    StateGuard& operator=(const StateGuard&) = delete;

    fs::path rollback_dir() const { return m_entries[0]; }
    fs::path stamp() const { return m_entries[1]; }

private:
    std::vector<fs::path> m_entries;
    std::set<fs::path> m_created;
};

// One ApplyConfigSet test: quiet logs, a temp dir, a unique id, and the state clean-up.
struct SetFixture {
    QuietLogs quiet;
    TempDir dir;
    std::string id = "test/harden-unit-" + random_hex();
    StateGuard state{id, dir.path()};

    std::string log() const { return dir.file("activate.log"); }
    std::string log_text() const { return read_text(log()); }
    // Appends `word` to the activation log.
    std::string logs(const std::string& word) const { return "echo " + word + " >> " + shell_quote(log()); }

    ConfigSetSpec spec() const {
        ConfigSetSpec s;
        s.id = id;
        s.title = "unit test set";
        return s;
    }
};

// Forwards to a LocalTarget; records commands, answers check_fresh_login as told, and can read a
// file on the host just before each command runs (to see a state file that a command removes).
class WrappedLocal final : public Target {
public:
    const std::string& name() const override { return m_inner.name(); }
    Result<CommandResult> run(const Command& cmd) override {
        if (!peek_path.empty() && fs::exists(peek_path)) {
            peeked = read_text(peek_path);
        }
        scripts.push_back(cmd.script);
        return m_inner.run(cmd);
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override { return m_inner.lock(holder); }
    std::string login_user() const override { return user; }
    Result<AccessCheck> check_fresh_login(const std::string& as) override {
        fresh_login_as.push_back(as);
        return fresh_login ? fresh_login(as) : Result<AccessCheck>(AccessCheck::not_applicable);
    }

    std::string user = "root";
    std::function<Result<AccessCheck>(const std::string&)> fresh_login;
    std::vector<std::string> fresh_login_as;
    std::vector<std::string> scripts;
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

// The rollback timer of a guarded set on a host without systemd is `sleep <seconds>`: tests use
// a unique number of seconds, and end the processes they started (by pid) when they finish.
struct TimerProcesses {
    long seconds;
    explicit TimerProcesses(long s) : seconds(s) {}
    std::string marker() const { return "sleep " + std::to_string(seconds); }
    ~TimerProcesses() {
        for (auto pid : processes_with(marker())) {
            ::kill(pid, SIGKILL);
        }
    }
};

long unique_timer_seconds() {
    std::random_device rd;
    return 200000 + static_cast<long>(rd() % 700000);
}

const std::string k_admin_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0ZXN0a2V5Zm9ybm9kZWN0bHVuaXR0ZXN0cw admin@example";

} // namespace

// =============================================================================================
// sshd

TEST_CASE("harden sshd: the drop-in has the exact algorithm lists, the profile's root login, and no password logins") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nmax_auth_tries = 2\n");
    Settings s;
    auto text = render_sshd_dropin(harden_view(p, "ssh"), s);

    CHECK(has_line(text, "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
                         "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK(has_line(text, "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
                         "aes192-ctr,aes128-ctr"));
    CHECK(has_line(text, "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com"));
    CHECK(has_line(text, "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256"));
    CHECK(has_line(text, "HostKey /etc/ssh/ssh_host_ed25519_key"));
    CHECK(has_line(text, "HostKey /etc/ssh/ssh_host_rsa_key"));
    CHECK(count_of(text, "HostKey ") == 2);
    CHECK(has_line(text, "PermitRootLogin prohibit-password"));
    CHECK(count_of(text, "PermitRootLogin") == 1);
    CHECK(has_line(text, "MaxAuthTries 2"));
    CHECK(has_line(text, "PasswordAuthentication no"));
    CHECK(has_line(text, "KbdInteractiveAuthentication no"));
    CHECK(has_line(text, "PermitEmptyPasswords no"));
    CHECK(has_line(text, "PubkeyAuthentication yes"));
    CHECK(lines_with(text, "Authentication yes") == std::vector<std::string>{"PubkeyAuthentication yes"});
    CHECK(has_line(text, "X11Forwarding no"));
    CHECK(has_line(text, "Banner /etc/issue.net"));
    // Every line is a comment or "Keyword value": a stray empty value would make sshd refuse it.
    for (const auto& l : util::split_lines(text)) {
        CAPTURE(l);
        CHECK((l.starts_with("# ") || l.find(' ') != std::string::npos));
    }

    TempDir dir2;
    auto defaults = written_profile(dir2, "[harden]\n");
    CHECK(has_line(render_sshd_dropin(harden_view(defaults, "ssh"), s), "PermitRootLogin no"));
}

TEST_CASE("harden sshd: AllowGroups lists exactly the profile's allow_groups, and is left out when they are empty") {
    TempDir dir;
    auto with_groups = written_profile(dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nallow_groups = [\"ssh-users\", \"ops\"]\n");
    Settings root_may_log_in;
    CHECK(lines_with(render_sshd_dropin(harden_view(with_groups, "ssh"), root_may_log_in), "AllowGroups") ==
          std::vector<std::string>{"AllowGroups ssh-users ops"});

    Settings root_off;
    root_off.root_login_disabled = true;
    CHECK(lines_with(render_sshd_dropin(harden_view(with_groups, "ssh"), root_off), "AllowGroups") ==
          std::vector<std::string>{"AllowGroups ssh-users ops"});

    TempDir dir2;
    auto no_groups = written_profile(dir2, "[harden.ssh]\nallow_groups = []\n");
    CHECK(lines_with(render_sshd_dropin(harden_view(no_groups, "ssh"), root_may_log_in), "AllowGroups").empty());
    CHECK(lines_with(render_sshd_dropin(harden_view(no_groups, "ssh"), root_off), "AllowGroups").empty());

    TempDir dir3;
    auto defaults = written_profile(dir3, "[harden]\n");
    CHECK(lines_with(render_sshd_dropin(harden_view(defaults, "ssh"), root_off), "AllowGroups") ==
          std::vector<std::string>{"AllowGroups ssh-users"});
}

TEST_CASE("harden sshd: the real sshd accepts the drop-in, and the group's controls pass on what sshd -T reports") {
    const std::string sshd = "/usr/sbin/sshd";
    if (!fs::exists(sshd) || !fs::exists("/usr/bin/ssh-keygen") || !fs::is_directory("/run/sshd")) {
        MESSAGE("skipped: needs " << sshd << ", ssh-keygen and /run/sshd");
        return;
    }
    TempDir dir;
    auto p = written_profile(dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nallow_groups = [\"ssh-users\"]\n");
    Settings s;
    auto ssh = harden_view(p, "ssh");
    auto text = render_sshd_dropin(ssh, s);

    // The same file with host keys of our own, so that sshd can load it here.
    LocalTarget t;
    auto key = dir.file("host_ed25519_key");
    Command keygen;
    keygen.script = "ssh-keygen -q -t ed25519 -N '' -f " + shell_quote(key);
    REQUIRE(t.run_checked(keygen, "ssh-keygen").ok());
    std::string conf;
    for (const auto& l : util::split_lines(text)) {
        conf += l.starts_with("HostKey ") ? "" : l + "\n";
    }
    conf = "HostKey " + key + "\n" + conf;
    auto conf_path = dir.write("sshd_config", conf);

    Command check;
    check.script = sshd + " -t -f " + shell_quote(conf_path);
    auto r = t.run(check);
    REQUIRE(r.ok());
    CHECK_MESSAGE(r->exit_code == 0, "sshd -t: " << r->err);

    // The group's own controls, with `sshd -T` reading this file instead of /etc/ssh/sshd_config.
    auto spec = sshd_group(ssh, s);
    auto fn = spec.controls_prelude.find("\nv()");
    REQUIRE(fn != std::string::npos);
    std::string prelude = "T=$(" + sshd + " -T -f " + shell_quote(conf_path) + " 2>/dev/null)" + spec.controls_prelude.substr(fn);
    std::vector<host::Control> effective;
    std::set<std::string> not_from_the_dropin = {"ssh.host_keys", "ssh.rsa_host_key_bits", "ssh.moduli_min_bits", "ssh.service"};
    for (const auto& c : spec.controls) {
        if (!not_from_the_dropin.count(c.id)) {
            effective.push_back(c);
        }
    }
    CHECK(effective.size() >= 28);
    auto results = host::evaluate(t, prelude, effective);
    REQUIRE(results.ok());
    for (const auto& c : *results) {
        CAPTURE(c.id);
        CAPTURE(c.observed);
        CAPTURE(c.expected);
        CHECK(c.status == ControlStatus::pass);
    }
}

namespace {

// Debian 11's OpenSSH 8.4: no sntrup761x25519 (it has the older sntrup4591761x25519).
std::map<std::string, std::vector<std::string>> openssh_8_4() {
    return {
        {"kex", {"diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
                 "diffie-hellman-group-exchange-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
                 "sntrup4591761x25519-sha512@tinyssh.org"}},
        {"cipher", {"aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                    "chacha20-poly1305@openssh.com"}},
        {"mac", {"hmac-sha2-256", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"}},
        {"key-sig", {"ssh-ed25519", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"}},
    };
}

std::string query_output(const std::map<std::string, std::vector<std::string>>& lists) {
    std::string out;
    for (const char* q : {"kex", "cipher", "mac", "key-sig"}) {
        out += std::string("== ") + q + "\n";
        if (lists.count(q)) {
            for (const auto& a : lists.at(q)) {
                out += a + "\n";
            }
        }
    }
    return out;
}

const host::Control& control(const ConfigSetSpec& spec, const std::string& id) {
    auto it = std::find_if(spec.controls.begin(), spec.controls.end(), [&](const auto& c) { return c.id == id; });
    REQUIRE(it != spec.controls.end());
    return *it;
}

} // namespace

TEST_CASE("harden sshd: the algorithm lists are cut to what the host's OpenSSH supports, in nodectl's order, naming what was left out") {
    auto wanted = wanted_ssh_algorithms();
    // Debian 12 supports every algorithm nodectl wants.
    nodectl::testing::FakeTarget bookworm;
    auto all = choose_ssh_algorithms(wanted, query_output(bookworm.host().ssh_algorithms));
    REQUIRE(all.ok());
    CHECK(all->kept.kex == wanted.kex);
    CHECK(all->kept.ciphers == wanted.ciphers);
    CHECK(all->kept.macs == wanted.macs);
    CHECK(all->kept.host_key_algorithms == wanted.host_key_algorithms);
    CHECK(all->left_out.empty());

    // OpenSSH 8.4 lacks sntrup761x25519: the rest stays, strongest first; nothing is added.
    auto old = choose_ssh_algorithms(wanted, query_output(openssh_8_4()));
    REQUIRE(old.ok());
    CHECK(old->kept.kex == std::vector<std::string>{"curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
                                                    "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"});
    CHECK(old->kept.ciphers == wanted.ciphers);
    CHECK(old->left_out == std::vector<std::string>{"KexAlgorithms sntrup761x25519-sha512@openssh.com"});

    // Nothing left of a list: an error naming the list, never an empty (or default) list.
    auto no_macs = openssh_8_4();
    no_macs["mac"] = {"hmac-sha1", "hmac-md5"};
    auto none = choose_ssh_algorithms(wanted, query_output(no_macs));
    REQUIRE_FALSE(none.ok());
    CHECK(contains(none.error().message, "supports none of the MACs nodectl allows"));

    // A list the host did not answer for is an error too.
    auto missing = choose_ssh_algorithms(wanted, "== kex\ncurve25519-sha256\n== cipher\naes256-ctr\n== mac\numac-128-etm@openssh.com\n");
    REQUIRE_FALSE(missing.ok());
    CHECK(contains(missing.error().message, "key-sig"));
}

TEST_CASE("harden sshd: prepare asks the host's OpenSSH (a probe) and writes, checks and compares only what it supports") {
    TempDir dir;
    QuietLogs quiet;
    auto p = written_profile(dir, "[harden]\n");
    Settings s;
    auto spec = sshd_group(harden_view(p, "ssh"), s);
    auto full_dropin = spec.files[0].content;
    CHECK(contains(full_dropin, "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"));
    REQUIRE(spec.prepare);

    nodectl::testing::FakeTarget bullseye;
    bullseye.host().ssh_algorithms = openssh_8_4();
    auto prepared = spec;
    REQUIRE(prepared.prepare(bullseye, prepared).ok());
    CHECK(bullseye.host().unknown.empty());
    CHECK(bullseye.host().host_mutations() == 0);
    const auto& dropin = prepared.files[0].content;
    CHECK(has_line(dropin, "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
                           "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK_FALSE(contains(dropin, "sntrup761"));
    CHECK(has_line(dropin, "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
                           "aes192-ctr,aes128-ctr"));
    CHECK(has_line(dropin, "PasswordAuthentication no"));
    // The drift probe compares sshd -T with the drop-in actually written, and the control expects it.
    CHECK(contains(prepared.drift, util::sha256_hex(dropin)));
    CHECK_FALSE(contains(prepared.drift, util::sha256_hex(full_dropin)));
    CHECK_FALSE(contains(prepared.drift, "sntrup761"));
    const auto& kex = control(prepared, "ssh.kexalgorithms");
    CHECK(kex.expect.passes("curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
                            "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK_FALSE(kex.expect.passes("sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
                                  "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK(prepared.controls.size() == spec.controls.size());

    // Debian 12: everything stays as rendered.
    nodectl::testing::FakeTarget bookworm;
    auto same = spec;
    REQUIRE(same.prepare(bookworm, same).ok());
    CHECK(same.files[0].content == full_dropin);
    CHECK(same.drift == spec.drift);

    // A host whose OpenSSH supports none of the MACs: a clear error, nothing written.
    nodectl::testing::FakeTarget ancient;
    ancient.host().ssh_algorithms = openssh_8_4();
    ancient.host().ssh_algorithms["mac"] = {"hmac-sha1"};
    auto refused = spec;
    auto r = refused.prepare(ancient, refused);
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "MACs"));

    // No ssh client to ask: nodectl's full lists (sshd -t still guards the apply).
    nodectl::testing::FakeTarget no_client;
    no_client.host().ssh_algorithms.clear();
    auto full = spec;
    REQUIRE(full.prepare(no_client, full).ok());
    CHECK(full.files[0].content == full_dropin);

    // Switched off: nothing to ask.
    auto off_profile = written_profile(dir, "[harden.ssh]\nenabled = false\n", "off.toml");
    auto off = sshd_group(harden_view(off_profile, "ssh"), s);
    nodectl::testing::FakeTarget untouched;
    REQUIRE(off.prepare(untouched, off).ok());
    CHECK(untouched.host().commands.empty());
}

TEST_CASE("harden sshd: filter_moduli drops groups under 3071 bits, keeps comments and larger groups, and is idempotent") {
    std::string in =
        "#    $OpenBSD: moduli,v 1.33 2023/03/01 $\n"
        "# Time Type Tests Tries Size Generator Modulus\n"
        "20230101000000 2 6 100 2047 2 C0FFEE01\n"
        "20230101000001 2 6 100 3071 5 C0FFEE02\n"
        "20230101000002 2 6 100 3070 2 C0FFEE03\n"
        "20230101000003 2 6 100 4095 2 C0FFEE04\n"
        "20230101000004 2 6 100 1535 5 C0FFEE05\n"
        "20230101000005 2 6 100 8191 2 C0FFEE06\n";
    std::string want =
        "#    $OpenBSD: moduli,v 1.33 2023/03/01 $\n"
        "# Time Type Tests Tries Size Generator Modulus\n"
        "20230101000001 2 6 100 3071 5 C0FFEE02\n"
        "20230101000003 2 6 100 4095 2 C0FFEE04\n"
        "20230101000005 2 6 100 8191 2 C0FFEE06\n";
    auto out = filter_moduli(in);
    CHECK(out == want);
    CHECK(filter_moduli(out) == out);
    CHECK(filter_moduli("") == "");
    // A file without a final newline gets one; nothing else changes.
    CHECK(filter_moduli("20230101000003 2 6 100 4095 2 C0FFEE04") == "20230101000003 2 6 100 4095 2 C0FFEE04\n");

    // The host's own moduli file, if there is one: nothing small survives, something is left.
    if (auto real = read_text("/etc/ssh/moduli"); !real.empty()) {
        auto filtered = filter_moduli(real);
        CHECK(filter_moduli(filtered) == filtered);
        size_t entries = 0;
        for (const auto& l : util::split_lines(filtered)) {
            if (l.empty() || l[0] == '#') {
                continue;
            }
            auto f = util::split(l, ' ');
            REQUIRE(f.size() >= 7);
            CHECK(std::stol(f[4]) >= 3071);
            ++entries;
        }
        CHECK(entries > 0);
    }
}

TEST_CASE("harden sshd: the group is guarded and proves the admin user's login when root's is turned off") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrollback_seconds = 45\n[harden.ssh]\nallow_groups = [\"ssh-users\"]\n");
    Settings s;
    s.root_login_disabled = true;
    s.admin_user = "admin";
    s.rollback_after = std::chrono::seconds(45);
    auto spec = sshd_group(harden_view(p, "ssh"), s);
    CHECK(spec.id == "harden/sshd");
    CHECK(spec.enabled);
    CHECK(spec.guard);
    CHECK(spec.fresh_login_as_when_root == "admin");
    CHECK(spec.rollback_after == std::chrono::seconds(45));
    CHECK(contains(spec.validate, "sshd -t"));
    REQUIRE(spec.files.size() == 4);
    CHECK(spec.files[0].path == "/etc/ssh/sshd_config.d/00-nodectl-hardening.conf");
    CHECK(spec.files[0].content == render_sshd_dropin(harden_view(p, "ssh"), s));
    CHECK(spec.files[3].path == "/etc/ssh/moduli");
    REQUIRE(spec.files[3].edit);
    CHECK(spec.files[3].edit("20230101000000 2 6 100 2047 2 C0\n") == "");

    Settings root_may;
    CHECK(sshd_group(harden_view(p, "ssh"), root_may).fresh_login_as_when_root.empty());
}

// =============================================================================================
// accounts: login.defs

TEST_CASE("harden accounts: edit_login_defs replaces keys, disables duplicates, appends missing keys, keeps comments") {
    std::vector<std::pair<std::string, std::string>> values = {
        {"PASS_MAX_DAYS", "365"}, {"UMASK", "027"}, {"ENCRYPT_METHOD", "SHA512"}};
    std::string in =
        "# /etc/login.defs\n"
        "#PASS_MAX_DAYS 30\n"
        "MAIL_DIR        /var/mail\n"
        "PASS_MAX_DAYS\t99999\n"
        "\n"
        "  UMASK   022\n"
        "PASS_MAX_DAYS_EXTRA 5\n"
        "PASS_MAX_DAYS 10\n"
        "   \n";
    std::string want =
        "# /etc/login.defs\n"
        "#PASS_MAX_DAYS 30\n"
        "MAIL_DIR        /var/mail\n"
        "PASS_MAX_DAYS\t365\n"
        "\n"
        "UMASK\t027\n"
        "PASS_MAX_DAYS_EXTRA 5\n"
        "# PASS_MAX_DAYS 10  (duplicate, disabled by nodectl)\n"
        "   \n"
        "ENCRYPT_METHOD\tSHA512\n";
    auto once = edit_login_defs(in, values);
    CHECK(once == want);
    CHECK(edit_login_defs(once, values) == once);
    CHECK(edit_login_defs("", values) == "PASS_MAX_DAYS\t365\nUMASK\t027\nENCRYPT_METHOD\tSHA512\n");
    CHECK(edit_login_defs(in, {}) == in);
}

TEST_CASE("harden accounts: the group needs admin keys when root cannot log in, and edits login.defs from the profile") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.accounts]\npass_max_days = 90\numask = \"0077\"\n");
    Settings s;
    s.root_login_disabled = true;
    auto err = accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), s, HostSpec{});
    REQUIRE_FALSE(err.ok());
    CHECK(err.error().code == ErrorCode::config);
    CHECK(contains(err.error().message, "harden.accounts.admin_keys"));
    CHECK(contains(err.error().message, dir.file("profile.toml") + ":1:"));

    Settings root_may;
    auto spec = accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), root_may, HostSpec{});
    REQUIRE(spec.ok());
    auto login_defs = std::find_if(spec->files.begin(), spec->files.end(), [](const SetFile& f) { return f.path == "/etc/login.defs"; });
    REQUIRE(login_defs != spec->files.end());
    REQUIRE(login_defs->edit);
    auto edited = login_defs->edit("PASS_MAX_DAYS 99999\nUMASK 022\n");
    CHECK(has_line(edited, "PASS_MAX_DAYS\t90"));
    CHECK(has_line(edited, "UMASK\t0077"));
    // No admin keys: no authorized_keys or sudoers file to write.
    for (const auto& f : spec->files) {
        CHECK_FALSE(contains(f.path, "authorized_keys"));
        CHECK_FALSE(contains(f.path, "sudoers"));
    }
}

// =============================================================================================
// filesystem: fstab

namespace {
const std::string k_shm = "tmpfs\t/dev/shm\ttmpfs\tdefaults,nosuid,nodev,noexec\t0\t0";
std::string edit_fstab_shm(const std::string& current) {
    return set_fstab_entries(current, {k_shm});
}
} // namespace

TEST_CASE("harden filesystem: set_fstab_entries adds the /dev/shm line once, replaces an existing one, leaves the rest") {
    const std::string shm = "tmpfs\t/dev/shm\ttmpfs\tdefaults,nosuid,nodev,noexec\t0\t0";
    std::string root = "UUID=1234-abcd / ext4 errors=remount-ro 0 1\n";
    std::string comment = "# /dev/shm is not mounted here: tmpfs /dev/shm tmpfs defaults 0 0\n";
    std::string bind = "/dev/shm/data /srv/data none bind 0 0\n";

    auto added = edit_fstab_shm(root + comment + bind);
    CHECK(added == root + comment + bind + shm + "\n");
    CHECK(edit_fstab_shm(added) == added);

    auto replaced = edit_fstab_shm(root + "tmpfs /dev/shm tmpfs defaults,size=1g 0 0\n" + bind);
    CHECK(replaced == root + shm + "\n" + bind);
    CHECK(edit_fstab_shm(replaced) == replaced);

    auto tabs = edit_fstab_shm("none\t/dev/shm\ttmpfs\trw 0 0\n" + root);
    CHECK(tabs == shm + "\n" + root);

    // Two /dev/shm entries become one, where the first was.
    auto two = edit_fstab_shm("tmpfs /dev/shm tmpfs defaults 0 0\n" + root + "shm /dev/shm tmpfs rw 0 0\n");
    CHECK(two == shm + "\n" + root);
    CHECK(count_of(two, "/dev/shm") == 1);

    CHECK(edit_fstab_shm("") == shm + "\n");

    // Several mount points at once, each replaced in place.
    const std::string proc = "proc\t/proc\tproc\tdefaults,hidepid=invisible\t0\t0";
    auto both = set_fstab_entries("proc /proc proc defaults 0 0\n" + root, {k_shm, proc});
    CHECK(both == proc + "\n" + root + k_shm + "\n");
    CHECK(set_fstab_entries(both, {k_shm, proc}) == both);
}

// =============================================================================================
// kernel: sysctl

TEST_CASE("harden kernel: standalone nodes forward nothing and get no bridge or k3s settings") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\n");
    auto v = sysctl_values(harden_view(p, "kernel"), Role::standalone);
    CHECK(value_of(v, "net.ipv4.ip_forward") == "0");
    CHECK(value_of(v, "net.ipv6.conf.all.forwarding") == "0");
    CHECK(value_of(v, "net.ipv4.conf.all.rp_filter") == "1");
    CHECK(value_of(v, "kernel.kptr_restrict") == "2");
    CHECK(value_of(v, "net.ipv4.tcp_syncookies") == "1");
    CHECK(value_of(v, "vm.overcommit_memory") == "<absent>");
    CHECK(value_of(v, "kernel.panic") == "<absent>");
    for (const auto& [k, _] : v) {
        CHECK_FALSE(k.starts_with("net.bridge."));
    }
}

TEST_CASE("harden kernel: k3s roles forward, keep bridge netfilter on and get k3s's protect-kernel-defaults values") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-server\"\n");
    for (auto role : {Role::k3s_server, Role::k3s_server_ha, Role::k3s_agent}) {
        auto v = sysctl_values(harden_view(p, "kernel"), role);
        CHECK(value_of(v, "net.ipv4.ip_forward") == "1");
        CHECK(value_of(v, "net.ipv6.conf.all.forwarding") == "1");
        CHECK(value_of(v, "net.bridge.bridge-nf-call-iptables") == "1");
        CHECK(value_of(v, "net.bridge.bridge-nf-call-ip6tables") == "1");
        CHECK(value_of(v, "vm.overcommit_memory") == "1");
        CHECK(value_of(v, "kernel.panic") == "10");
        CHECK(value_of(v, "kernel.panic_on_oops") == "1");
        CHECK(value_of(v, "vm.panic_on_oom") == "0");
        CHECK(value_of(v, "net.ipv4.conf.all.rp_filter") == "2");
    }
    CHECK(parse_role("k3s-server") == Role::k3s_server);
    CHECK(parse_role("k3s-server-ha") == Role::k3s_server_ha);
    CHECK(parse_role("k3s-agent") == Role::k3s_agent);
    CHECK(parse_role("standalone") == Role::standalone);
    CHECK_FALSE(is_kubernetes(Role::standalone));
    CHECK(is_kubernetes(Role::k3s_agent));
}

TEST_CASE("harden kernel: [harden.kernel.sysctl] overrides a default in place and adds new keys") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.kernel.sysctl]\n\"kernel.sysrq\" = \"176\"\n\"vm.swappiness\" = \"10\"\n\"net.ipv4.ip_forward\" = \"1\"\n");
    auto defaults = sysctl_values(harden_view(written_profile(dir, "[harden]\n", "plain.toml"), "kernel"), Role::standalone);
    auto v = sysctl_values(harden_view(p, "kernel"), Role::standalone);
    CHECK(value_of(v, "kernel.sysrq") == "176");
    CHECK(value_of(v, "net.ipv4.ip_forward") == "1");
    CHECK(value_of(v, "vm.swappiness") == "10");
    CHECK(v.size() == defaults.size() + 1);

    // The persisted file carries the same values, each key once.
    Settings s;
    auto spec = kernel_group(harden_view(p, "kernel"), s);
    REQUIRE_FALSE(spec.files.empty());
    const auto& conf = spec.files[0].content;
    CHECK(has_line(conf, "-kernel.sysrq = 176"));
    CHECK(has_line(conf, "-vm.swappiness = 10"));
    CHECK(count_of(conf, "kernel.sysrq") == 1);
    CHECK(count_of(conf, "net.ipv4.ip_forward") == 1);
}

TEST_CASE("harden kernel: forwarding keys are written first, live and in the sysctl.d file (changing forwarding resets accept_redirects)") {
    CHECK(is_forwarding_key("net.ipv4.ip_forward"));
    CHECK(is_forwarding_key("net.ipv4.conf.all.forwarding"));
    CHECK(is_forwarding_key("net.ipv4.conf.eth0.forwarding"));
    CHECK(is_forwarding_key("net.ipv6.conf.default.forwarding"));
    CHECK(is_forwarding_key("net/ipv4/ip_forward"));
    CHECK_FALSE(is_forwarding_key("net.ipv4.conf.all.accept_redirects"));
    CHECK_FALSE(is_forwarding_key("net.ipv4.conf.all.mc_forwarding"));
    CHECK_FALSE(is_forwarding_key("net.ipv6.conf.all.forwarding_extra"));

    TempDir dir;
    auto p = written_profile(dir, "[harden.kernel.sysctl]\n\"vm.swappiness\" = \"10\"\n\"net.ipv4.conf.eth0.forwarding\" = \"0\"\n");
    for (auto role : {Role::standalone, Role::k3s_server}) {
        auto v = sysctl_values(harden_view(p, "kernel"), role);
        // Every forwarding key comes before every other key; the rest keep their order.
        size_t first_other = 0;
        while (first_other < v.size() && is_forwarding_key(v[first_other].first)) {
            ++first_other;
        }
        CHECK(first_other == 3);  // ip_forward, ipv6 all.forwarding, the profile's eth0.forwarding
        for (size_t i = first_other; i < v.size(); ++i) {
            CHECK_FALSE(is_forwarding_key(v[i].first));
        }
        CHECK(v[first_other].first == "kernel.kptr_restrict");
        CHECK(v.back().first == "vm.swappiness");

        Settings s;
        s.role = role;
        auto spec = kernel_group(harden_view(p, "kernel"), s);
        const auto& conf = spec.files[0].content;
        auto forward = conf.find("-net.ipv4.ip_forward = ");
        auto redirects = conf.find("-net.ipv4.conf.all.accept_redirects = 0");
        REQUIRE(forward != std::string::npos);
        REQUIRE(redirects != std::string::npos);
        CHECK(forward < redirects);
        CHECK(conf.find("-net.ipv6.conf.all.forwarding = ") < redirects);
        CHECK(conf.find("-net.ipv4.conf.eth0.forwarding = 0") < conf.find("-kernel.kptr_restrict = 2"));
        // The live writes follow the same table.
        auto live_forward = spec.activate.find("net.ipv4.ip_forward /proc/sys/net/ipv4/ip_forward");
        auto live_redirects = spec.activate.find("net.ipv4.conf.all.accept_redirects /proc/sys/net/ipv4/conf/all/accept_redirects");
        REQUIRE(live_forward != std::string::npos);
        REQUIRE(live_redirects != std::string::npos);
        CHECK(live_forward < live_redirects);
    }
}

// =============================================================================================
// firewall

TEST_CASE("harden firewall: input policy drop, only nodectl's own table is replaced, ssh is rate limited on its port") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\nssh_port = 2222\nssh_rate_per_minute = 12\n");
    Settings s;
    s.ssh_port = 2222;
    auto r = render_ruleset(harden_view(p, "firewall"), s);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    const auto& rs = *r;
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
    CHECK(table_lines == std::vector<std::string>{"table inet nodectl {}", "delete table inet nodectl", "table inet nodectl {"});

    auto ssh = lines_with(rs, "dport 2222");
    REQUIRE(ssh.size() == 3);
    CHECK(contains(ssh[0], "tcp dport 2222 ct state new update @ssh_clients4 { ip saddr limit rate over 12/minute burst 12 packets } drop"));
    CHECK(contains(ssh[1], "tcp dport 2222 ct state new update @ssh_clients6 { ip6 saddr limit rate over 12/minute burst 12 packets } drop"));
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
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::config);
        CHECK(contains(r.error().message, dir.file("profile.toml") + ":5:"));
        CHECK(contains(r.error().message, "harden.firewall.cluster_networks"));
        auto spec = firewall_group(harden_view(p, "firewall"), s);
        REQUIRE_FALSE(spec.ok());
        CHECK(spec.error().message == r.error().message);
    }
}

TEST_CASE("harden firewall: k3s servers open 6443 and 10250 only to the cluster's networks, split into IPv4 and IPv6") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-server\"\n[harden.firewall]\n"
                          "cluster_networks = [\"198.18.0.0/16\", \"::1/128\", \"198.19.1.0/24\"]\n");
    Settings s;
    s.role = parse_role(p.section("harden").str("role"));
    REQUIRE(s.role == Role::k3s_server);
    auto r = render_ruleset(harden_view(p, "firewall"), s);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    const auto& rs = *r;
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
    auto agent = render_ruleset(harden_view(p, "firewall"), s);
    REQUIRE(agent.ok());
    CHECK(lines_with(*agent, "6443").empty());
    CHECK(lines_with(*agent, "2379").empty());
    CHECK(lines_with(*agent, "tcp dport 10250 ") == std::vector<std::string>{"    ip saddr { 198.18.64.0/18 } tcp dport 10250 accept comment \"kubelet\""});
    CHECK(lines_with(*agent, "ip6 saddr {").empty());  // no IPv6 networks given
    CHECK_FALSE(contains(*agent, "chain forward"));

    s.role = Role::k3s_server_ha;
    auto ha = render_ruleset(harden_view(p, "firewall"), s);
    REQUIRE(ha.ok());
    CHECK(lines_with(*ha, "tcp dport 2379-2380 ") == std::vector<std::string>{"    ip saddr { 198.18.64.0/18 } tcp dport 2379-2380 accept comment \"etcd (HA servers)\""});
    CHECK(lines_with(*ha, "tcp dport 6443 ").size() == 1);

    TempDir dir2;
    auto wg = written_profile(dir2, "[harden.firewall]\ncluster_networks = [\"198.18.64.0/18\"]\ncni = \"wireguard\"\n");
    s.role = Role::k3s_server;
    auto w = render_ruleset(harden_view(wg, "firewall"), s);
    REQUIRE(w.ok());
    CHECK(lines_with(*w, "udp dport 51820-51821 ") == std::vector<std::string>{"    ip saddr { 198.18.64.0/18 } udp dport 51820-51821 accept comment \"flannel wireguard\""});
    CHECK(lines_with(*w, "8472").empty());
}

TEST_CASE("harden firewall: serve_http opens 80 and 443 to everyone; extra rules with and without `from`") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\nserve_http = true\n"
                          "[[harden.firewall.rules]]\nport = \"9100\"\nfrom = [\"198.18.5.0/24\", \"::1/128\"]\ncomment = \"node exporter\"\n"
                          "[[harden.firewall.rules]]\nport = \"30000-32767\"\nproto = \"udp\"\n");
    Settings s;
    auto r = render_ruleset(harden_view(p, "firewall"), s);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(lines_with(*r, "dport { 80, 443 }") == std::vector<std::string>{"    tcp dport { 80, 443 } accept comment \"http, https\""});
    CHECK(lines_with(*r, "dport 9100 ") ==
          std::vector<std::string>{"    ip saddr { 198.18.5.0/24 } tcp dport 9100 accept comment \"node exporter\"",
                                   "    ip6 saddr { ::1/128 } tcp dport 9100 accept comment \"node exporter\""});
    CHECK(lines_with(*r, "dport 30000-32767 ") ==
          std::vector<std::string>{"    udp dport 30000-32767 accept comment \"profile rule\""});
    // Extra rules live in the input chain, before it closes.
    CHECK(r->find("dport 30000-32767") < r->find("chain forward"));

    TempDir dir2;
    auto off = written_profile(dir2, "[harden.firewall]\nserve_http = false\n");
    auto r2 = render_ruleset(harden_view(off, "firewall"), s);
    REQUIRE(r2.ok());
    CHECK(lines_with(*r2, " 80").empty());
    CHECK(lines_with(*r2, "443").empty());
}

TEST_CASE("harden firewall: the group is guarded, persisted in /etc/nftables.conf and marks the live table with the ruleset's digest") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.firewall]\nssh_port = 2200\n");
    Settings s;
    s.ssh_port = 2200;
    auto spec = firewall_group(harden_view(p, "firewall"), s);
    REQUIRE(spec.ok());
    CHECK(spec->id == "harden/firewall");
    CHECK(spec->guard);
    REQUIRE(spec->files.size() == 1);
    CHECK(spec->files[0].path == "/etc/nftables.conf");
    CHECK(spec->files[0].content == *render_ruleset(harden_view(p, "firewall"), s));
    CHECK(spec->validate == "nft -c -f /etc/nftables.conf");
    CHECK_FALSE(contains(spec->activate, "flush"));
    auto comment = lines_with(spec->files[0].content, "comment \"nodectl ");
    REQUIRE(comment.size() == 1);
    auto digest = comment[0].substr(comment[0].find("nodectl ") + 8, 16);
    CHECK(contains(spec->drift, digest));
    // A different ruleset, a different marker.
    Settings other = s;
    other.ssh_port = 2201;
    CHECK_FALSE(contains(*render_ruleset(harden_view(p, "firewall"), other), digest));
}

TEST_CASE("harden firewall: an admin's own /etc/nftables.conf is kept and includes nodectl's table; only nodectl's files are reloaded") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\n");
    Settings s;
    auto spec = firewall_group(harden_view(p, "firewall"), s);
    REQUIRE(spec.ok());
    REQUIRE(spec->prepare);
    auto ruleset = spec->files[0].content;

    const std::string admin = "#!/usr/sbin/nft -f\nflush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 0; tcp dport 8080 accept; }\n}";
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
    auto off = firewall_group(harden_view(written_profile(dir, "[harden.firewall]\nenabled = false\n", "off.toml"), "firewall"), s);
    REQUIRE(off.ok());
    REQUIRE(off->files.size() == 2);
    CHECK(off->files[1].path == "/etc/nodectl/nftables.nft");
}

// =============================================================================================
// The module's steps

TEST_CASE("harden steps: a profile without [harden] has no harden steps") {
    TempDir dir;
    auto p = written_profile(dir, "[base]\npackages = [\"less\"]\n");
    HostSpec host;
    host.name = host.address = "test-host";
    auto steps = harden::steps({p, host});
    REQUIRE(steps.ok());
    CHECK(steps->empty());

    auto all = build_steps(p, host);
    REQUIRE(all.ok());
    CHECK_FALSE(all->empty());
    for (const auto& s : *all) {
        CHECK_FALSE(s->id().starts_with("harden/"));
    }
}

TEST_CASE("harden steps: the defaults turn root login off, so a profile without admin keys is a config error") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"standalone\"\n");
    HostSpec host;
    host.name = host.address = "test-host";
    auto steps = harden::steps({p, host});
    REQUIRE_FALSE(steps.ok());
    CHECK(steps.error().code == ErrorCode::config);
    CHECK(contains(steps.error().message, "harden.accounts.admin_keys"));
    CHECK(contains(steps.error().message, "permit_root_login"));
    auto all = build_steps(p, host);
    REQUIRE_FALSE(all.ok());
    CHECK(all.error().code == ErrorCode::config);

    // Root may still log in with a key: then no admin keys are needed.
    TempDir dir2;
    auto root_key = written_profile(dir2, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    auto ok = harden::steps({root_key, host});
    REQUIRE_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
    CHECK(ok->size() == 7);

    // Accounts off: no admin user can be made, so root login must stay.
    TempDir dir3;
    auto acc_off = written_profile(dir3, "[harden.accounts]\nenabled = false\nadmin_keys = [\"" + k_admin_key + "\"]\n");
    auto err = harden::steps({acc_off, host});
    REQUIRE_FALSE(err.ok());
    CHECK(contains(err.error().message, "harden.accounts.admin_keys"));
}

TEST_CASE("harden steps: with admin keys, packages then six config sets in order accounts, sshd, kernel, firewall, services, filesystem") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrollback_seconds = 90\n[harden.accounts]\nadmin_user = \"ops\"\nadmin_keys = [\"" + k_admin_key + "\"]\n");
    HostSpec host;
    host.name = host.address = "test-host";
    auto steps = harden::steps({p, host});
    REQUIRE_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.error().message));
    REQUIRE(steps->size() == 7);
    CHECK(dynamic_cast<base::EnsurePackages*>((*steps)[0].get()) != nullptr);
    std::vector<std::string> ids;
    for (size_t i = 1; i < steps->size(); ++i) {
        auto* set = dynamic_cast<ApplyConfigSet*>((*steps)[i].get());
        REQUIRE(set != nullptr);
        CHECK(set->spec().enabled);
        ids.push_back(set->id());
    }
    CHECK(ids == std::vector<std::string>{"harden/accounts", "harden/sshd", "harden/kernel", "harden/firewall", "harden/services",
                                          "harden/filesystem"});

    auto* accounts = dynamic_cast<ApplyConfigSet*>((*steps)[1].get());
    CHECK(std::any_of(accounts->spec().files.begin(), accounts->spec().files.end(),
                      [](const SetFile& f) { return f.path == "/home/ops/.ssh/authorized_keys" && f.owner == "ops" && f.mode == 0600; }));
    auto* sshd = dynamic_cast<ApplyConfigSet*>((*steps)[2].get());
    CHECK(sshd->spec().guard);
    CHECK(sshd->spec().fresh_login_as_when_root == "ops");
    CHECK(sshd->spec().rollback_after == std::chrono::seconds(90));
    auto* fw = dynamic_cast<ApplyConfigSet*>((*steps)[4].get());
    CHECK(fw->spec().guard);
    CHECK(fw->spec().fresh_login_as_when_root == "ops");

    // build_steps puts them after the base module's.
    auto all = build_steps(p, host);
    REQUIRE(all.ok());
    REQUIRE(all->size() >= 6);
    CHECK(all->back()->id() == "harden/filesystem");
}

TEST_CASE("harden services: AIDE's first database is left to a unit of its own, started without waiting for it") {
    TempDir dir;
    auto services = [&](const std::string& extra) {
        auto p = written_profile(dir, "[harden.accounts]\nadmin_keys = [\"" + k_admin_key + "\"]\n" + extra);
        HostSpec host;
        host.name = host.address = "test-host";
        auto steps = harden::steps({p, host});
        REQUIRE_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.error().message));
        auto* set = dynamic_cast<ApplyConfigSet*>((*steps)[5].get());
        REQUIRE(set != nullptr);
        REQUIRE(set->id() == "harden/services");
        return set->spec();
    };
    auto on = services("");
    auto unit = std::find_if(on.files.begin(), on.files.end(),
                             [](const SetFile& f) { return f.path == "/etc/systemd/system/nodectl-aide-baseline.service"; });
    REQUIRE(unit != on.files.end());
    CHECK(unit->content.find("ExecStart=/usr/sbin/aideinit --yes --force\n") != std::string::npos);
    CHECK(unit->content.find("ConditionFileNotEmpty=!/var/lib/aide/aide.db\n") != std::string::npos);
    CHECK(unit->content.find("WantedBy=multi-user.target\n") != std::string::npos);
    // The apply never runs aideinit itself; it starts the unit and goes on.
    CHECK(on.activate.find("aideinit") == std::string::npos);
    CHECK(contains(on.activate, "systemctl daemon-reload\nsystemctl enable --quiet 'nodectl-aide-baseline.service'\n"
                                "[ -s /var/lib/aide/aide.db ] || systemctl start --no-block 'nodectl-aide-baseline.service'\n"));
    auto control = std::find_if(on.controls.begin(), on.controls.end(), [](const host::Control& c) { return c.id == "services.aide_database"; });
    REQUIRE(control != on.controls.end());
    CHECK(control->expect.passes("present"));
    CHECK(control->expect.passes("being built (nodectl-aide-baseline.service)"));
    CHECK_FALSE(control->expect.passes("missing"));

    auto off = services("[harden.services]\naide = false\n");
    CHECK(std::none_of(off.files.begin(), off.files.end(), [](const SetFile& f) { return f.path.find("aide") != std::string::npos; }));
    CHECK(off.activate.find("aide") == std::string::npos);
    CHECK(std::none_of(off.controls.begin(), off.controls.end(), [](const host::Control& c) { return c.id == "services.aide_database"; }));
}

TEST_CASE("harden steps: a group switched off still has its step (to revert), and packages follow the groups that need them") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\n"
                          "[harden.accounts]\nenabled = false\n[harden.firewall]\nenabled = false\n[harden.services]\nenabled = false\n");
    HostSpec host;
    auto steps = harden::steps({p, host});
    REQUIRE_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.error().message));
    REQUIRE(steps->size() == 6);  // nothing to install
    std::map<std::string, bool> enabled;
    for (const auto& s : *steps) {
        auto* set = dynamic_cast<ApplyConfigSet*>(s.get());
        REQUIRE(set != nullptr);
        enabled[set->id()] = set->spec().enabled;
    }
    CHECK(enabled == std::map<std::string, bool>{{"harden/accounts", false}, {"harden/sshd", true}, {"harden/kernel", true},
                                                 {"harden/firewall", false}, {"harden/services", false}, {"harden/filesystem", true}});

    // A k3s role without cluster networks stops the module before any host is contacted.
    TempDir dir2;
    auto k3s = written_profile(dir2, "[harden]\nrole = \"k3s-server\"\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    auto err = harden::steps({k3s, host});
    REQUIRE_FALSE(err.ok());
    CHECK(contains(err.error().message, "harden.firewall.cluster_networks"));
}

// =============================================================================================
// ApplyConfigSet on this machine

TEST_CASE("harden config set: a fresh apply writes the files with their modes, activates once, then probes clean") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("etc/a.conf");
    auto b = fx.dir.write("etc/sub/b.conf", "old b\n", 0644);
    auto spec = fx.spec();
    spec.files = {{a, "alpha\n", nullptr, 0640}, {b, "beta\n", nullptr, 0600}};
    spec.activate = fx.logs("activated");
    ApplyConfigSet step(spec);
    CHECK(step.id() == fx.id);
    CHECK(step.title() == "unit test set");

    auto plan = probe_ok(step, t);
    // Neither file is world-readable: the plan does not show their content.
    REQUIRE(summaries(plan) == std::vector<std::string>{"create " + a + " (content hidden)", "update " + b + " (content hidden)"});
    CHECK(plan.changes[0].diff.empty());
    CHECK(plan.changes[1].diff.empty());
    CHECK_FALSE(fs::exists(fx.log()));  // probing changes nothing

    apply_ok(step, t, plan);
    CHECK(read_text(a) == "alpha\n");
    CHECK(mode_of(a) == 0640);
    CHECK(read_text(b) == "beta\n");
    CHECK(mode_of(b) == 0600);
    CHECK(fx.log_text() == "activated\n");
    // What nodectl found is remembered for a revert; the backup of this run is gone; the stamp says it is live.
    CHECK(read_text(original_path(b)) == "old b\n");
    CHECK(fs::exists(original_path(a) + ".absent"));
    CHECK_FALSE(fs::exists(fx.state.rollback_dir()));
    CHECK(fs::exists(fx.state.stamp()));

    CHECK(probe_ok(step, t).empty());
    CHECK(fx.log_text() == "activated\n");

    // A mode changed behind nodectl's back is a change of its own, and only that.
    REQUIRE(::chmod(a.c_str(), 0666) == 0);
    auto mode_plan = probe_ok(step, t);
    CHECK(summaries(mode_plan) == std::vector<std::string>{a + ": mode/owner -> 0640 root:root"});
    apply_ok(step, t, mode_plan);
    CHECK(mode_of(a) == 0640);
    CHECK(read_text(a) == "alpha\n");
    CHECK(probe_ok(step, t).empty());
    // The first original is kept: nodectl's own content is never taken for the original.
    CHECK(read_text(original_path(b)) == "old b\n");
}

TEST_CASE("harden config set: files written but never activated (the stamp is missing or stale) are activated later") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto spec = fx.spec();
    spec.files = {{a, "alpha\n", nullptr, 0644}};
    spec.activate = fx.logs("v1");
    ApplyConfigSet step(spec);
    apply_ok(step, t, probe_ok(step, t));
    REQUIRE(fx.log_text() == "v1\n");

    // A run that died between writing and activating leaves no stamp.
    fs::remove(fx.state.stamp());
    auto plan = probe_ok(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary.starts_with("activate unit test set"));
    apply_ok(step, t, plan);
    CHECK(fx.log_text() == "v1\nv1\n");
    CHECK(probe_ok(step, t).empty());

    // A different activation is a different digest: it runs once.
    auto spec2 = spec;
    spec2.activate = fx.logs("v2");
    ApplyConfigSet step2(spec2);
    auto plan2 = probe_ok(step2, t);
    REQUIRE(plan2.changes.size() == 1);
    CHECK(plan2.changes[0].summary.starts_with("activate "));
    apply_ok(step2, t, plan2);
    CHECK(fx.log_text() == "v1\nv1\nv2\n");
    CHECK(probe_ok(step2, t).empty());
}

TEST_CASE("harden config set: an edited file is derived from what the host has, and must exist") {
    SetFixture fx;
    LocalTarget t;
    auto c = fx.dir.write("c.conf", "keep=1\nkey=1\nother=2\n");
    auto spec = fx.spec();
    auto edit = [](const std::string& cur) {
        std::string out;
        for (const auto& l : util::split_lines(cur)) {
            out += (l.starts_with("key=") ? "key=2" : l) + "\n";
        }
        return out;
    };
    spec.files = {{c, "", edit, 0644}};
    ApplyConfigSet step(spec);
    auto plan = probe_ok(step, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"update " + c});
    CHECK(contains(plan.changes[0].diff, "-key=1"));
    CHECK(contains(plan.changes[0].diff, "+key=2"));
    apply_ok(step, t, plan);
    CHECK(read_text(c) == "keep=1\nkey=2\nother=2\n");
    CHECK(probe_ok(step, t).empty());

    // A line the edit does not touch, changed on the host, stays as the host has it.
    fx.dir.write("c.conf", "keep=9\nkey=5\n");
    auto plan2 = probe_ok(step, t);
    apply_ok(step, t, plan2);
    CHECK(read_text(c) == "keep=9\nkey=2\n");

    auto missing = fx.spec();
    missing.files = {{fx.dir.file("nope.conf"), "", edit, 0644}};
    ApplyConfigSet step2(missing);
    // Planned (its package may be installed by an earlier step), but apply refuses while it is missing.
    auto r = step2.probe(t);
    REQUIRE(r.ok());
    REQUIRE(r->changes.size() == 1);
    CHECK(contains(r->changes[0].summary, "edit " + fx.dir.file("nope.conf") + " once it exists"));
    auto applied = step2.apply(t, *r);
    REQUIRE_FALSE(applied.ok());
    CHECK(contains(applied.error().message, fx.dir.file("nope.conf") + " does not exist on the host, so it cannot be edited"));
}

TEST_CASE("harden config set: failing validation puts the previous files back byte for byte and activates them again") {
    SetFixture fx;
    LocalTarget t;
    const char raw[] = "line one\n\ttabbed  \r\n\0nul \x01\x7f no newline at the end";
    const std::string previous(raw, sizeof raw - 1);
    auto b = fx.dir.write("b.conf", previous, 0600);
    auto created = fx.dir.file("new/created.conf");
    auto spec = fx.spec();
    spec.files = {{b, "new b\n", nullptr, 0644}, {created, "created\n", nullptr, 0644}};
    spec.validate = "exit 3";
    spec.activate = fx.logs("activated");
    spec.restore_activate = fx.logs("restored");
    ApplyConfigSet step(spec);

    auto plan = probe_ok(step, t);
    REQUIRE(plan.changes.size() == 2);
    auto r = step.apply(t, plan);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::command);
    CHECK(contains(r.error().message, "the new unit test set is invalid"));
    CHECK(contains(r.error().message, "exit 3"));
    CHECK(contains(r.error().message, "the previous files are back in place and active"));

    CHECK(read_text(b) == previous);
    CHECK(mode_of(b) == 0600);
    CHECK_FALSE(fs::exists(created));
    CHECK(fx.log_text() == "restored\n");  // never activated
    CHECK_FALSE(fs::exists(fx.state.stamp()));
    // Nothing converged: the same changes are still planned.
    CHECK(summaries(probe_ok(step, t)) == summaries(plan));
}

TEST_CASE("harden config set: a failing post_write or activation is restored too, with the files post_write changed") {
    SetFixture fx;
    LocalTarget t;
    auto b = fx.dir.write("b.conf", "previous\n", 0644);
    auto key_a = fx.dir.write("keys/key_a", "key A\n", 0600);
    auto key_b = fx.dir.file("keys/key_b");
    auto spec = fx.spec();
    spec.files = {{b, "new\n", nullptr, 0644}};
    spec.also_back_up = {fx.dir.file("keys/key_*")};
    // Like sshd's host keys: post_write replaces them.
    spec.post_write = "rm -f " + shell_quote(key_a) + "; echo 'key B' > " + shell_quote(key_b);
    spec.restore_activate = fx.logs("restored");

    SUBCASE("activation fails") {
        spec.activate = fx.logs("activating") + "; exit 4";
        ApplyConfigSet step(spec);
        auto r = step.apply(t, probe_ok(step, t));
        REQUIRE_FALSE(r.ok());
        CHECK(contains(r.error().message, "activating unit test set failed (exit 4)"));
        CHECK(fx.log_text() == "activating\nrestored\n");
    }
    SUBCASE("post_write fails after changing the files") {
        spec.post_write += "; exit 5";
        spec.activate = fx.logs("activated");
        ApplyConfigSet step(spec);
        auto r = step.apply(t, probe_ok(step, t));
        REQUIRE_FALSE(r.ok());
        CHECK(contains(r.error().message, "exit 5"));
        CHECK(fx.log_text() == "restored\n");
    }
    CHECK(read_text(b) == "previous\n");
    CHECK(read_text(key_a) == "key A\n");
    CHECK(mode_of(key_a) == 0600);
    CHECK_FALSE(fs::exists(key_b));
    CHECK_FALSE(fs::exists(fx.state.stamp()));
}

// Audit: the revert diff printed the content of a 0600 file (the node's copy of the profile,
// with the backup group turned off): a file others may not read is never shown in a plan.
TEST_CASE("config set: plans and revert diffs hide the content of files that are sensitive or not world-readable") {
    SetFixture fx;
    LocalTarget t;
    auto secret = fx.dir.write("secret.conf", "password=as-found\n", 0600);
    auto found_private = fx.dir.write("found-private.conf", "token=from-the-host\n", 0600);
    auto open_file = fx.dir.write("open.conf", "public as found\n", 0644);
    auto on = fx.spec();
    on.files = {{secret, "password=managed\n", nullptr, 0600},
                {found_private, "now public\n", nullptr, 0644},
                {open_file, "public managed\n", nullptr, 0644}};
    ApplyConfigSet step_on(on);
    auto plan_on = probe_ok(step_on, t);
    REQUIRE(summaries(plan_on) == std::vector<std::string>{"update " + secret + " (content hidden)",
                                                           "update " + found_private + " (content hidden)",
                                                           "update " + open_file});
    CHECK(plan_on.changes[0].diff.empty());
    CHECK(plan_on.changes[1].diff.empty());
    CHECK(contains(plan_on.changes[2].diff, "+public managed"));
    apply_ok(step_on, t, plan_on);

    auto off = on;
    off.enabled = false;
    ApplyConfigSet step_off(off);
    auto plan_off = probe_ok(step_off, t);
    REQUIRE(summaries(plan_off) == std::vector<std::string>{"restore " + secret + " as nodectl found it (content hidden)",
                                                            "restore " + found_private + " as nodectl found it (content hidden)",
                                                            "restore " + open_file + " as nodectl found it"});
    for (const auto& c : plan_off.changes) {
        CHECK_FALSE(contains(c.diff, "password"));
        CHECK_FALSE(contains(c.diff, "token"));
    }
    CHECK(contains(plan_off.changes[2].diff, "+public as found"));
    apply_ok(step_off, t, plan_off);
    CHECK(read_text(secret) == "password=as-found\n");
}

TEST_CASE("harden config set: turned off, it puts back what nodectl found, removes what it created, leaves the rest alone") {
    SetFixture fx;
    LocalTarget t;
    auto found = fx.dir.write("found.conf", "as found\n", 0644);
    auto created = fx.dir.file("created.conf");
    auto untouched = fx.dir.write("untouched.conf", "mine\n", 0644);
    auto same = fx.dir.write("same.conf", "already right\n", 0644);

    auto on = fx.spec();
    on.files = {{found, "managed\n", nullptr, 0644}, {created, "managed too\n", nullptr, 0644}, {same, "already right\n", nullptr, 0644}};
    on.activate = fx.logs("activated");
    on.deactivate = fx.logs("deactivated");
    ApplyConfigSet step_on(on);
    apply_ok(step_on, t, probe_ok(step_on, t));
    REQUIRE(read_text(found) == "managed\n");
    REQUIRE(read_text(created) == "managed too\n");
    // A file that was already right was not changed, so nothing of it is kept as an original.
    CHECK_FALSE(fs::exists(original_path(same)));
    CHECK_FALSE(fs::exists(original_path(same) + ".absent"));

    auto off = on;
    off.enabled = false;
    off.files.push_back({untouched, "would be managed\n", nullptr, 0644});
    off.drift = "echo 'live difference that does not count when off'";
    ApplyConfigSet step_off(off);
    auto plan = probe_ok(step_off, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"restore " + found + " as nodectl found it",
                                                        "remove " + created + " (nodectl created it)"});
    CHECK(contains(plan.changes[0].diff, "+as found"));
    CHECK(contains(plan.changes[0].diff, "-managed"));

    apply_ok(step_off, t, plan);
    CHECK(read_text(found) == "as found\n");
    CHECK_FALSE(fs::exists(created));
    CHECK(read_text(untouched) == "mine\n");
    CHECK(read_text(same) == "already right\n");
    CHECK(fx.log_text() == "activated\ndeactivated\n");
    // nodectl forgets what it kept, and the stamp.
    CHECK_FALSE(fs::exists(original_path(found)));
    CHECK_FALSE(fs::exists(original_path(created) + ".absent"));
    CHECK_FALSE(fs::exists(fx.state.stamp()));
    CHECK_FALSE(fs::exists(fx.state.rollback_dir()));  // a revert keeps no backup of its own
    CHECK(probe_ok(step_off, t).empty());

    // Audit says it is off and reverted.
    auto audit = step_off.audit(t);
    REQUIRE(audit.ok());
    REQUIRE(audit->size() == 1);
    CHECK(audit->front().status == ControlStatus::pass);
    CHECK(audit->front().title == "unit test set: off in the profile, nodectl's changes reverted");

    // Switched on again, it finds the original afresh.
    apply_ok(step_on, t, probe_ok(step_on, t));
    CHECK(read_text(original_path(found)) == "as found\n");
}

TEST_CASE("harden config set: drift lines are plan changes, and activation runs when only drift is left") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto marker = fx.dir.file("live-state");
    auto spec = fx.spec();
    spec.files = {{a, "alpha\n", nullptr, 0644}};
    spec.drift = "[ -e " + shell_quote(marker) + " ] || { echo 'live: thing one'; echo; echo 'live: thing two'; }";
    spec.activate = fx.logs("activated") + "; touch " + shell_quote(marker);
    ApplyConfigSet step(spec);

    auto first = probe_ok(step, t);
    CHECK(summaries(first) == std::vector<std::string>{"create " + a, "live: thing one", "live: thing two"});
    apply_ok(step, t, first);
    CHECK(probe_ok(step, t).empty());
    CHECK(fx.log_text() == "activated\n");

    // The live state drifts, the files do not.
    fs::remove(marker);
    auto plan = probe_ok(step, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"live: thing one", "live: thing two"});
    CHECK(plan.changes[0].diff.empty());
    apply_ok(step, t, plan);
    CHECK(fx.log_text() == "activated\nactivated\n");
    CHECK(fs::exists(marker));
    CHECK(read_text(a) == "alpha\n");
    CHECK(probe_ok(step, t).empty());

    // A failing drift script is an error, not an empty plan.
    auto broken = fx.spec();
    broken.drift = "echo 'cannot read the live state' >&2; exit 2";
    ApplyConfigSet step2(broken);
    auto r = step2.probe(t);
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "cannot read the live state"));
}

TEST_CASE("harden config set: guarded on a host without systemd, the fallback timer is armed, then killed with the backup") {
    if (fs::is_directory("/run/systemd/system")) {
        MESSAGE("skipped: this host runs systemd, so the rollback timer is a systemd unit");
        return;
    }
    SetFixture fx;
    TimerProcesses timers(unique_timer_seconds());
    WrappedLocal t;
    t.peek_path = (fx.state.rollback_dir() / "timer.pid").string();
    auto a = fx.dir.write("a.conf", "old\n");
    auto spec = fx.spec();
    spec.files = {{a, "guarded\n", nullptr, 0644}};
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(timers.seconds);
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
    if (fs::is_directory("/run/systemd/system")) {
        MESSAGE("skipped: this host runs systemd");
        return;
    }
    SetFixture fx;
    TimerProcesses timers(unique_timer_seconds());
    WrappedLocal t;
    t.user = "deploy";
    auto spec = fx.spec();
    spec.files = {{fx.dir.file("a.conf"), "x\n", nullptr, 0644}};
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(timers.seconds);
    spec.fresh_login_as_when_root = "admin";
    ApplyConfigSet step(spec);
    apply_ok(step, t, probe_ok(step, t));
    CHECK(t.fresh_login_as == std::vector<std::string>{""});
}

TEST_CASE("harden config set: a fresh login that fails after activation puts the previous files back") {
    if (fs::is_directory("/run/systemd/system")) {
        MESSAGE("skipped: this host runs systemd");
        return;
    }
    SetFixture fx;
    TimerProcesses timers(unique_timer_seconds());
    WrappedLocal t;
    t.fresh_login = [](const std::string&) -> Result<AccessCheck> {
        return make_error(ErrorCode::auth, "Permission denied (publickey)");
    };
    auto a = fx.dir.write("a.conf", "reachable\n", 0644);
    auto spec = fx.spec();
    spec.files = {{a, "locks everyone out\n", nullptr, 0644}};
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(timers.seconds);
    spec.activate = fx.logs("activated");
    spec.restore_activate = fx.logs("restored");
    ApplyConfigSet step(spec);

    auto r = step.apply(t, probe_ok(step, t));
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "a fresh login failed after activating the new unit test set"));
    CHECK(contains(r.error().message, "Permission denied (publickey)"));
    CHECK(t.fresh_login_as.size() == 1);  // an auth failure is not retried
    CHECK(read_text(a) == "reachable\n");
    CHECK(fx.log_text() == "activated\nrestored\n");
    CHECK_FALSE(fs::exists(fx.state.stamp()));
}

TEST_CASE("harden config set: audit reports the files first (failing before, passing after apply), then the set's controls") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto spec = fx.spec();
    spec.files = {{a, "alpha\n", nullptr, 0644}};
    spec.controls_prelude = "F=" + shell_quote(a);
    spec.controls = {
        {"unit.content", "a.conf says alpha", "cat \"$F\"", host::equals("alpha"), ""},
        {"unit.na", "not here", "echo x", host::equals("x"), "echo 'not on this host'"},
    };
    ApplyConfigSet step(spec);

    auto before = step.audit(t);
    REQUIRE(before.ok());
    REQUIRE(before->size() == 3);
    CHECK((*before)[0].id == fx.id);
    CHECK((*before)[0].title == "unit test set: files and live state as the profile says");
    CHECK((*before)[0].status == ControlStatus::fail);
    CHECK(contains((*before)[0].observed, "create " + a));
    CHECK((*before)[1].id == "unit.content");
    CHECK((*before)[1].status == ControlStatus::fail);
    CHECK_FALSE(fs::exists(a));  // auditing changes nothing

    apply_ok(step, t, probe_ok(step, t));
    auto after = step.audit(t);
    REQUIRE(after.ok());
    REQUIRE(after->size() == 3);
    CHECK((*after)[0].id == fx.id);
    CHECK((*after)[0].status == ControlStatus::pass);
    CHECK((*after)[1].id == "unit.content");
    CHECK((*after)[1].status == ControlStatus::pass);
    CHECK((*after)[1].observed == "alpha");
    CHECK((*after)[2].id == "unit.na");
    CHECK((*after)[2].status == ControlStatus::not_applicable);
    CHECK((*after)[2].reason == "not on this host");
}


// =============================================================================================
// Regressions: each case failed against an earlier version of these sources.

TEST_CASE("harden regression: a config error about a group the profile does not spell out still names the profile file and line") {
    // ConfigView::where() of a missing section is the location of an empty table: "<input>:0:0".
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-agent\"\n");
    HostSpec host;
    auto root_off = harden::steps({p, host});
    REQUIRE_FALSE(root_off.ok());
    CHECK(root_off.error().message.starts_with(dir.file("profile.toml") + ":"));

    TempDir dir2;
    auto p2 = written_profile(dir2, "[harden]\nrole = \"k3s-agent\"\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    auto no_networks = harden::steps({p2, host});
    REQUIRE_FALSE(no_networks.ok());
    CHECK(contains(no_networks.error().message, "harden.firewall.cluster_networks"));
    CHECK(no_networks.error().message.starts_with(dir2.file("profile.toml") + ":"));
}

TEST_CASE("harden regression: harden.accounts.umask accepts \"027\", its own default and documented example") {
    // keys.cpp umask_value() wants ^0[0-7]{3}$, i.e. four characters such as "0027".
    TempDir dir;
    auto p = load_profile(dir.write("profile.toml", "[harden.accounts]\numask = \"027\"\n"));
    CHECK_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
}

TEST_CASE("harden regression: set_fstab_entries recognises a /dev/shm entry whose fields mix spaces and tabs") {
    // Only " /dev/shm " or "\t/dev/shm\t" is recognised; this entry is kept and a second one added.
    auto out = edit_fstab_shm("tmpfs /dev/shm\ttmpfs defaults 0 0\n");
    CHECK(out == "tmpfs\t/dev/shm\ttmpfs\tdefaults,nosuid,nodev,noexec\t0\t0\n");
    CHECK(count_of(out, "/dev/shm") == 1);
}

TEST_CASE("harden regression: turning a set off puts back the original file's mode, not the set's") {
    // The original is kept with `cp -a`, but the revert writes it with ConfigSetFile::mode.
    SetFixture fx;
    LocalTarget t;
    auto f = fx.dir.write("f.conf", "original\n", 0600);
    auto spec = fx.spec();
    spec.files = {{f, "managed\n", nullptr, 0644}};
    ApplyConfigSet on(spec);
    apply_ok(on, t, probe_ok(on, t));
    REQUIRE(mode_of(f) == 0644);
    spec.enabled = false;
    ApplyConfigSet off(spec);
    apply_ok(off, t, probe_ok(off, t));
    REQUIRE(read_text(f) == "original\n");
    CHECK(mode_of(f) == 0600);
}

TEST_CASE("harden regression: step ids are unique when both base and harden install packages") {
    // harden's EnsurePackages is "base/packages" too; the journal keys steps by id, so a resumed run
    // that finished base's package step skips harden's as done.
    TempDir dir;
    auto p = written_profile(dir, "[base]\npackages = [\"less\"]\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    HostSpec host;
    host.name = host.address = "test-host";
    auto steps = build_steps(p, host);
    REQUIRE(steps.ok());
    std::multiset<std::string> ids;
    for (const auto& s : *steps) {
        ids.insert(s->id());
    }
    CHECK(ids.count("base/packages") == 1);
    CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
}

TEST_CASE("harden regression: cancelling the fallback rollback timer leaves no sleep process behind") {
    // The cancel kills the `sh -c 'sleep N && sh restore.sh'` leader only; its `sleep N` lives on.
    if (fs::is_directory("/run/systemd/system")) {
        MESSAGE("skipped: this host runs systemd");
        return;
    }
    SetFixture fx;
    TimerProcesses timers(unique_timer_seconds());
    LocalTarget t;
    auto spec = fx.spec();
    spec.files = {{fx.dir.file("a.conf"), "guarded\n", nullptr, 0644}};
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(timers.seconds);
    ApplyConfigSet step(spec);
    apply_ok(step, t, probe_ok(step, t));
    CHECK(processes_gone(timers.marker()));
}

TEST_CASE("harden regression: a failed fresh login also cancels the fallback rollback timer") {
    // restore() stops the systemd timer only; without systemd the armed `sleep N && sh restore.sh`
    // stays and runs restore.sh again later.
    if (fs::is_directory("/run/systemd/system")) {
        MESSAGE("skipped: this host runs systemd");
        throw std::runtime_error("not applicable with systemd");
    }
    SetFixture fx;
    TimerProcesses timers(unique_timer_seconds());
    WrappedLocal t;
    t.fresh_login = [](const std::string&) -> Result<AccessCheck> { return make_error(ErrorCode::auth, "denied"); };
    auto spec = fx.spec();
    spec.files = {{fx.dir.file("a.conf"), "guarded\n", nullptr, 0644}};
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(timers.seconds);
    ApplyConfigSet step(spec);
    REQUIRE_FALSE(step.apply(t, probe_ok(step, t)).ok());
    CHECK(processes_gone(timers.marker()));
}

} // namespace harden_test

// The harden module's sshd group: the drop-in it renders from a profile (checked by the real sshd
// where there is one), the algorithm lists cut to what a host's OpenSSH supports, moduli, and the
// guard that proves a fresh login before the change stays.
#include "fake_target.hpp"
#include "harden_support.hpp"
#include "result_checks.hpp"
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "modules/harden/groups.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

using namespace nodectl;
// nodectl::harden's and the test helpers' names unqualified in this file only (unity build).
namespace harden_sshd_test {
using namespace nodectl::harden;
using namespace nodectl::testing;
namespace fs = std::filesystem;

TEST_CASE("harden sshd: the drop-in has the exact algorithm lists, the profile's root login, and no password logins") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nmax_auth_tries = 2\n");
    Settings s;
    auto text = render_sshd_dropin(harden_view(p, "ssh"), s);

    const std::vector<std::string> lines = {
        "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
        "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256",
        "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr",
        "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
        "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostKey /etc/ssh/ssh_host_rsa_key",
        "PermitRootLogin prohibit-password",
        "MaxAuthTries 2",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "PubkeyAuthentication yes",
        "X11Forwarding no",
        "Banner /etc/issue.net",
    };
    for (const auto& line : lines) {
        CAPTURE(line);
        CHECK(has_line(text, line));
    }
    // Keywords sshd takes the first of: each once.
    CHECK(count_of(text, "HostKey ") == 2);
    CHECK(count_of(text, "PermitRootLogin") == 1);
    CHECK(lines_with(text, "Authentication yes") == std::vector<std::string>{"PubkeyAuthentication yes"});
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
    struct Case {
        std::string profile;
        bool root_login_disabled;
        std::vector<std::string> allow_groups_lines;
    };
    const std::string with_groups =
        "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nallow_groups = [\"ssh-users\", \"ops\"]\n";
    const std::string no_groups = "[harden.ssh]\nallow_groups = []\n";
    const std::vector<Case> cases = {
        {with_groups, false, {"AllowGroups ssh-users ops"}},
        {with_groups, true, {"AllowGroups ssh-users ops"}},
        {no_groups, false, {}},
        {no_groups, true, {}},
        {"[harden]\n", true, {"AllowGroups ssh-users"}},  // the default
    };
    for (const auto& c : cases) {
        CAPTURE(c.profile);
        CAPTURE(c.root_login_disabled);
        TempDir dir;
        Settings s;
        s.root_login_disabled = c.root_login_disabled;
        auto text = render_sshd_dropin(harden_view(written_profile(dir, c.profile), "ssh"), s);
        CHECK(lines_with(text, "AllowGroups") == c.allow_groups_lines);
    }
}

TEST_CASE("harden sshd: the real sshd accepts the drop-in, and the group's controls pass on what sshd -T reports") {
    const std::string sshd = "/usr/sbin/sshd";
    if (!fs::exists(sshd) || !fs::exists("/usr/bin/ssh-keygen") || !fs::is_directory("/run/sshd")) {
        MESSAGE("skipped: needs " << sshd << ", ssh-keygen and /run/sshd");
        return;
    }
    TempDir dir;
    auto p = written_profile(
        dir, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\nallow_groups = [\"ssh-users\"]\n");
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
    std::string prelude =
        "T=$(" + sshd + " -T -f " + shell_quote(conf_path) + " 2>/dev/null)" + spec.controls_prelude.substr(fn);
    std::vector<host::Control> effective;
    std::set<std::string> not_from_the_dropin = {"ssh.host_keys", "ssh.rsa_host_key_bits", "ssh.moduli_min_bits",
                                                 "ssh.service"};
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
        {"kex",
         {"diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
          "diffie-hellman-group-exchange-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
          "sntrup4591761x25519-sha512@tinyssh.org"}},
        {"cipher",
         {"aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
          "chacha20-poly1305@openssh.com"}},
        {"mac",
         {"hmac-sha2-256", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
          "umac-128-etm@openssh.com"}},
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

}  // namespace

TEST_CASE(
    "harden sshd: the algorithm lists are cut to what the host's OpenSSH supports, in nodectl's order, naming what was left out") {
    auto wanted = wanted_ssh_algorithms();
    // Debian 12 supports every algorithm nodectl wants.
    FakeTarget bookworm;
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
    CHECK(old->kept.kex == std::vector<std::string>{"curve25519-sha256", "curve25519-sha256@libssh.org",
                                                    "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
                                                    "diffie-hellman-group-exchange-sha256"});
    CHECK(old->kept.ciphers == wanted.ciphers);
    CHECK(old->left_out == std::vector<std::string>{"KexAlgorithms sntrup761x25519-sha512@openssh.com"});

    // Nothing left of a list: an error naming the list, never an empty (or default) list.
    auto no_macs = openssh_8_4();
    no_macs["mac"] = {"hmac-sha1", "hmac-md5"};
    check_error(choose_ssh_algorithms(wanted, query_output(no_macs)), {"supports none of the MACs nodectl allows"});

    // A list the host did not answer for is an error too.
    check_error(choose_ssh_algorithms(
                    wanted, "== kex\ncurve25519-sha256\n== cipher\naes256-ctr\n== mac\numac-128-etm@openssh.com\n"),
                {"key-sig"});
}

TEST_CASE(
    "harden sshd: prepare asks the host's OpenSSH (a probe) and writes, checks and compares only what it supports") {
    TempDir dir;
    QuietLogs quiet;
    auto p = written_profile(dir, "[harden]\n");
    Settings s;
    auto spec = sshd_group(harden_view(p, "ssh"), s);
    auto full_dropin = spec.files[0].content;
    CHECK(contains(full_dropin, "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"));
    REQUIRE(spec.prepare);

    FakeTarget bullseye;
    bullseye.host().ssh_algorithms = openssh_8_4();
    auto prepared = spec;
    REQUIRE(prepared.prepare(bullseye, prepared).ok());
    CHECK(bullseye.host().unknown.empty());
    CHECK(bullseye.host().host_mutations() == 0);
    const auto& dropin = prepared.files[0].content;
    CHECK(has_line(dropin, "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
                           "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK_FALSE(contains(dropin, "sntrup761"));
    CHECK(has_line(dropin,
                   "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
                   "aes192-ctr,aes128-ctr"));
    CHECK(has_line(dropin, "PasswordAuthentication no"));
    // The drift probe compares sshd -T with the drop-in actually written, and the control expects it.
    CHECK(contains(prepared.drift, util::sha256_hex(dropin)));
    CHECK_FALSE(contains(prepared.drift, util::sha256_hex(full_dropin)));
    CHECK_FALSE(contains(prepared.drift, "sntrup761"));
    const auto& kex = control(prepared, "ssh.kexalgorithms");
    CHECK(kex.expect.passes("curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
                            "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK_FALSE(kex.expect.passes(
        "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
        "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"));
    CHECK(prepared.controls.size() == spec.controls.size());

    // Debian 12: everything stays as rendered.
    FakeTarget bookworm;
    auto same = spec;
    REQUIRE(same.prepare(bookworm, same).ok());
    CHECK(same.files[0].content == full_dropin);
    CHECK(same.drift == spec.drift);

    // A host whose OpenSSH supports none of the MACs: a clear error, nothing written.
    FakeTarget ancient;
    ancient.host().ssh_algorithms = openssh_8_4();
    ancient.host().ssh_algorithms["mac"] = {"hmac-sha1"};
    auto refused = spec;
    check_error(refused.prepare(ancient, refused), {"MACs"});

    // No ssh client to ask: nodectl's full lists (sshd -t still guards the apply).
    FakeTarget no_client;
    no_client.host().ssh_algorithms.clear();
    auto full = spec;
    REQUIRE(full.prepare(no_client, full).ok());
    CHECK(full.files[0].content == full_dropin);

    // Switched off: nothing to ask.
    auto off_profile = written_profile(dir, "[harden.ssh]\nenabled = false\n", "off.toml");
    auto off = sshd_group(harden_view(off_profile, "ssh"), s);
    FakeTarget untouched;
    REQUIRE(off.prepare(untouched, off).ok());
    CHECK(untouched.host().commands.empty());
}

TEST_CASE(
    "harden sshd: filter_moduli drops groups under 3071 bits, keeps comments and larger groups, and is idempotent") {
    std::string in = "#    $OpenBSD: moduli,v 1.33 2023/03/01 $\n"
                     "# Time Type Tests Tries Size Generator Modulus\n"
                     "20230101000000 2 6 100 2047 2 C0FFEE01\n"
                     "20230101000001 2 6 100 3071 5 C0FFEE02\n"
                     "20230101000002 2 6 100 3070 2 C0FFEE03\n"
                     "20230101000003 2 6 100 4095 2 C0FFEE04\n"
                     "20230101000004 2 6 100 1535 5 C0FFEE05\n"
                     "20230101000005 2 6 100 8191 2 C0FFEE06\n";
    std::string want = "#    $OpenBSD: moduli,v 1.33 2023/03/01 $\n"
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

}  // namespace harden_sshd_test

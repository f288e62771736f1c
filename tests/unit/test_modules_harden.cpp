// The harden module: what the accounts, filesystem and kernel groups render from a profile (pure
// functions: login.defs, fstab, sysctl values) and which steps the module builds. The sshd and
// firewall groups have files of their own (test_modules_harden_sshd.cpp, _firewall.cpp), and
// ApplyConfigSet, which applies every group, is tested for real in test_modules_config_set*.cpp.
#include "harden_support.hpp"
#include "result_checks.hpp"
#include "test_support.hpp"

#include "modules/base/steps.hpp"
#include "modules/config_set/config_set.hpp"
#include "modules/harden/groups.hpp"
#include "modules/harden/harden.hpp"
#include "nodectl/module.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

using namespace nodectl;
// nodectl::harden's and the test helpers' names unqualified in this file only: its own namespace
// keeps the using-directives out of the test files compiled together with this one (unity build).
namespace harden_test {
using namespace nodectl::harden;
using namespace nodectl::testing;

namespace {

using SysctlValues = std::vector<std::pair<std::string, std::string>>;

// The value of `key` in `kv` ("<absent>" when it is not there); a key must not be there twice.
std::string value_of(const SysctlValues& kv, const std::string& key) {
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

// Each key of `want` has its value in `values` ("<absent>": the key is not there).
void check_values(const SysctlValues& values, const SysctlValues& want) {
    for (const auto& [key, value] : want) {
        CAPTURE(key);
        CHECK(value_of(values, key) == value);
    }
}

// The host the module's steps are built for.
HostSpec test_host() {
    HostSpec host;
    host.name = host.address = "test-host";
    return host;
}

// One file of a config set, whatever the header calls its type.
using SetFile = std::decay_t<decltype(ConfigSetSpec{}.files)>::value_type;

const std::string k_admin_key =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0ZXN0a2V5Zm9ybm9kZWN0bHVuaXR0ZXN0cw admin@example";

}  // namespace

// =============================================================================================
// accounts: login.defs

TEST_CASE("harden accounts: edit_login_defs replaces keys, disables duplicates, appends missing keys, keeps comments") {
    std::vector<std::pair<std::string, std::string>> values = {
        {"PASS_MAX_DAYS", "365"}, {"UMASK", "027"}, {"ENCRYPT_METHOD", "SHA512"}};
    std::string in = "# /etc/login.defs\n"
                     "#PASS_MAX_DAYS 30\n"
                     "MAIL_DIR        /var/mail\n"
                     "PASS_MAX_DAYS\t99999\n"
                     "\n"
                     "  UMASK   022\n"
                     "PASS_MAX_DAYS_EXTRA 5\n"
                     "PASS_MAX_DAYS 10\n"
                     "   \n";
    std::string want = "# /etc/login.defs\n"
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

TEST_CASE(
    "harden accounts: the group needs admin keys when root cannot log in, and edits login.defs from the profile") {
    TempDir dir;
    auto p = written_profile(dir, "[harden.accounts]\npass_max_days = 90\numask = \"0077\"\n");
    Settings s;
    s.root_login_disabled = true;
    check_error(accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), s, HostSpec{}), ErrorCode::config,
                {"harden.accounts.admin_keys", dir.file("profile.toml") + ":1:"});

    Settings root_may;
    auto spec = value_ok(accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), root_may, HostSpec{}));
    auto login_defs = std::find_if(spec.files.begin(), spec.files.end(),
                                   [](const SetFile& f) { return f.path == "/etc/login.defs"; });
    REQUIRE(login_defs != spec.files.end());
    REQUIRE(login_defs->edit);
    auto edited = login_defs->edit("PASS_MAX_DAYS 99999\nUMASK 022\n");
    CHECK(has_line(edited, "PASS_MAX_DAYS\t90"));
    CHECK(has_line(edited, "UMASK\t0077"));
    // No admin keys: no authorized_keys or sudoers file to write.
    for (const auto& f : spec.files) {
        CHECK_FALSE(contains(f.path, "authorized_keys"));
        CHECK_FALSE(contains(f.path, "sudoers"));
    }
}

TEST_CASE("harden accounts: admin keys make an admin user with sudo, in the groups sshd allows, with its own control") {
    TempDir dir;
    auto p = written_profile(
        dir, "[harden.accounts]\nadmin_user = \"ops\"\nadmin_keys = [\"" + k_admin_key +
                 "\", \"${vars.second_key}\"]\n[harden.ssh]\nallow_groups = [\"ssh-users\", \"wheel\"]\n");
    HostSpec host;
    host.name = "web1";
    host.vars["second_key"] =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNlY29uZGtleWZvcm5vZGVjdGx1bml0dGVzdHM second@example";
    Settings s;
    s.root_login_disabled = true;
    auto spec = value_ok(accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), s, host));
    CHECK(spec.id == "harden/accounts");
    CHECK(spec.enabled);

    struct File {
        std::string path;
        unsigned mode;
        std::string owner;  // and group
    };
    const std::vector<File> files = {
        {"/home/ops/.ssh/authorized_keys", 0600, "ops"},
        {"/etc/sudoers.d/nodectl-admin", 0440, "root"},
        {"/etc/login.defs", 0644, "root"},
        {"/etc/security/pwquality.conf.d/nodectl.conf", 0644, "root"},
        {"/etc/security/faillock.conf", 0644, "root"},
        {"/etc/profile.d/nodectl-shell.sh", 0644, "root"},
        {"/usr/share/pam-configs/nodectl-faillock-notify", 0644, "root"},
        {"/usr/share/pam-configs/nodectl-faillock", 0644, "root"},
    };
    REQUIRE(spec.files.size() == files.size());
    for (size_t i = 0; i < files.size(); ++i) {
        CAPTURE(files[i].path);
        CHECK(spec.files[i].path == files[i].path);
        CHECK(spec.files[i].mode == files[i].mode);
        CHECK(spec.files[i].owner == files[i].owner);
        CHECK(spec.files[i].group == files[i].owner);
    }
    CHECK(spec.files[0].content ==
          "# Managed by nodectl (harden.accounts.admin_keys)\n" + k_admin_key + "\n" + host.vars["second_key"] + "\n");
    CHECK(spec.files[1].content ==
          "# Managed by nodectl (harden.accounts.admin_user)\nops ALL=(ALL:ALL) NOPASSWD: ALL\n");
    CHECK(has_line(spec.files[3].content, "minlen = 14"));
    CHECK(has_line(spec.files[5].content, "umask 027"));

    // The user, its groups and home are made before the files are written, and again on activation.
    check_contains_all(
        spec.pre_write,
        {"for g in 'sudo' 'ssh-users' 'wheel'; do getent group \"$g\" >/dev/null || groupadd \"$g\"; done\n",
         "useradd --create-home --shell /bin/bash --user-group 'ops'\n", "usermod -a -G 'sudo,ssh-users,wheel' 'ops'\n",
         "chmod 750 '/home/ops'\n", "install -d -m 700 -o 'ops' -g 'ops' '/home/ops/.ssh'\n"});
    CHECK(spec.activate.starts_with("passwd -l root >/dev/null\n"));
    CHECK(spec.activate.ends_with(spec.pre_write));
    CHECK(contains(spec.drift, "echo \"add ops to group $g\""));
    CHECK(spec.validate == "visudo -c -q -f /etc/sudoers.d/nodectl-admin");

    std::vector<std::string> ids;
    for (const auto& c : spec.controls) {
        ids.push_back(c.id);
    }
    CHECK(ids == std::vector<std::string>{
                     "accounts.root_password_locked", "accounts.no_empty_passwords", "accounts.faillock",
                     "accounts.pwquality", "accounts.login_defs.PASS_MAX_DAYS", "accounts.login_defs.PASS_MIN_DAYS",
                     "accounts.login_defs.PASS_WARN_AGE", "accounts.login_defs.UMASK", "accounts.login_defs.HOME_MODE",
                     "accounts.login_defs.ENCRYPT_METHOD", "accounts.login_defs.SHA_CRYPT_MIN_ROUNDS",
                     "accounts.login_defs.SHA_CRYPT_MAX_ROUNDS", "accounts.admin_user"});
    CHECK(spec.controls.back().expect.passes("wheel,sudo,ssh-users"));
    CHECK_FALSE(spec.controls.back().expect.passes("sudo,ssh-users"));

    // A key that expands to something that is not a key names the host and the value.
    host.vars["second_key"] = "not a key";
    check_error(accounts_group(harden_view(p, "accounts"), harden_view(p, "ssh"), s, host), ErrorCode::config,
                {dir.file("profile.toml") + ":3:", "'harden.accounts.admin_keys' for host 'web1' is \"not a key\""});
}

// =============================================================================================
// filesystem: fstab

namespace {
const std::string k_shm = "tmpfs\t/dev/shm\ttmpfs\tdefaults,nosuid,nodev,noexec\t0\t0";
std::string edit_fstab_shm(const std::string& current) {
    return set_fstab_entries(current, {k_shm});
}

// How many entries of `fstab` (not comments) mount something at /dev/shm.
size_t shm_entries(const std::string& fstab) {
    size_t n = 0;
    for (const auto& l : util::split_lines(fstab)) {
        std::istringstream fields(l);
        std::string what, where;
        if (!l.starts_with("#") && fields >> what >> where && where == "/dev/shm") {
            ++n;
        }
    }
    return n;
}
}  // namespace

TEST_CASE(
    "harden filesystem: set_fstab_entries adds the /dev/shm line once, replaces an existing one, leaves the rest") {
    const std::string shm = k_shm + "\n";
    const std::string root = "UUID=1234-abcd / ext4 errors=remount-ro 0 1\n";
    const std::string comment = "# /dev/shm is not mounted here: tmpfs /dev/shm tmpfs defaults 0 0\n";
    const std::string bind = "/dev/shm/data /srv/data none bind 0 0\n";
    struct Case {
        const char* what;
        std::string fstab, edited;
    };
    const std::vector<Case> cases = {
        {"added at the end", root + comment + bind, root + comment + bind + shm},
        {"replaced in place", root + "tmpfs /dev/shm tmpfs defaults,size=1g 0 0\n" + bind, root + shm + bind},
        {"replaced, fields separated by tabs", "none\t/dev/shm\ttmpfs\trw 0 0\n" + root, shm + root},
        {"two entries become one, where the first was",
         "tmpfs /dev/shm tmpfs defaults 0 0\n" + root + "shm /dev/shm tmpfs rw 0 0\n", shm + root},
        {"an empty fstab", "", shm},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto out = edit_fstab_shm(c.fstab);
        CHECK(out == c.edited);
        CHECK(edit_fstab_shm(out) == out);
        CHECK(shm_entries(out) == 1);
    }

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
    check_values(v, {{"net.ipv4.ip_forward", "0"},
                     {"net.ipv6.conf.all.forwarding", "0"},
                     {"net.ipv4.conf.all.rp_filter", "1"},
                     {"kernel.kptr_restrict", "2"},
                     {"net.ipv4.tcp_syncookies", "1"},
                     {"vm.overcommit_memory", "<absent>"},
                     {"kernel.panic", "<absent>"}});
    for (const auto& [k, _] : v) {
        CHECK_FALSE(k.starts_with("net.bridge."));
    }
}

TEST_CASE("harden kernel: k3s roles forward, keep bridge netfilter on and get k3s's protect-kernel-defaults values") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-server\"\n");
    for (auto role : {Role::k3s_server, Role::k3s_server_ha, Role::k3s_agent}) {
        CAPTURE(static_cast<int>(role));
        check_values(sysctl_values(harden_view(p, "kernel"), role), {{"net.ipv4.ip_forward", "1"},
                                                                     {"net.ipv6.conf.all.forwarding", "1"},
                                                                     {"net.bridge.bridge-nf-call-iptables", "1"},
                                                                     {"net.bridge.bridge-nf-call-ip6tables", "1"},
                                                                     {"vm.overcommit_memory", "1"},
                                                                     {"kernel.panic", "10"},
                                                                     {"kernel.panic_on_oops", "1"},
                                                                     {"vm.panic_on_oom", "0"},
                                                                     {"net.ipv4.conf.all.rp_filter", "2"}});
    }
    const std::vector<std::pair<std::string, Role>> roles = {{"k3s-server", Role::k3s_server},
                                                             {"k3s-server-ha", Role::k3s_server_ha},
                                                             {"k3s-agent", Role::k3s_agent},
                                                             {"standalone", Role::standalone}};
    for (const auto& [name, role] : roles) {
        CAPTURE(name);
        CHECK(parse_role(name) == role);
    }
    CHECK_FALSE(is_kubernetes(Role::standalone));
    CHECK(is_kubernetes(Role::k3s_agent));
}

TEST_CASE("harden kernel: [harden.kernel.sysctl] overrides a default in place and adds new keys") {
    TempDir dir;
    auto p = written_profile(
        dir,
        "[harden.kernel.sysctl]\n\"kernel.sysrq\" = \"176\"\n\"vm.swappiness\" = \"10\"\n\"net.ipv4.ip_forward\" = \"1\"\n");
    auto defaults =
        sysctl_values(harden_view(written_profile(dir, "[harden]\n", "plain.toml"), "kernel"), Role::standalone);
    auto v = sysctl_values(harden_view(p, "kernel"), Role::standalone);
    check_values(v, {{"kernel.sysrq", "176"}, {"net.ipv4.ip_forward", "1"}, {"vm.swappiness", "10"}});
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

TEST_CASE(
    "harden kernel: forwarding keys are written first, live and in the sysctl.d file (changing forwarding resets accept_redirects)") {
    const std::vector<std::pair<std::string, bool>> keys = {
        {"net.ipv4.ip_forward", true},
        {"net.ipv4.conf.all.forwarding", true},
        {"net.ipv4.conf.eth0.forwarding", true},
        {"net.ipv6.conf.default.forwarding", true},
        {"net/ipv4/ip_forward", true},
        {"net.ipv4.conf.all.accept_redirects", false},
        {"net.ipv4.conf.all.mc_forwarding", false},
        {"net.ipv6.conf.all.forwarding_extra", false},
    };
    for (const auto& [key, forwarding] : keys) {
        CAPTURE(key);
        CHECK(is_forwarding_key(key) == forwarding);
    }

    TempDir dir;
    auto p = written_profile(
        dir, "[harden.kernel.sysctl]\n\"vm.swappiness\" = \"10\"\n\"net.ipv4.conf.eth0.forwarding\" = \"0\"\n");
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
        auto live_redirects =
            spec.activate.find("net.ipv4.conf.all.accept_redirects /proc/sys/net/ipv4/conf/all/accept_redirects");
        REQUIRE(live_forward != std::string::npos);
        REQUIRE(live_redirects != std::string::npos);
        CHECK(live_forward < live_redirects);
    }
}

// =============================================================================================
// The module's steps

TEST_CASE("harden steps: a profile without [harden] has no harden steps") {
    TempDir dir;
    auto p = written_profile(dir, "[base]\npackages = [\"less\"]\n");
    CHECK(value_ok(harden::steps({p, test_host()})).empty());

    auto all = value_ok(build_steps(p, test_host()));
    CHECK_FALSE(all.empty());
    for (const auto& s : all) {
        CHECK_FALSE(s->id().starts_with("harden/"));
    }
}

TEST_CASE("harden steps: the defaults turn root login off, so a profile without admin keys is a config error") {
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"standalone\"\n");
    auto host = test_host();
    check_error(harden::steps({p, host}), ErrorCode::config, {"harden.accounts.admin_keys", "permit_root_login"});
    check_error(build_steps(p, host), ErrorCode::config);

    // Root may still log in with a key: then no admin keys are needed.
    TempDir dir2;
    auto root_key = written_profile(dir2, "[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    CHECK(value_ok(harden::steps({root_key, host})).size() == 7);

    // Accounts off: no admin user can be made, so root login must stay.
    TempDir dir3;
    auto acc_off =
        written_profile(dir3, "[harden.accounts]\nenabled = false\nadmin_keys = [\"" + k_admin_key + "\"]\n");
    check_error(harden::steps({acc_off, host}), {"harden.accounts.admin_keys"});
}

TEST_CASE(
    "harden steps: with admin keys, packages then six config sets in order accounts, sshd, kernel, firewall, services, filesystem") {
    TempDir dir;
    auto p = written_profile(
        dir, "[harden]\nrollback_seconds = 90\n[harden.accounts]\nadmin_user = \"ops\"\nadmin_keys = [\"" +
                 k_admin_key + "\"]\n");
    auto steps = value_ok(harden::steps({p, test_host()}));
    REQUIRE(steps.size() == 7);
    CHECK(dynamic_cast<base::EnsurePackages*>(steps[0].get()) != nullptr);
    std::vector<std::string> ids;
    for (size_t i = 1; i < steps.size(); ++i) {
        auto* set = dynamic_cast<ApplyConfigSet*>(steps[i].get());
        REQUIRE(set != nullptr);
        CHECK(set->spec().enabled);
        ids.push_back(set->id());
    }
    CHECK(ids == std::vector<std::string>{"harden/accounts", "harden/sshd", "harden/kernel", "harden/firewall",
                                          "harden/services", "harden/filesystem"});

    auto* accounts = dynamic_cast<ApplyConfigSet*>(steps[1].get());
    CHECK(std::any_of(accounts->spec().files.begin(), accounts->spec().files.end(), [](const SetFile& f) {
        return f.path == "/home/ops/.ssh/authorized_keys" && f.owner == "ops" && f.mode == 0600;
    }));
    auto* sshd = dynamic_cast<ApplyConfigSet*>(steps[2].get());
    CHECK(sshd->spec().guard);
    CHECK(sshd->spec().fresh_login_as_when_root == "ops");
    CHECK(sshd->spec().rollback_after == std::chrono::seconds(90));
    auto* fw = dynamic_cast<ApplyConfigSet*>(steps[4].get());
    CHECK(fw->spec().guard);
    CHECK(fw->spec().fresh_login_as_when_root == "ops");

    // build_steps puts them after the base module's.
    auto all = value_ok(build_steps(p, test_host()));
    REQUIRE(all.size() >= 6);
    CHECK(all.back()->id() == "harden/filesystem");
}

TEST_CASE("harden services: AIDE's first database is left to a unit of its own, started without waiting for it") {
    TempDir dir;
    auto services = [&](const std::string& extra) {
        auto p = written_profile(dir, "[harden.accounts]\nadmin_keys = [\"" + k_admin_key + "\"]\n" + extra);
        auto steps = value_ok(harden::steps({p, test_host()}));
        auto* set = dynamic_cast<ApplyConfigSet*>(steps[5].get());
        REQUIRE(set != nullptr);
        REQUIRE(set->id() == "harden/services");
        return set->spec();
    };
    auto on = services("");
    auto unit = std::find_if(on.files.begin(), on.files.end(), [](const SetFile& f) {
        return f.path == "/etc/systemd/system/nodectl-aide-baseline.service";
    });
    REQUIRE(unit != on.files.end());
    CHECK(unit->content.find("ExecStart=/usr/sbin/aideinit --yes --force\n") != std::string::npos);
    CHECK(unit->content.find("ConditionFileNotEmpty=!/var/lib/aide/aide.db\n") != std::string::npos);
    CHECK(unit->content.find("WantedBy=multi-user.target\n") != std::string::npos);
    // The apply never runs aideinit itself; it starts the unit, waits (bounded) only until the job
    // has begun, and goes on.
    CHECK(on.activate.find("aideinit") == std::string::npos);
    CHECK(contains(on.activate,
                   "systemctl daemon-reload\nsystemctl enable --quiet 'nodectl-aide-baseline.service'\n"
                   "[ -s /var/lib/aide/aide.db ] || { systemctl start --no-block 'nodectl-aide-baseline.service'; "));
    CHECK(contains(on.activate, "= inactive ] && [ ! -s /var/lib/aide/aide.db ] && [ $i -lt 50 ]; do sleep 0.2; "));
    auto control = std::find_if(on.controls.begin(), on.controls.end(),
                                [](const host::Control& c) { return c.id == "services.aide_database"; });
    REQUIRE(control != on.controls.end());
    CHECK(control->expect.passes("present"));
    CHECK(control->expect.passes("being built (nodectl-aide-baseline.service)"));
    CHECK_FALSE(control->expect.passes("missing"));

    auto off = services("[harden.services]\naide = false\n");
    CHECK(std::none_of(off.files.begin(), off.files.end(),
                       [](const SetFile& f) { return f.path.find("aide") != std::string::npos; }));
    CHECK(off.activate.find("aide") == std::string::npos);
    CHECK(std::none_of(off.controls.begin(), off.controls.end(),
                       [](const host::Control& c) { return c.id == "services.aide_database"; }));
}

TEST_CASE(
    "harden steps: a group switched off still has its step (to revert), and packages follow the groups that need them") {
    TempDir dir;
    auto p = written_profile(
        dir,
        "[harden.ssh]\npermit_root_login = \"prohibit-password\"\n"
        "[harden.accounts]\nenabled = false\n[harden.firewall]\nenabled = false\n[harden.services]\nenabled = false\n");
    HostSpec host;
    auto steps = value_ok(harden::steps({p, host}));
    REQUIRE(steps.size() == 6);  // nothing to install
    std::map<std::string, bool> enabled;
    for (const auto& s : steps) {
        auto* set = dynamic_cast<ApplyConfigSet*>(s.get());
        REQUIRE(set != nullptr);
        enabled[set->id()] = set->spec().enabled;
    }
    CHECK(enabled == std::map<std::string, bool>{{"harden/accounts", false},
                                                 {"harden/sshd", true},
                                                 {"harden/kernel", true},
                                                 {"harden/firewall", false},
                                                 {"harden/services", false},
                                                 {"harden/filesystem", true}});

    // A k3s role without cluster networks stops the module before any host is contacted.
    TempDir dir2;
    auto k3s = written_profile(
        dir2, "[harden]\nrole = \"k3s-server\"\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    check_error(harden::steps({k3s, host}), {"harden.firewall.cluster_networks"});
}

// =============================================================================================
// Regressions: each case failed against an earlier version of these sources.

TEST_CASE(
    "harden regression: a config error about a group the profile does not spell out still names the profile file and line") {
    // ConfigView::where() of a missing section is the location of an empty table: "<input>:0:0".
    TempDir dir;
    auto p = written_profile(dir, "[harden]\nrole = \"k3s-agent\"\n");
    HostSpec host;
    CHECK(error_of(harden::steps({p, host})).message.starts_with(dir.file("profile.toml") + ":"));

    TempDir dir2;
    auto p2 = written_profile(
        dir2, "[harden]\nrole = \"k3s-agent\"\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    auto no_networks = harden::steps({p2, host});
    check_error(no_networks, {"harden.firewall.cluster_networks"});
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

TEST_CASE("harden regression: step ids are unique when both base and harden install packages") {
    // harden's EnsurePackages is "base/packages" too; the journal keys steps by id, so a resumed run
    // that finished base's package step skips harden's as done.
    TempDir dir;
    auto p = written_profile(
        dir, "[base]\npackages = [\"less\"]\n[harden.ssh]\npermit_root_login = \"prohibit-password\"\n");
    std::multiset<std::string> ids;
    for (const auto& s : value_ok(build_steps(p, test_host()))) {
        ids.insert(s->id());
    }
    CHECK(ids.count("base/packages") == 1);
    CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
}

}  // namespace harden_test

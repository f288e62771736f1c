// Accounts: an admin user with SSH keys and sudo (members of the groups sshd allows), root's
// password locked, no account with an empty password, password ageing and UMASK in login.defs,
// pam_pwquality and pam_faillock (through pam-auth-update profiles, so Debian's own PAM stack
// management keeps working).
#include "modules/harden/groups.hpp"

#include "util/strings.hpp"

namespace nodectl::harden {

namespace {

constexpr const char* k_faillock_profile = "/usr/share/pam-configs/nodectl-faillock";
constexpr const char* k_faillock_notify_profile = "/usr/share/pam-configs/nodectl-faillock-notify";

// pam_faillock in the auth stack: preauth before pam_unix, authfail/authsucc after it, and the
// account check; the usual split into two pam-auth-update profiles (Primary runs first).
constexpr const char* k_faillock_notify = R"sh(Name: Refuse logins to accounts locked by pam_faillock (nodectl)
Default: yes
Priority: 1024
Auth-Type: Primary
Auth:
	requisite			pam_faillock.so preauth
)sh";

constexpr const char* k_faillock = R"sh(Name: Lock accounts after repeated failed logins (nodectl)
Default: yes
Priority: 0
Auth-Type: Primary
Auth:
	[default=die]			pam_faillock.so authfail
	sufficient			pam_faillock.so authsucc
Account-Type: Primary
Account:
	required			pam_faillock.so
)sh";

// The admin user of [harden.accounts]: made, with its keys and sudo, only when it has keys.
struct Admin {
    std::string user;
    std::string home;
    std::vector<std::string> keys;  // expanded for the host
    std::vector<std::string> groups;  // sudo, then the groups sshd allows
};

using LoginDefs = std::vector<std::pair<std::string, std::string>>;

// harden.accounts.admin_keys with ${...} expanded for `host`, each checked again once expanded.
Result<std::vector<std::string>> admin_keys(const ConfigView& acc, const HostSpec& host) {
    std::vector<std::string> keys;
    for (const auto& k : acc.strings("admin_keys")) {
        auto key = TRY(expand_vars(k, host, acc.where("admin_keys")));
        if (auto reason = check_expanded(ConfigFile::profile, "harden.accounts.admin_keys", key); !reason.empty()) {
            return make_error(ErrorCode::config, acc.where("admin_keys") + ": 'harden.accounts.admin_keys' for host '" +
                                                     host.name + "' is \"" + key + "\", which " + reason);
        }
        keys.push_back(key);
    }
    return keys;
}

// The login.defs values nodectl sets, in the order they are written and checked.
LoginDefs login_defs(const ConfigView& acc) {
    return {
        {"PASS_MAX_DAYS", std::to_string(acc.integer("pass_max_days"))},
        {"PASS_MIN_DAYS", std::to_string(acc.integer("pass_min_days"))},
        {"PASS_WARN_AGE", std::to_string(acc.integer("pass_warn_age"))},
        {"UMASK", acc.str("umask")},
        {"HOME_MODE", "0750"},
        {"ENCRYPT_METHOD", "SHA512"},
        {"SHA_CRYPT_MIN_ROUNDS", "65536"},
        {"SHA_CRYPT_MAX_ROUNDS", "65536"},
    };
}

// The admin's authorized_keys and sudoers entry (when it has keys), login.defs, pwquality,
// faillock, the shell profile and the two pam-auth-update profiles.
void add_account_files(ConfigSetSpec& spec, const ConfigView& acc, const Admin& admin, const LoginDefs& defs) {
    if (!admin.keys.empty()) {
        spec.files.push_back(
            {admin.home + "/.ssh/authorized_keys",
             "# Managed by nodectl (harden.accounts.admin_keys)\n" + util::join(admin.keys, "\n") + "\n", nullptr, 0600,
             admin.user, admin.user});
        spec.files.push_back(
            {"/etc/sudoers.d/nodectl-admin",
             "# Managed by nodectl (harden.accounts.admin_user)\n" + admin.user + " ALL=(ALL:ALL) NOPASSWD: ALL\n",
             nullptr, 0440});
    }
    spec.files.push_back(
        {"/etc/login.defs", "", [defs](const std::string& cur) { return edit_login_defs(cur, defs); }, 0644});
    spec.files.push_back(
        {"/etc/security/pwquality.conf.d/nodectl.conf",
         "# Managed by nodectl (harden.accounts)\nminlen = " + std::to_string(acc.integer("password_min_length")) +
             "\ndcredit = -1\nucredit = -1\nlcredit = -1\nocredit = -1\nretry = 3\nenforce_for_root\n",
         nullptr, 0644});
    spec.files.push_back(
        {"/etc/security/faillock.conf",
         "# Managed by nodectl (harden.accounts)\ndeny = " + std::to_string(acc.integer("faillock_deny")) +
             "\nunlock_time = " + std::to_string(acc.integer("faillock_unlock_seconds")) +
             "\nfail_interval = 900\naudit\n",
         nullptr, 0644});
    spec.files.push_back(
        {"/etc/profile.d/nodectl-shell.sh",
         "# Managed by nodectl (harden.accounts): idle shells end, new files are not world-readable.\nTMOUT=" +
             std::to_string(acc.integer("shell_timeout_seconds")) + "\nreadonly TMOUT\nexport TMOUT\numask " +
             acc.str("umask") + "\n",
         nullptr, 0644});
    spec.files.push_back({k_faillock_notify_profile, k_faillock_notify, nullptr, 0644});
    spec.files.push_back({k_faillock_profile, k_faillock, nullptr, 0644});
}

// What runs on the host: the admin user made before the files are written (it owns its keys),
// root's and empty passwords locked and faillock enabled on activation, and the drift that finds
// any of it undone.
void add_account_scripts(ConfigSetSpec& spec, const Admin& admin) {
    if (!admin.keys.empty()) {
        std::string q = shell_quote(admin.user);
        spec.pre_write = "set -e\nfor g in " + shell_quote_all(admin.groups) +
                         "; do getent group \"$g\" >/dev/null || groupadd \"$g\"; done\n"
                         "id -u " +
                         q + " >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --user-group " + q +
                         "\n"
                         "usermod -a -G " +
                         shell_quote(util::join(admin.groups, ",")) + " " + q +
                         "\n"
                         "chmod 750 " +
                         shell_quote(admin.home) +
                         "\n"
                         "install -d -m 700 -o " +
                         q + " -g " + q + " " + shell_quote(admin.home + "/.ssh") + "\n";
    }
    std::string drift =
        "[ \"$(passwd -S root | awk '{print $2}')\" = L ] || echo 'lock the root password'\n"
        "for u in $(awk -F: '$2 == \"\" { print $1 }' /etc/shadow); do echo \"lock account $u: it has an empty password\"; done\n"
        "grep -q pam_faillock /etc/pam.d/common-auth || echo 'add pam_faillock to the PAM auth stack'\n";
    if (!admin.keys.empty()) {
        drift += "for g in " + shell_quote_all(admin.groups) + "; do id -nG " + shell_quote(admin.user) +
                 " 2>/dev/null | tr ' ' '\\n' | grep -qx \"$g\" || echo \"add " + admin.user + " to group $g\"; done\n";
    }
    spec.drift = drift;
    spec.validate = admin.keys.empty() ? "" : "visudo -c -q -f /etc/sudoers.d/nodectl-admin";
    spec.activate = "passwd -l root >/dev/null\n"
                    "for u in $(awk -F: '$2 == \"\" { print $1 }' /etc/shadow); do passwd -l \"$u\" >/dev/null; done\n"
                    "pam-auth-update --package --enable nodectl-faillock nodectl-faillock-notify\n" +
                    spec.pre_write;
    spec.restore_activate = "pam-auth-update --package";
    spec.deactivate = "pam-auth-update --package";
}

// The group's controls: root's password, empty passwords, faillock, pwquality, each login.defs
// value, and the admin user's groups (when it has keys).
void add_account_controls(ConfigSetSpec& spec, const Admin& admin, const LoginDefs& defs) {
    spec.controls = {
        {"accounts.root_password_locked", "root's password is locked", "passwd -S root | awk '{print $2}'",
         host::equals("L"), ""},
        {"accounts.no_empty_passwords", "no account has an empty password",
         "awk -F: '$2 == \"\" { print $1 }' /etc/shadow | tr '\\n' ' '", host::empty_output("none"), ""},
        {"accounts.faillock", "pam_faillock locks accounts after failed logins",
         "grep -c pam_faillock /etc/pam.d/common-auth", host::at_least(3), ""},
        {"accounts.pwquality", "pam_pwquality checks new passwords", "grep -c pam_pwquality /etc/pam.d/common-password",
         host::at_least(1), ""},
    };
    for (const auto& [k, v] : defs) {
        spec.controls.push_back({"accounts.login_defs." + k, "login.defs " + k,
                                 "awk '$1 == \"" + k + "\" { print $2; exit }' /etc/login.defs", host::equals(v), ""});
    }
    if (!admin.keys.empty()) {
        spec.controls.push_back({"accounts.admin_user", "admin user " + admin.user + " can use sudo and ssh",
                                 "id -nG " + shell_quote(admin.user) + " | tr ' ' '\\n' | grep -xE '" +
                                     util::join(admin.groups, "|") + "' | sort | tr '\\n' ',' | sed 's/,$//'",
                                 host::same_set(admin.groups), ""});
    }
}

}  // namespace

Result<ConfigSetSpec> accounts_group(const ConfigView& acc, const ConfigView& ssh, const Settings& s,
                                     const HostSpec& host) {
    ConfigSetSpec spec;
    spec.id = "harden/accounts";
    spec.title = "accounts and password policy";
    spec.enabled = acc.boolean("enabled");
    Admin admin;
    admin.user = acc.str("admin_user");
    admin.home = "/home/" + admin.user;
    admin.keys = TRY(admin_keys(acc, host));
    if (s.root_login_disabled && (!spec.enabled || admin.keys.empty())) {
        return make_error(
            ErrorCode::config,
            acc.where("admin_keys") +
                ": root login is turned off (harden.ssh.permit_root_login = \"no\", the default), so the admin "
                "user is the only way in: set harden.accounts.admin_keys (with harden.accounts enabled), or "
                "permit_root_login = \"prohibit-password\"");
    }
    admin.groups = {"sudo"};
    if (ssh.boolean("enabled")) {
        auto allowed = ssh.strings("allow_groups");
        admin.groups.insert(admin.groups.end(), allowed.begin(), allowed.end());
    }
    auto defs = login_defs(acc);
    add_account_files(spec, acc, admin, defs);
    add_account_scripts(spec, admin);
    add_account_controls(spec, admin, defs);
    return spec;
}

}  // namespace nodectl::harden

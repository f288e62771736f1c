// Services: auditd with a rule set (identity, sudoers, sshd config, time, modules, mounts,
// privileged commands, the audit trail itself) loaded by augenrules; fail2ban's sshd jail on the
// systemd journal, banning through nftables; unattended-upgrades limited to security updates;
// systemd-timesyncd; AppArmor. Units are enabled and started where they can run: a unit whose
// systemd conditions fail here (AppArmor or time sync inside a container), or auditd without the
// kernel audit interface, is left enabled but not started, and its control says why. AIDE's
// first database is built by a unit of its own after the apply (a scan of the whole file system
// takes minutes on a real host; the apply does not wait for it, `check` says whether it is done).
#include "modules/harden/groups.hpp"

#include "host/services.hpp"
#include "util/strings.hpp"

namespace nodectl::harden {

namespace {

constexpr const char* k_audit_rules =
    R"sh(## Managed by nodectl (harden.services.auditd): changes here are replaced on the next apply.
-b 8192
-f 1
--backlog_wait_time 60000

## identity
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
## sudoers
-w /etc/sudoers -p wa -k sudoers
-w /etc/sudoers.d -p wa -k sudoers
## sshd configuration
-w /etc/ssh/sshd_config -p wa -k sshd
-w /etc/ssh/sshd_config.d -p wa -k sshd
## time changes
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change
-w /etc/localtime -p wa -k time-change
## kernel modules
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules
-a always,exit -F arch=b32 -S init_module,finit_module,delete_module -k modules
-w /usr/sbin/insmod -p x -k modules
-w /usr/sbin/rmmod -p x -k modules
-w /usr/sbin/modprobe -p x -k modules
## mounts by users
-a always,exit -F arch=b64 -S mount,umount2 -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b32 -S mount,umount,umount2 -F auid>=1000 -F auid!=unset -k mounts
## privileged commands
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/passwd -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/chsh -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/chfn -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/gpasswd -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/newgrp -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/chage -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/mount -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F path=/usr/bin/umount -F perm=x -F auid>=1000 -F auid!=unset -k privileged
## the audit trail and its configuration
-w /var/log/audit/ -p wa -k audit-log
-w /etc/audit/ -p wa -k audit-config
-w /etc/libaudit.conf -p wa -k audit-config
-w /usr/sbin/auditctl -p x -k audit-tools
-w /usr/sbin/auditd -p x -k audit-tools
-w /usr/sbin/augenrules -p x -k audit-tools
)sh";

constexpr const char* k_uu_periodic = R"sh(// Managed by nodectl (harden.services.unattended_upgrades).
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
)sh";

// apt.conf lists add up across files: #clear drops Debian's defaults (which include point
// releases) so that only security updates are installed automatically.
constexpr const char* k_uu_origins =
    R"sh(// Managed by nodectl (harden.services.unattended_upgrades): security updates only.
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
        "origin=Debian,codename=${distro_codename},label=Debian-Security";
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
        "origin=Ubuntu,archive=${distro_codename}-security,label=Ubuntu";
};
Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";
Unattended-Upgrade::Automatic-Reboot "false";
)sh";

constexpr const char* k_aide_unit = "nodectl-aide-baseline.service";
constexpr const char* k_aide_unit_file =
    R"sh(# Managed by nodectl (harden.services.aide): builds AIDE's first database after an apply, at low
# priority, so that the apply does not wait for a scan of the whole file system. Does nothing once
# the database exists; runs again at boot if the machine stopped before it was done.
[Unit]
Description=First AIDE file integrity database (nodectl)
ConditionFileNotEmpty=!/var/lib/aide/aide.db

[Service]
Type=oneshot
ExecStart=/usr/sbin/aideinit --yes --force
Nice=19
IOSchedulingClass=idle

[Install]
WantedBy=multi-user.target
)sh";

// Prints "present", "being built (UNIT)" or "missing" for AIDE's database.
std::string aide_database_state() {
    return "if [ -s /var/lib/aide/aide.db ]; then echo present; elif [ \"$(" + host::units::active_state(k_aide_unit) +
           ")\" = activating ]; then echo 'being built (" + k_aide_unit + ")'; else echo missing; fi";
}

// Why `unit` cannot run here, if it cannot: printed, or nothing.
std::string unit_not_applicable(const std::string& unit) {
    if (unit == "auditd.service") {
        return "auditctl -s >/dev/null 2>&1 || echo \"the kernel audit interface is not available here ($(auditctl -s 2>&1 | head -n 1))\"";
    }
    return "[ \"$(" + host::units::property(unit, "ConditionResult") + ")\" != no ] || echo \"" + unit +
           " does not run here: its systemd conditions are not met ($(systemd-detect-virt 2>/dev/null || echo unknown))\"";
}

}  // namespace

std::vector<std::string> legacy_packages() {
    return {"telnet",     "telnetd",      "inetutils-telnet",  "inetutils-telnetd",
            "rsh-client", "rsh-server",   "rsh-redone-client", "rsh-redone-server",
            "talk",       "talkd",        "inetutils-talk",    "inetutils-talkd",
            "nis",        "tftp",         "tftp-hpa",          "tftpd-hpa",
            "atftpd",     "xinetd",       "openbsd-inetd",     "inetutils-inetd",
            "ftp",        "inetutils-ftp"};
}

std::vector<std::string> service_packages(const ConfigView& sv) {
    std::vector<std::string> p;
    if (sv.boolean("auditd")) {
        p.insert(p.end(), {"auditd"});
    }
    if (sv.boolean("fail2ban")) {
        p.insert(p.end(), {"fail2ban", "python3-systemd"});
    }
    if (sv.boolean("unattended_upgrades")) {
        p.insert(p.end(), {"unattended-upgrades"});
    }
    if (sv.boolean("timesync")) {
        p.insert(p.end(), {"systemd-timesyncd"});
    }
    if (sv.boolean("apparmor")) {
        p.insert(p.end(), {"apparmor", "apparmor-utils"});
    }
    if (sv.boolean("aide")) {
        p.insert(p.end(), {"aide", "aide-common"});
    }
    auto extra = sv.strings("extra_packages");
    p.insert(p.end(), extra.begin(), extra.end());
    return p;
}

// AIDE's checksum setting and the unit that builds its first database after the apply (started
// without waiting for it); returns the activation's lines.
std::string add_aide(ConfigSetSpec& spec) {
    namespace units = host::units;
    // In aide.conf itself: Lynis reads only that file for the checksum setting.
    spec.files.push_back({"/etc/aide/aide.conf", "",
                          [](const std::string& cur) { return set_line(cur, "Checksums", "Checksums = sha512"); },
                          0644});
    spec.files.push_back({std::string("/etc/systemd/system/") + k_aide_unit, k_aide_unit_file, nullptr, 0644});
    const std::string unit = k_aide_unit;
    spec.drift += units::enabled_drift(unit) + "[ \"$(" + aide_database_state() +
                  ")\" != missing ] || echo 'build the first AIDE database (" + unit + ")'\n";
    // --no-block only queues the start: until the job begins, the unit is inactive and the
    // probe after apply would find the database "missing". Wait (up to 10 s) for it to begin.
    return units::script({units::daemon_reload(), units::enable({unit}, {.quiet = true})}) +
           "[ -s /var/lib/aide/aide.db ] || { " + units::start({unit}, {.no_block = true}).script() +
           "; i=0; while [ \"$(" + units::active_state(unit) +
           ")\" = inactive ] && [ ! -s /var/lib/aide/aide.db ] && [ $i -lt 50 ]; do sleep 0.2; "
           "i=$((i + 1)); done; }\n";
}

ConfigSetSpec services_group(const ConfigView& sv, const Settings& s) {
    namespace units = host::units;
    ConfigSetSpec spec;
    spec.id = "harden/services";
    spec.title = "hardening services";
    spec.enabled = sv.boolean("enabled");
    std::vector<std::string> running;  // enabled, and running where they can
    std::string activate;
    if (sv.boolean("auditd")) {
        spec.files.push_back({"/etc/audit/rules.d/nodectl.rules", k_audit_rules, nullptr, 0640});
        running.push_back("auditd.service");
        activate += "if auditctl -s >/dev/null 2>&1; then augenrules --load >/dev/null; fi\n";
        spec.drift +=
            "if auditctl -s >/dev/null 2>&1 && ! augenrules --check 2>&1 | grep -q 'No change'; then echo 'load the audit rules (augenrules)'; fi\n";
    }
    if (sv.boolean("fail2ban")) {
        // jail.local (not jail.d): it survives package updates, and Lynis looks for it. Debian's sshd
        // filter matches sshd.service, but the journal says ssh.service: without the journalmatch
        // override the jail never sees a failure.
        std::vector<std::string> ignore = {"127.0.0.1/8", "::1"};
        for (const auto& list : {s.cluster_networks, sv.strings("fail2ban_ignore")}) {
            ignore.insert(ignore.end(), list.begin(), list.end());
        }
        spec.files.push_back({"/etc/fail2ban/jail.local",
                              "# Managed by nodectl (harden.services.fail2ban)\n[DEFAULT]\nbackend = systemd\n"
                              "banaction = nftables-multiport\nbanaction_allports = nftables-allports\nignoreip = " +
                                  util::join(ignore, " ") +
                                  "\nmaxretry = " + std::to_string(sv.integer("fail2ban_maxretry")) +
                                  "\nfindtime = 600\nbantime = " + std::to_string(sv.integer("fail2ban_bantime")) +
                                  "\n\n[sshd]\nenabled = true\nport = " + std::to_string(s.ssh_port) +
                                  "\nbackend = systemd\njournalmatch = _SYSTEMD_UNIT=ssh.service + _COMM=sshd\n",
                              nullptr, 0644});
        running.push_back("fail2ban.service");
        activate += units::script({units::restart({"fail2ban.service"})});
    }
    if (sv.boolean("unattended_upgrades")) {
        spec.files.push_back({"/etc/apt/apt.conf.d/20auto-upgrades", k_uu_periodic, nullptr, 0644});
        spec.files.push_back({"/etc/apt/apt.conf.d/52nodectl-unattended-upgrades", k_uu_origins, nullptr, 0644});
        running.push_back("unattended-upgrades.service");
    }
    if (sv.boolean("timesync")) {
        running.push_back("systemd-timesyncd.service");
    }
    if (sv.boolean("aide")) {
        activate += add_aide(spec);
    }
    if (sv.boolean("apparmor")) {
        running.push_back("apparmor.service");
    }
    // Enabled, and running unless this environment cannot run it.
    for (const auto& u : running) {
        spec.drift += units::enabled_drift(u) + "if [ \"$(" + units::active_state(u) + ")\" != active ] && [ -z \"$(" +
                      unit_not_applicable(u) + ")\" ]; then echo " + shell_quote("start " + u) + "; fi\n";
        activate += units::script({units::enable({u}, {.quiet = true})}) + "if [ -z \"$(" + unit_not_applicable(u) +
                    ")\" ]; then " + units::start({u}).script() + "; fi\n";
    }
    spec.activate = activate;
    spec.restore_activate =
        sv.boolean("fail2ban") ? units::restart({"fail2ban.service"}, {.ignore_failure = true}).script() : "";
    // After a revert the unit file is gone: its enablement link is removed by hand.
    spec.deactivate = units::disable({"fail2ban.service"}, {.now = true, .ignore_failure = true}).script() +
                      "; rm -f /etc/systemd/system/multi-user.target.wants/" + k_aide_unit + "; " +
                      units::daemon_reload().script() + "; true";

    for (const auto& u : running) {
        spec.controls.push_back({"services." + u.substr(0, u.find('.')), u + " enabled and running",
                                 units::state_pair(u), host::equals("enabled,active"), unit_not_applicable(u)});
    }
    if (sv.boolean("auditd")) {
        spec.controls.push_back({"services.audit_rules", "nodectl's audit rules are loaded in the kernel",
                                 "auditctl -l | grep -c -- '-k identity\\|key=identity'", host::at_least(5),
                                 unit_not_applicable("auditd.service")});
    }
    if (sv.boolean("fail2ban")) {
        spec.controls.push_back({"services.fail2ban_sshd_jail", "fail2ban's sshd jail is running",
                                 "fail2ban-client status sshd >/dev/null 2>&1 && echo running || echo 'not running'",
                                 host::equals("running"), ""});
    }
    if (sv.boolean("aide")) {
        spec.controls.push_back({"services.aide_database",
                                 "AIDE has a file integrity database, or is building its first", aide_database_state(),
                                 host::one_of({"present", std::string("being built (") + k_aide_unit + ")"}), ""});
    }
    if (sv.boolean("remove_legacy")) {
        spec.controls.push_back({"services.legacy_packages", "no legacy remote-access packages",
                                 "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' " +
                                     shell_quote_all(legacy_packages()) +
                                     " 2>/dev/null | awk '$2 ~ /^ii/ { print $1 }' | tr '\\n' ' '",
                                 host::empty_output("none installed"), ""});
    }
    return spec;
}

}  // namespace nodectl::harden

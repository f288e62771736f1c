// The hardening groups. Each turns its part of [harden] into one ApplyConfigSet spec (files, live
// state, activation, controls); module.cpp puts them in order. Rendering is kept apart from
// Target so the unit tests can read what would be written.
#pragma once

#include "modules/config_set/config_set.hpp"
#include "nodectl/config.hpp"

#include <string>
#include <vector>

namespace nodectl::harden {

enum class Role { standalone, k3s_server, k3s_server_ha, k3s_agent };
Role parse_role(const std::string& s);
bool is_kubernetes(Role r);

// What several groups need to agree on.
struct Settings {
    Role role = Role::standalone;
    std::chrono::seconds rollback_after{120};
    int ssh_port = 22;
    std::string admin_user;  // "" when accounts are not managed
    bool root_login_disabled = false;
    std::vector<std::string> cluster_networks;
    // [monitoring]'s node exporter: its port, opened only to these networks (0: no exporter).
    int node_exporter_port = 0;
    std::vector<std::string> node_exporter_from;
};

// sshd: drop-in, banner, moduli, host keys.
struct SshAlgorithms {
    std::vector<std::string> kex, ciphers, macs, host_key_algorithms;
};
// nodectl's lists, strongest first.
SshAlgorithms wanted_ssh_algorithms();
struct SshAlgorithmChoice {
    SshAlgorithms kept;  // `wanted`, in its order, limited to what the host supports
    std::vector<std::string> left_out;  // "KexAlgorithms a,b" for each list that lost some
};
// `query_output`: "== kex", "== cipher", "== mac", "== key-sig", each followed by the lines of
// `ssh -Q` for it. An error when a list is missing or nothing of a list would be left.
Result<SshAlgorithmChoice> choose_ssh_algorithms(const SshAlgorithms& wanted, const std::string& query_output);
std::string render_sshd_dropin(const ConfigView& ssh, const Settings& s,
                               const SshAlgorithms& algorithms = wanted_ssh_algorithms());
// /etc/ssh/moduli without the groups smaller than 3072 bits (field 5 is the size minus one).
std::string filter_moduli(const std::string& current);
ConfigSetSpec sshd_group(const ConfigView& ssh, const Settings& s);

// kernel: sysctl, module blacklist, k3s modules.
// net.ipv4.ip_forward and net.ipv{4,6}.conf.*.forwarding: written before every other key.
bool is_forwarding_key(const std::string& key);
// The values in the order they are written: forwarding keys first, then the rest as listed.
std::vector<std::pair<std::string, std::string>> sysctl_values(const ConfigView& kernel, Role role);
ConfigSetSpec kernel_group(const ConfigView& kernel, const Settings& s);

// nftables.
Result<std::string> render_ruleset(const ConfigView& firewall, const Settings& s);
Result<ConfigSetSpec> firewall_group(const ConfigView& firewall, const Settings& s);
// An admin's /etc/nftables.conf with an include of nodectl's own ruleset file at its end (once).
std::string include_own_ruleset(const std::string& current);
// The files, validation and activation: nodectl's ruleset as /etc/nftables.conf, or (keeping an
// admin's file) in its own file that the admin's file includes, loaded alone.
void set_firewall_files(ConfigSetSpec& spec, const std::string& ruleset, bool keep_admin_conf);

// accounts: admin user, root, login.defs, pwquality, faillock.
std::string edit_login_defs(const std::string& current, const std::vector<std::pair<std::string, std::string>>& values);
// admin_keys may use ${vars.NAME} / ${host.name}: filled in for `host`.
Result<ConfigSetSpec> accounts_group(const ConfigView& accounts, const ConfigView& ssh, const Settings& s,
                                     const HostSpec& host);

// services: auditd, fail2ban, unattended-upgrades, time sync, AppArmor.
ConfigSetSpec services_group(const ConfigView& services, const Settings& s);
std::vector<std::string> service_packages(const ConfigView& services);
std::vector<std::string> legacy_packages();

// filesystem: /tmp, /dev/shm, permissions, core dumps.
// /etc/fstab with exactly one line per mount point of `entries` (replacing the line found there).
std::string set_fstab_entries(const std::string& current, const std::vector<std::string>& entries);
ConfigSetSpec filesystem_group(const ConfigView& filesystem, const Settings& s);

// `current` with the first line starting with `prefix` replaced by `line` (others starting with
// it dropped), or `line` appended when there is none.
std::string set_line(const std::string& current, const std::string& prefix, const std::string& line);

}  // namespace nodectl::harden

// harden: makes a stock Debian/Ubuntu node as hardened as the public baselines (dev-sec, CIS,
// ssh-audit's guide) while keeping it fit for k3s, and audits it (`nodectl check`).
//
// What it changes on a node: packages (installs the tools, removes legacy remote access), then
// six groups, each one ApplyConfigSet step: accounts, sshd, kernel, firewall, services,
// filesystem (see each file for its part).
// How it knows a change is already there: file contents by hash, plus each group's live-state
// probe (sshd -T, /proc/sys, nft list, systemctl, findmnt, stat), never timestamps.
// How it is undone: `enabled = false` on a group puts back every file as nodectl first found it
// (or removes files nodectl created) and deactivates the group. Regenerated host keys, removed
// packages, live sysctl values (until reboot) and fixed permissions stay.
// Lockout: sshd and firewall changes are validated first, then activated under a rollback timer
// on the host, and kept only when a fresh SSH login works.
#include "modules/harden/harden.hpp"

#include "modules/base/steps.hpp"
#include "modules/harden/groups.hpp"
#include "modules/monitoring/monitoring.hpp"

namespace nodectl::harden {

Result<StepList> steps(const ModuleContext& ctx) {
    if (!ctx.profile.table().contains("harden")) {
        return StepList{};
    }
    ConfigView h = ctx.profile.section("harden");
    auto ssh = h.section("ssh"), kernel = h.section("kernel"), fw = h.section("firewall"), acc = h.section("accounts"),
         sv = h.section("services"), fs = h.section("filesystem");

    Settings s;
    s.role = parse_role(h.str("role"));
    s.rollback_after = std::chrono::seconds(h.integer("rollback_seconds"));
    s.ssh_port = static_cast<int>(fw.integer("ssh_port"));
    s.cluster_networks = fw.strings("cluster_networks");
    s.root_login_disabled = ssh.boolean("enabled") && ssh.str("permit_root_login") == "no";
    if (acc.boolean("enabled") && !acc.strings("admin_keys").empty()) {
        s.admin_user = acc.str("admin_user");
    }

    if (fw.boolean("enabled")) {
        if (auto opening = TRY(monitoring::firewall_opening(ctx.profile))) {
            s.node_exporter_port = opening->port;
            s.node_exporter_from = opening->from;
        }
    }

    std::vector<std::string> present, absent;
    if (acc.boolean("enabled")) {
        present.insert(present.end(), {"sudo", "libpam-pwquality"});
    }
    if (fw.boolean("enabled")) {
        present.push_back("nftables");
    }
    if (sv.boolean("enabled")) {
        auto p = service_packages(sv);
        present.insert(present.end(), p.begin(), p.end());
        if (sv.boolean("remove_legacy")) {
            absent = legacy_packages();
        }
    }
    StepList out;
    if (!present.empty() || !absent.empty()) {
        out.push_back(
            std::make_unique<base::EnsurePackages>("harden/packages", present, absent, ctx.bundle_apt_sources));
    }
    // Accounts first: the admin user must exist before sshd stops letting root in (accounts_group
    // refuses a profile that would turn root login off with no admin user to take over).
    out.push_back(std::make_unique<ApplyConfigSet>(TRY(accounts_group(acc, ssh, s, ctx.host))));
    out.push_back(std::make_unique<ApplyConfigSet>(sshd_group(ssh, s)));
    out.push_back(std::make_unique<ApplyConfigSet>(kernel_group(kernel, s)));
    out.push_back(std::make_unique<ApplyConfigSet>(TRY(firewall_group(fw, s))));
    out.push_back(std::make_unique<ApplyConfigSet>(services_group(sv, s)));
    out.push_back(std::make_unique<ApplyConfigSet>(filesystem_group(fs, s)));
    return out;
}

}  // namespace nodectl::harden

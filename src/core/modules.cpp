// The module table: the order here is the order modules' steps run on a host.
#include "modules/backup/module.hpp"
#include "modules/base/base.hpp"
#include "modules/harden/harden.hpp"
#include "modules/k3s/k3s.hpp"
#include "modules/monitoring/monitoring.hpp"
#include "modules/mounts/mounts.hpp"
#include "modules/runtime/runtime.hpp"
#include "modules/stack/stack.hpp"
#include "nodectl/module.hpp"

namespace nodectl {

std::span<const Module> modules() {
    static const Module k_modules[] = {
        {"base", "hostname, time zone, /etc/hosts, apt proxy, packages, files, systemd units", &base::steps},
        {"harden", "host hardening: sshd, kernel, nftables, accounts, auditd/fail2ban/updates, mounts and permissions",
         &harden::steps},
        {"runtime", "containerd, runc and the CNI plugins, configured for Kubernetes", &runtime::steps},
        {"k3s", "k3s server (or agent): binary checked against its release, config.yaml, units, started and Ready",
         &k3s::steps},
        {"stack",
         "the Magento stack on a k3s server: one manifest per site for k3s's deploy controller, secrets made once on the node",
         &stack::steps},
        {"mounts", "NFS mounts (.mount + .automount) and s3fs mounts with a 0600 credentials file", &mounts::steps},
        {"backup", "nightly backups on the node: the nodectl binary, its profile, nodectl-backup.service and .timer",
         &backup::steps},
        {"monitoring", "Debian's prometheus-node-exporter, its textfile collector serving the backup's metrics",
         &monitoring::steps},
    };
    return k_modules;
}

Result<StepList> build_steps(const Profile& profile, const HostSpec& host) {
    return build_steps(ModuleContext{profile, host});
}

Result<StepList> build_steps(const ModuleContext& ctx, std::string_view except) {
    StepList all;
    for (const auto& m : modules()) {
        if (m.name == except) {
            continue;
        }
        auto steps = m.steps(ctx);
        if (!steps) {
            return steps.error();
        }
        for (auto& s : *steps) {
            all.push_back(std::move(s));
        }
    }
    return all;
}

}  // namespace nodectl

// runtime: containerd, runc and the CNI plugins, configured from [runtime].
#pragma once

#include "modules/config_set/config_set.hpp"
#include "nodectl/module.hpp"

#include <string>
#include <vector>

namespace nodectl::runtime {

struct Mirror {
    std::string registry;  // "docker.io"
    std::vector<std::string> endpoints;  // tried in order, then the registry itself
};

struct ContainerdSettings {
    bool systemd_cgroup = true;
    std::string sandbox_image = "registry.k8s.io/pause:3.6";
    std::string snapshotter = "overlayfs";
    std::vector<Mirror> mirrors;
    // Inside a container (an nspawn or LXC node) runc may not lower oom_score_adj: CRI must not ask.
    bool restrict_oom_score_adj = false;
};

constexpr const char* k_config_path = "/etc/containerd/config.toml";
constexpr const char* k_certs_dir = "/etc/containerd/certs.d";
constexpr const char* k_socket = "/run/containerd/containerd.sock";

// /etc/containerd/config.toml (written with toml++).
std::string render_config(const ContainerdSettings& s);
// /etc/containerd/certs.d/<registry>/hosts.toml for one mirror.
std::string render_hosts_toml(const Mirror& m);
// Prints "systemd" where systemd runs the host on cgroup v2 (the kubelet and containerd must then
// both use systemd cgroups), else "cgroupfs".
constexpr const char* k_detect_cgroup_driver =
    "if [ \"$(stat -fc %T /sys/fs/cgroup 2>/dev/null)\" = cgroup2fs ] && [ -d /run/systemd/system ]; then echo systemd; "
    "else echo cgroupfs; fi";

// Prints "container" when the host is itself a container.
constexpr const char* k_detect_container =
    "systemd-detect-virt --container --quiet 2>/dev/null && echo container || true";

// Reads [runtime] (cgroup_driver "auto" stays to be detected on the host: `detect` is then true).
ContainerdSettings settings_from(const ConfigView& cfg, bool& detect);
// The containerd configuration step; `prepare` detects the cgroup driver (when "auto") and
// whether the host is a container.
ConfigSetSpec containerd_group(const ConfigView& cfg);

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::runtime

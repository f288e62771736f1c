// runtime: a configured containerd, ready for k3s (use_system_containerd) and for the images
// nodectl builds.
//
// What it changes on a node: installs containerd, runc and the CNI plugins (apt, or the bundle's
// local repository); writes /etc/containerd/config.toml (CRI plugin: cgroup driver, sandbox
// image, snapshotter, CNI paths, certs.d for mirrors) and one certs.d/<registry>/hosts.toml per
// mirror; enables containerd and restarts it when, and only when, its configuration changed.
// How it knows a change is already there: file contents (ApplyConfigSet), `systemctl is-enabled /
// is-active`, and a containerd that answers on its socket.
// How it is undone: `runtime.enabled = false` puts the configuration files back as nodectl found
// them and restarts containerd; the packages stay.
#include "modules/runtime/runtime.hpp"

#include "host/services.hpp"
#include "modules/base/steps.hpp"
#include "util/strings.hpp"

#include <toml++/toml.h>

#include <sstream>

namespace nodectl::runtime {

std::string render_config(const ContainerdSettings& s) {
    toml::table runc_options{{"SystemdCgroup", s.systemd_cgroup}};
    toml::table runc{{"runtime_type", "io.containerd.runc.v2"}, {"options", runc_options}};
    toml::table containerd{
        {"snapshotter", s.snapshotter}, {"default_runtime_name", "runc"}, {"runtimes", toml::table{{"runc", runc}}}};
    // Debian's containernetworking-plugins installs to /usr/lib/cni; the upstream path comes second.
    toml::table cni{{"bin_dir", "/usr/lib/cni"}, {"conf_dir", "/etc/cni/net.d"}};
    toml::table cri{{"sandbox_image", s.sandbox_image},
                    {"restrict_oom_score_adj", s.restrict_oom_score_adj},
                    {"containerd", containerd},
                    {"cni", cni},
                    {"registry", toml::table{{"config_path", k_certs_dir}}}};
    toml::table root{{"version", 2}, {"plugins", toml::table{{"io.containerd.grpc.v1.cri", cri}}}};
    std::ostringstream out;
    out << "# Managed by nodectl ([runtime]): changes here are replaced on the next apply.\n"
        << toml::toml_formatter(root, toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings)
        << "\n";
    return out.str();
}

std::string render_hosts_toml(const Mirror& m) {
    // containerd's name for Docker Hub's registry host.
    std::string server = m.registry == "docker.io" ? "https://registry-1.docker.io" : "https://" + m.registry;
    toml::table root{{"server", server}};
    toml::table hosts;
    for (const auto& e : m.endpoints) {
        hosts.insert(e, toml::table{{"capabilities", toml::array{"pull", "resolve"}}});
    }
    root.insert("host", hosts);
    std::ostringstream out;
    out << "# Managed by nodectl (runtime.mirrors)\n" << toml::toml_formatter(root) << "\n";
    return out.str();
}

ContainerdSettings settings_from(const ConfigView& cfg, bool& detect) {
    ContainerdSettings s;
    auto driver = cfg.str("cgroup_driver");
    detect = driver == "auto";
    s.systemd_cgroup = driver == "systemd";
    s.sandbox_image = cfg.str("sandbox_image");
    s.snapshotter = cfg.str("snapshotter");
    for (const auto& t : cfg.tables("mirrors")) {
        s.mirrors.push_back({t.str("registry"), t.strings("endpoints")});
    }
    return s;
}

ConfigSetSpec containerd_group(const ConfigView& cfg) {
    bool detect = false;
    auto settings = settings_from(cfg, detect);

    ConfigSetSpec spec;
    spec.id = "runtime/containerd";
    spec.title = "containerd configuration";
    spec.enabled = cfg.boolean("enabled");
    auto fill_files = [](ConfigSetSpec& sp, const ContainerdSettings& s) {
        sp.files.clear();
        sp.files.push_back({k_config_path, render_config(s), nullptr, 0644});
        for (const auto& m : s.mirrors) {
            // Appended piece by piece: GCC 12 warns (-Warray-bounds, a known false positive) on
            // the chain of operator+ that said the same.
            std::string path = k_certs_dir;
            path.append("/").append(m.registry).append("/hosts.toml");
            sp.files.push_back({path, render_hosts_toml(m), nullptr, 0644});
        }
    };
    fill_files(spec, settings);
    spec.prepare = [settings, fill_files, detect](Target& target, ConfigSetSpec& sp) mutable -> Result<void> {
        Command cmd;
        cmd.script = std::string(k_detect_cgroup_driver) + "; " + k_detect_container;
        cmd.mutates = false;
        auto r = TRY(target.run_checked(cmd, "detecting the cgroup driver"));
        if (detect) {
            settings.systemd_cgroup = util::starts_with(r.out, "systemd");
        }
        settings.restrict_oom_score_adj = r.out.find("container") != std::string::npos;
        fill_files(sp, settings);
        return Ok{};
    };
    // containerd answers on its socket within a few seconds of a restart.
    const std::string wait_ready =
        "i=0; until ctr --address " + std::string(k_socket) +
        " version >/dev/null 2>&1; do i=$((i+1)); "
        "if [ $i -ge 60 ]; then echo 'containerd did not answer on its socket within 30 s' >&2; "
        "{ " +
        host::units::journal_tail("containerd", 15) + "; } >&2; exit 1; fi; sleep 0.5; done\n";
    spec.validate = "containerd --config " + std::string(k_config_path) + " config dump >/dev/null";
    const std::string unit = "containerd.service";
    spec.activate =
        host::units::script({host::units::enable({unit}, {.quiet = true}), host::units::restart({unit})}) + wait_ready;
    spec.restore_activate = host::units::restart({unit}, {.ignore_failure = true}).script();
    spec.deactivate = spec.restore_activate;
    spec.drift = host::units::enabled_drift(unit) + host::units::active_drift(unit);

    spec.controls.push_back({"runtime.containerd", "containerd.service enabled and running",
                             host::units::state_pair(unit), host::equals("enabled,active"), ""});
    spec.controls.push_back(
        {"runtime.socket", "containerd answers on its socket",
         "ctr --address " + std::string(k_socket) + " version >/dev/null 2>&1 && echo answers || echo 'no answer'",
         host::equals("answers"), ""});
    spec.controls.push_back(
        {"runtime.cri", "the CRI plugin loaded (Kubernetes can use this containerd)",
         "ctr --address " + std::string(k_socket) + " plugins ls 2>/dev/null | awk '$2 == \"cri\" {print $4}'",
         host::equals("ok"), ""});
    spec.controls.push_back(
        {"runtime.cgroup_driver", "runc's cgroup driver matches the host",
         "want=$(" + std::string(k_detect_cgroup_driver) +
             "); got=$(containerd config dump 2>/dev/null | grep -m1 'SystemdCgroup' | grep -q true && echo systemd || echo cgroupfs); "
             "if [ \"$want\" = \"$got\" ]; then echo \"$got\"; else echo \"$got (host: $want)\"; fi",
         host::one_of({"systemd", "cgroupfs"}), ""});
    return spec;
}

Result<StepList> steps(const ModuleContext& ctx) {
    if (!ctx.profile.table().contains("runtime")) {
        return StepList{};
    }
    ConfigView cfg = ctx.profile.section("runtime");
    StepList out;
    if (cfg.boolean("enabled")) {
        out.push_back(std::make_unique<base::EnsurePackages>("runtime/packages", cfg.strings("packages"),
                                                             std::vector<std::string>{}, ctx.bundle_apt_sources));
    }
    out.push_back(std::make_unique<ApplyConfigSet>(containerd_group(cfg)));
    return out;
}

}  // namespace nodectl::runtime

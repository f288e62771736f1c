// backup: nightly `nodectl backup run` on the node, from a systemd timer.
//
// What it changes on a node: puts the nodectl binary at /usr/local/bin/nodectl (a static build:
// $NODECTL_STATIC_BIN, else static/nodectl beside the running binary, else the running binary),
// the merged profile at /etc/nodectl/profile.toml (0600; it holds secret references, never
// values: the files they name must be on the node), and nodectl-backup.service (oneshot, Nice=19,
// CPUSchedulingPolicy=batch, IOSchedulingClass=idle, ProtectSystem=strict with ReadWritePaths for
// the directory targets and the metrics file, PrivateTmp, NoNewPrivileges; RequiresMountsFor=
// the directory targets, so an NFS mount is there first) and nodectl-backup.timer (OnCalendar=
// backup.schedule, RandomizedDelaySec, Persistent=true), enabled and started.
// How it knows the change is already there: the binary's sha256, file contents
// (ApplyConfigSet), and `systemctl is-enabled nodectl-backup.timer`.
// How it is undone: `backup.enabled = false` stops and disables the timer and removes the units
// and the profile (the binary stays: other modules may use it).
#include "modules/backup/backup.hpp"
#include "modules/backup/module.hpp"

#include "host/services.hpp"
#include "modules/base/steps.hpp"
#include "modules/config_set/config_set.hpp"

#include <toml++/toml.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

namespace nodectl::backup {

namespace {

namespace fs = std::filesystem;

std::string systemd_quote(const std::string& p) {
    // Paths in unit settings: spaces would split them; nodectl's own validators keep them plain.
    return p;
}

Result<std::string> binary_to_install() {
    if (const char* env = std::getenv("NODECTL_STATIC_BIN"); env && *env) {
        if (!fs::exists(env)) {
            return make_error(ErrorCode::config, std::string("NODECTL_STATIC_BIN=") + env + ": no such file");
        }
        return std::string(env);
    }
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return make_error(ErrorCode::io, "cannot find the running nodectl binary: " + ec.message());
    }
    auto beside = self.parent_path() / "static" / "nodectl";
    if (fs::exists(beside, ec)) {
        return beside.string();
    }
    return self.string();
}

}  // namespace

std::string render_service(const UnitSettings& u) {
    std::ostringstream s;
    s << "# Managed by nodectl ([backup]): changes here are replaced on the next apply.\n"
      << "[Unit]\n"
      << "Description=nodectl backup: databases and files to the profile's targets\n"
      << "Documentation=https://github.com/nodectl/nodectl#backups\n"
      << "Wants=network-online.target\n"
      << "After=network-online.target mariadb.service mysql.service\n";
    for (const auto& p : u.mount_paths) {
        s << "RequiresMountsFor=" << systemd_quote(p) << "\n";
    }
    s << "\n[Service]\n"
      << "Type=oneshot\n"
      << "ExecStart=" << u.binary << " backup run -p " << u.profile << "\n"
      << "Nice=19\n"
      << "CPUSchedulingPolicy=batch\n"
      << "IOSchedulingClass=idle\n"
      << "UMask=0077\n"
      << "TimeoutStartSec=6h\n"
      << "ProtectSystem=strict\n"
      << "ProtectHome=read-only\n";
    if (!u.write_paths.empty()) {
        s << "ReadWritePaths=";
        bool first = true;
        for (const auto& p : u.write_paths) {
            s << (first ? "" : " ") << "-" << systemd_quote(p);
            first = false;
        }
        s << "\n";
    }
    s << "PrivateTmp=yes\n"
      << "NoNewPrivileges=yes\n"
      << "ProtectKernelTunables=yes\n"
      << "ProtectKernelModules=yes\n"
      << "ProtectControlGroups=yes\n"
      << "RestrictSUIDSGID=yes\n"
      << "LockPersonality=yes\n";
    return s.str();
}

std::string render_timer(const UnitSettings& u) {
    std::ostringstream s;
    s << "# Managed by nodectl ([backup]): changes here are replaced on the next apply.\n"
      << "[Unit]\n"
      << "Description=nodectl backup, nightly\n"
      << "\n[Timer]\n"
      << "OnCalendar=" << u.schedule << "\n"
      << "RandomizedDelaySec=" << u.randomized_delay << "\n"
      << "Persistent=true\n"
      << "\n[Install]\n"
      << "WantedBy=timers.target\n";
    return s.str();
}

UnitSettings unit_settings(const Settings& s) {
    UnitSettings u;
    u.schedule = s.schedule;
    u.randomized_delay = s.randomized_delay;
    std::set<std::string> paths;
    for (const auto& t : s.targets) {
        if (t.kind == TargetKind::directory) {
            u.mount_paths.push_back(t.path);
            paths.insert(t.path);
        }
    }
    if (!s.metrics_file.empty()) {
        paths.insert(fs::path(s.metrics_file).parent_path().string());
    }
    u.write_paths.assign(paths.begin(), paths.end());
    return u;
}

Result<StepList> steps(const ModuleContext& ctx) {
    StepList out;
    if (!ctx.profile.table().contains("backup")) {
        return out;
    }
    auto cfg = ctx.profile.section("backup");
    bool enabled = cfg.boolean("enabled");
    auto settings = TRY(load_settings(ctx.profile));
    UnitSettings u = unit_settings(settings);
    if (enabled) {
        auto bin = TRY(binary_to_install());
        base::ManagedFile f;
        f.spec.path = u.binary;
        f.spec.mode = 0755;
        f.spec.owner = "root";
        f.spec.group = "root";
        f.source = bin;
        f.sensitive = true;  // a binary: no diff
        out.push_back(std::make_unique<base::WriteFile>("backup/binary", f));
    }
    std::ostringstream profile;
    profile << "# Managed by nodectl ([backup]): the profile `nodectl backup` reads on this node.\n"
            << toml::toml_formatter(ctx.profile.table()) << "\n";
    ConfigSetSpec spec;
    spec.id = "backup/units";
    spec.title = "backup timer (" + settings.schedule + ")";
    spec.enabled = enabled;
    spec.files.push_back({u.profile, profile.str(), nullptr, 0600, "root", "root", true});
    spec.files.push_back({std::string(k_service_path), render_service(u), nullptr, 0644});
    spec.files.push_back({std::string(k_timer_path), render_timer(u), nullptr, 0644});
    spec.pre_write = "mkdir -p /etc/nodectl && chmod 700 /etc/nodectl";
    spec.validate = std::string("systemd-analyze verify ") + k_service_path + " " + k_timer_path;
    namespace units = host::units;
    const std::string timer = "nodectl-backup.timer";
    spec.activate =
        units::script({units::daemon_reload(), units::enable({timer}, {.quiet = true}), units::restart({timer})});
    spec.restore_activate = units::daemon_reload().script();
    spec.deactivate = units::script(
        {units::disable({timer}, {.now = true, .quiet = true, .ignore_failure = true}), units::daemon_reload()});
    if (enabled) {
        spec.drift = units::enabled_drift(timer);
    }
    out.push_back(std::make_unique<ApplyConfigSet>(std::move(spec)));
    return out;
}

}  // namespace nodectl::backup

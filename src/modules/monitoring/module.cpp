// monitoring: the node exporter every host runs, so that a stopped backup timer, a full disk or a
// dead node is seen from outside.
//
// What it changes on a node: installs Debian's prometheus-node-exporter (apt, or the bundle's
// local repository; without its Recommends); writes /etc/default/prometheus-node-exporter (ARGS:
// the listen address and port, and the textfile collector's directory, which is where
// `nodectl backup` writes backup.metrics_file); creates that directory when missing; enables the
// service and restarts it when, and only when, its arguments changed. With [harden.firewall] on,
// the firewall opens the port only to monitoring.allow_from (or the cluster's networks): see
// firewall_opening and harden/firewall.cpp.
// How it knows a change is already there: the file's content (ApplyConfigSet), `systemctl
// is-enabled / is-active`, and the arguments of the running process (/proc/PID/cmdline).
// How it is undone: `monitoring.enabled = false` puts the file back as nodectl found it and
// stops and disables the service; the package stays.
#include "modules/monitoring/monitoring.hpp"

#include "host/services.hpp"
#include "modules/base/steps.hpp"
#include "util/net.hpp"
#include "util/strings.hpp"

#include <filesystem>

namespace nodectl::monitoring {

namespace {

std::string parent_directory(const std::string& path) {
    return std::filesystem::path(path).parent_path().string();
}

}  // namespace

Result<Settings> settings_from(const Profile& profile, const HostSpec& host) {
    ConfigView cfg = profile.section("monitoring");
    Settings s;
    s.port = static_cast<int>(cfg.integer("port"));
    s.listen_address = TRY(expand_vars(cfg.str("listen_address"), host, cfg.where("listen_address")));
    if (auto why = check_expanded(ConfigFile::profile, "monitoring.listen_address", s.listen_address); !why.empty()) {
        return make_error(ErrorCode::config, cfg.where("listen_address") + ": 'monitoring.listen_address' for host '" +
                                                 host.name + "' is \"" + s.listen_address + "\", which " + why);
    }
    std::string metrics_file;
    if (profile.table().contains("backup")) {
        metrics_file = profile.section("backup").str("metrics_file");
    }
    s.textfile_directory = cfg.str("textfile_directory");
    while (s.textfile_directory.size() > 1 && s.textfile_directory.ends_with("/")) {
        s.textfile_directory.pop_back();
    }
    if (s.textfile_directory.empty()) {
        s.textfile_directory = metrics_file.empty() ? k_debian_textfile_dir : parent_directory(metrics_file);
    } else if (!metrics_file.empty() && parent_directory(metrics_file) != s.textfile_directory) {
        return make_error(ErrorCode::config,
                          cfg.where("textfile_directory") + ": 'monitoring.textfile_directory' is " +
                              s.textfile_directory + " but backup.metrics_file (" + metrics_file +
                              ") is not in it: the node exporter would not serve the backup's metrics "
                              "(leave textfile_directory empty to follow backup.metrics_file)");
    }
    return s;
}

std::vector<std::string> exporter_args(const Settings& s) {
    std::string host = s.listen_address.empty() ? "" : util::url_host(s.listen_address);
    return {"--web.listen-address=" + host + ":" + std::to_string(s.port),
            "--collector.textfile.directory=" + s.textfile_directory};
}

std::string render_defaults(const Settings& s) {
    // Read by the unit (EnvironmentFile=) and by the init script (sourced): the values are an IP
    // address, a port and a plain path (the key table's grammar), so nothing here needs escaping.
    return "# Managed by nodectl ([monitoring]): changes here are replaced on the next apply.\n"
           "# Arguments of prometheus-node-exporter (see `prometheus-node-exporter --help`).\n"
           "ARGS=\"" +
           util::join(exporter_args(s), " ") + "\"\n";
}

Result<std::optional<FirewallOpening>> firewall_opening(const Profile& profile) {
    if (!profile.table().contains("monitoring")) {
        return std::optional<FirewallOpening>{};
    }
    ConfigView cfg = profile.section("monitoring");
    if (!cfg.boolean("enabled")) {
        return std::optional<FirewallOpening>{};
    }
    FirewallOpening o;
    o.port = static_cast<int>(cfg.integer("port"));
    o.from = cfg.strings("allow_from");
    if (o.from.empty()) {
        o.from = profile.section("harden").section("firewall").strings("cluster_networks");
    }
    if (o.from.empty()) {
        return make_error(ErrorCode::config,
                          cfg.where("allow_from") +
                              ": [monitoring] runs a node exporter behind nodectl's firewall, so "
                              "monitoring.allow_from (or harden.firewall.cluster_networks) must list the "
                              "networks Prometheus scrapes from: its port is open only to them");
    }
    return std::optional<FirewallOpening>{o};
}

ConfigSetSpec node_exporter_group(const ConfigView& cfg, const Settings& s) {
    namespace units = host::units;
    ConfigSetSpec spec;
    spec.id = "monitoring/node_exporter";
    spec.title = "node exporter";
    spec.enabled = cfg.boolean("enabled");
    spec.files.push_back({k_defaults_path, render_defaults(s), nullptr, 0644});

    const std::string unit = k_unit;
    const std::string dir = shell_quote(s.textfile_directory);
    // What /proc/PID/cmdline shows, NULs made spaces.
    const std::string cmdline = std::string(k_binary) + " " + util::join(exporter_args(s), " ") + " ";
    const std::string main_pid = "pid=$(" + units::property(unit, "MainPID") + " 2>/dev/null); ";
    const std::string port = std::to_string(s.port);
    const std::string listening = "ss -Hltn " + shell_quote("sport = :" + port) + " | grep -q .";

    spec.post_write = "[ -d " + dir + " ] || install -d -m 0755 " + dir;
    // The exporter answers within a second; a listen address the host does not have makes it
    // exit, and systemd restarts it: it never becomes ready.
    spec.activate =
        units::script({units::enable({unit}, {.quiet = true}), units::restart({unit})}) + "i=0; until " +
        units::is_active(unit) + " && { ! command -v ss >/dev/null || " + listening +
        "; }; do i=$((i+1)); if [ $i -ge 40 ]; then echo 'prometheus-node-exporter does not listen on port " + port +
        " within 20 s' >&2; { " + units::journal_tail(unit, 15) + "; } >&2; exit 1; fi; sleep 0.5; done\n";
    spec.restore_activate = units::restart({unit}, {.ignore_failure = true}).script();
    spec.deactivate = units::disable({unit}, {.now = true, .quiet = true, .ignore_failure = true}).script();
    spec.drift = units::enabled_drift(unit) + units::active_drift(unit) + main_pid +
                 "if [ \"${pid:-0}\" -gt 0 ] && [ \"$(tr '\\0' ' ' </proc/$pid/cmdline)\" != " + shell_quote(cmdline) +
                 " ]; then echo 'restart " + unit + " (it runs with other arguments than " + k_defaults_path +
                 " gives)'; fi\n";

    std::string listen_shown = (s.listen_address.empty() ? "*" : util::url_host(s.listen_address)) + ":" + port;
    spec.controls.push_back({"monitoring.node_exporter", "prometheus-node-exporter enabled and running",
                             units::state_pair(unit), host::equals("enabled,active"), ""});
    spec.controls.push_back({"monitoring.arguments",
                             "the exporter runs with the profile's listen address and textfile directory",
                             main_pid + "tr '\\0' ' ' </proc/$pid/cmdline", host::equals(util::trim(cmdline)),
                             main_pid + "[ \"${pid:-0}\" -gt 0 ] || echo 'the exporter is not running'"});
    spec.controls.push_back(
        {"monitoring.listen", "the exporter listens only where the profile says",
         "ss -Hltn " + shell_quote("sport = :" + port) + " | awk '{print $4}' | sort -u | paste -sd ' '",
         host::equals(listen_shown), "command -v ss >/dev/null || echo 'ss (iproute2) is not installed'"});
    spec.controls.push_back(
        {"monitoring.textfile_directory", "the textfile directory exists and the exporter's user can read it",
         "if [ -d " + dir + " ] && runuser -u prometheus -- test -r " + dir + " -a -x " + dir +
             " 2>/dev/null; then echo readable; else echo 'missing or not readable by prometheus'; fi",
         host::equals("readable"), ""});
    return spec;
}

Result<StepList> steps(const ModuleContext& ctx) {
    if (!ctx.profile.table().contains("monitoring")) {
        return StepList{};
    }
    ConfigView cfg = ctx.profile.section("monitoring");
    auto settings = TRY(settings_from(ctx.profile, ctx.host));
    StepList out;
    if (cfg.boolean("enabled")) {
        out.push_back(std::make_unique<base::EnsurePackages>("monitoring/packages", std::vector<std::string>{k_package},
                                                             std::vector<std::string>{}, ctx.bundle_apt_sources));
    }
    out.push_back(std::make_unique<ApplyConfigSet>(node_exporter_group(cfg, settings)));
    return out;
}

}  // namespace nodectl::monitoring

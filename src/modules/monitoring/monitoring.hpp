// monitoring: Debian's prometheus-node-exporter on the node, with its textfile collector reading
// the directory `nodectl backup` writes its metrics to, configured from [monitoring].
#pragma once

#include "modules/config_set/config_set.hpp"
#include "nodectl/module.hpp"

#include <optional>
#include <string>
#include <vector>

namespace nodectl::monitoring {

constexpr const char* k_package = "prometheus-node-exporter";
constexpr const char* k_unit = "prometheus-node-exporter.service";
constexpr const char* k_binary = "/usr/bin/prometheus-node-exporter";
// Debian's way to give the service its arguments: the unit reads ARGS from this file.
constexpr const char* k_defaults_path = "/etc/default/prometheus-node-exporter";
// The textfile directory Debian's build of the exporter reads by default.
constexpr const char* k_debian_textfile_dir = "/var/lib/prometheus/node-exporter";

struct Settings {
    std::string listen_address;  // an IP address; "" for all addresses
    int port = 9100;
    std::string textfile_directory;
};

// [monitoring] for one host (${host.address} and ${vars.NAME} in listen_address filled in). The
// textfile directory defaults to the directory of backup.metrics_file, else Debian's; a directory
// given that would not hold backup.metrics_file is a profile error.
Result<Settings> settings_from(const Profile& profile, const HostSpec& host);

// The exporter's command-line arguments, as they appear after the binary in its process.
std::vector<std::string> exporter_args(const Settings& s);
// /etc/default/prometheus-node-exporter.
std::string render_defaults(const Settings& s);

// Where the firewall ([harden.firewall]) must let scrapes in: the exporter's port, from
// monitoring.allow_from, or harden.firewall.cluster_networks when that is empty. nullopt when
// the profile runs no exporter; an error when neither key lists a network.
struct FirewallOpening {
    int port = 9100;
    std::vector<std::string> from;
};
Result<std::optional<FirewallOpening>> firewall_opening(const Profile& profile);

ConfigSetSpec node_exporter_group(const ConfigView& cfg, const Settings& s);

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::monitoring

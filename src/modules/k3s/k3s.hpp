// k3s: the binary, its configuration and units, and the node's start, for a single-node server
// ([k3s] in a profile, `nodectl apply`) or an agent (`nodectl join`).
#pragma once

#include "modules/config_set/config_set.hpp"
#include "modules/runtime/runtime.hpp"
#include "nodectl/module.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::k3s {

enum class Role { server, agent };

struct Settings {
    Role role = Role::server;
    std::string version;  // empty: the channel's release
    std::string channel = "stable";
    std::string release_url = "https://github.com/k3s-io/k3s/releases/download";
    std::string channel_url = "https://update.k3s.io/v1-release/channels";
    bool allow_insecure_http = false;  // k3s.allow_insecure_http: release_url/channel_url may be http://
    std::string release_dir;  // a verified bundle's k3s/ directory: no download at all
    bool airgap_images = false;
    std::vector<std::string> tls_san, node_labels, node_taints, disable;
    bool secrets_encryption = true;
    bool protect_kernel_defaults = true;
    bool use_system_containerd = false;
    std::vector<runtime::Mirror> registries;
    std::map<std::string, std::string> env;
    bool start = true;
    int ready_timeout = 300;
    int api_port = 6443;
    std::string server_url;  // agent
    std::string token;  // agent: the K10 join token (a secret)
};

constexpr const char* k_binary = "/usr/local/bin/k3s";
constexpr const char* k_config_dir = "/etc/rancher/k3s";
constexpr const char* k_config = "/etc/rancher/k3s/config.yaml";
constexpr const char* k_registries = "/etc/rancher/k3s/registries.yaml";
constexpr const char* k_token_file = "/etc/rancher/k3s/token";  // the server's own secret (short form)
constexpr const char* k_images_dir = "/var/lib/rancher/k3s/agent/images";
constexpr const char* k_server_token =
    "/var/lib/rancher/k3s/server/token";  // written by k3s: K10<ca hash>::server:<secret>
constexpr const char* k_server_ca = "/var/lib/rancher/k3s/server/tls/server-ca.crt";
constexpr const char* k_release_record = "/var/lib/nodectl/k3s/release";  // "VERSION SHA256" of the installed binary

std::string unit_name(Role r);  // k3s.service / k3s-agent.service
std::string unit_path(Role r);
std::string env_path(Role r);

// Renderers (pure, for the unit tests).
Result<std::string> render_config_yaml(const Settings& s);
std::string render_registries_yaml(const std::vector<runtime::Mirror>& registries);
std::string render_unit(Role r);
std::string render_env(const std::map<std::string, std::string>& env);

// Reads [k3s]; the agent token is resolved from its secret reference.
Result<Settings> settings_from(const ConfigView& cfg);
// The steps for a node with these settings, in order (a bundle in `ctx` replaces the download).
Result<StepList> node_steps(Settings s, const ModuleContext& ctx);
// [k3s] of a profile.
Result<StepList> steps(const ModuleContext& ctx);

// Removes k3s from a node (`nodectl reset --k3s`): units, binary and links, configuration,
// data, nodectl's records.
std::unique_ptr<Step> make_reset_step();

// `nodectl join`: what an agent needs from the server, read over SSH.
struct ServerInfo {
    std::string version;  // "v1.30.6+k3s1"
    std::string token;  // K10<ca sha256>::server:<secret>
    std::string host;  // ADDRESS: a host name or an IP address (checked), IPv6 without brackets
    std::string url;  // https://ADDRESS:PORT
    int port = 6443;
};
// ErrorCode::usage, before anything runs, when `address` is not a host name or an IP address.
Result<ServerInfo> read_server_info(Target& server, const std::string& address, int port);
// K10<sha256 of the CA PEM>::server:<secret>, from k3s's short token and its CA certificate.
std::string secure_token(const std::string& ca_pem, const std::string& secret);
// Fails with a clear error when the node cannot reach the server or belongs to another cluster.
std::unique_ptr<Step> make_join_check_step(ServerInfo server);
// Polls the server until node `name` is Ready, up to `timeout`.
Result<void> wait_node_ready(Target& server, const std::string& name, std::chrono::seconds timeout);

}  // namespace nodectl::k3s

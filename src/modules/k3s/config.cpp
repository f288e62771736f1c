// What k3s reads: config.yaml and registries.yaml (emitted with yaml-cpp, so quoting is never
// hand-made), the systemd unit (the shape of k3s's own installer), and the unit's env file.
#include "modules/k3s/k3s.hpp"
#include "modules/k3s/release.hpp"

#include "util/strings.hpp"

#include <yaml-cpp/yaml.h>

namespace nodectl::k3s {

std::string unit_name(Role r) {
    return r == Role::server ? "k3s.service" : "k3s-agent.service";
}

std::string unit_path(Role r) {
    return "/etc/systemd/system/" + unit_name(r);
}

std::string env_path(Role r) {
    return unit_path(r) + ".env";
}

namespace {

void emit_list(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
    if (values.empty()) {
        return;
    }
    out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
    for (const auto& v : values) {
        out << YAML::DoubleQuoted << v;
    }
    out << YAML::EndSeq;
}

}  // namespace

Result<std::string> render_config_yaml(const Settings& s) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    if (s.role == Role::server) {
        out << YAML::Key << "token-file" << YAML::Value << k_token_file;
        out << YAML::Key << "write-kubeconfig-mode" << YAML::Value << YAML::DoubleQuoted << "0600";
        if (s.api_port != 6443) {
            out << YAML::Key << "https-listen-port" << YAML::Value << s.api_port;
        }
        emit_list(out, "tls-san", s.tls_san);
        emit_list(out, "disable", s.disable);
        out << YAML::Key << "secrets-encryption" << YAML::Value << s.secrets_encryption;
    } else {
        if (s.server_url.empty() || s.token.empty()) {
            return make_error(ErrorCode::config, "a k3s agent needs the server's URL and join token");
        }
        out << YAML::Key << "server" << YAML::Value << s.server_url;
        out << YAML::Key << "token" << YAML::Value << YAML::DoubleQuoted << s.token;
    }
    emit_list(out, "node-label", s.node_labels);
    emit_list(out, "node-taint", s.node_taints);
    out << YAML::Key << "protect-kernel-defaults" << YAML::Value << s.protect_kernel_defaults;
    if (s.use_system_containerd) {
        out << YAML::Key << "container-runtime-endpoint" << YAML::Value << std::string("unix://") + runtime::k_socket;
    }
    out << YAML::EndMap;
    if (!out.good()) {
        return make_error(ErrorCode::internal, std::string("rendering config.yaml: ") + out.GetLastError());
    }
    return "# Managed by nodectl ([k3s]): changes here are replaced on the next apply.\n" + std::string(out.c_str()) +
           "\n";
}

std::string render_registries_yaml(const std::vector<runtime::Mirror>& registries) {
    YAML::Emitter out;
    out << YAML::BeginMap << YAML::Key << "mirrors" << YAML::Value << YAML::BeginMap;
    for (const auto& m : registries) {
        out << YAML::Key << YAML::DoubleQuoted << m.registry << YAML::Value << YAML::BeginMap << YAML::Key << "endpoint"
            << YAML::Value << YAML::BeginSeq;
        for (const auto& e : m.endpoints) {
            out << YAML::DoubleQuoted << e;
        }
        out << YAML::EndSeq << YAML::EndMap;
    }
    out << YAML::EndMap << YAML::EndMap;
    return "# Managed by nodectl (k3s.registries)\n" + std::string(out.c_str()) + "\n";
}

std::string render_unit(Role r) {
    std::string unit = "# Managed by nodectl ([k3s])\n[Unit]\nDescription=Lightweight Kubernetes (" +
                       std::string(r == Role::server ? "server" : "agent") +
                       ")\nDocumentation=https://k3s.io\nWants=network-online.target\nAfter=network-online.target"
                       " containerd.service nodectl-default-route.service\n\n"
                       "[Install]\nWantedBy=multi-user.target\n\n"
                       "[Service]\nType=" +
                       std::string(r == Role::server ? "notify" : "exec") + "\nEnvironmentFile=-" + env_path(r) +
                       "\nKillMode=process\nDelegate=yes\nUser=root\n"
                       "LimitNOFILE=1048576\nLimitNPROC=infinity\nLimitCORE=infinity\nTasksMax=infinity\n"
                       "TimeoutStartSec=0\nRestart=always\nRestartSec=5s\n"
                       "ExecStartPre=-/sbin/modprobe br_netfilter\nExecStartPre=-/sbin/modprobe overlay\n"
                       "ExecStart=" +
                       std::string(k_binary) + (r == Role::server ? " server" : " agent") + "\n";
    return unit;
}

std::string render_env(const std::map<std::string, std::string>& env) {
    std::string out = "# Managed by nodectl (k3s.env)\n";
    for (const auto& [k, v] : env) {
        // systemd EnvironmentFile: double quotes with \" and \\ escapes.
        std::string q;
        for (char c : v) {
            if (c == '"' || c == '\\') {
                q += '\\';
            }
            q += c;
        }
        out += k + "=\"" + q + "\"\n";
    }
    return out;
}

Result<Settings> settings_from(const ConfigView& cfg) {
    Settings s;
    s.role = cfg.str("role") == "agent" ? Role::agent : Role::server;
    s.version = cfg.str("version");
    s.channel = cfg.str("channel");
    s.release_url = cfg.str("release_url");
    s.channel_url = cfg.str("channel_url");
    s.allow_insecure_http = cfg.boolean("allow_insecure_http");
    for (const char* key : {"release_url", "channel_url"}) {
        if (auto why = release_url_problem(cfg.str(key), s.allow_insecure_http); !why.empty()) {
            return make_error(ErrorCode::config, cfg.where(key) + ": k3s." + key + " " + why);
        }
    }
    s.airgap_images = cfg.boolean("airgap_images");
    s.tls_san = cfg.strings("tls_san");
    s.node_labels = cfg.strings("node_labels");
    s.node_taints = cfg.strings("node_taints");
    s.disable = cfg.strings("disable");
    s.secrets_encryption = cfg.boolean("secrets_encryption");
    s.protect_kernel_defaults = cfg.boolean("protect_kernel_defaults");
    s.use_system_containerd = cfg.boolean("use_system_containerd");
    for (const auto& t : cfg.tables("registries")) {
        s.registries.push_back({t.str("registry"), t.strings("endpoints")});
    }
    s.env = cfg.string_map("env");
    s.start = cfg.boolean("start");
    s.ready_timeout = static_cast<int>(cfg.integer("ready_timeout"));
    s.api_port = static_cast<int>(cfg.integer("api_port"));
    if (s.role == Role::agent) {
        s.server_url = cfg.str("server_url");
        if (s.server_url.empty()) {
            return make_error(ErrorCode::config,
                              cfg.where("server_url") +
                                  ": k3s.role = \"agent\" needs k3s.server_url (or use `nodectl join`)");
        }
        auto ref = cfg.secret("token");
        if (!ref) {
            return make_error(ErrorCode::config,
                              cfg.where("token") +
                                  ": k3s.role = \"agent\" needs k3s.token = { file = \"...\" } or { env = \"...\" }");
        }
        auto token = resolve_secret(*ref);
        if (!token) {
            return make_error(ErrorCode::config, cfg.where("token") + ": " + token.error().message);
        }
        s.token = util::trim(token->reveal());
    }
    return s;
}

}  // namespace nodectl::k3s

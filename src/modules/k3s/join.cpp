// `nodectl join` (server side and node checks) and `nodectl reset --k3s`.
#include "modules/k3s/k3s.hpp"

#include "host/services.hpp"
#include "util/digest.hpp"
#include "util/net.hpp"
#include "util/strings.hpp"

#include <yaml-cpp/yaml.h>

#include <thread>

namespace nodectl::k3s {

std::string secure_token(const std::string& ca_pem, const std::string& secret) {
    return "K10" + util::sha256_hex(ca_pem) + "::server:" + secret;
}

namespace {

bool is_secure_token(const std::string& t) {
    return t.size() > 3 + 64 + 2 && util::starts_with(t, "K10") && t.substr(67, 2) == "::";
}

std::string section_of(const std::string& out, const std::string& name) {
    auto begin = out.find("@@" + name + "\n");
    if (begin == std::string::npos) {
        return "";
    }
    begin += name.size() + 3;
    auto end = out.find("@@", begin);
    return out.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

Result<ServerInfo> read_server_info(Target& server, const std::string& address, int port) {
    // It lands in the agents' config.yaml and in a shell probe on every node: a host name or an
    // IP address by grammar, nothing else.
    if (!util::is_host(address)) {
        return make_error(ErrorCode::usage, "the server address '" + address + "' is not a host name or an IP address");
    }
    if (port < 1 || port > 65535) {
        return make_error(ErrorCode::usage, "the API port " + std::to_string(port) + " is not between 1 and 65535");
    }
    Command cmd;
    cmd.mutates = false;
    // Secrets come back on the encrypted channel's stdout; they are never logged or put in argv.
    cmd.script = std::string("echo @@release; cat ") + k_release_record +
                 " 2>/dev/null\n"
                 "echo @@version; [ -x " +
                 k_binary + " ] && " + k_binary +
                 " --version 2>/dev/null | head -n1\n"
                 "echo @@token; cat " +
                 k_server_token +
                 " 2>/dev/null\n"
                 "echo @@secret; cat " +
                 k_token_file +
                 " 2>/dev/null\n"
                 "echo @@ca; cat " +
                 k_server_ca + " 2>/dev/null\necho @@end\n";
    auto r = TRY(server.run_checked(cmd, "reading the k3s server's join information"));
    ServerInfo info;
    info.port = port;
    info.host = util::unbracketed(address);
    info.url = "https://" + util::url_host(address) + ":" + std::to_string(port);
    auto release = util::trim(section_of(r.out, "release"));
    if (!release.empty()) {
        info.version = util::split(release, ' ').front();
    } else {
        auto v = util::split(util::trim(section_of(r.out, "version")), ' ');  // "k3s version v1.30.6+k3s1 (1829eaae)"
        if (v.size() >= 3) {
            info.version = v[2];
        }
    }
    if (info.version.empty()) {
        return make_error(ErrorCode::command,
                          "k3s is not installed on the server " + server.name() + " (no " + k_binary + ")");
    }
    auto token = util::trim(section_of(r.out, "token"));
    auto secret = util::trim(section_of(r.out, "secret"));
    auto ca = section_of(r.out, "ca");
    if (is_secure_token(token)) {
        info.token = token;
    } else if (!secret.empty() && ca.find("BEGIN CERTIFICATE") != std::string::npos) {
        // The secure form k3s itself writes: the CA hash lets the agent pin the server's CA.
        info.token = secure_token(ca, secret);
    } else {
        return make_error(ErrorCode::command,
                          "cannot read a join token on " + server.name() + ": " + k_server_token +
                              " (written by a running k3s server) is " +
                              (token.empty() ? "missing or unreadable" : "not in the secure K10 form") + ", and " +
                              k_token_file + " with the cluster CA " + k_server_ca +
                              " is not there either. Is the k3s server initialised?");
    }
    return info;
}

namespace {

class CheckJoin final : public Step {
public:
    explicit CheckJoin(ServerInfo server) : m_server(std::move(server)) {}
    std::string id() const override { return "k3s/join_check"; }
    std::string title() const override { return "can join " + m_server.url; }

    Result<Plan> probe(Target& target) override {
        const std::string& host = m_server.host;
        if (!util::is_host(host) || m_server.port < 1 || m_server.port > 65535) {
            return make_error(ErrorCode::usage, "the server address '" + host + "' (port " +
                                                    std::to_string(m_server.port) +
                                                    ") is not a host name or an IP address with a port");
        }
        Command cmd;
        cmd.mutates = false;
        cmd.script = "if timeout 5 bash -c " +
                     shell_quote(": </dev/tcp/" + host + "/" + std::to_string(m_server.port)) +
                     " 2>/dev/null; then echo reachable; else echo unreachable; fi\n"
                     "if [ -e " +
                     std::string(k_server_token) + " ] || [ -e " + unit_path(Role::server) + " ]; then echo server; fi";
        auto r = TRY(target.run_checked(cmd, "checking that the node can join"));
        if (r.out.find("unreachable") != std::string::npos) {
            return make_error(ErrorCode::connect,
                              "the k3s server " + m_server.url + " is unreachable from this node (TCP port " +
                                  std::to_string(m_server.port) +
                                  " did not answer within 5 s): "
                                  "check the server's firewall (harden.firewall.cluster_networks) and routes");
        }
        if (r.out.find("server") != std::string::npos) {
            return make_error(ErrorCode::unsupported,
                              "this node is itself a k3s server; `nodectl reset --k3s` it first to make it an agent");
        }
        auto config = TRY(target.read_file(k_config));
        if (config) {
            try {
                auto y = YAML::Load(*config);
                auto server = y["server"] ? y["server"].as<std::string>() : "";
                auto token = y["token"] ? y["token"].as<std::string>() : "";
                bool other_ca = is_secure_token(token) && token.substr(0, 67) != m_server.token.substr(0, 67);
                if ((!server.empty() && server != m_server.url) || other_ca) {
                    return make_error(ErrorCode::unsupported,
                                      "this node already belongs to another cluster (" +
                                          (server != m_server.url ? "its agent points at " + server
                                                                  : std::string("its cluster CA differs")) +
                                          "); `nodectl reset --k3s` it first to move it");
                }
            } catch (const YAML::Exception& e) {
                return make_error(ErrorCode::command,
                                  std::string(k_config) + " on the node is not valid YAML: " + e.what());
            }
        }
        return Plan{};
    }
    Result<void> apply(Target&, const Plan&) override { return Ok{}; }

private:
    ServerInfo m_server;
};

std::string reset_probe() {
    std::string out =
        "for p in /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service /usr/local/bin/k3s /etc/rancher/k3s "
        "/var/lib/rancher/k3s /var/lib/kubelet /run/k3s /etc/systemd/system/nodectl-default-route.service "
        "/var/lib/nodectl/k3s; do [ -e $p ] && echo \"remove $p\"; done\n"
        "for c in kubectl crictl ctr; do [ \"$(readlink /usr/local/bin/$c 2>/dev/null)\" = /usr/local/bin/k3s ] && "
        "echo \"remove /usr/local/bin/$c\"; done\n";
    for (std::string unit : {"k3s.service", "k3s-agent.service"}) {
        out += host::units::is_active(unit) + " && echo " + shell_quote("stop " + unit) + "\n";
    }
    return out + "true\n";
}

// What reset does between stopping the units and reloading systemd.
constexpr const char* k_reset_rest =
    "pkill -9 -f '[c]ontainerd-shim.*/run/k3s' 2>/dev/null\n"
    "below_k3s() { awk '$2 ~ \"^(/run/k3s|/var/lib/kubelet|/var/lib/rancher/k3s)(/|$)\" {print $2}' /proc/self/mounts; }\n"
    "for m in $(below_k3s | sort -r); do umount -l \"$m\"; done\n"
    "left=$(below_k3s)\n"
    "if [ -n \"$left\" ]; then\n"
    "  echo 'still mounted below the k3s directories (nothing was removed; unmount them and run reset again):' >&2\n"
    "  printf '%s\\n' \"$left\" >&2\n  exit 1\nfi\n"
    "for i in cni0 flannel.1 flannel-v6.1 flannel-wg kube-ipvs0; do ip link delete $i 2>/dev/null; done\n"
    "for c in kubectl crictl ctr; do [ \"$(readlink /usr/local/bin/$c 2>/dev/null)\" = /usr/local/bin/k3s ] && rm -f /usr/local/bin/$c; done\n"
    "rm -rf --one-file-system /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env /etc/systemd/system/k3s-agent.service "
    "/etc/systemd/system/k3s-agent.service.env /etc/systemd/system/nodectl-default-route.service /usr/local/lib/nodectl/default-route.sh "
    "/usr/local/bin/k3s /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet /run/k3s /var/lib/nodectl/k3s "
    "/var/lib/nodectl/applied/k3s-* /var/lib/nodectl/originals/etc/rancher/k3s\n";

// Like k3s's own k3s-killall.sh and k3s-uninstall.sh: stop, kill the pods' shims, unmount,
// drop the interfaces k3s made, remove files, forget nodectl's records. Nothing is removed while
// anything is still mounted below k3s's directories (a pod's volume may be a host directory or an
// NFS share), and rm never crosses into another file system.
std::string reset_script() {
    namespace units = host::units;
    return units::script({units::disable({"k3s.service", "k3s-agent.service", "nodectl-default-route.service"},
                                         {.now = true, .ignore_failure = true})}) +
           k_reset_rest + units::script({units::daemon_reload()}) + "true\n";
}

class ResetK3s final : public Step {
public:
    std::string id() const override { return "k3s/reset"; }
    std::string title() const override { return "remove k3s"; }
    Result<Plan> probe(Target& target) override {
        Command cmd;
        cmd.mutates = false;
        cmd.script = reset_probe();
        auto r = TRY(target.run_checked(cmd, "looking for k3s"));
        Plan plan;
        for (const auto& line : util::split_lines(r.out)) {
            if (!util::trim(line).empty()) {
                plan.changes.push_back({util::trim(line), ""});
            }
        }
        return plan;
    }
    Result<void> apply(Target& target, const Plan&) override {
        Command cmd;
        cmd.script = reset_script();
        cmd.timeout = std::chrono::seconds(300);
        TRY(target.run_checked(cmd, "removing k3s"));
        return Ok{};
    }
};

}  // namespace

std::unique_ptr<Step> make_join_check_step(ServerInfo server) {
    return std::make_unique<CheckJoin>(std::move(server));
}

std::unique_ptr<Step> make_reset_step() {
    return std::make_unique<ResetK3s>();
}

Result<void> wait_node_ready(Target& server, const std::string& name, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (true) {
        Command cmd;
        cmd.mutates = false;
        cmd.script = std::string(k_binary) + " kubectl get node " + shell_quote(name) +
                     " -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' 2>&1; true";
        auto r = TRY(server.run_checked(cmd, "asking the server about node " + name));
        last = util::trim(r.out);
        if (last == "True") {
            return Ok{};
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::seconds(3));
    }
    return make_error(ErrorCode::timeout, "node " + name + " was not Ready on the server within " +
                                              std::to_string(timeout.count()) +
                                              " s (the server says: " + (last.empty() ? "nothing" : last) + ")");
}

}  // namespace nodectl::k3s

#include "modules/k3s/k3s.hpp"
#include "modules/k3s/steps.hpp"

#include "test_support.hpp"
#include "util/digest.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

using namespace nodectl;

namespace {

std::vector<std::string> seq(const YAML::Node& n) {
    std::vector<std::string> out;
    for (const auto& e : n) {
        out.push_back(e.as<std::string>());
    }
    return out;
}

} // namespace

TEST_CASE("k3s: a server's config.yaml parses back with every profile value") {
    auto profile = testing::profile_from(R"(
[runtime]
[k3s]
version = "v1.30.6+k3s1"
tls_san = ["k3s.test", "198.18.0.2"]
node_labels = ["tier=edge", "site=lab"]
node_taints = ["dedicated=edge:NoSchedule"]
disable = ["traefik", "servicelb"]
use_system_containerd = true
api_port = 7443
)");
    auto s = k3s::settings_from(profile.section("k3s"));
    REQUIRE(s.ok());
    auto text = k3s::render_config_yaml(*s);
    REQUIRE(text.ok());
    auto y = YAML::Load(*text);
    CHECK(y["token-file"].as<std::string>() == "/etc/rancher/k3s/token");
    CHECK(y["write-kubeconfig-mode"].as<std::string>() == "0600");
    CHECK(seq(y["tls-san"]) == std::vector<std::string>{"k3s.test", "198.18.0.2"});
    CHECK(seq(y["node-label"]) == std::vector<std::string>{"tier=edge", "site=lab"});
    CHECK(seq(y["node-taint"]) == std::vector<std::string>{"dedicated=edge:NoSchedule"});
    CHECK(seq(y["disable"]) == std::vector<std::string>{"traefik", "servicelb"});
    CHECK(y["secrets-encryption"].as<bool>() == true);
    CHECK(y["protect-kernel-defaults"].as<bool>() == true);
    CHECK(y["container-runtime-endpoint"].as<std::string>() == "unix:///run/containerd/containerd.sock");
    CHECK(y["https-listen-port"].as<int>() == 7443);
    CHECK_FALSE(y["server"]);
    CHECK_FALSE(y["token"]);
}

TEST_CASE("k3s: an agent's config.yaml holds server and token, and no server-only flags") {
    k3s::Settings s;
    s.role = k3s::Role::agent;
    s.server_url = "https://198.18.0.2:6443";
    s.token = "K10" + std::string(64, 'a') + "::server:secret";
    s.disable = {"traefik"};
    auto y = YAML::Load(*k3s::render_config_yaml(s));
    CHECK(y["server"].as<std::string>() == "https://198.18.0.2:6443");
    CHECK(y["token"].as<std::string>() == s.token);
    CHECK_FALSE(y["disable"]);
    CHECK_FALSE(y["token-file"]);
    CHECK_FALSE(y["secrets-encryption"]);
    s.token.clear();
    CHECK_FALSE(k3s::render_config_yaml(s).ok());
}

TEST_CASE("k3s: registries.yaml and the env file") {
    auto y = YAML::Load(k3s::render_registries_yaml({{"docker.io", {"http://127.0.0.1:5000"}}, {"*", {"https://mirror.test"}}}));
    CHECK(seq(y["mirrors"]["docker.io"]["endpoint"]) == std::vector<std::string>{"http://127.0.0.1:5000"});
    CHECK(seq(y["mirrors"]["*"]["endpoint"]) == std::vector<std::string>{"https://mirror.test"});
    auto env = k3s::render_env({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"ODD", "a\"b\\c"}});
    CHECK(env.find("HTTPS_PROXY=\"http://127.0.0.1:3128\"\n") != std::string::npos);
    CHECK(env.find("ODD=\"a\\\"b\\\\c\"\n") != std::string::npos);
}

TEST_CASE("k3s: the step's files are private where they hold secrets") {
    k3s::Settings s;
    auto spec = k3s::files_group(s);
    REQUIRE(spec.ok());
    for (const auto& f : spec->files) {
        if (f.path == "/etc/rancher/k3s/config.yaml" || f.path.ends_with(".env")) {
            CHECK_MESSAGE(f.mode == 0600, f.path);
        }
    }
    CHECK(spec->pre_write.find("/etc/rancher/k3s/token") != std::string::npos);
    CHECK(spec->validate == "systemd-analyze verify /etc/systemd/system/k3s.service");
    s.role = k3s::Role::agent;
    s.server_url = "https://198.18.0.2:6443";
    s.token = "K10x";
    auto agent = k3s::files_group(s);
    REQUIRE(agent.ok());
    CHECK(agent->files[0].sensitive);  // the token never shows in a plan
    CHECK(agent->files[1].path == "/etc/systemd/system/k3s-agent.service");
    CHECK(k3s::render_unit(k3s::Role::agent).find("ExecStart=/usr/local/bin/k3s agent") != std::string::npos);
    CHECK(k3s::render_unit(k3s::Role::server).find("Type=notify") != std::string::npos);
}

TEST_CASE("k3s: the secure token pins the CA by the sha256 of its PEM") {
    std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    auto t = k3s::secure_token(ca, "s3cret");
    CHECK(t == "K10" + util::sha256_hex(ca) + "::server:s3cret");
}

TEST_CASE("k3s: profile checks") {
    auto agent = testing::profile_from("[k3s]\nrole = \"agent\"\n");
    auto r = k3s::settings_from(agent.section("k3s"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("server_url") != std::string::npos);
    auto bad = testing::try_profile("[k3s]\nversion = \"1.30\"\n");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find(":2:") != std::string::npos);
    auto standalone = testing::profile_from("[harden]\n[k3s]\n");
    HostSpec host;
    host.name = "n1";
    auto steps = k3s::steps(ModuleContext{standalone, host});
    REQUIRE_FALSE(steps.ok());
    CHECK(steps.error().message.find("harden.role") != std::string::npos);
    auto no_runtime = testing::profile_from("[k3s]\nuse_system_containerd = true\n");
    CHECK_FALSE(k3s::steps(ModuleContext{no_runtime, host}).ok());
}

namespace {
// Answers every command with what a hostile host could print: an interface name with quotes.
class HostileInterfaceTarget final : public Target {
public:
    explicit HostileInterfaceTarget(std::string iface) : m_iface(std::move(iface)) {}
    const std::string& name() const override { return m_name; }
    Result<CommandResult> run(const Command&) override { return CommandResult{0, m_iface + "\nneeded\n", ""}; }
    Result<std::unique_ptr<HostLock>> lock(const std::string&) override {
        return make_error(ErrorCode::unsupported, "no lock here");
    }

private:
    std::string m_name = "hostile";
    std::string m_iface;
};
} // namespace

// Audit (values from hosts are untrusted): the default-route group put the interface name the
// host reported into its drift probe inside '...', so a name with a quote ran code at plan time.
TEST_CASE("k3s default route: an interface name from the host is quoted in the drift probe") {
    testing::QuietLogs quiet;
    testing::TempDir dir;
    std::string pwned = dir.file("pwned");
    HostileInterfaceTarget host("eth0';touch " + pwned + ";'");
    auto spec = k3s::default_route_group();
    REQUIRE(spec.prepare);
    REQUIRE(spec.prepare(host, spec));
    // The probe as the node runs it, on a node without a default route (`ip` finds none).
    LocalTarget local("local");
    Command cmd;
    cmd.script = "ip() { return 0; }\n" + spec.drift;
    auto r = local.run(cmd);
    REQUIRE(r);
    CHECK_FALSE(std::filesystem::exists(pwned));
    CHECK(r->out.find("add an on-link default route via eth0';touch " + pwned + ";': the node has none") != std::string::npos);
}

// The join check's TCP probe put the server's address into `bash -c '...'` unquoted.
TEST_CASE("k3s join check: the server address is quoted in the reachability probe") {
    testing::QuietLogs quiet;
    testing::TempDir dir;
    std::string pwned = dir.file("pwned");
    k3s::ServerInfo info;
    info.version = "v1.30.6+k3s1";
    // Quoted, bash reads host 127.0.0.1 and a service name that does not exist: nothing leaves
    // loopback, no name is looked up in DNS.
    info.url = "https://127.0.0.1/1;touch " + pwned + ";:6443";
    auto step = k3s::make_join_check_step(info);
    LocalTarget local("local");
    auto plan = step->probe(local);
    CHECK_FALSE(plan);  // nothing answers at such an address
    CHECK_FALSE(std::filesystem::exists(pwned));
}

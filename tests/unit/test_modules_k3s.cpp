#include "modules/k3s/k3s.hpp"
#include "modules/k3s/steps.hpp"

#include "target/local_target.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

using namespace nodectl;
using nodectl::testing::CannedTarget;

namespace {

std::vector<std::string> seq(const YAML::Node& n) {
    std::vector<std::string> out;
    for (const auto& e : n) {
        out.push_back(e.as<std::string>());
    }
    return out;
}

}  // namespace

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
    auto y = YAML::Load(
        k3s::render_registries_yaml({{"docker.io", {"http://127.0.0.1:5000"}}, {"*", {"https://mirror.test"}}}));
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

TEST_CASE("k3s join: the server address must be a host name or an IP address, checked before anything runs") {
    const std::string server_out = "@@release\nv1.30.6+k3s1 abc\n@@version\n@@token\nK10" + std::string(64, 'a') +
                                   "::server:s3cret\n@@secret\n@@ca\n@@end\n";
    for (const char* bad :
         {"198.18.0.2'; touch /tmp/nodectl-unit-pwned; '", "$(id)", "`id`", "-oProxyCommand=x", "a b", "198.18.0.2/24",
          "root@198.18.0.2", "198.18.0.2:6443", "[198.18.0.2]", "", "a..b", "-lab", "lab-"}) {
        CAPTURE(bad);
        CannedTarget server(server_out);
        auto r = k3s::read_server_info(server, bad, 6443);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::usage);
        CHECK(server.scripts.empty());
    }
    for (auto [address, url] :
         std::vector<std::pair<std::string, std::string>>{{"198.18.0.2", "https://198.18.0.2:6443"},
                                                          {"::ffff:198.18.0.2", "https://[::ffff:198.18.0.2]:6443"},
                                                          {"[::ffff:198.18.0.2]", "https://[::ffff:198.18.0.2]:6443"},
                                                          {"k3s-1.lab", "https://k3s-1.lab:6443"}}) {
        CAPTURE(address);
        CannedTarget server(server_out);
        auto r = k3s::read_server_info(server, address, 6443);
        REQUIRE(r.ok());
        CHECK(r->url == url);
        CHECK(r->version == "v1.30.6+k3s1");
    }
}

TEST_CASE("k3s join: the reachability probe never lets the server address into the shell") {
    nodectl::testing::TempDir dir;
    const std::string marker = dir.file("pwned");
    LocalTarget local;
    k3s::ServerInfo hostile;
    hostile.port = 6443;
    hostile.host = "x$(touch " + marker + ")";
    hostile.url = "https://" + hostile.host + ":6443";
    auto step = k3s::make_join_check_step(hostile);
    auto plan = step->probe(local);
    CHECK_FALSE(plan.ok());
    CHECK_FALSE(std::filesystem::exists(marker));

    // A good address still gets its probe: nothing listens on 127.0.0.1:1.
    k3s::ServerInfo closed;
    closed.port = 1;
    closed.host = "127.0.0.1";
    closed.url = "https://127.0.0.1:1";
    auto unreachable = k3s::make_join_check_step(closed)->probe(local);
    REQUIRE_FALSE(unreachable.ok());
    CHECK(unreachable.error().message.find("is unreachable from this node") != std::string::npos);
}

TEST_CASE("k3s: the default route's drift check quotes the interface name the node reports") {
    nodectl::testing::TempDir dir;
    const std::string marker = dir.file("pwned");
    CannedTarget node("eth0';touch " + marker + ";'\nneeded\n");
    auto spec = k3s::default_route_group();
    REQUIRE(spec.prepare);
    REQUIRE(spec.prepare(node, spec).ok());
    // An `ip` that knows no default route, so the drift check speaks.
    std::ofstream(dir.file("ip")) << "#!/bin/sh\nexit 0\n";
    std::filesystem::permissions(dir.file("ip"), std::filesystem::perms(0755));
    auto r =
        run_process({"/usr/bin/env", "PATH=" + dir.path().string() + ":/usr/bin:/bin", "/bin/sh", "-c", spec.drift}, "",
                    std::chrono::seconds(10));
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK(r->out == "add an on-link default route via eth0';touch " + marker +
                        ";': the node has none, and k3s needs one to choose its address\n");
    CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("k3s: release and channel URLs, the channel and the server URL are checked by grammar") {
    for (const char* bad : {"channel = \"../stable\"", "channel = \"stable; id\"", "channel = \"\"",
                            "release_url = \"ftp://198.18.0.1/k3s\"", "release_url = \"https://user@198.18.0.1/k3s\"",
                            "release_url = \"https://198.18.0.1/k3s?x=$(id)\"", "channel_url = \"https://a b/c\"",
                            "channel_url = \"file://relative/path\"", "server_url = \"http://198.18.0.2:6443\"",
                            "server_url = \"https://198.18.0.2\"", "server_url = \"https://198.18.0.2:6443/x\"",
                            "server_url = \"https://-oProxy:6443\"", "server_url = \"https://198.18.0.2:99999\""}) {
        CAPTURE(bad);
        CHECK_FALSE(testing::try_profile(std::string("[k3s]\n") + bad + "\n").ok());
    }
    for (const char* good :
         {"channel = \"v1.30\"", "release_url = \"https://mirror.lab:8443/k3s/releases\"",
          "release_url = \"file:///srv/k3s-mirror\"", "channel_url = \"https://[::ffff:198.18.0.1]/ch\"",
          "server_url = \"https://198.18.0.2:6443\"", "server_url = \"https://[::ffff:198.18.0.2]:6443\"",
          "server_url = \"https://k3s.lab:6443\""}) {
        CAPTURE(good);
        auto p = testing::try_profile(std::string("[k3s]\n") + good + "\n");
        CHECK_MESSAGE(p.ok(), (p.ok() ? std::string() : p.error().message));
    }

    // Plain http passes the grammar, but only k3s.allow_insecure_http lets it be used.
    auto http = testing::profile_from("[k3s]\nrelease_url = \"http://198.18.0.1/k3s\"\n");
    auto refused = k3s::settings_from(http.section("k3s"));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::config);
    CHECK(refused.error().message.find("k3s.allow_insecure_http") != std::string::npos);
    CHECK(refused.error().message.find(":2") != std::string::npos);
    auto allowed = testing::profile_from("[k3s]\nrelease_url = \"http://198.18.0.1/k3s\"\n"
                                         "channel_url = \"http://198.18.0.1/ch\"\nallow_insecure_http = true\n");
    auto ok = k3s::settings_from(allowed.section("k3s"));
    REQUIRE_MESSAGE(ok.ok(), ok.error().message);
    CHECK(ok->allow_insecure_http);
}

// Every key nodectl writes into k3s's config.yaml is one k3s accepts (tests/data/k3s/k3s-config-keys.tsv,
// taken from k3s's flag definitions; see its NOTICE.md). k3s skips an unknown server key with only a
// warning, so a misspelt key would otherwise pass unnoticed until a real node ignored it.
#include "modules/k3s/k3s.hpp"

#include <doctest/doctest.h>

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

using namespace nodectl;

namespace {

// command ("server" or "agent") -> keys, from the TSV (comments and blank lines skipped).
std::map<std::string, std::set<std::string>> accepted_keys() {
    std::ifstream in(std::string(NODECTL_SOURCE_DIR) + "/tests/data/k3s/k3s-config-keys.tsv");
    REQUIRE(in.good());
    std::map<std::string, std::set<std::string>> out;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        std::string command, key;
        std::getline(fields, command, '\t');
        std::getline(fields, key, '\t');
        out[command].insert(key);
    }
    return out;
}

// The keys of a rendered config.yaml, each checked against k3s's list for its command.
void check_keys(const std::string& yaml, const std::set<std::string>& accepted, size_t at_least) {
    auto doc = YAML::Load(yaml);
    REQUIRE(doc.IsMap());
    CHECK(doc.size() >= at_least);
    for (const auto& kv : doc) {
        auto key = kv.first.as<std::string>();
        CHECK_MESSAGE(accepted.count(key) == 1, "config.yaml key '" << key << "' is not one k3s accepts");
    }
}

}  // namespace

TEST_CASE("k3s config.yaml: the list of keys k3s accepts is there and discriminates") {
    auto keys = accepted_keys();
    CHECK(keys["server"].size() > 100);
    CHECK(keys["agent"].size() > 30);
    CHECK(keys["server"].count("token-file") == 1);
    CHECK(keys["server"].count("token-fiel") == 0);
    CHECK(keys["agent"].count("secrets-encryption") == 0);  // a server-only key
}

TEST_CASE("k3s config.yaml: every key nodectl writes is one k3s accepts, server and agent, every option on") {
    auto keys = accepted_keys();
    k3s::Settings s;
    s.role = k3s::Role::server;
    s.api_port = 7443;
    s.tls_san = {"k3s.example.org", "198.18.30.10"};
    s.disable = {"traefik", "servicelb", "metrics-server", "local-storage", "coredns"};
    s.node_labels = {"tier=web"};
    s.node_taints = {"dedicated=web:NoSchedule"};
    s.secrets_encryption = true;
    s.protect_kernel_defaults = true;
    s.use_system_containerd = true;
    auto server = k3s::render_config_yaml(s);
    REQUIRE(server);
    check_keys(*server, keys["server"], 10);
    // `disable` takes only the packaged components k3s knows (pkg/cli/cmds/stage.go).
    const std::set<std::string> components = {"coredns",       "servicelb",      "traefik",
                                              "local-storage", "metrics-server", "runtimes"};
    for (const auto& d : YAML::Load(*server)["disable"]) {
        CHECK(components.count(d.as<std::string>()) == 1);
    }

    s.role = k3s::Role::agent;
    s.server_url = "https://198.18.30.10:6443";
    s.token = "K10abc::server:def";
    auto agent = k3s::render_config_yaml(s);
    REQUIRE(agent);
    check_keys(*agent, keys["agent"], 5);
}

// Rewriting k3s's admin kubeconfig and merging it into an existing one.
#include "modules/k3s/kubeconfig.hpp"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>

using nodectl::k3s::merge_kubeconfig;
using nodectl::k3s::rewrite_kubeconfig;

namespace {

// The shape k3s writes (its field order; the key material shortened).
std::string k3s_yaml(const std::string& server = "https://127.0.0.1:6443") {
    return "apiVersion: v1\n"
           "clusters:\n"
           "- cluster:\n"
           "    certificate-authority-data: Q0EtREFUQQ==\n"
           "    server: " + server + "\n"
           "  name: default\n"
           "contexts:\n"
           "- context:\n"
           "    cluster: default\n"
           "    user: default\n"
           "  name: default\n"
           "current-context: default\n"
           "kind: Config\n"
           "preferences: {}\n"
           "users:\n"
           "- name: default\n"
           "  user:\n"
           "    client-certificate-data: Q0VSVA==\n"
           "    client-key-data: S0VZ\n";
}

YAML::Node load(const std::string& text) {
    return YAML::Load(text);
}

// The entry of list `key` named `name`, or an undefined node.
YAML::Node entry(const YAML::Node& root, const char* key, const std::string& name) {
    for (const auto& e : root[key]) {
        if (e["name"].as<std::string>() == name) {
            return e;
        }
    }
    return YAML::Node(YAML::NodeType::Undefined);
}

} // namespace

TEST_CASE("rewrite_kubeconfig: IPv4 address, names, current context, key material kept") {
    auto r = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(r.ok());
    auto y = load(*r);
    CHECK(y["clusters"].size() == 1);
    CHECK(y["clusters"][0]["name"].as<std::string>() == "lab");
    CHECK(y["clusters"][0]["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
    CHECK(y["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>() == "Q0EtREFUQQ==");
    CHECK(y["users"][0]["name"].as<std::string>() == "lab");
    CHECK(y["users"][0]["user"]["client-key-data"].as<std::string>() == "S0VZ");
    CHECK(y["contexts"][0]["name"].as<std::string>() == "lab");
    CHECK(y["contexts"][0]["context"]["cluster"].as<std::string>() == "lab");
    CHECK(y["contexts"][0]["context"]["user"].as<std::string>() == "lab");
    CHECK(y["current-context"].as<std::string>() == "lab");
    CHECK(r->find("default") == std::string::npos);
    CHECK(r->find("127.0.0.1") == std::string::npos);
    CHECK(r->back() == '\n');
}

TEST_CASE("rewrite_kubeconfig: IPv6 addresses are bracketed; the port and path are kept") {
    auto r = rewrite_kubeconfig(k3s_yaml(), "::ffff:198.18.0.2", "v6");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://[::ffff:198.18.0.2]:6443");

    r = rewrite_kubeconfig(k3s_yaml("https://[::1]:7443"), "[::ffff:198.18.0.2]", "v6");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://[::ffff:198.18.0.2]:7443");

    r = rewrite_kubeconfig(k3s_yaml("https://localhost:6444/k3s"), "node1.lab", "n1");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://node1.lab:6444/k3s");
}

TEST_CASE("rewrite_kubeconfig: a server that is not loopback is left alone; rewriting twice is stable") {
    auto r = rewrite_kubeconfig(k3s_yaml("https://k3s.lab:6443"), "198.18.0.2", "lab");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://k3s.lab:6443");

    auto once = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(once.ok());
    auto twice = rewrite_kubeconfig(*once, "198.18.0.2", "lab");
    REQUIRE(twice.ok());
    CHECK(*twice == *once);
}

TEST_CASE("rewrite_kubeconfig: malformed input is an error, never a half-rewritten file") {
    CHECK_FALSE(rewrite_kubeconfig("clusters: [unclosed", "198.18.0.2", "x").ok());          // not YAML
    CHECK_FALSE(rewrite_kubeconfig("just a string\n", "198.18.0.2", "x").ok());              // not a mapping
    CHECK_FALSE(rewrite_kubeconfig("", "198.18.0.2", "x").ok());                             // empty
    CHECK_FALSE(rewrite_kubeconfig("clusters: 3\n", "198.18.0.2", "x").ok());                // not a list
    CHECK_FALSE(rewrite_kubeconfig("<html>502 Bad Gateway</html>\n", "198.18.0.2", "x").ok());

    auto none = rewrite_kubeconfig("apiVersion: v1\nkind: Config\nclusters: []\n", "198.18.0.2", "x");
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message.find("no clusters") != std::string::npos);
    CHECK(none.error().code == nodectl::ErrorCode::config);

    auto no_server = rewrite_kubeconfig("clusters:\n- name: default\n  cluster: {}\ncontexts:\n- name: default\n",
                                        "198.18.0.2", "x");
    REQUIRE_FALSE(no_server.ok());
    CHECK(no_server.error().message.find("no server") != std::string::npos);

    auto bad_host = rewrite_kubeconfig(k3s_yaml(), "evil/path@x", "x");
    REQUIRE_FALSE(bad_host.ok());
    CHECK(bad_host.error().code == nodectl::ErrorCode::usage);
    CHECK_FALSE(rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "").ok());
}

TEST_CASE("merge_kubeconfig: into nothing, the new kubeconfig itself") {
    auto fresh = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto merged = merge_kubeconfig("", *fresh);
    REQUIRE(merged.ok());
    CHECK(*merged == *fresh);
    auto blank = merge_kubeconfig("# nothing yet\n", *fresh);
    REQUIRE(blank.ok());
    CHECK(*blank == *fresh);
}

TEST_CASE("merge_kubeconfig: other contexts kept, same names replaced, current context set, idempotent") {
    const std::string existing = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "clusters:\n"
                                 "- name: other\n"
                                 "  cluster:\n"
                                 "    server: https://198.18.0.9:6443\n"
                                 "- name: lab\n"
                                 "  cluster:\n"
                                 "    server: https://198.18.0.7:6443\n"
                                 "contexts:\n"
                                 "- name: other\n"
                                 "  context:\n"
                                 "    cluster: other\n"
                                 "    user: other\n"
                                 "users:\n"
                                 "- name: other\n"
                                 "  user:\n"
                                 "    token: abc\n"
                                 "current-context: other\n";
    auto fresh = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto once = merge_kubeconfig(existing, *fresh);
    REQUIRE(once.ok());
    auto y = load(*once);
    CHECK(y["current-context"].as<std::string>() == "lab");
    CHECK(y["clusters"].size() == 2);
    CHECK(y["contexts"].size() == 2);
    CHECK(y["users"].size() == 2);
    // The old "lab" cluster was replaced where it was, not appended a second time.
    CHECK(y["clusters"][1]["name"].as<std::string>() == "lab");
    CHECK(entry(y, "clusters", "lab")["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
    CHECK(entry(y, "clusters", "other")["cluster"]["server"].as<std::string>() == "https://198.18.0.9:6443");
    CHECK(entry(y, "users", "other")["user"]["token"].as<std::string>() == "abc");
    CHECK(entry(y, "contexts", "lab")["context"]["user"].as<std::string>() == "lab");

    auto twice = merge_kubeconfig(*once, *fresh);
    REQUIRE(twice.ok());
    CHECK(*twice == *once);

    // A second cluster under another name joins the others.
    auto second = rewrite_kubeconfig(k3s_yaml(), "198.18.0.3", "lab2");
    REQUIRE(second.ok());
    auto three = merge_kubeconfig(*once, *second);
    REQUIRE(three.ok());
    auto y3 = load(*three);
    CHECK(y3["contexts"].size() == 3);
    CHECK(y3["current-context"].as<std::string>() == "lab2");
    CHECK(entry(y3, "clusters", "lab")["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
}

TEST_CASE("merge_kubeconfig: lists that kubectl leaves null are filled") {
    auto fresh = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto merged = merge_kubeconfig("apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: \"\"\n"
                                   "kind: Config\npreferences: {}\nusers: null\n",
                                   *fresh);
    REQUIRE(merged.ok());
    auto y = load(*merged);
    CHECK(y["clusters"].size() == 1);
    CHECK(y["users"].size() == 1);
    CHECK(y["current-context"].as<std::string>() == "lab");
}

TEST_CASE("merge_kubeconfig: a malformed existing file is an error, not overwritten") {
    auto fresh = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto bad = merge_kubeconfig("clusters: [oops\n", *fresh);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("not YAML") != std::string::npos);
    CHECK_FALSE(merge_kubeconfig("- a\n- b\n", *fresh).ok());
    CHECK_FALSE(merge_kubeconfig("users: {a: 1}\n", *fresh).ok());
    CHECK_FALSE(merge_kubeconfig("", "not: [closed\n").ok());
    CHECK_FALSE(merge_kubeconfig("", "clusters:\n- cluster: {}\n").ok());  // an entry without a name
}

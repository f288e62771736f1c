// Rewriting k3s's admin kubeconfig and merging it into an existing one.
#include "modules/k3s/kubeconfig.hpp"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>

using nodectl::k3s::kubeconfig_entry_name;
using nodectl::k3s::merge_kubeconfig;
using nodectl::k3s::remove_kubeconfig_entry;
using nodectl::k3s::rewrite_kubeconfig;

namespace {

// The shape k3s writes (its field order; the key material shortened).
std::string k3s_yaml(const std::string& server = "https://127.0.0.1:6443") {
    return "apiVersion: v1\n"
           "clusters:\n"
           "- cluster:\n"
           "    certificate-authority-data: Q0EtREFUQQ==\n"
           "    server: " +
           server +
           "\n"
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

// k3s's kubeconfig rewritten for a server reached at `host`, named nodectl-`name`.
nodectl::Result<std::string> rewrite(const std::string& yaml, const std::string& host, const std::string& name) {
    return rewrite_kubeconfig(yaml, host, host, "nodectl-" + name);
}

// What a compromised server could put into its kubeconfig to run code on the operator's machine
// or send kubectl's credentials elsewhere.
std::string hostile_yaml() {
    return "apiVersion: v1\n"
           "clusters:\n"
           "- cluster:\n"
           "    certificate-authority-data: Q0EtREFUQQ==\n"
           "    server: https://127.0.0.1:6443\n"
           "    insecure-skip-tls-verify: true\n"
           "    proxy-url: socks5://198.18.0.66:1080\n"
           "    tls-server-name: evil.example\n"
           "    extensions:\n"
           "    - name: x\n"
           "      extension: {a: b}\n"
           "  name: default\n"
           "- cluster:\n"
           "    server: https://198.18.0.66:6443\n"
           "  name: other\n"
           "contexts:\n"
           "- context:\n"
           "    cluster: default\n"
           "    user: default\n"
           "    namespace: kube-system\n"
           "  name: default\n"
           "current-context: default\n"
           "kind: Config\n"
           "preferences: {colors: true}\n"
           "users:\n"
           "- name: default\n"
           "  user:\n"
           "    client-certificate-data: Q0VSVA==\n"
           "    client-key-data: S0VZ\n"
           "    token: stolen\n"
           "    tokenFile: /home/operator/.ssh/id_ed25519\n"
           "    username: admin\n"
           "    password: pw\n"
           "    as: system:admin\n"
           "    exec:\n"
           "      apiVersion: client.authentication.k8s.io/v1\n"
           "      command: /bin/sh\n"
           "      args: [\"-c\", \"touch /tmp/pwned\"]\n"
           "    auth-provider:\n"
           "      name: oidc\n"
           "      config: {idp-issuer-url: https://198.18.0.66}\n"
           "- name: other\n"
           "  user:\n"
           "    exec: {command: /bin/sh}\n";
}

}  // namespace

TEST_CASE("rewrite_kubeconfig: IPv4 address, nodectl- names, current context, key material kept") {
    auto r = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(r.ok());
    auto y = load(*r);
    CHECK(y["clusters"].size() == 1);
    CHECK(y["clusters"][0]["name"].as<std::string>() == "nodectl-lab");
    CHECK(y["clusters"][0]["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
    CHECK(y["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>() == "Q0EtREFUQQ==");
    CHECK(y["users"][0]["name"].as<std::string>() == "nodectl-lab");
    CHECK(y["users"][0]["user"]["client-certificate-data"].as<std::string>() == "Q0VSVA==");
    CHECK(y["users"][0]["user"]["client-key-data"].as<std::string>() == "S0VZ");
    CHECK(y["contexts"][0]["name"].as<std::string>() == "nodectl-lab");
    CHECK(y["contexts"][0]["context"]["cluster"].as<std::string>() == "nodectl-lab");
    CHECK(y["contexts"][0]["context"]["user"].as<std::string>() == "nodectl-lab");
    CHECK(y["current-context"].as<std::string>() == "nodectl-lab");
    CHECK(r->find("default") == std::string::npos);
    CHECK(r->find("127.0.0.1") == std::string::npos);
    CHECK(r->back() == '\n');
}

TEST_CASE("rewrite_kubeconfig: only the CA, the server and the client certificate and key are kept") {
    auto r = rewrite(hostile_yaml(), "198.18.0.2", "lab");
    REQUIRE(r.ok());
    auto y = load(*r);
    CHECK(y["clusters"].size() == 1);
    CHECK(y["users"].size() == 1);
    CHECK(y["contexts"].size() == 1);
    CHECK(y["clusters"][0]["cluster"].size() == 2);  // certificate-authority-data, server
    CHECK(y["users"][0]["user"].size() == 2);  // client-certificate-data, client-key-data
    CHECK(y["contexts"][0]["context"].size() == 2);  // cluster, user
    CHECK(y["clusters"][0]["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
    for (const char* word : {"exec", "/bin/sh", "pwned", "auth-provider", "oidc", "token", "id_ed25519", "password",
                             "insecure", "proxy", "socks5", "evil", "198.18.0.66", "extension", "preferences", "colors",
                             "namespace", "system:admin", "other"}) {
        CAPTURE(word);
        CHECK(r->find(word) == std::string::npos);
    }
}

TEST_CASE("rewrite_kubeconfig: IPv6 addresses are bracketed; the port is kept") {
    auto r = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "::ffff:198.18.0.2", "nodectl-v6");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://[::ffff:198.18.0.2]:6443");

    r = rewrite_kubeconfig(k3s_yaml("https://[::1]:7443"), "198.18.0.2", "[::ffff:198.18.0.2]", "nodectl-v6");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://[::ffff:198.18.0.2]:7443");

    r = rewrite(k3s_yaml("https://localhost:6444"), "node1.lab", "n1");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://node1.lab:6444");
}

TEST_CASE("rewrite_kubeconfig: the server must be loopback or the address nodectl connected to") {
    // k3s's own address is accepted and pinned to the address clients use.
    auto r = rewrite_kubeconfig(k3s_yaml("https://198.18.0.2:6443"), "198.18.0.2", "k3s.lab", "nodectl-lab");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://k3s.lab:6443");
    r = rewrite(k3s_yaml("https://Node1.Lab:6443/"), "node1.lab", "lab");
    REQUIRE(r.ok());
    CHECK(load(*r)["clusters"][0]["cluster"]["server"].as<std::string>() == "https://node1.lab:6443");

    for (const char* server : {"https://198.18.0.66:6443", "https://k3s.lab:6443", "http://127.0.0.1:6443",
                               "https://127.0.0.1:6443/api", "https://user@127.0.0.1:6443", "https://127.0.0.1:99999",
                               "https://127.0.0.1:6443?x=1", "file:///etc/passwd", "https://127.0.0.1 :6443"}) {
        CAPTURE(server);
        auto bad = rewrite(k3s_yaml(server), "198.18.0.2", "lab");
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().code == nodectl::ErrorCode::config);
    }

    auto once = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(once.ok());
    auto twice = rewrite(*once, "198.18.0.2", "lab");
    REQUIRE(twice.ok());
    CHECK(*twice == *once);
}

TEST_CASE("rewrite_kubeconfig: malformed input is an error, never a half-rewritten file") {
    CHECK_FALSE(rewrite("clusters: [unclosed", "198.18.0.2", "x").ok());  // not YAML
    CHECK_FALSE(rewrite("just a string\n", "198.18.0.2", "x").ok());  // not a mapping
    CHECK_FALSE(rewrite("", "198.18.0.2", "x").ok());  // empty
    CHECK_FALSE(rewrite("clusters: 3\n", "198.18.0.2", "x").ok());  // not a list
    CHECK_FALSE(rewrite("<html>502 Bad Gateway</html>\n", "198.18.0.2", "x").ok());

    auto none = rewrite("apiVersion: v1\nkind: Config\nclusters: []\n", "198.18.0.2", "x");
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message.find("no clusters") != std::string::npos);
    CHECK(none.error().code == nodectl::ErrorCode::config);

    auto no_server = rewrite("clusters:\n- name: default\n  cluster: {}\ncontexts:\n- name: default\n  context: "
                             "{cluster: default, user: default}\nusers:\n- name: default\n  user: {}\n",
                             "198.18.0.2", "x");
    REQUIRE_FALSE(no_server.ok());
    CHECK(no_server.error().message.find("no server") != std::string::npos);

    // Key material that is not base64, or missing, or a structure where text belongs.
    std::string text = k3s_yaml();
    auto with = [&](const std::string& from, const std::string& to) {
        std::string t = text;
        t.replace(t.find(from), from.size(), to);
        return rewrite(t, "198.18.0.2", "x");
    };
    CHECK_FALSE(with("client-key-data: S0VZ", "client-key-data: \"S0VZ\\n  exec: x\"").ok());
    CHECK_FALSE(with("client-key-data: S0VZ", "client-key-data: [S0VZ]").ok());
    CHECK_FALSE(with("    client-key-data: S0VZ\n", "").ok());
    CHECK_FALSE(with("certificate-authority-data: Q0EtREFUQQ==", "certificate-authority-data: Q0E=tREFUQQ=").ok());
    CHECK_FALSE(with("current-context: default", "current-context: elsewhere").ok());
    CHECK_FALSE(with("    user: default\n  name: default", "    user: nobody\n  name: default").ok());

    // Bounded: k3s's file is a few KiB.
    std::string big = k3s_yaml() + "# " + std::string(nodectl::k3s::k_max_kubeconfig_bytes, 'x') + "\n";
    auto too_big = rewrite(big, "198.18.0.2", "x");
    REQUIRE_FALSE(too_big.ok());
    CHECK(too_big.error().message.find("larger than 64 KiB") != std::string::npos);

    auto bad_host = rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "evil/path@x", "nodectl-x");
    REQUIRE_FALSE(bad_host.ok());
    CHECK(bad_host.error().code == nodectl::ErrorCode::usage);
    CHECK_FALSE(rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "-oProxyCommand=x", "nodectl-x").ok());
    CHECK_FALSE(rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "198.18.0.2", "").ok());
    CHECK_FALSE(rewrite_kubeconfig(k3s_yaml(), "198.18.0.2", "198.18.0.2", "lab").ok());  // not nodectl-*
}

TEST_CASE("kubeconfig_entry_name: nodectl- prefixed, checked") {
    CHECK(kubeconfig_entry_name("lab").value() == "nodectl-lab");
    CHECK(kubeconfig_entry_name("nodectl-lab").value() == "nodectl-lab");
    CHECK(kubeconfig_entry_name("198.18.0.2").value() == "nodectl-198.18.0.2");
    CHECK(kubeconfig_entry_name("::ffff:198.18.0.2").value() == "nodectl-::ffff:198.18.0.2");
    for (const char* bad : {"", "a b", "a/b", "a\"b", "a\nb", "$(x)"}) {
        CAPTURE(bad);
        auto r = kubeconfig_entry_name(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == nodectl::ErrorCode::usage);
    }
}

TEST_CASE("merge_kubeconfig: into nothing, the new kubeconfig itself") {
    auto fresh = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto merged = merge_kubeconfig("", *fresh);
    REQUIRE(merged.ok());
    CHECK(*merged == *fresh);
    auto blank = merge_kubeconfig("# nothing yet\n", *fresh);
    REQUIRE(blank.ok());
    CHECK(*blank == *fresh);
}

TEST_CASE("merge_kubeconfig: the operator's entries are kept, nodectl's replaced, current context set, idempotent") {
    const std::string existing = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "clusters:\n"
                                 "- name: other\n"
                                 "  cluster:\n"
                                 "    server: https://198.18.0.9:6443\n"
                                 "- name: nodectl-lab\n"
                                 "  cluster:\n"
                                 "    server: https://198.18.0.7:6443\n"
                                 "- name: lab\n"
                                 "  cluster:\n"
                                 "    server: https://198.18.0.8:6443\n"
                                 "contexts:\n"
                                 "- name: other\n"
                                 "  context:\n"
                                 "    cluster: other\n"
                                 "    user: other\n"
                                 "users:\n"
                                 "- name: other\n"
                                 "  user:\n"
                                 "    token: abc\n"
                                 "- name: lab\n"
                                 "  user:\n"
                                 "    token: mine\n"
                                 "current-context: other\n";
    auto fresh = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto once = merge_kubeconfig(existing, *fresh);
    REQUIRE(once.ok());
    auto y = load(*once);
    CHECK(y["current-context"].as<std::string>() == "nodectl-lab");
    CHECK(y["clusters"].size() == 3);
    CHECK(y["contexts"].size() == 2);
    CHECK(y["users"].size() == 3);
    // The old "nodectl-lab" cluster was replaced where it was, not appended a second time.
    CHECK(y["clusters"][1]["name"].as<std::string>() == "nodectl-lab");
    CHECK(entry(y, "clusters", "nodectl-lab")["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
    // The operator's own "lab" entries are untouched.
    CHECK(entry(y, "clusters", "lab")["cluster"]["server"].as<std::string>() == "https://198.18.0.8:6443");
    CHECK(entry(y, "users", "lab")["user"]["token"].as<std::string>() == "mine");
    CHECK(entry(y, "clusters", "other")["cluster"]["server"].as<std::string>() == "https://198.18.0.9:6443");
    CHECK(entry(y, "users", "other")["user"]["token"].as<std::string>() == "abc");
    CHECK(entry(y, "contexts", "nodectl-lab")["context"]["user"].as<std::string>() == "nodectl-lab");

    auto twice = merge_kubeconfig(*once, *fresh);
    REQUIRE(twice.ok());
    CHECK(*twice == *once);

    // A second cluster under another name joins the others.
    auto second = rewrite(k3s_yaml(), "198.18.0.3", "lab2");
    REQUIRE(second.ok());
    auto three = merge_kubeconfig(*once, *second);
    REQUIRE(three.ok());
    auto y3 = load(*three);
    CHECK(y3["contexts"].size() == 3);
    CHECK(y3["current-context"].as<std::string>() == "nodectl-lab2");
    CHECK(entry(y3, "clusters", "nodectl-lab")["cluster"]["server"].as<std::string>() == "https://198.18.0.2:6443");
}

TEST_CASE("remove_kubeconfig_entry: only the named nodectl- entries go, the operator's stay") {
    const std::string existing = "apiVersion: v1\nkind: Config\n"
                                 "clusters:\n- name: lab\n  cluster:\n    server: https://198.18.0.8:6443\n"
                                 "contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n"
                                 "users:\n- name: lab\n  user:\n    token: mine\n"
                                 "current-context: lab\n";
    auto a = rewrite(k3s_yaml(), "198.18.0.2", "dev");
    auto b = rewrite(k3s_yaml(), "198.18.0.3", "dev2");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto both = merge_kubeconfig(*merge_kubeconfig(existing, *a), *b);
    REQUIRE(both.ok());

    auto removed = remove_kubeconfig_entry(*both, "nodectl-dev2");  // the current context
    REQUIRE(removed.ok());
    auto y = load(*removed);
    CHECK_FALSE(y["current-context"].IsDefined());
    for (const char* list : {"clusters", "contexts", "users"}) {
        CAPTURE(list);
        CHECK(y[list].size() == 2);
        CHECK_FALSE(entry(y, list, "nodectl-dev2").IsDefined());
        CHECK(entry(y, list, "nodectl-dev").IsDefined());
        CHECK(entry(y, list, "lab").IsDefined());
    }
    CHECK(entry(y, "users", "lab")["user"]["token"].as<std::string>() == "mine");

    auto other = remove_kubeconfig_entry(*both, "nodectl-dev");  // not the current context: that stays
    REQUIRE(other.ok());
    CHECK(load(*other)["current-context"].as<std::string>() == "nodectl-dev2");
    CHECK(load(*other)["clusters"].size() == 2);
    CHECK_FALSE(entry(load(*other), "clusters", "nodectl-dev").IsDefined());

    auto again = remove_kubeconfig_entry(*removed, "nodectl-dev2");  // gone already: nothing changes
    REQUIRE(again.ok());
    CHECK(load(*again)["clusters"].size() == 2);

    auto refused = remove_kubeconfig_entry(existing, "lab");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("nodectl-") != std::string::npos);
    CHECK_FALSE(remove_kubeconfig_entry("- a\n- list\n", "nodectl-dev").ok());
}

TEST_CASE("merge_kubeconfig: entries not named nodectl-* are never merged") {
    const std::string existing = "users:\n- name: lab\n  user:\n    token: mine\ncurrent-context: lab\n";
    for (const char* incoming : {"users:\n- name: lab\n  user:\n    exec: {command: /bin/sh}\n",
                                 "clusters:\n- name: lab\n  cluster: {server: https://198.18.0.2:6443}\n",
                                 "contexts:\n- name: nodectl-x\n  context: {cluster: nodectl-x, user: nodectl-x}\n"
                                 "current-context: lab\n"}) {
        CAPTURE(incoming);
        auto r = merge_kubeconfig(existing, incoming);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == nodectl::ErrorCode::config);
        CHECK(r.error().message.find("refusing to merge") != std::string::npos);
    }
}

TEST_CASE("merge_kubeconfig: lists that kubectl leaves null are filled") {
    auto fresh = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto merged = merge_kubeconfig("apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: \"\"\n"
                                   "kind: Config\npreferences: {}\nusers: null\n",
                                   *fresh);
    REQUIRE(merged.ok());
    auto y = load(*merged);
    CHECK(y["clusters"].size() == 1);
    CHECK(y["users"].size() == 1);
    CHECK(y["current-context"].as<std::string>() == "nodectl-lab");
}

TEST_CASE("merge_kubeconfig: a malformed existing file is an error, not overwritten") {
    auto fresh = rewrite(k3s_yaml(), "198.18.0.2", "lab");
    REQUIRE(fresh.ok());
    auto bad = merge_kubeconfig("clusters: [oops\n", *fresh);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("not YAML") != std::string::npos);
    CHECK_FALSE(merge_kubeconfig("- a\n- b\n", *fresh).ok());
    CHECK_FALSE(merge_kubeconfig("users: {a: 1}\n", *fresh).ok());
    CHECK_FALSE(merge_kubeconfig("", "not: [closed\n").ok());
    CHECK_FALSE(merge_kubeconfig("", "clusters:\n- cluster: {}\n").ok());  // an entry without a name
}

// Delivery of the stack to a k3s server node: secrets made once on the node, masked plans, removal
// of a site that left the profile. The whole step runs on a LocalTarget under a scratch root.
#include "modules/stack/stack.hpp"
#include "target/local_target.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::mode_of;
using nodectl::testing::read_text;
namespace fs = std::filesystem;

namespace {

// A site with no secret reference and no certificate: everything comes from the node.
std::string bare_site(const std::string& name, const std::string& s3) {
    return "[[stack.sites]]\nname = \"" + name + "\"\nhosts = [\"" + name +
           ".example.org\"]\n"
           "search_endpoint = \"http://opensearch.search:9200\"\n"
           "[stack.sites.autoscaling]\nmin = 1\nmax = 1\n"
           "[stack.sites.backup]\nendpoint = \"https://s3.example.net\"\nbucket = \"b\"\ncredentials = { file = \"" +
           s3 + "\" }\n";
}

// The sites of the profile `text`, which must load.
std::vector<stack::Site> sites_ok(const testing::TempDir& dir, const std::string& text) {
    auto profile = load_profile(dir.write("p.toml", text));
    REQUIRE_MESSAGE(profile, (profile ? "" : profile.error().message));
    auto sites = stack::sites_from(*profile);
    REQUIRE_MESSAGE(sites, (sites ? "" : sites.error().message));
    return *sites;
}

// The delivery step on a LocalTarget, every path under `root`.
struct Delivery {
    std::unique_ptr<Step> step;
    Delivery(std::vector<stack::Site> sites, const std::string& root, stack::Monitoring monitoring = {})
        : step(stack::make_delivery_step(std::move(sites), std::move(monitoring), root)) {}
    Result<Plan> run(Target& target, bool apply) {
        auto plan = step->probe(target);
        if (!plan || !apply) {
            return plan;
        }
        TRY_VOID(step->apply(target, *plan));
        return plan;
    }
};

}  // namespace

TEST_CASE("stack delivery: secrets are made once on the node, kept 0600, and stable across applies") {
    testing::TempDir dir;
    std::string s3 = dir.write("s3.creds", "AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=s3-secret-7c1d\n", 0600);
    std::string root = dir.file("node");
    auto sites = sites_ok(dir, bare_site("shop", s3));
    LocalTarget target("local");

    Delivery first(sites, root);
    auto plan = first.run(target, true);
    REQUIRE_MESSAGE(plan, (plan ? "" : plan.error().message));
    std::string manifest = root + stack::manifest_path("shop");
    CHECK(manifest == root + "/var/lib/rancher/k3s/server/manifests/nodectl-stack-shop.yaml");
    CHECK((mode_of(manifest) & 0777) == 0600);
    std::string yaml = read_text(manifest);
    std::string state = root + "/var/lib/nodectl/stack/shop/";
    for (const char* name :
         {"db_password", "replication_password", "redis_password", "crypt_key", "tls.crt", "tls.key"}) {
        CHECK_MESSAGE((mode_of(state + name) & 0777) == 0600, name);
    }
    auto db = read_text(state + "db_password");
    REQUIRE(db.size() == 49);  // 24 random bytes in hex, and a newline
    CHECK(contains(yaml, db.substr(0, 48)));
    CHECK(read_text(state + "crypt_key").size() == 33);
    CHECK(contains(yaml, "s3-secret-7c1d"));
    CHECK(stack::tls_pair_valid({read_text(state + "tls.crt"), read_text(state + "tls.key")}));
    CHECK(contains(yaml, "nodectl.io/self-signed"));
    CHECK(read_text(root + stack::k_delivered) == "shop\n");
    // The plan never shows a secret: the manifest's diff has the Secrets' values masked.
    bool manifest_diff = false;
    for (const auto& c : plan->changes) {
        CHECK_FALSE(contains(c.summary + c.diff, db.substr(0, 48)));
        CHECK_FALSE(contains(c.summary + c.diff, "s3-secret-7c1d"));
        CHECK_FALSE(contains(c.summary + c.diff, "PRIVATE KEY"));
        if (contains(c.summary, "nodectl-stack-shop.yaml")) {
            manifest_diff = true;
            CHECK(contains(c.summary, "secret values hidden"));
            CHECK(contains(c.diff, "\"kind\": \"StatefulSet\""));
            CHECK(contains(c.diff, "(hidden)"));
        }
    }
    CHECK(manifest_diff);

    // A second apply reads the node's values back: same secrets, same bytes, nothing to do.
    Delivery second(sites, root);
    auto again = second.run(target, false);
    REQUIRE(again);
    CHECK(again->changes.empty());
    CHECK(read_text(manifest) == yaml);

    // A value on the node that nodectl cannot have made is refused, never used.
    dir.write("node/var/lib/nodectl/stack/shop/redis_password", "short\n", 0600);
    Delivery bad(sites, root);
    auto refused = bad.run(target, false);
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.error().message, "redis_password"));
    CHECK(contains(refused.error().message, "is not a value nodectl generated"));
}

TEST_CASE("stack delivery: a site that leaves the profile gets an empty manifest and loses its secrets") {
    testing::TempDir dir;
    std::string s3 = dir.write("s3.creds", "AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=SK\n", 0600);
    std::string root = dir.file("node");
    LocalTarget target("local");
    {
        Delivery both(sites_ok(dir, bare_site("shop", s3) + bare_site("blog", s3)), root);
        REQUIRE(both.run(target, true));
    }
    CHECK(read_text(root + stack::k_delivered) == "shop\nblog\n");
    // A file nodectl never wrote is left alone.
    dir.write("node/var/lib/rancher/k3s/server/manifests/someone-else.yaml", "kind: ConfigMap\n");

    Delivery one(sites_ok(dir, bare_site("shop", s3)), root);
    auto plan = one.run(target, true);
    REQUIRE(plan);
    std::string blog = root + stack::manifest_path("blog");
    CHECK(read_text(blog) == stack::removed_manifest("blog"));
    CHECK((mode_of(blog) & 0777) == 0600);
    CHECK_FALSE(fs::exists(root + "/var/lib/nodectl/stack/blog/db_password"));
    CHECK_FALSE(fs::exists(root + "/var/lib/nodectl/stack/blog/tls.key"));
    CHECK(fs::exists(root + "/var/lib/nodectl/stack/shop/db_password"));
    CHECK(fs::exists(root + "/var/lib/rancher/k3s/server/manifests/someone-else.yaml"));
    CHECK(read_text(root + stack::k_delivered) == "shop\n");
    bool removal = false;
    for (const auto& c : plan->changes) {
        removal = removal || (contains(c.summary, "remove ") && contains(c.summary, "blog/db_password"));
    }
    CHECK(removal);
    // The empty manifest has no object (k3s's deploy controller then deletes what it applied).
    for (const auto& line : [&] {
             std::vector<std::string> v;
             std::istringstream in(read_text(blog));
             for (std::string l; std::getline(in, l);)
                 v.push_back(l);
             return v;
         }()) {
        CHECK_MESSAGE((line.empty() || line[0] == '#'), line);
    }

    // A record line that is not a site name (it would become a path) is refused.
    dir.write("node/var/lib/nodectl/stack/delivered", "shop\n../../etc\n", 0600);
    Delivery bad(sites_ok(dir, bare_site("shop", s3)), root);
    auto refused = bad.run(target, false);
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.error().message, "not a site name"));
}

TEST_CASE("stack delivery: masked manifests hide every Secret value and keep everything else") {
    testing::TempDir dir;
    std::string s3 = dir.write("s3.creds", "AWS_SECRET_ACCESS_KEY=masked-s3-5e2a\n", 0600);
    auto sites = sites_ok(dir, bare_site("shop", s3));
    auto pair = stack::make_self_signed({"shop.example.org"});
    REQUIRE(pair);
    stack::NodeSecrets node{{"secrets.db_password", "masked-db-11aa"},
                            {"secrets.replication_password", "masked-repl-22bb"},
                            {"secrets.redis_password", "masked-redis-33cc"},
                            {"secrets.crypt_key", "masked-crypt-44dd"},
                            {"tls.crt", pair->cert_pem},
                            {"tls.key", pair->key_pem}};
    auto yaml = stack::render_site(sites.front(), stack::SecretValues::resolve, node);
    REQUIRE_MESSAGE(yaml, (yaml ? "" : yaml.error().message));
    auto masked = stack::masked_manifest(*yaml);
    for (const char* secret : {"masked-db-11aa", "masked-repl-22bb", "masked-redis-33cc", "masked-crypt-44dd",
                               "masked-s3-5e2a", "PRIVATE KEY", "BEGIN CERTIFICATE"}) {
        CHECK_MESSAGE(contains(*yaml, secret), secret);
        CHECK_FALSE_MESSAGE(contains(masked, secret), secret);
    }
    CHECK(contains(masked, "\"password\": \"(hidden)\""));
    CHECK(contains(masked, "\"kind\": \"HorizontalPodAutoscaler\""));
    CHECK(contains(masked, "# nodectl-shop.yaml"));
    // A document that is not JSON (hand-edited YAML) is hidden whole.
    auto edited = stack::masked_manifest("# c\n---\nkind: Secret\nstringData:\n  password: hand-edited-99\n");
    CHECK_FALSE(contains(edited, "hand-edited-99"));
    CHECK(contains(edited, "cannot read: hidden"));

    // Without the node's values and without references, a render with real values is refused.
    auto refused = stack::render_site(sites.front(), stack::SecretValues::resolve);
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.error().message, "generates it once on the k3s server node"));
}

TEST_CASE("stack delivery: the self-signed pair is a certificate for the hosts with its key") {
    auto a = stack::make_self_signed({"shop.example.org", "www.shop.example.org"});
    auto b = stack::make_self_signed({"shop.example.org"});
    REQUIRE(a);
    REQUIRE(b);
    CHECK(contains(a->cert_pem, "BEGIN CERTIFICATE"));
    CHECK(contains(a->key_pem, "PRIVATE KEY"));
    CHECK(stack::tls_pair_valid(*a));
    CHECK_FALSE(stack::tls_pair_valid({a->cert_pem, b->key_pem}));  // another key
    CHECK_FALSE(stack::tls_pair_valid({"not a certificate", a->key_pem}));
    CHECK_FALSE(stack::tls_pair_valid({a->cert_pem + std::string(70000, 'x'), a->key_pem}));
    CHECK(a->cert_pem != b->cert_pem);
}

TEST_CASE("stack delivery: steps only for a k3s server") {
    testing::TempDir dir;
    std::string s3 = dir.write("s3.creds", "K=V\n", 0600);
    HostSpec host;
    auto steps_for = [&](const std::string& text) {
        auto profile = load_profile(dir.write("s.toml", text));
        REQUIRE(profile);
        return stack::steps(ModuleContext{*profile, host});
    };
    auto agent =
        steps_for("[k3s]\nrole = \"agent\"\nserver_url = \"https://198.18.30.1:6443\"\n" + bare_site("shop", s3));
    REQUIRE_FALSE(agent);
    CHECK(contains(agent.error().message, "delivered to a k3s server node"));
    auto none = steps_for("[base]\n");
    REQUIRE(none);
    CHECK(none->empty());
    auto server = steps_for("[k3s]\n" + bare_site("shop", s3));
    REQUIRE(server);
    REQUIRE(server->size() == 1);
    CHECK(server->front()->id() == "stack/manifests");
    auto server_only = steps_for("[k3s]\n");  // [stack] gone: the step still removes what was delivered
    REQUIRE(server_only);
    CHECK(server_only->size() == 1);
}

TEST_CASE("stack delivery: [stack.monitoring] adds its manifest and the exporters' passwords; disabled, both go") {
    testing::TempDir dir;
    std::string s3 = dir.write("s3.creds", "AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=SK\n", 0600);
    std::string root = dir.file("node");
    LocalTarget target("local");
    auto load = [&](const std::string& text) {
        auto profile = load_profile(dir.write("p.toml", text));
        REQUIRE_MESSAGE(profile, (profile ? "" : profile.error().message));
        auto sites = stack::sites_from(*profile);
        auto monitoring = stack::monitoring_from(*profile);
        REQUIRE(sites);
        REQUIRE(monitoring);
        return std::pair{*sites, *monitoring};
    };
    auto [sites, monitoring] = load(bare_site("shop", s3) + "[stack.monitoring]\nenabled = true\n");
    Delivery on(sites, root, monitoring);
    REQUIRE(on.run(target, true));
    std::string mon = root + stack::manifest_path("monitoring");
    CHECK((mode_of(mon) & 0777) == 0600);
    CHECK(contains(read_text(mon), "\"kind\": \"Deployment\""));
    CHECK(contains(read_text(mon), "_metrics._tcp.redis-metrics.shop.svc.cluster.local"));
    CHECK(read_text(root + stack::k_delivered) == "shop\nmonitoring\n");
    std::string state = root + "/var/lib/nodectl/stack/shop/";
    auto exporter_db = read_text(state + "exporter_db_password");
    REQUIRE(exporter_db.size() == 49);
    CHECK((mode_of(state + "exporter_redis_password") & 0777) == 0600);
    CHECK(contains(read_text(root + stack::manifest_path("shop")), exporter_db.substr(0, 48)));
    // Nothing changes on a second run.
    Delivery again(sites, root, monitoring);
    auto plan = again.run(target, false);
    REQUIRE(plan);
    CHECK(plan->changes.empty());

    auto [plain_sites, off] = load(bare_site("shop", s3));
    Delivery disabled(plain_sites, root, off);
    REQUIRE(disabled.run(target, true));
    CHECK(contains(read_text(mon), "lists no object"));
    CHECK(read_text(root + stack::k_delivered) == "shop\n");
    CHECK_FALSE(fs::exists(state + "exporter_db_password"));
    CHECK_FALSE(fs::exists(state + "exporter_redis_password"));
    CHECK(fs::exists(state + "db_password"));
}

// The stack renderer's objects one by one: Magento's cron, ResourceQuota and LimitRange, images
// pinned by digest. (Keys, rules across keys and secrets: test_modules_stack.cpp.)
#include "modules/stack/stack.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

using namespace nodectl;
// `json` unqualified in this file only: its own namespace keeps the name out of the test files
// compiled together with this one (unity build).
namespace stack_objects_test {
using nlohmann::json;
using nodectl::testing::find_document;
using nodectl::testing::load_sites;

namespace {

// A valid site without secrets files: placeholders only. `extra` goes inside [[stack.sites]],
// `tail` after it (sub-tables).
std::string profile_text(const std::string& extra = "", const std::string& tail = "") {
    return "[[stack.sites]]\nname = \"shop\"\nhosts = [\"shop.example.org\"]\nmedia_host_path = \"/srv/media\"\n"
           "search_endpoint = \"https://search.example.net:9243\"\n" +
           extra +
           "[stack.sites.backup]\nendpoint = \"https://s3.example.net\"\nbucket = \"b\"\ncredentials = { env = \"UNSET_FOR_UNIT\" }\n" +
           tail;
}

// The rendered documents (each is JSON).
std::vector<json> documents(const stack::Site& site) {
    auto text = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE_MESSAGE(text, (text ? "" : text.error().message));
    auto docs = testing::manifest_documents(*text);
    return {docs.begin(), docs.end()};
}

bool selects(const json& policy_peers, const std::string& component) {
    for (const auto& p : policy_peers) {
        if (p.contains("podSelector") &&
            p["podSelector"]["matchLabels"].value("app.kubernetes.io/name", "") == component) {
            return true;
        }
    }
    return false;
}

}  // namespace

TEST_CASE(
    "stack: Magento's cron is one StatefulSet pod with the Magento image and env, reaching master, Redis, Varnish") {
    testing::TempDir dir;
    auto sites = load_sites(dir, profile_text());
    REQUIRE_MESSAGE(sites, (sites ? "" : sites.error().message));
    auto docs = documents(sites->front());
    const json* cron = find_document(docs, "StatefulSet", "magento-cron");
    REQUIRE(cron);
    CHECK((*cron)["spec"]["replicas"] == 1);
    CHECK((*cron)["spec"]["serviceName"] == "magento-cron");
    const json* svc = find_document(docs, "Service", "magento-cron");
    REQUIRE(svc);
    CHECK((*svc)["spec"]["clusterIP"] == "None");
    CHECK_FALSE((*svc)["spec"].contains("ports"));

    const json& c = (*cron)["spec"]["template"]["spec"]["containers"][0];
    const json& web = find_document(docs, "Deployment", "magento")->at("spec")["template"]["spec"]["containers"][0];
    CHECK(c["image"] == web["image"]);
    CHECK(c["envFrom"] == web["envFrom"]);
    CHECK(c["args"][2].get<std::string>().find("php bin/magento cron:run") != std::string::npos);
    CHECK_FALSE(c.contains("ports"));
    CHECK(c["resources"]["requests"]["cpu"] == "200m");
    CHECK(c["resources"]["limits"]["memory"] == "2Gi");
    CHECK(c["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault");
    CHECK(c["securityContext"]["capabilities"]["drop"] == json::array({"ALL"}));
    // KILL: tini (root) forwards SIGTERM to the www-data loop (test_stack_pods stops the pod).
    CHECK(c["securityContext"]["capabilities"]["add"] ==
          json::array({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}));
    CHECK(c["securityContext"]["allowPrivilegeEscalation"] == false);
    bool no_replica = false;
    for (const auto& e : c["env"]) {
        no_replica = no_replica || (e["name"] == "MAGENTO_DB_REPLICA_HOST" && e["value"] == "");
    }
    CHECK(no_replica);
    CHECK((*cron)["spec"]["template"]["spec"]["volumes"] ==
          find_document(docs, "Deployment", "magento")->at("spec")["template"]["spec"]["volumes"]);

    const json* np = find_document(docs, "NetworkPolicy", "magento-cron");
    REQUIRE(np);
    CHECK((*np)["spec"]["policyTypes"] == json::array({"Egress"}));
    const json& egress = (*np)["spec"]["egress"];
    REQUIRE(egress.size() == 4);
    CHECK(selects(egress[0]["to"], "mariadb-master"));
    CHECK_FALSE(selects(egress[0]["to"], "mariadb-replica"));
    CHECK(selects(egress[1]["to"], "redis"));
    CHECK(selects(egress[2]["to"], "varnish"));
    CHECK(egress[3]["ports"][0]["port"] == 9243);  // the search endpoint's port
    CHECK(selects(find_document(docs, "NetworkPolicy", "mariadb-master")->at("spec")["ingress"][0]["from"],
                  "magento-cron"));
    CHECK_FALSE(selects(find_document(docs, "NetworkPolicy", "mariadb-replica")->at("spec")["ingress"][0]["from"],
                        "magento-cron"));
    CHECK(selects(find_document(docs, "NetworkPolicy", "redis")->at("spec")["ingress"][0]["from"], "magento-cron"));

    auto custom = load_sites(dir, profile_text("", "[stack.sites.resources.cron]\ncpu_limit = \"1500m\"\n"));
    REQUIRE(custom);
    auto cdocs = documents(custom->front());
    CHECK(find_document(cdocs, "StatefulSet", "magento-cron")
              ->at("spec")["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1500m");
}

TEST_CASE("stack: Kubernetes quantities are read with apimachinery's suffixes") {
    CHECK(*stack::quantity_value("500m") == doctest::Approx(0.5));
    CHECK(*stack::quantity_value("2") == doctest::Approx(2));
    CHECK(*stack::quantity_value("1.5Gi") == doctest::Approx(1.5 * 1024 * 1024 * 1024));
    CHECK(*stack::quantity_value("4G") == doctest::Approx(4e9));
    CHECK(*stack::quantity_value("12e3") == doctest::Approx(12000));
    CHECK(*stack::quantity_value(".5") == doctest::Approx(0.5));
    CHECK(*stack::quantity_value("1E") == doctest::Approx(1e18));
    for (const char* bad : {"", "-1", "1 Gi", "1GB", "Gi", "1.2.3", "0x10", "1e", "1Gi\n"}) {
        CHECK_MESSAGE(!stack::quantity_value(bad), bad);
    }
}

TEST_CASE("stack: ResourceQuota and LimitRange are rendered only when set, validated against the stack's needs") {
    testing::TempDir dir;
    auto plain = load_sites(dir, profile_text());
    REQUIRE(plain);
    auto docs = documents(plain->front());
    CHECK_FALSE(find_document(docs, "ResourceQuota", "site"));
    CHECK_FALSE(find_document(docs, "LimitRange", "containers"));

    auto only_pods = load_sites(dir, profile_text("", "[stack.sites.quota]\npods = 40\n"));
    REQUIRE(only_pods);
    docs = documents(only_pods->front());
    REQUIRE(find_document(docs, "ResourceQuota", "site"));
    CHECK(find_document(docs, "ResourceQuota", "site")->at("spec")["hard"] == json{{"pods", "40"}});
    CHECK_FALSE(find_document(docs, "LimitRange", "containers"));

    auto both = load_sites(
        dir, profile_text("", "[stack.sites.quota]\nrequests_cpu = \"8\"\nlimits_memory = \"64Gi\"\n"
                              "[stack.sites.limit_range]\ndefault_cpu_request = \"100m\"\nmax_memory = \"4Gi\"\n"));
    REQUIRE_MESSAGE(both, (both ? "" : both.error().message));
    docs = documents(both->front());
    CHECK(find_document(docs, "ResourceQuota", "site")->at("spec")["hard"] ==
          json{{"requests.cpu", "8"}, {"limits.memory", "64Gi"}});
    CHECK(find_document(docs, "LimitRange", "containers")->at("spec")["limits"] ==
          json::array(
              {json{{"type", "Container"}, {"defaultRequest", {{"cpu", "100m"}}}, {"max", {{"memory", "4Gi"}}}}}));
    CHECK(docs[1]["kind"] == "ResourceQuota");  // right after the Namespace
    CHECK(docs[2]["kind"] == "LimitRange");

    auto bad = load_sites(dir, profile_text("", "[stack.sites.quota]\nrequests_memory = \"16 GiB\"\n"));
    REQUIRE_FALSE(bad);
    CHECK(
        bad.error().message.find("p.toml:11:19: 'stack.sites[].quota.requests_memory' must be a Kubernetes quantity") !=
        std::string::npos);

    // autoscaling.max = 6 Magento pods at 500m, then varnish, redis, 2 mariadb, cron, backup: 4 CPU requested; 12 pods.
    auto small =
        load_sites(dir, profile_text("", "[stack.sites.quota]\nrequests_cpu = \"3.9\"\npods = 11\n"
                                         "[stack.sites.limit_range]\nmax_cpu = \"1500m\"\n"
                                         "default_memory_request = \"1Gi\"\ndefault_memory_limit = \"512Mi\"\n"));
    REQUIRE_FALSE(small);
    const auto& msg = small.error().message;
    CHECK(msg.find("quota.requests_cpu = \"3.9\" is less than the 4 CPU the stack needs at autoscaling.max") !=
          std::string::npos);
    CHECK(msg.find("quota.pods = 11 is less than the 12 pods") != std::string::npos);
    CHECK(msg.find("limit_range.max_cpu = \"1500m\" is below resources.magento.cpu_limit (\"2\")") !=
          std::string::npos);
    CHECK(msg.find("limit_range.default_memory_request (\"1Gi\") is larger than limit_range.default_memory_limit") !=
          std::string::npos);
    CHECK(load_sites(dir, profile_text("", "[stack.sites.quota]\nrequests_cpu = \"4\"\npods = 12\n")));
}

TEST_CASE("stack: images are pinned by the digests `nodectl image build --out` recorded; the rest are reported") {
    testing::TempDir dir;
    const std::string out = std::string(NODECTL_SOURCE_DIR) + "/tests/data/image-build-out";
    const std::string redis_digest = "sha256:9888ce1542cf57e748f227b94e21cfda122bea070d253bad845653ed457508ff";
    auto sites = load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"" + out +
                                                      "\"\n"
                                                      "varnish = \"localhost/nodectl/varnish:7@sha256:" +
                                                      std::string(64, 'a') + "\"\n"));
    REQUIRE_MESSAGE(sites, (sites ? "" : sites.error().message));
    const auto& site = sites->front();
    CHECK(site.images.redis == "localhost/nodectl/redis:latest@" + redis_digest);
    CHECK(site.images.varnish == "localhost/nodectl/varnish:7@sha256:" + std::string(64, 'a'));  // given: kept
    CHECK(site.images.magento == "localhost/nodectl/magento:latest");  // not in the directory
    auto unpinned = stack::unpinned_images(site);
    CHECK(unpinned ==
          std::vector<std::string>{"localhost/nodectl/magento:latest", "localhost/nodectl/mysql-master:latest",
                                   "localhost/nodectl/mysql-replica:latest", "localhost/nodectl/nodectl:latest"});
    auto docs = documents(site);
    CHECK(find_document(docs, "Deployment", "redis")->at("spec")["template"]["spec"]["containers"][0]["image"] ==
          "localhost/nodectl/redis:latest@" + redis_digest);
    auto text = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE(text);
    CHECK(text->find("# image not pinned by digest: localhost/nodectl/magento:latest") != std::string::npos);
    CHECK(text->find("# image not pinned by digest: localhost/nodectl/redis") == std::string::npos);

    // Relative to the profile's folder.
    std::filesystem::create_directories(dir.file("build/images/redis"));
    std::filesystem::copy_file(out + "/redis/index.json", dir.file("build/images/redis/index.json"));
    auto relative = load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"build/images\"\n"));
    REQUIRE_MESSAGE(relative, (relative ? "" : relative.error().message));
    CHECK(relative->front().images.redis == "localhost/nodectl/redis:latest@" + redis_digest);
}

TEST_CASE("stack: a missing or malformed image build directory is an error, never a throw") {
    testing::TempDir dir;
    auto missing =
        load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"/nonexistent/nodectl-images\"\n"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("cannot read /nonexistent/nodectl-images") != std::string::npos);
    CHECK(missing.error().message.find("p.toml:11:16:") != std::string::npos);

    const std::pair<const char*, const char*> hostile[] = {
        {"not json", "not an OCI image index"},
        {"[1,2]", "not an OCI image index"},
        {"{\"manifests\": 7}", "not an OCI image index"},
        {"{\"manifests\": [{\"annotations\": {\"io.containerd.image.name\": \"localhost/nodectl/redis:latest\"}, "
         "\"digest\": \"sha256:../../etc\"}]}",
         "is not sha256:<64 hex digits>"},
    };
    for (const auto& [index, why] : hostile) {
        std::filesystem::create_directories(dir.file("out/redis"));
        dir.write("out/redis/index.json", index);
        auto r = load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"out\"\n"));
        REQUIRE_FALSE(r);
        CHECK_MESSAGE(r.error().message.find(why) != std::string::npos, r.error().message);
    }
    // Wrong types inside a manifest entry are skipped: nothing is pinned, nothing thrown.
    dir.write(
        "out/redis/index.json",
        "{\"manifests\": [1, {\"annotations\": []}, {\"annotations\": {\"io.containerd.image.name\": 5}, \"digest\": 1}]}");
    auto skipped = load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"out\"\n"));
    REQUIRE(skipped);
    CHECK(skipped->front().images.redis == "localhost/nodectl/redis:latest");
    dir.write("out/redis/index.json", std::string(70 * 1024, ' '));
    auto huge = load_sites(dir, profile_text("", "[stack.sites.images]\ndigests_from = \"out\"\n"));
    REQUIRE_FALSE(huge);
    CHECK(huge.error().message.find("larger than 64 KiB") != std::string::npos);
}

}  // namespace stack_objects_test

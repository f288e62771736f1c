// The stack renderer's objects one by one: Magento's cron, ResourceQuota and LimitRange, images
// pinned by digest. (Keys, rules across keys and secrets: test_modules_stack.cpp.)
#include "modules/stack/stack.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace nodectl;
using nlohmann::json;

namespace {

// A valid site without secrets files: placeholders only. `extra` goes inside [[stack.sites]],
// `tail` after it (sub-tables).
std::string profile_text(const std::string& extra = "", const std::string& tail = "") {
    return "[[stack.sites]]\nname = \"shop\"\nhosts = [\"shop.example.org\"]\nmedia_host_path = \"/srv/media\"\n"
           "search_endpoint = \"https://search.example.net:9243\"\n" + extra +
           "[stack.sites.backup]\nendpoint = \"https://s3.example.net\"\nbucket = \"b\"\ncredentials = { env = \"UNSET_FOR_UNIT\" }\n" + tail;
}

Result<std::vector<stack::Site>> sites_of(const testing::TempDir& dir, const std::string& text) {
    auto profile = load_profile(dir.write("p.toml", text));
    if (!profile) {
        return profile.error();
    }
    return stack::sites_from(*profile);
}

// The rendered documents (each is JSON).
std::vector<json> documents(const stack::Site& site) {
    auto text = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE_MESSAGE(text, (text ? "" : text.error().message));
    std::vector<json> docs;
    size_t pos = 0;
    while ((pos = text->find("---\n", pos)) != std::string::npos) {
        pos += 4;
        size_t end = text->find("\n---\n", pos);
        docs.push_back(json::parse(text->substr(pos, end == std::string::npos ? std::string::npos : end + 1 - pos)));
        if (end == std::string::npos) {
            break;
        }
    }
    return docs;
}

const json* find(const std::vector<json>& docs, const std::string& kind, const std::string& name) {
    for (const auto& d : docs) {
        if (d["kind"] == kind && d["metadata"]["name"] == name) {
            return &d;
        }
    }
    return nullptr;
}

bool selects(const json& policy_peers, const std::string& component) {
    for (const auto& p : policy_peers) {
        if (p.contains("podSelector") && p["podSelector"]["matchLabels"].value("app.kubernetes.io/name", "") == component) {
            return true;
        }
    }
    return false;
}

} // namespace

TEST_CASE("stack: Magento's cron is one StatefulSet pod with the Magento image and env, reaching master, Redis, Varnish") {
    testing::TempDir dir;
    auto sites = sites_of(dir, profile_text());
    REQUIRE_MESSAGE(sites, (sites ? "" : sites.error().message));
    auto docs = documents(sites->front());
    const json* cron = find(docs, "StatefulSet", "magento-cron");
    REQUIRE(cron);
    CHECK((*cron)["spec"]["replicas"] == 1);
    CHECK((*cron)["spec"]["serviceName"] == "magento-cron");
    const json* svc = find(docs, "Service", "magento-cron");
    REQUIRE(svc);
    CHECK((*svc)["spec"]["clusterIP"] == "None");
    CHECK_FALSE((*svc)["spec"].contains("ports"));

    const json& c = (*cron)["spec"]["template"]["spec"]["containers"][0];
    const json& web = find(docs, "Deployment", "magento")->at("spec")["template"]["spec"]["containers"][0];
    CHECK(c["image"] == web["image"]);
    CHECK(c["envFrom"] == web["envFrom"]);
    CHECK(c["args"][2].get<std::string>().find("php bin/magento cron:run") != std::string::npos);
    CHECK_FALSE(c.contains("ports"));
    CHECK(c["resources"]["requests"]["cpu"] == "200m");
    CHECK(c["resources"]["limits"]["memory"] == "2Gi");
    CHECK(c["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault");
    CHECK(c["securityContext"]["capabilities"]["drop"] == json::array({"ALL"}));
    CHECK(c["securityContext"]["capabilities"]["add"] == json::array({"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}));
    CHECK(c["securityContext"]["allowPrivilegeEscalation"] == false);
    bool no_replica = false;
    for (const auto& e : c["env"]) {
        no_replica = no_replica || (e["name"] == "MAGENTO_DB_REPLICA_HOST" && e["value"] == "");
    }
    CHECK(no_replica);
    CHECK((*cron)["spec"]["template"]["spec"]["volumes"] == find(docs, "Deployment", "magento")->at("spec")["template"]["spec"]["volumes"]);

    const json* np = find(docs, "NetworkPolicy", "magento-cron");
    REQUIRE(np);
    CHECK((*np)["spec"]["policyTypes"] == json::array({"Egress"}));
    const json& egress = (*np)["spec"]["egress"];
    REQUIRE(egress.size() == 4);
    CHECK(selects(egress[0]["to"], "mariadb-master"));
    CHECK_FALSE(selects(egress[0]["to"], "mariadb-replica"));
    CHECK(selects(egress[1]["to"], "redis"));
    CHECK(selects(egress[2]["to"], "varnish"));
    CHECK(egress[3]["ports"][0]["port"] == 9243);  // the search endpoint's port
    CHECK(selects(find(docs, "NetworkPolicy", "mariadb-master")->at("spec")["ingress"][0]["from"], "magento-cron"));
    CHECK_FALSE(selects(find(docs, "NetworkPolicy", "mariadb-replica")->at("spec")["ingress"][0]["from"], "magento-cron"));
    CHECK(selects(find(docs, "NetworkPolicy", "redis")->at("spec")["ingress"][0]["from"], "magento-cron"));

    auto custom = sites_of(dir, profile_text("", "[stack.sites.resources.cron]\ncpu_limit = \"1500m\"\n"));
    REQUIRE(custom);
    auto cdocs = documents(custom->front());
    CHECK(find(cdocs, "StatefulSet", "magento-cron")->at("spec")["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1500m");
}

// `nodectl stack status`: kubectl's JSON (tests/data/k8s-status, hand-written in the API's shape:
// see its README) read per site, hostile input included.
#include "modules/stack/status.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

using namespace nodectl;

namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(NODECTL_SOURCE_DIR) + "/tests/data/k8s-status/" + name, std::ios::binary);
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const stack::SiteStatus& site(const std::vector<stack::SiteStatus>& sites, const std::string& name) {
    for (const auto& s : sites) {
        if (s.name == name) {
            return s;
        }
    }
    FAIL("no site " << name);
    throw 0;
}

}  // namespace

TEST_CASE("stack status: a ready site: pods, restarts, HPA, ingress hosts; a finished backup pod is left out") {
    auto sites = stack::parse_status(fixture("ready.json"), {"shop"});
    REQUIRE(sites);
    REQUIRE(sites->size() == 1);
    const auto& s = site(*sites, "shop");
    CHECK(s.in_profile);
    CHECK(s.pods_total == 7);
    CHECK(s.pods_ready == 7);
    CHECK(s.restarts == 1);
    CHECK(s.ready());
    REQUIRE(s.hpas.size() == 1);
    CHECK(s.hpas[0].name == "magento");
    CHECK(s.hpas[0].current == 2);
    CHECK(s.hpas[0].desired == 2);
    CHECK(s.hpas[0].max == 6);
    CHECK(s.ingress_hosts == std::vector<std::string>{"shop.example.org", "www.shop.example.org"});
    auto text = stack::format_status(*sites);
    CHECK(text.find(
              "site shop: ready\n  pods     7/7 ready, 1 restarts\n  hpa      magento: 2 current, 2 desired, 6 max\n"
              "  ingress  shop.example.org, www.shop.example.org\n") != std::string::npos);
    auto j = nlohmann::json::parse(stack::status_json(*sites));
    CHECK(j["sites"][0]["ready"] == true);
    CHECK(j["sites"][0]["pods"]["total"] == 7);
}

TEST_CASE("stack status: not-ready pods are named; a profile site missing from the cluster is not ready") {
    auto sites = stack::parse_status(fixture("not-ready.json"), {"shop", "gone"});
    REQUIRE(sites);
    REQUIRE(sites->size() == 3);
    const auto& shop = site(*sites, "shop");
    CHECK_FALSE(shop.ready());
    CHECK(shop.pods_ready == 5);
    CHECK(shop.pods_total == 7);
    CHECK(shop.restarts == 9);
    CHECK(shop.not_ready == std::vector<std::string>{"magento-7d9f8c6b5-fghij", "mariadb-replica-0"});
    CHECK(shop.hpas[0].desired == 3);
    const auto& blog = site(*sites, "blog");
    CHECK(blog.ready());
    CHECK_FALSE(blog.in_profile);
    const auto& gone = site(*sites, "gone");
    CHECK_FALSE(gone.ready());
    CHECK(gone.pods_total == 0);
    auto text = stack::format_status(*sites);
    CHECK(text.find("site blog: ready (not in the profile)") != std::string::npos);
    CHECK(text.find("site gone: NOT READY\n  pods     0/0 ready") != std::string::npos);
    CHECK(text.find("not ready: magento-7d9f8c6b5-fghij, mariadb-replica-0") != std::string::npos);
}

TEST_CASE("stack status: hostile JSON: wrong types count as absent, numbers out of range as unknown, escapes escaped") {
    auto sites = stack::parse_status(fixture("hostile.json"), {});
    REQUIRE(sites);
    const auto& s = site(*sites, "shop");
    // magento-ok and evil are Ready; wrong-types and huge (status true, not "True") are not.
    CHECK(s.pods_total == 4);
    CHECK(s.pods_ready == 2);
    CHECK(s.restarts == 3);  // "99", 1e30, -5, 2^64-1 and 2.5 are not believed
    REQUIRE(s.hpas.size() == 1);
    CHECK(s.hpas[0].current == -1);
    CHECK(s.hpas[0].desired == -1);
    CHECK(s.hpas[0].max == -1);
    CHECK(s.ingress_hosts.size() == 1);
    CHECK(s.ignored == 2);  // the Ingress whose rules are a string, the Secret
    auto text = stack::format_status(*sites);
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find('\x07') == std::string::npos);
    CHECK(text.find("magento: ? current, ? desired, ? max") != std::string::npos);
    CHECK(text.find("evil\\x1b]0;owned\\x07\\x1b[31m.example.org") != std::string::npos);
    auto json_out = stack::status_json(*sites);
    CHECK(json_out.find('\x1b') == std::string::npos);
    CHECK(json_out.find("\\u001b") != std::string::npos);
    CHECK(nlohmann::json::parse(json_out)["sites"].size() == sites->size());
}

TEST_CASE("stack status: what is not a List, or too large, or deeply nested, is an error, never a throw") {
    for (const char* bad : {"", "not json", "[]", "{\"items\": {}}", "{\"items\": 5}", "null", "{\"kind\":\"List\"}"}) {
        auto r = stack::parse_status(bad, {"shop"});
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("not a JSON List") != std::string::npos);
    }
    std::string big = "{\"items\": [" + std::string(stack::k_max_status_bytes, ' ') + "]}";
    auto r = stack::parse_status(big, {});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("larger than 12 MiB") != std::string::npos);
    std::string deep = "{\"items\": [" + std::string(100000, '[') + std::string(100000, ']') + "]}";
    auto d = stack::parse_status(deep, {});
    REQUIRE(d);
    CHECK(d->empty());
    CHECK(stack::parse_status("{\"items\": []}", {})->empty());
}

TEST_CASE("stack status: the monitoring namespace is named as such, never as a site missing from the profile") {
    auto list = nlohmann::json::parse(fixture("ready.json"));
    auto pod = list["items"][0];
    pod["metadata"]["namespace"] = "monitoring";
    pod["metadata"]["name"] = "prometheus-6c5d7b9f4-xyz12";
    list["items"].push_back(pod);
    auto sites = stack::parse_status(list.dump(), {"shop"});
    REQUIRE(sites);
    auto text = stack::format_status(*sites);
    CHECK(text.find("monitoring (Prometheus, Alertmanager): ready\n  pods     1/1 ready") != std::string::npos);
    CHECK(text.find("site monitoring") == std::string::npos);
    CHECK(text.find("not in the profile") == std::string::npos);
}

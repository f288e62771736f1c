// [stack.monitoring]: the exporter sidecars in a site's pods, the monitoring namespace's objects,
// Prometheus' and Alertmanager's configurations, the profile rules and the quota that counts the
// sidecars. (promtool and amtool check the rendered configurations in repo/stack_render.)
#include "modules/stack/stack.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <vector>

using namespace nodectl;
namespace stack_monitoring_test {
using nlohmann::json;
using nodectl::testing::find_document;

namespace {

std::string site_text(const std::string& extra = "") {
    return "[[stack.sites]]\nname = \"shop\"\nhosts = [\"shop.example.org\"]\nmedia_host_path = \"/srv/media\"\n"
           "search_endpoint = \"https://search.example.net:9243\"\n" +
           extra + "[stack.sites.backup]\nenabled = false\n";
}

struct Loaded {
    std::vector<stack::Site> sites;
    stack::Monitoring monitoring;
};

Result<Loaded> load(const testing::TempDir& dir, const std::string& text) {
    auto profile = load_profile(dir.write("p.toml", text));
    if (!profile) {
        return profile.error();
    }
    auto sites = TRY(stack::sites_from(*profile));
    auto monitoring = TRY(stack::monitoring_from(*profile));
    return Loaded{std::move(sites), std::move(monitoring)};
}

std::vector<json> parse_documents(const std::string& text) {
    auto docs = testing::manifest_documents(text);
    return {docs.begin(), docs.end()};
}

const json* container(const json& workload, const std::string& name) {
    for (const auto& c : workload["spec"]["template"]["spec"]["containers"]) {
        if (c["name"] == name) {
            return &c;
        }
    }
    return nullptr;
}

bool has_env(const json& c, const std::string& name, const std::string& value) {
    for (const auto& e : c["env"]) {
        if (e["name"] == name && e.value("value", "") == value) {
            return true;
        }
    }
    return false;
}

// Whether a NetworkPolicy lets Prometheus (namespace monitoring) in on `port`.
bool lets_prometheus_in(const json& policy, int port) {
    for (const auto& rule : policy["spec"].value("ingress", json::array())) {
        for (const auto& peer : rule.value("from", json::array())) {
            if (peer.contains("namespaceSelector") &&
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "monitoring" &&
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus" &&
                rule["ports"][0]["port"] == port) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace

TEST_CASE("stack monitoring: off by default, no sidecar, no exporter Secret, no metrics Service") {
    testing::TempDir dir;
    auto l = load(dir, site_text());
    REQUIRE_MESSAGE(l, (l ? "" : l.error().message));
    CHECK_FALSE(l->monitoring.enabled);
    auto text = stack::render_site(l->sites.front(), stack::SecretValues::placeholders);
    REQUIRE(text);
    auto docs = parse_documents(*text);
    CHECK(find_document(docs, "Secret", "exporters") == nullptr);
    CHECK(find_document(docs, "Service", "redis-metrics") == nullptr);
    CHECK(container(*find_document(docs, "Deployment", "redis"), "exporter") == nullptr);
    CHECK_FALSE(lets_prometheus_in(*find_document(docs, "NetworkPolicy", "redis"), 9121));
}

TEST_CASE(
    "stack monitoring: each service gets its exporter, a password of its own, a headless metrics Service and Prometheus let in") {
    testing::TempDir dir;
    auto l = load(dir, site_text() + "[stack.monitoring]\nenabled = true\n");
    REQUIRE_MESSAGE(l, (l ? "" : l.error().message));
    auto text = stack::render_site(l->sites.front(), stack::SecretValues::placeholders);
    REQUIRE_MESSAGE(text, (text ? "" : text.error().message));
    auto docs = parse_documents(*text);
    const json* secret = find_document(docs, "Secret", "exporters");
    REQUIRE(secret);
    CHECK((*secret)["stringData"].contains("mariadb-password"));
    CHECK((*secret)["stringData"].contains("redis-password"));
    struct Expect {
        const char* kind;
        const char* name;
        int port;
        const char* image;
    };
    for (const auto& e : {Expect{"StatefulSet", "mariadb-master", 9104, "localhost/nodectl/mysqld-exporter:latest"},
                          Expect{"StatefulSet", "mariadb-replica", 9104, "localhost/nodectl/mysqld-exporter:latest"},
                          Expect{"Deployment", "redis", 9121, "localhost/nodectl/redis-exporter:latest"},
                          Expect{"Deployment", "varnish", 9131, "localhost/nodectl/varnish-exporter:latest"},
                          Expect{"Deployment", "magento", 9117, "localhost/nodectl/apache-exporter:latest"}}) {
        CAPTURE(e.name);
        const json* w = find_document(docs, e.kind, e.name);
        REQUIRE(w);
        const json* c = container(*w, "exporter");
        REQUIRE(c);
        CHECK((*c)["image"] == e.image);
        CHECK((*c)["ports"][0]["name"] == "metrics");
        CHECK((*c)["ports"][0]["containerPort"] == e.port);
        CHECK((*c)["securityContext"]["readOnlyRootFilesystem"] == true);
        const json* svc = find_document(docs, "Service", std::string(e.name) + "-metrics");
        REQUIRE(svc);
        CHECK((*svc)["spec"]["clusterIP"] == "None");
        CHECK((*svc)["spec"]["ports"][0]["name"] == "metrics");  // the SRV record _metrics._tcp
        CHECK((*svc)["spec"]["ports"][0]["port"] == e.port);
        CHECK(lets_prometheus_in(*find_document(docs, "NetworkPolicy", e.name), e.port));
    }
    // The services create their exporter users from the same Secret the sidecars read.
    const json* master = find_document(docs, "StatefulSet", "mariadb-master");
    CHECK(has_env(*container(*master, "mariadb"), "MYSQL_EXPORTER_PASSWORD_FILE",
                  "/run/secrets/exporter/mariadb-password"));
    CHECK(has_env(*container(*master, "exporter"), "MYSQLD_EXPORTER_PASSWORD_FILE",
                  "/run/secrets/exporter/mariadb-password"));
    const json* redis = find_document(docs, "Deployment", "redis");
    CHECK(has_env(*container(*redis, "redis"), "REDIS_EXPORTER_PASSWORD_FILE", "/run/secrets/exporter/redis-password"));
    CHECK(has_env(*container(*redis, "exporter"), "REDIS_EXPORTER_PASSWORD_FILE",
                  "/run/secrets/exporter/redis-password"));
    // Varnish's exporter reads varnishd's working directory, read-only.
    const json* vex = container(*find_document(docs, "Deployment", "varnish"), "exporter");
    bool work_ro = false;
    for (const auto& m : (*vex)["volumeMounts"]) {
        work_ro =
            work_ro || (m["name"] == "work" && m["mountPath"] == "/var/lib/varnish" && m.value("readOnly", false));
    }
    CHECK(work_ro);
}

TEST_CASE(
    "stack monitoring: Prometheus finds every site's exporters by DNS SRV and the nodes as listed; Alertmanager gets the receivers") {
    testing::TempDir dir;
    ::setenv("UNIT_MON_WEBHOOK", "https://hooks.example.org/unit-token-77", 1);
    ::setenv("UNIT_MON_SMTP", "unit-smtp-pw-18", 1);
    std::string text =
        site_text("[stack.sites.replicas]\nmariadb_replicas = 0\n") +
        "[[stack.sites]]\nname = \"outlet\"\nhosts = [\"outlet.example.org\"]\nsearch_endpoint = \"http://s:9200\"\n"
        "[stack.sites.autoscaling]\nmin = 1\nmax = 1\n[stack.sites.backup]\nenabled = false\n"
        "[stack.monitoring]\nenabled = true\nscrape_interval = \"15s\"\nretention = \"7d\"\n"
        "node_targets = [\"198.18.0.10:9100\", \"198.18.0.11:9101\"]\n"
        "[stack.monitoring.alerts]\nwebhook_url = { env = \"UNIT_MON_WEBHOOK\" }\nwebhook_port = 8443\n"
        "email_to = [\"ops@example.org\", \"oncall@example.org\"]\nemail_from = \"alerts@example.org\"\n"
        "smarthost = \"mail.example.org:587\"\nsmtp_username = \"alerts\"\nsmtp_password = { env = \"UNIT_MON_SMTP\" }\n";
    auto l = load(dir, text);
    REQUIRE_MESSAGE(l, (l ? "" : l.error().message));
    auto placeholders = stack::render_monitoring(l->monitoring, l->sites, stack::SecretValues::placeholders);
    REQUIRE_MESSAGE(placeholders, (placeholders ? "" : placeholders.error().message));
    CHECK_FALSE(testing::contains(*placeholders, "unit-token-77"));
    CHECK_FALSE(testing::contains(*placeholders, "unit-smtp-pw-18"));
    auto rendered = stack::render_monitoring(l->monitoring, l->sites, stack::SecretValues::resolve);
    REQUIRE_MESSAGE(rendered, (rendered ? "" : rendered.error().message));
    auto docs = parse_documents(*rendered);
    const json* cm = find_document(docs, "ConfigMap", "prometheus");
    REQUIRE(cm);
    auto config = json::parse((*cm)["data"]["prometheus.yml"].get<std::string>());
    CHECK(config["global"]["scrape_interval"] == "15s");
    CHECK(config["rule_files"] == json::array({"nodectl.rules.yml"}));
    CHECK(testing::contains((*cm)["data"]["nodectl.rules.yml"].get<std::string>(), "alert: ReplicaNotRunning"));
    json node, stack_job, tls;
    for (const auto& j : config["scrape_configs"]) {
        if (j["job_name"] == "node") node = j;
        if (j["job_name"] == "stack") stack_job = j;
        if (j["job_name"] == "tls") tls = j;
    }
    // The sites' host names, probed over HTTPS through the blackbox exporter.
    CHECK(tls["static_configs"][0]["targets"] ==
          json::array({"https://shop.example.org/", "https://outlet.example.org/"}));
    CHECK(tls["params"]["module"] == json::array({"tls_expiry"}));
    CHECK(tls["relabel_configs"][2]["replacement"] == "blackbox-exporter.monitoring.svc:9115");
    CHECK(node["static_configs"][0]["targets"] == json::array({"198.18.0.10:9100", "198.18.0.11:9101"}));
    // shop has no replica; outlet has the default one.
    CHECK(stack_job["dns_sd_configs"][0]["type"] == "SRV");
    CHECK(stack_job["dns_sd_configs"][0]["names"] ==
          json::array({"_metrics._tcp.mariadb-master-metrics.shop.svc.cluster.local",
                       "_metrics._tcp.redis-metrics.shop.svc.cluster.local",
                       "_metrics._tcp.varnish-metrics.shop.svc.cluster.local",
                       "_metrics._tcp.magento-metrics.shop.svc.cluster.local",
                       "_metrics._tcp.mariadb-master-metrics.outlet.svc.cluster.local",
                       "_metrics._tcp.mariadb-replica-metrics.outlet.svc.cluster.local",
                       "_metrics._tcp.redis-metrics.outlet.svc.cluster.local",
                       "_metrics._tcp.varnish-metrics.outlet.svc.cluster.local",
                       "_metrics._tcp.magento-metrics.outlet.svc.cluster.local"}));
    const json* prom = find_document(docs, "Deployment", "prometheus");
    REQUIRE(prom);
    CHECK((*prom)["spec"]["template"]["spec"]["containers"][0]["args"][1] == "--storage.tsdb.retention.time=7d");
    CHECK((*prom)["spec"]["template"]["spec"]["automountServiceAccountToken"] == false);
    // Alertmanager: one receiver with the webhook (resolved too) and the mail.
    const json* am = find_document(docs, "Secret", "alertmanager");
    REQUIRE(am);
    auto amc = json::parse((*am)["stringData"]["alertmanager.yml"].get<std::string>());
    CHECK(amc["route"]["receiver"] == "nodectl");
    const auto& r = amc["receivers"][0];
    CHECK(r["webhook_configs"][0]["url"] == "https://hooks.example.org/unit-token-77");
    CHECK(r["webhook_configs"][0]["send_resolved"] == true);
    CHECK(r["email_configs"][0]["to"] == "ops@example.org, oncall@example.org");
    CHECK(r["email_configs"][0]["auth_password"] == "unit-smtp-pw-18");
    CHECK(r["email_configs"][0]["require_tls"] == true);
    // Egress: Alertmanager to the webhook's and the mail server's ports; Prometheus to both node ports.
    auto ports_of = [](const json& policy) {
        std::vector<int> out;
        for (const auto& rule : policy["spec"].value("egress", json::array())) {
            if (!rule.contains("to")) {
                out.push_back(rule["ports"][0]["port"].get<int>());
            }
        }
        return out;
    };
    CHECK(ports_of(*find_document(docs, "NetworkPolicy", "alertmanager")) == std::vector<int>{8443, 587});
    CHECK(ports_of(*find_document(docs, "NetworkPolicy", "prometheus")) == std::vector<int>{9100, 9101});
    // Not exposed: no Ingress, no basic-auth Secret.
    CHECK(find_document(docs, "Ingress", "prometheus") == nullptr);
    CHECK(find_document(docs, "Secret", "basic-auth") == nullptr);
}

TEST_CASE(
    "stack monitoring: exposed UIs need TLS and basic auth; a bad htpasswd line, a site called monitoring and a short quota are refused") {
    testing::TempDir dir;
    auto exposed = load(
        dir,
        site_text() +
            "[stack.monitoring]\nenabled = true\n[stack.monitoring.ingress]\nprometheus_host = \"prom.example.org\"\n");
    REQUIRE_FALSE(exposed);
    CHECK(testing::contains(exposed.error().message, "p.toml:"));
    CHECK(testing::contains(exposed.error().message, "needs 'tls_cert_file'"));
    CHECK(testing::contains(exposed.error().message, "ingress needs 'tls_key'"));
    CHECK(testing::contains(exposed.error().message, "ingress needs 'basic_auth'"));

    auto cert = dir.write("tls.crt", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
    ::setenv("UNIT_MON_KEY", "k", 1);
    ::setenv("UNIT_MON_USERS", "ops:plain-text-password", 1);
    auto l = load(
        dir,
        site_text() +
            "[stack.monitoring]\nenabled = true\n[stack.monitoring.ingress]\nprometheus_host = \"prom.example.org\"\n"
            "tls_cert_file = \"" +
            cert +
            "\"\ntls_key = { env = \"UNIT_MON_KEY\" }\n"
            "basic_auth = { env = \"UNIT_MON_USERS\" }\n");
    REQUIRE_MESSAGE(l, (l ? "" : l.error().message));
    auto bad = stack::render_monitoring(l->monitoring, l->sites, stack::SecretValues::resolve);
    REQUIRE_FALSE(bad);
    CHECK(testing::contains(bad.error().message, "is not USER:BCRYPT-HASH"));
    CHECK_FALSE(testing::contains(bad.error().message, "plain-text-password"));
    ::setenv("UNIT_MON_USERS", "ops:$2y$05$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY./", 1);
    auto good = stack::render_monitoring(l->monitoring, l->sites, stack::SecretValues::resolve);
    REQUIRE_MESSAGE(good, (good ? "" : good.error().message));
    auto docs = parse_documents(*good);
    const json* in = find_document(docs, "Ingress", "prometheus");
    REQUIRE(in);
    CHECK((*in)["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] ==
          "monitoring-basic-auth@kubernetescrd");
    CHECK(find_document(docs, "Ingress", "alertmanager") == nullptr);
    CHECK(find_document(docs, "Middleware", "basic-auth") != nullptr);

    auto named = load(dir, site_text().replace(site_text().find("\"shop\""), 6, "\"monitoring\""));
    REQUIRE_FALSE(named);
    CHECK(testing::contains(named.error().message, "belong to [stack.monitoring]"));

    // The stack needs 3.9 CPUs of requests; 10 exporters (6 Magento, 1 Varnish, Redis, master, replica)
    // of 10m each make it 4.0.
    auto quota =
        load(dir, site_text("[stack.sites.quota]\nrequests_cpu = \"3.95\"\n") + "[stack.monitoring]\nenabled = true\n");
    auto no_monitoring = load(dir, site_text("[stack.sites.quota]\nrequests_cpu = \"3.95\"\n"));
    CHECK(no_monitoring);
    REQUIRE_FALSE(quota);
    CHECK(testing::contains(quota.error().message, "quota.requests_cpu"));
}

}  // namespace stack_monitoring_test

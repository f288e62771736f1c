// The monitoring namespace: Prometheus (the sites' exporters found through the cluster's DNS, the
// nodes' node exporters as listed, nodectl's alert rules), Alertmanager (webhook and e-mail), a
// blackbox exporter probing the sites' HTTPS certificates, their NetworkPolicies, and Ingress with
// TLS and basic authentication when a host is set. Rendered by the
// same Renderer as a site, with a Site that only names the namespace and its resources.
#include "modules/stack/renderer.hpp"

#include "generated/alert_rules.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

namespace nodectl::stack {

namespace detail {

namespace {

constexpr int k_prometheus_port = 9090;
constexpr int k_alertmanager_port = 9093;
constexpr int k_blackbox_port = 9115;
constexpr const char* k_rules_file = "nodectl.rules.yml";

// The port of a "HOST:PORT" the key table accepted (`fallback` when it is not 1..65535).
int port_of(const std::string& host_port, int fallback) {
    auto colon = host_port.rfind(':');
    auto p = colon == std::string::npos ? std::nullopt : util::parse_uint(host_port.substr(colon + 1), {.max = 65535});
    return p && *p > 0 ? static_cast<int>(*p) : fallback;
}

}  // namespace

J prometheus_config(const Monitoring& m, const std::vector<Site>& sites) {
    const std::string alertmanager =
        std::string("alertmanager.") + k_monitoring + ".svc:" + std::to_string(k_alertmanager_port);
    J jobs = J::array();
    jobs.push_back(
        J{{"job_name", "prometheus"}, {"static_configs", J::array({J{{"targets", J::array({"localhost:9090"})}}})}});
    jobs.push_back(
        J{{"job_name", "alertmanager"}, {"static_configs", J::array({J{{"targets", J::array({alertmanager})}}})}});
    // The nodes' node exporters ([monitoring] of the nodes' profile). The rules expect this job
    // to be called "node".
    if (!m.node_targets.empty()) {
        jobs.push_back(
            J{{"job_name", "node"}, {"static_configs", J::array({J{{"targets", strings(m.node_targets)}}})}});
    }
    // The sites' exporters, found through the cluster's DNS: the SRV records of each headless
    // "COMPONENT-metrics" Service name every ready pod and its exporter port. (Debian's Prometheus
    // is built without Kubernetes service discovery; DNS discovery is what it has.)
    J names = J::array();
    for (const auto& s : sites) {
        for (const auto& component : exported_components(s)) {
            names.push_back("_metrics._tcp." + component + "-metrics." + s.name + ".svc." + m.cluster_domain);
        }
    }
    if (!names.empty()) {
        jobs.push_back(
            J{{"job_name", "stack"},
              {"dns_sd_configs",
               J::array({J{{"names", std::move(names)}, {"type", "SRV"}, {"refresh_interval", "30s"}}})},
              {"relabel_configs", J::array({J{{"source_labels", J::array({"__meta_dns_name"})},
                                              {"regex", "_metrics\\._tcp\\.(.+)-metrics\\.([^.]+)\\.svc\\..*"},
                                              {"replacement", "$1"},
                                              {"target_label", "component"}},
                                            J{{"source_labels", J::array({"__meta_dns_name"})},
                                              {"regex", "_metrics\\._tcp\\.(.+)-metrics\\.([^.]+)\\.svc\\..*"},
                                              {"replacement", "$2"},
                                              {"target_label", "namespace"}}})}});
    }
    // Every site's host names over HTTPS, as customers reach them, through the blackbox exporter:
    // the certificate's expiry (TLSCertificateExpiringSoon). Wildcard names cannot be probed.
    J probes = J::array();
    const std::string port = m.tls_probe_port == 443 ? "" : ":" + std::to_string(m.tls_probe_port);
    for (const auto& s : sites) {
        for (const auto& h : s.hosts) {
            if (!h.starts_with("*.")) {
                probes.push_back("https://" + h + port + "/");
            }
        }
    }
    if (!probes.empty()) {
        const std::string blackbox =
            std::string("blackbox-exporter.") + k_monitoring + ".svc:" + std::to_string(k_blackbox_port);
        jobs.push_back(J{{"job_name", "tls"},
                         {"metrics_path", "/probe"},
                         {"params", J{{"module", J::array({"tls_expiry"})}}},
                         {"static_configs", J::array({J{{"targets", std::move(probes)}}})},
                         {"relabel_configs",
                          J::array({J{{"source_labels", J::array({"__address__"})}, {"target_label", "__param_target"}},
                                    J{{"source_labels", J::array({"__param_target"})}, {"target_label", "instance"}},
                                    J{{"target_label", "__address__"}, {"replacement", blackbox}}})}});
    }
    return J{{"global", J{{"scrape_interval", m.scrape_interval}, {"evaluation_interval", m.scrape_interval}}},
             // Relative: Prometheus reads it beside prometheus.yml (the ConfigMap's directory).
             {"rule_files", J::array({k_rules_file})},
             {"alerting", J{{"alertmanagers",
                             J::array({J{{"static_configs", J::array({J{{"targets", J::array({alertmanager})}}})}}})}}},
             {"scrape_configs", std::move(jobs)}};
}

J Renderer::alertmanager_config(const Monitoring& m) {
    J receiver = J{{"name", "nodectl"}};
    if (m.webhook_url) {
        receiver["webhook_configs"] =
            J::array({J{{"url", secret_value(m.webhook_url, "alerts.webhook_url")}, {"send_resolved", true}}});
    }
    if (!m.email_to.empty()) {
        J mail = J{{"to", util::join(m.email_to, ", ")},
                   {"from", m.email_from},
                   {"smarthost", m.smarthost},
                   {"require_tls", true},
                   {"send_resolved", true}};
        if (!m.smtp_username.empty()) {
            mail["auth_username"] = m.smtp_username;
            mail["auth_password"] = secret_value(m.smtp_password, "alerts.smtp_password");
        }
        receiver["email_configs"] = J::array({std::move(mail)});
    }
    return J{{"route", J{{"receiver", "nodectl"},
                         {"group_by", J::array({"alertname", "namespace"})},
                         {"group_wait", m.group_wait},
                         {"group_interval", m.group_interval},
                         {"repeat_interval", "4h"}}},
             {"receivers", J::array({std::move(receiver)})}};
}

void Renderer::prometheus(const Monitoring& m, const std::vector<Site>& sites) {
    J config = object("v1", "ConfigMap", "prometheus", "prometheus");
    config["data"] = J{{"prometheus.yml", util::json_text(prometheus_config(m, sites), 2) + "\n"},
                       {k_rules_file, generated::k_alert_rules}};
    emit(config);
    J claim = object("v1", "PersistentVolumeClaim", "prometheus-data", "prometheus");
    claim["spec"] = J{{"accessModes", J::array({"ReadWriteOnce"})},
                      {"storageClassName", "local-path"},
                      {"resources", J{{"requests", J{{"storage", m.storage}}}}}};
    emit(claim);
    J c = J{{"name", "prometheus"},
            {"image", m.prometheus_image},
            {"imagePullPolicy", m.pull_policy},
            {"args", J::array({"prometheus", "--storage.tsdb.retention.time=" + m.retention})},
            {"ports", J::array({port("web", k_prometheus_port)})},
            {"resources", resources("prometheus")},
            {"readinessProbe", http_probe("/-/ready", "web", 10, 3)},
            {"livenessProbe", http_probe("/-/healthy", "web", 20, 6)},
            {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
            {"volumeMounts",
             J::array({mount("config", "/etc/prometheus", true), mount("data", "/prometheus"), mount("tmp", "/tmp")})}};
    J pod = pod_spec(J::array({c}),
                     J::array({J{{"name", "config"}, {"configMap", J{{"name", "prometheus"}}}},
                               J{{"name", "data"}, {"persistentVolumeClaim", J{{"claimName", "prometheus-data"}}}},
                               empty_dir("tmp")}));
    emit(deployment("prometheus", 1, std::move(pod), true));  // one writer of the TSDB volume at a time
    service("prometheus", "prometheus", k_prometheus_port, "web", false);
}

void Renderer::alertmanager(const Monitoring& m) {
    emit(secret("alertmanager", "Opaque", J{{"alertmanager.yml", util::json_text(alertmanager_config(m), 2) + "\n"}}));
    J c = J{{"name", "alertmanager"},
            {"image", m.alertmanager_image},
            {"imagePullPolicy", m.pull_policy},
            {"args", J::array({"alertmanager"})},
            {"ports", J::array({port("web", k_alertmanager_port)})},
            {"resources", resources("alertmanager")},
            {"readinessProbe", http_probe("/-/ready", "web", 10, 3)},
            {"livenessProbe", http_probe("/-/healthy", "web", 20, 6)},
            {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
            {"volumeMounts", J::array({mount("config", "/etc/alertmanager", true), mount("data", "/alertmanager"),
                                       mount("run", "/run/alertmanager")})}};
    // Silences and notification state in an emptyDir: a restart forgets silences (documented).
    J pod = pod_spec(J::array({c}), J::array({secret_volume("config", "alertmanager", {"alertmanager.yml"}),
                                              empty_dir("data", "256Mi"), empty_dir("run", "16Mi")}));
    emit(deployment("alertmanager", 1, std::move(pod), true));
    service("alertmanager", "alertmanager", k_alertmanager_port, "web", false);
}

void Renderer::blackbox(const Monitoring& m) {
    J c = J{{"name", "blackbox-exporter"},
            {"image", m.blackbox_image},
            {"imagePullPolicy", m.pull_policy},
            {"ports", J::array({port("web", k_blackbox_port)})},
            {"resources", resources("blackbox-exporter")},
            {"readinessProbe", http_probe("/-/healthy", "web", 10, 3)},
            {"livenessProbe", http_probe("/-/healthy", "web", 20, 6)},
            {"securityContext", security({"SETGID", "SETUID"}, true, false)}};
    emit(deployment("blackbox-exporter", 1, pod_spec(J::array({c}), J::array()), false));
    service("blackbox-exporter", "blackbox-exporter", k_blackbox_port, "web", false);
}

void Renderer::monitoring_ingress(const Monitoring& m) {
    std::string cert;
    if (values == SecretValues::placeholders) {
        cert = k_placeholder;
    } else if (auto pem = util::read_file(m.tls_cert_file)) {
        cert = *pem;
    } else {
        problems.push_back("[stack.monitoring] ingress.tls_cert_file " + m.tls_cert_file + ": " + std::strerror(errno));
    }
    emit(secret("tls", "kubernetes.io/tls",
                J{{"tls.crt", cert}, {"tls.key", secret_value(m.tls_key, "ingress.tls_key")}}));
    std::string users = secret_value(m.basic_auth, "ingress.basic_auth");
    static const std::regex k_line("^[^:\\s]{1,64}:\\$2[aby]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$");
    for (const auto& line : util::split_lines(users)) {
        if (values == SecretValues::resolve && !line.empty() && !std::regex_match(line, k_line)) {
            problems.push_back(
                "[stack.monitoring] ingress.basic_auth: a line is not USER:BCRYPT-HASH (`htpasswd -nbB USER PASSWORD` makes one)");
            break;
        }
    }
    emit(secret("basic-auth", "Opaque", J{{"users", users}}));
    J mw = object("traefik.io/v1alpha1", "Middleware", "basic-auth", "prometheus");
    mw["spec"] = J{{"basicAuth", J{{"secret", "basic-auth"}, {"removeHeader", true}}}};
    emit(mw);
    for (const auto& [host, component, port_number] :
         {std::tuple{m.prometheus_host, "prometheus", k_prometheus_port},
          std::tuple{m.alertmanager_host, "alertmanager", k_alertmanager_port}}) {
        if (host.empty()) {
            continue;
        }
        J in = object("networking.k8s.io/v1", "Ingress", component, component);
        in["metadata"]["annotations"] = J{{"traefik.ingress.kubernetes.io/router.entrypoints", "websecure"},
                                          {"traefik.ingress.kubernetes.io/router.tls", "true"},
                                          {"traefik.ingress.kubernetes.io/router.middlewares",
                                           std::string(k_monitoring) + "-basic-auth@kubernetescrd"}};
        in["spec"] =
            J{{"ingressClassName", "traefik"},
              {"tls", J::array({J{{"hosts", J::array({host})}, {"secretName", "tls"}}})},
              {"rules",
               J::array(
                   {J{{"host", host},
                      {"http",
                       J{{"paths",
                          J::array({J{{"path", "/"},
                                      {"pathType", "Prefix"},
                                      {"backend", J{{"service", J{{"name", component},
                                                                  {"port", J{{"number", port_number}}}}}}}}})}}}}})}};
        emit(in);
    }
}

void Renderer::monitoring_policies(const Monitoring& m, const std::vector<Site>& sites) {
    baseline_policies();
    auto ingress_from_traefik = [&](const std::string& host, int p, J rules) {
        if (!host.empty()) {
            rules.push_back(J{{"from", J::array({traefik_peer()})}, {"ports", tcp_ports(p)}});
        }
        return rules;
    };
    // Prometheus: to every site's exporters, the nodes' exporters (outside the pod network: any
    // address, on their ports) and Alertmanager.
    J egress = J::array({to({"alertmanager"}, k_alertmanager_port), to({"blackbox-exporter"}, k_blackbox_port)});
    std::vector<int> node_ports;
    for (const auto& t : m.node_targets) {
        int p = port_of(t, 9100);
        if (std::find(node_ports.begin(), node_ports.end(), p) == node_ports.end()) {
            node_ports.push_back(p);
            egress.push_back(to_anywhere(p));
        }
    }
    for (const auto& s : sites) {
        J peer = J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", s.name}}}}}};
        J ports = J::array();
        for (int p : {k_mysqld_exporter_port, k_redis_exporter_port, k_varnish_exporter_port, k_apache_exporter_port}) {
            ports.push_back(J{{"protocol", "TCP"}, {"port", p}});
        }
        egress.push_back(J{{"to", J::array({peer})}, {"ports", ports}});
    }
    emit(policy("prometheus", ingress_from_traefik(m.prometheus_host, k_prometheus_port, J::array()), egress));
    // Alertmanager: from Prometheus; to the webhook's and the mail server's ports anywhere.
    J am_egress = J::array();
    if (m.webhook_url) {
        am_egress.push_back(to_anywhere(m.webhook_port));
    }
    if (!m.smarthost.empty()) {
        am_egress.push_back(to_anywhere(port_of(m.smarthost, 25)));
    }
    // The blackbox exporter: from Prometheus; to the sites' HTTPS port anywhere.
    emit(policy("blackbox-exporter", J::array({from({"prometheus"}, k_blackbox_port)}),
                J::array({to_anywhere(m.tls_probe_port)})));
    emit(policy("alertmanager",
                ingress_from_traefik(m.alertmanager_host, k_alertmanager_port,
                                     J::array({from({"prometheus"}, k_alertmanager_port)})),
                am_egress));
}

void Renderer::monitoring_objects(const Monitoring& m, const std::vector<Site>& sites) {
    namespace_object();
    prometheus(m, sites);
    alertmanager(m);
    blackbox(m);
    if (m.exposed()) {
        monitoring_ingress(m);
    }
    monitoring_policies(m, sites);
}

}  // namespace detail

Result<std::string> render_monitoring(const Monitoring& m, const std::vector<Site>& sites, SecretValues values) {
    // The namespace as a Site: its name, pull policy and the two components' resources.
    Site ns;
    ns.name = k_monitoring;
    ns.images.pull_policy = m.pull_policy;
    ns.resources["prometheus"] = {"100m", "512Mi", "1", "2Gi"};
    ns.resources["alertmanager"] = {"10m", "64Mi", "200m", "128Mi"};
    ns.resources["blackbox-exporter"] = {"10m", "32Mi", "200m", "64Mi"};
    const NodeSecrets none;
    detail::Renderer r{ns, values, {}, {}, &none, k_monitoring};
    r.out = std::string("# nodectl-") + k_monitoring +
            ".yaml: Prometheus and Alertmanager for the Magento stack, rendered by "
            "`nodectl stack render` (do not edit: it is rendered again)\n";
    if (values == SecretValues::placeholders) {
        r.out += "# Secret values are placeholders (" + std::string(k_placeholder) +
                 "): this file is not deployable as it is.\n";
    }
    r.monitoring_objects(m, sites);
    if (!r.problems.empty()) {
        return make_error(ErrorCode::config, util::join(r.problems, "\n"));
    }
    return r.out;
}

}  // namespace nodectl::stack

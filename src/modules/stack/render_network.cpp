// A site's Ingress (TLS, and the HTTP-to-HTTPS redirect Middleware) and NetworkPolicies: deny by
// default, then only the paths the stack uses.
#include "modules/stack/renderer.hpp"
#include "util/text.hpp"

#include <regex>

namespace nodectl::stack::detail {

J Renderer::ingress_rules() const {
    J rules = J::array();
    for (const auto& h : site.hosts) {
        rules.push_back(
            J{{"host", h},
              {"http",
               J{{"paths",
                  J::array({J{{"path", "/"},
                              {"pathType", "Prefix"},
                              {"backend", J{{"service", J{{"name", "varnish"}, {"port", J{{"number", 80}}}}}}}}})}}}});
    }
    return rules;
}

void Renderer::ingress() {
    J mw = object("traefik.io/v1alpha1", "Middleware", "redirect-https", "varnish");
    mw["spec"] = J{{"redirectScheme", J{{"scheme", "https"}, {"permanent", true}}}};
    emit(mw);
    // HTTPS: Traefik's websecure entry point terminates TLS with the site's certificate.
    J tls = object("networking.k8s.io/v1", "Ingress", "magento", "varnish");
    tls["metadata"]["annotations"] = J{{"traefik.ingress.kubernetes.io/router.entrypoints", "websecure"},
                                       {"traefik.ingress.kubernetes.io/router.tls", "true"}};
    tls["spec"] = J{{"ingressClassName", "traefik"},
                    {"tls", J::array({J{{"hosts", strings(site.hosts)}, {"secretName", "tls"}}})},
                    {"rules", ingress_rules()}};
    emit(tls);
    // HTTP: the same hosts on the web entry point, answered by the redirect only.
    J http = object("networking.k8s.io/v1", "Ingress", "magento-http-redirect", "varnish");
    http["metadata"]["annotations"] =
        J{{"traefik.ingress.kubernetes.io/router.entrypoints", "web"},
          {"traefik.ingress.kubernetes.io/router.middlewares", site.name + "-redirect-https@kubernetescrd"}};
    http["spec"] = J{{"ingressClassName", "traefik"}, {"rules", ingress_rules()}};
    emit(http);
}

J Renderer::peer(const std::string& component) const {
    return J{{"podSelector", J{{"matchLabels", selector(component)}}}};
}

J Renderer::tcp_ports(int p) {
    return J::array({J{{"protocol", "TCP"}, {"port", p}}});
}

J Renderer::policy(const std::string& component, J ingress_rules, J egress_rules) const {
    J p = object("networking.k8s.io/v1", "NetworkPolicy", component, component);
    J types = J::array();
    J spec = J{{"podSelector", J{{"matchLabels", selector(component)}}}};
    if (!ingress_rules.empty()) {
        types.push_back("Ingress");
        spec["ingress"] = std::move(ingress_rules);
    }
    if (!egress_rules.empty()) {
        types.push_back("Egress");
        spec["egress"] = std::move(egress_rules);
    }
    spec["policyTypes"] = std::move(types);
    p["spec"] = std::move(spec);
    return p;
}

J Renderer::from(std::vector<std::string> components, int p) const {
    J peers = J::array();
    for (const auto& c : components) {
        peers.push_back(peer(c));
    }
    return J{{"from", peers}, {"ports", tcp_ports(p)}};
}

J Renderer::to(std::vector<std::string> components, int p) const {
    J peers = J::array();
    for (const auto& c : components) {
        peers.push_back(peer(c));
    }
    return J{{"to", peers}, {"ports", tcp_ports(p)}};
}

// Egress to a port anywhere (S3, the search engine: outside the namespace, often outside the cluster).
J Renderer::to_anywhere(int p) {
    return J{{"ports", tcp_ports(p)}};
}

J Renderer::from_prometheus(int p) {
    return J{{"from",
              J::array({J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", k_monitoring}}}}},
                          {"podSelector", J{{"matchLabels", J{{"app.kubernetes.io/name", "prometheus"}}}}}}})},
             {"ports", tcp_ports(p)}};
}

J Renderer::scraped(J rules, int exporter_port) const {
    if (site.monitored) {
        rules.push_back(from_prometheus(exporter_port));
    }
    return rules;
}

// Every namespace's first two policies: nothing in or out, then DNS to the cluster's resolver.
void Renderer::baseline_policies() {
    J deny = object("networking.k8s.io/v1", "NetworkPolicy", "default-deny", part_of);
    deny["spec"] = J{{"podSelector", J::object()}, {"policyTypes", J::array({"Ingress", "Egress"})}};
    emit(deny);
    J dns = object("networking.k8s.io/v1", "NetworkPolicy", "allow-dns", part_of);
    dns["spec"] = J{
        {"podSelector", J::object()},
        {"egress",
         J::array({J{
             {"to",
              J::array({J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", "kube-system"}}}}},
                          {"podSelector", J{{"matchLabels", J{{"k8s-app", "kube-dns"}}}}}}})},
             {"ports", J::array({J{{"protocol", "UDP"}, {"port", 53}}, J{{"protocol", "TCP"}, {"port", 53}}})}}})},
        {"policyTypes", J::array({"Egress"})}};
    emit(dns);
}

// k3s's packaged Traefik, in kube-system.
J Renderer::traefik_peer() {
    return J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", "kube-system"}}}}},
             {"podSelector", J{{"matchLabels", J{{"app.kubernetes.io/name", "traefik"}}}}}};
}

void Renderer::network_policies() {
    baseline_policies();

    std::vector<std::string> db_clients = {"magento"};
    if (site.backup.enabled) {
        db_clients.push_back("backup");
    }
    std::vector<std::string> databases = {"mariadb-master"};
    if (site.mariadb_replicas > 0) {
        databases.push_back("mariadb-replica");
    }
    // Traefik (k3s's packaged one, in kube-system) and Magento's PURGE requests reach Varnish.
    J traefik = J{{"from", J::array({traefik_peer()})}, {"ports", tcp_ports(k_varnish_port)}};
    // Magento and its cron send PURGE to Varnish (the cron when indexers invalidate pages).
    emit(
        policy("varnish",
               scraped(J::array({traefik, from({"magento", "magento-cron"}, k_varnish_port)}), k_varnish_exporter_port),
               J::array({to({"magento"}, k_apache_port)})));
    const int search = search_port();
    J magento_egress = J::array({to(databases, k_mysql_port), to({"redis"}, k_redis_port),
                                 to({"varnish"}, k_varnish_port), to_anywhere(search)});
    emit(policy("magento", scraped(J::array({from({"varnish"}, k_apache_port)}), k_apache_exporter_port),
                magento_egress));
    // The cron reaches only the master (its env names no replica), Redis, Varnish and the search
    // engine (indexers); nothing connects to it.
    J cron_egress = J::array({to({"mariadb-master"}, k_mysql_port), to({"redis"}, k_redis_port),
                              to({"varnish"}, k_varnish_port), to_anywhere(search)});
    emit(policy("magento-cron", J::array(), cron_egress));
    emit(policy("redis", scraped(J::array({from({"magento", "magento-cron"}, k_redis_port)}), k_redis_exporter_port),
                J::array()));
    std::vector<std::string> master_clients = db_clients;
    master_clients.push_back("magento-cron");
    if (site.mariadb_replicas > 0) {
        master_clients.push_back("mariadb-replica");
    }
    emit(policy("mariadb-master", scraped(J::array({from(master_clients, k_mysql_port)}), k_mysqld_exporter_port),
                J::array()));
    if (site.mariadb_replicas > 0) {
        emit(policy("mariadb-replica", scraped(J::array({from(db_clients, k_mysql_port)}), k_mysqld_exporter_port),
                    J::array({to({"mariadb-master"}, k_mysql_port)})));
    }
    if (site.backup.enabled) {
        emit(policy("backup", J::array(), J::array({to(databases, k_mysql_port), to_anywhere(site.backup.port)})));
    }
}

int Renderer::search_port() {
    static const std::regex k_re("^(https?)://[^/:]+(:([0-9]+))?(/.*)?$");
    std::smatch m;
    if (std::regex_match(site.search_endpoint, m, k_re)) {
        if (m[3].matched) {
            auto port = util::parse_uint(m[3].str(), {.max = 65535});
            if (!port || *port == 0) {
                problems.push_back("site " + site.name + ": search_endpoint " + site.search_endpoint + ": port " +
                                   m[3].str() + " is not a TCP port (1-65535)");
                return 0;
            }
            return static_cast<int>(*port);
        }
        return m[1] == "https" ? 443 : 80;
    }
    return 9200;
}

}  // namespace nodectl::stack::detail

// The Renderer that builds one site's objects (render_site in render.cpp). The shared helpers
// (metadata, container pieces) are here; the objects are defined by kind in render_config.cpp
// (Secrets, ConfigMaps), render_workloads.cpp (Services, StatefulSets, Deployments, HPA, PDB),
// render_network.cpp (Ingress, Middleware, NetworkPolicies) and render_backup.cpp (the backup
// CronJob and its profile). Internal to the stack module.
#pragma once

#include "modules/stack/stack.hpp"

#include "util/json.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace nodectl::stack::detail {

using J = nlohmann::ordered_json;

constexpr int k_mysql_port = 3306;
constexpr int k_redis_port = 6379;
constexpr int k_varnish_port = 6081;
constexpr int k_apache_port = 8080;
// The exporters' ports (each a container port named "metrics": what Prometheus' pod discovery keeps).
constexpr int k_mysqld_exporter_port = 9104;
constexpr int k_redis_exporter_port = 9121;
constexpr int k_varnish_exporter_port = 9131;
constexpr int k_apache_exporter_port = 9117;
// Where the exporters' passwords are mounted (Secret "exporters") in the services and the sidecars.
constexpr const char* k_exporter_secrets = "/run/secrets/exporter";
// Magento's cron loop (run through the image's entrypoint as www-data): one `cron:run` a minute;
// SIGTERM lets the run in progress finish, then ends the loop.
constexpr const char* k_cron_loop =
    "stop=0; trap 'stop=1' TERM INT; while [ \"$stop\" = 0 ]; do php bin/magento cron:run; "
    "[ \"$stop\" = 0 ] || break; sleep 60 & wait $!; done";
constexpr int k_cron_grace_seconds = 600;  // a cron run (reindex) may take minutes

J strings(const std::vector<std::string>& v);
// The components of a monitored site that run an exporter: each gets a headless Service
// COMPONENT-metrics whose DNS SRV records Prometheus reads.
std::vector<std::string> exported_components(const Site& site);
// Prometheus' configuration for [stack.monitoring] and these sites (render_monitoring.cpp).
J prometheus_config(const Monitoring& m, const std::vector<Site>& sites);

struct Renderer {
    const Site& site;
    SecretValues values;
    std::vector<std::string> problems;
    std::string out;
    const NodeSecrets* node = nullptr;  // values generated on the server node (delivery)
    std::string part_of = "magento";  // app.kubernetes.io/part-of ("monitoring" for its namespace)

    void emit(const J& doc) { out += "---\n" + util::json_text(doc, 2) + "\n"; }

    // --- metadata and labels -------------------------------------------------------------------
    J selector(const std::string& component) const {
        return J{{"app.kubernetes.io/name", component}, {"app.kubernetes.io/instance", site.name}};
    }
    J labels(const std::string& component) const {
        J l = selector(component);
        l["app.kubernetes.io/part-of"] = part_of;
        l["app.kubernetes.io/managed-by"] = "nodectl";
        return l;
    }
    J meta(const std::string& name, const std::string& component) const {
        return J{{"name", name}, {"namespace", site.name}, {"labels", labels(component)}};
    }
    J object(const char* api, const char* kind, const std::string& name, const std::string& component) const {
        return J{{"apiVersion", api}, {"kind", kind}, {"metadata", meta(name, component)}};
    }

    // --- containers ------------------------------------------------------------------------------
    J resources(const std::string& component) const {
        const auto& r = site.resources.at(component);
        return J{{"requests", J{{"cpu", r.cpu_request}, {"memory", r.memory_request}}},
                 {"limits", J{{"cpu", r.cpu_limit}, {"memory", r.memory_limit}}}};
    }

    static J security(const std::vector<std::string>& add, bool read_only_root, bool non_root) {
        J caps = J{{"drop", J::array({"ALL"})}};
        if (!add.empty()) {
            caps["add"] = strings(add);
        }
        J s = J{{"allowPrivilegeEscalation", false}, {"privileged", false}, {"readOnlyRootFilesystem", read_only_root}};
        if (non_root) {
            s["runAsNonRoot"] = true;
        }
        s["capabilities"] = std::move(caps);
        s["seccompProfile"] = J{{"type", "RuntimeDefault"}};
        return s;
    }

    static J env(const std::string& name, const std::string& value) { return J{{"name", name}, {"value", value}}; }
    static J port(const char* name, int number) {
        return J{{"name", name}, {"containerPort", number}, {"protocol", "TCP"}};
    }
    static J mount(const std::string& name, const std::string& path, bool read_only = false) {
        J m = J{{"name", name}, {"mountPath", path}};
        if (read_only) {
            m["readOnly"] = true;
        }
        return m;
    }
    static J empty_dir(const std::string& name, const std::string& limit = "64Mi") {
        return J{{"name", name}, {"emptyDir", J{{"sizeLimit", limit}}}};
    }
    // A Secret's keys as files, readable by their owner only (root: the entrypoints read them
    // before dropping privileges).
    static J secret_volume(const std::string& volume, const std::string& secret, const std::vector<std::string>& keys) {
        J items = J::array();
        for (const auto& k : keys) {
            items.push_back(J{{"key", k}, {"path", k}});
        }
        return J{{"name", volume}, {"secret", J{{"secretName", secret}, {"items", items}, {"defaultMode", 0400}}}};
    }
    static J tcp_probe(const char* port_name, int period, int failures) {
        return J{{"tcpSocket", J{{"port", port_name}}},
                 {"periodSeconds", period},
                 {"timeoutSeconds", 5},
                 {"failureThreshold", failures}};
    }
    static J http_probe(const char* path, const char* port_name, int period, int failures) {
        return J{{"httpGet", J{{"path", path}, {"port", port_name}}},
                 {"periodSeconds", period},
                 {"timeoutSeconds", 5},
                 {"failureThreshold", failures}};
    }

    J pod_spec(J containers, J volumes) const {
        J spec = J{{"automountServiceAccountToken", false},
                   {"enableServiceLinks", false},
                   {"securityContext", J{{"seccompProfile", J{{"type", "RuntimeDefault"}}}}},
                   {"containers", std::move(containers)}};
        if (!volumes.empty()) {
            spec["volumes"] = std::move(volumes);
        }
        return spec;
    }
    J pod_template(const std::string& component, J spec) const {
        return J{{"metadata", J{{"labels", labels(component)}}}, {"spec", std::move(spec)}};
    }

    // --- objects (render.cpp) -------------------------------------------------------------------
    void namespace_object();
    void quota_and_limits();
    // --- secrets and configuration (render_config.cpp) ------------------------------------------
    std::string secret_value(const std::optional<SecretRef>& ref, const std::string& what);
    J secret(const std::string& name, const char* type, J string_data) const;
    std::string tls_certificate();
    void secrets();
    void config_maps();
    // --- services and workloads (render_workloads.cpp) ------------------------------------------
    void service(const std::string& name, const std::string& component, int port, const char* target, bool headless);
    void services();
    // MiB of `component`'s memory_limit, a quantity the key table accepted ("512Mi", "2Gi"); one
    // too large to count is a problem naming it (and 0).
    long memory_limit_mib(const std::string& component);
    J mariadb_container(bool master);
    void stateful_set(bool master);
    J deployment(const std::string& name, int replicas, J pod, bool recreate) const;
    // With site.monitored: an exporter container (port "metrics") for the pod, and what the
    // service's own container and the pod's volumes gain (render_workloads.cpp).
    J exporter(const std::string& image, int port, J env_list, J mounts) const;
    static void add_exporter_secret(J& container, const char* env_name, const char* key);
    J exporter_volumes(const char* key) const;
    void redis();
    void varnish();
    J magento_env() const;
    J magento_mounts() const;
    J magento_volumes() const;
    void magento();
    void magento_cron();
    // --- ingress and network policies (render_network.cpp) --------------------------------------
    J ingress_rules() const;
    void ingress();
    J peer(const std::string& component) const;
    static J tcp_ports(int p);
    J policy(const std::string& component, J ingress_rules, J egress_rules) const;
    J from(std::vector<std::string> components, int p) const;
    J to(std::vector<std::string> components, int p) const;
    // Ingress from Prometheus (namespace monitoring) to an exporter port.
    static J from_prometheus(int p);
    // `rules` with Prometheus let in to `exporter_port` when the site is monitored.
    J scraped(J rules, int exporter_port) const;
    // Egress to a port anywhere (S3, the search engine: outside the namespace, often outside the cluster).
    static J to_anywhere(int p);
    void baseline_policies();
    static J traefik_peer();
    void network_policies();
    // The port of site.search_endpoint (80 or 443 when it names none); one out of range is a problem.
    int search_port();
    // --- backup (render_backup.cpp) --------------------------------------------------------------
    void backup_cron_job();
    // --- the monitoring namespace (render_monitoring.cpp) ----------------------------------------
    void monitoring_objects(const Monitoring& m, const std::vector<Site>& sites);
    J alertmanager_config(const Monitoring& m);
    void prometheus(const Monitoring& m, const std::vector<Site>& sites);
    void alertmanager(const Monitoring& m);
    void blackbox(const Monitoring& m);
    void monitoring_ingress(const Monitoring& m);
    void monitoring_policies(const Monitoring& m, const std::vector<Site>& sites);
};

}  // namespace nodectl::stack::detail

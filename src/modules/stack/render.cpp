// One site's Kubernetes objects. Every object is built as ordered JSON (key order as written here)
// and emitted as one YAML document; JSON is YAML, and k3s's manifest loader reads it as such.
// Kubernetes v1.32, no deprecated API: apps/v1, batch/v1, autoscaling/v2, policy/v1,
// networking.k8s.io/v1, traefik.io/v1alpha1.
//
// The images (images/*) start as root and drop to their service user themselves (setpriv, Apache,
// varnishd), so their containers keep exactly the capabilities that needs: CHOWN, DAC_OVERRIDE and
// FOWNER for the entrypoints' chown/mkdir on volumes, SETUID/SETGID to switch user, KILL where a
// root parent signals children of another user. Nothing listens below 1024 (Apache on 8080), so
// NET_BIND_SERVICE is never added. The root filesystem is read-only wherever the image writes only
// to volumes; Magento's entrypoint writes app/etc/env.php into the image, so its root stays writable.
#include "modules/stack/stack.hpp"

#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>

namespace nodectl::stack {

namespace {

using J = nlohmann::ordered_json;

constexpr int k_mysql_port = 3306;
constexpr int k_redis_port = 6379;
constexpr int k_varnish_port = 6081;
constexpr int k_apache_port = 8080;

J strings(const std::vector<std::string>& v) {
    J a = J::array();
    for (const auto& s : v) {
        a.push_back(s);
    }
    return a;
}

struct Renderer {
    const Site& site;
    SecretValues values;
    std::vector<std::string> problems;
    std::string out;

    void emit(const J& doc) {
        out += "---\n" + util::json_text(doc, 2) + "\n";
    }

    // --- metadata and labels -------------------------------------------------------------------
    J selector(const std::string& component) const {
        return J{{"app.kubernetes.io/name", component}, {"app.kubernetes.io/instance", site.name}};
    }
    J labels(const std::string& component) const {
        J l = selector(component);
        l["app.kubernetes.io/part-of"] = "magento";
        l["app.kubernetes.io/managed-by"] = "nodectl";
        return l;
    }
    J meta(const std::string& name, const std::string& component) const {
        return J{{"name", name}, {"namespace", site.name}, {"labels", labels(component)}};
    }
    J object(const char* api, const char* kind, const std::string& name, const std::string& component) const {
        return J{{"apiVersion", api}, {"kind", kind}, {"metadata", meta(name, component)}};
    }

    // --- secrets ---------------------------------------------------------------------------------
    std::string secret_value(const std::optional<SecretRef>& ref, const std::string& what) {
        if (values == SecretValues::placeholders) {
            return k_placeholder;
        }
        if (!ref) {
            problems.push_back(what + ": no secret reference");
            return "";
        }
        auto v = resolve_secret(*ref);
        if (!v) {
            problems.push_back(what + ": " + v.error().message);
            return "";
        }
        return v->reveal();
    }

    J secret(const std::string& name, const char* type, J string_data) const {
        J s = object("v1", "Secret", name, "magento");
        if (values == SecretValues::placeholders) {
            s["metadata"]["annotations"] = J{{k_placeholder_annotation,
                                              "true: rendered without the secret values; `nodectl stack render --out DIR` reads them"}};
        }
        s["type"] = type;
        s["stringData"] = std::move(string_data);
        return s;
    }

    std::string tls_certificate() {
        if (values == SecretValues::placeholders) {
            return k_placeholder;
        }
        if (site.tls_cert_file.empty()) {
            problems.push_back("site " + site.name +
                               ": tls is self-signed; the pair is made on the server node by `nodectl apply`, which is not built yet: "
                               "give tls.cert_file and tls.key, or render with --placeholders");
            return "";
        }
        auto pem = util::read_file(site.tls_cert_file);
        if (!pem) {
            problems.push_back("site " + site.name + ": tls.cert_file " + site.tls_cert_file + ": " + std::strerror(errno));
            return "";
        }
        return *pem;
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

    static J env(const std::string& name, const std::string& value) {
        return J{{"name", name}, {"value", value}};
    }
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
        return J{{"tcpSocket", J{{"port", port_name}}}, {"periodSeconds", period}, {"timeoutSeconds", 5},
                 {"failureThreshold", failures}};
    }
    static J http_probe(const char* path, const char* port_name, int period, int failures) {
        return J{{"httpGet", J{{"path", path}, {"port", port_name}}}, {"periodSeconds", period}, {"timeoutSeconds", 5},
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

    // --- objects ---------------------------------------------------------------------------------
    void namespace_object() {
        J ns = J{{"apiVersion", "v1"}, {"kind", "Namespace"},
                 {"metadata", J{{"name", site.name}, {"labels", J{{"app.kubernetes.io/part-of", "magento"},
                                                                  {"app.kubernetes.io/managed-by", "nodectl"}}}}}};
        // Baseline forbids hostPath: with media from the node's s3fs mount it warns and audits only.
        auto& l = ns["metadata"]["labels"];
        l[site.media_host_path.empty() ? "pod-security.kubernetes.io/enforce" : "pod-security.kubernetes.io/warn"] = "baseline";
        l["pod-security.kubernetes.io/audit"] = "baseline";
        emit(ns);
    }

    void secrets() {
        emit(secret("db", "Opaque",
                    J{{"password", secret_value(site.db_password, "secrets.db_password")},
                      {"replication-password", secret_value(site.replication_password, "secrets.replication_password")}}));
        emit(secret("redis", "Opaque", J{{"password", secret_value(site.redis_password, "secrets.redis_password")}}));
        emit(secret("magento", "Opaque", J{{"crypt-key", secret_value(site.crypt_key, "secrets.crypt_key")}}));
        if (site.backup.enabled) {
            emit(secret("backup", "Opaque",
                        J{{"s3-credentials", secret_value(site.backup.credentials, "backup.credentials")}}));
        }
        std::string key = values == SecretValues::placeholders || site.tls_cert_file.empty()
                              ? std::string(k_placeholder)
                              : secret_value(site.tls_key, "tls.key");
        emit(secret("tls", "kubernetes.io/tls", J{{"tls.crt", tls_certificate()}, {"tls.key", key}}));
    }

    void config_maps() {
        J magento = object("v1", "ConfigMap", "magento", "magento");
        J data = J{{"APACHE_PORT", std::to_string(k_apache_port)},
                   {"APACHE_SERVER_NAME", site.hosts.front()},
                   {"MAGENTO_DB_HOST", "mariadb-master:" + std::to_string(k_mysql_port)},
                   {"MAGENTO_DB_NAME", site.database},
                   {"MAGENTO_DB_USER", site.database_user}};
        if (site.mariadb_replicas > 0) {
            data["MAGENTO_DB_REPLICA_HOST"] = "mariadb-replica:" + std::to_string(k_mysql_port);
        }
        data["MAGENTO_REDIS_HOST"] = "redis:" + std::to_string(k_redis_port);
        data["MAGENTO_VARNISH_HOSTS"] = "varnish:80";
        data["MAGENTO_MODE"] = "production";
        data["MAGENTO_SEARCH_ENDPOINT"] = site.search_endpoint;
        data["MAGENTO_S3_MEDIA"] = "0";
        magento["data"] = std::move(data);
        emit(magento);
        if (site.backup.enabled) {
            J backup = object("v1", "ConfigMap", "backup-profile", "backup");
            backup["data"] = J{{"profile.toml", backup_profile(site)}};
            emit(backup);
        }
    }

    void service(const std::string& name, const std::string& component, int port, const char* target, bool headless) {
        J s = object("v1", "Service", name, component);
        J spec = J::object();
        if (headless) {
            spec["clusterIP"] = "None";
        }
        spec["selector"] = selector(component);
        spec["ports"] = J::array({J{{"name", target}, {"port", port}, {"targetPort", target}, {"protocol", "TCP"}}});
        s["spec"] = std::move(spec);
        emit(s);
    }

    void services() {
        service("mariadb-master", "mariadb-master", k_mysql_port, "mysql", true);
        if (site.mariadb_replicas > 0) {
            service("mariadb-replica", "mariadb-replica", k_mysql_port, "mysql", true);
        }
        service("redis", "redis", k_redis_port, "redis", false);
        service("varnish", "varnish", 80, "http", false);
        service("magento", "magento", k_apache_port, "http", false);
    }

    // MiB of a quantity the key table accepted ("512Mi", "2Gi").
    static long mib(const std::string& q) {
        long n = std::stol(q);
        if (q.ends_with("Ki")) return std::max(1L, n / 1024);
        if (q.ends_with("Gi")) return n * 1024;
        if (q.ends_with("Ti")) return n * 1024 * 1024;
        return n;
    }

    J mariadb_container(bool master) const {
        J env_list = J::array();
        if (master) {
            env_list.push_back(env("MYSQL_SERVER_ID", "1"));
            env_list.push_back(env("MYSQL_DATABASE", site.database));
            env_list.push_back(env("MYSQL_USER", site.database_user));
            env_list.push_back(env("MYSQL_PASSWORD_FILE", "/run/secrets/db/password"));
        } else {
            env_list.push_back(J{{"name", "POD_INDEX"},
                                 {"valueFrom", J{{"fieldRef", J{{"fieldPath", "metadata.labels['apps.kubernetes.io/pod-index']"}}}}}});
            env_list.push_back(env("MYSQL_MASTER_HOST", "mariadb-master"));
            env_list.push_back(env("MYSQL_MASTER_PORT", std::to_string(k_mysql_port)));
        }
        env_list.push_back(env("MYSQL_REPLICATION_PASSWORD_FILE", "/run/secrets/db/replication-password"));
        // Half the memory limit for InnoDB's buffer pool leaves room for connections and sorts.
        env_list.push_back(env("MYSQL_INNODB_BUFFER_POOL_SIZE", std::to_string(mib(site.resources.at("mariadb").memory_limit) / 2) + "M"));
        J c = J{{"name", "mariadb"}, {"image", master ? site.images.mariadb_master : site.images.mariadb_replica},
                {"imagePullPolicy", site.images.pull_policy}};
        if (!master) {
            // Each replica needs its own server id: 100 + the StatefulSet's pod index. ($$ is a
            // literal $ for Kubernetes' own $(VAR) expansion.)
            c["command"] = J::array({"/usr/bin/tini", "--", "/bin/sh", "-c",
                                     "export MYSQL_SERVER_ID=$$((100 + POD_INDEX)) && exec /usr/local/bin/docker-entrypoint.sh mariadbd"});
        }
        c["env"] = std::move(env_list);
        c["ports"] = J::array({port("mysql", k_mysql_port)});
        c["resources"] = resources("mariadb");
        // A first start initialises the datadir (a replica first waits for its master).
        c["startupProbe"] = tcp_probe("mysql", 5, 120);
        c["readinessProbe"] = tcp_probe("mysql", 10, 3);
        c["livenessProbe"] = tcp_probe("mysql", 20, 6);
        c["securityContext"] = security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}, true, false);
        c["volumeMounts"] = J::array({mount("data", "/var/lib/mysql"), mount("run", "/run/mysqld"), mount("tmp", "/tmp"),
                                      mount("db-secret", "/run/secrets/db", true)});
        return c;
    }

    void stateful_set(bool master) {
        const std::string name = master ? "mariadb-master" : "mariadb-replica";
        J volumes = J::array({empty_dir("run"), empty_dir("tmp", "1Gi"),
                              secret_volume("db-secret", "db", master ? std::vector<std::string>{"password", "replication-password"}
                                                                      : std::vector<std::string>{"replication-password"})});
        J claim = J{{"metadata", J{{"name", "data"}, {"labels", labels(name)}}},
                    {"spec", J{{"accessModes", J::array({"ReadWriteOnce"})},
                               {"storageClassName", "local-path"},
                               {"resources", J{{"requests", J{{"storage", master ? site.storage_mariadb : site.storage_replica}}}}}}}};
        J pod = pod_spec(J::array({mariadb_container(master)}), std::move(volumes));
        pod["terminationGracePeriodSeconds"] = 60;
        J s = object("apps/v1", "StatefulSet", name, name);
        s["spec"] = J{{"serviceName", name},
                      {"replicas", master ? 1 : site.mariadb_replicas},
                      {"podManagementPolicy", "OrderedReady"},
                      {"selector", J{{"matchLabels", selector(name)}}},
                      {"template", pod_template(name, std::move(pod))},
                      {"volumeClaimTemplates", J::array({claim})}};
        emit(s);
    }

    J deployment(const std::string& name, int replicas, J pod, bool recreate) const {
        J d = object("apps/v1", "Deployment", name, name);
        J spec = J{{"replicas", replicas}, {"selector", J{{"matchLabels", selector(name)}}}};
        if (recreate) {
            spec["strategy"] = J{{"type", "Recreate"}};
        }
        spec["template"] = pod_template(name, std::move(pod));
        d["spec"] = std::move(spec);
        return d;
    }

    void redis() {
        J c = J{{"name", "redis"}, {"image", site.images.redis}, {"imagePullPolicy", site.images.pull_policy},
                {"env", J::array({env("REDIS_PASSWORD_FILE", "/run/secrets/redis/password"),
                                  // Sessions and cache only, in an emptyDir: no persistence to disk.
                                  env("REDIS_PERSISTENCE", "none"),
                                  env("REDIS_MAXMEMORY", std::to_string(mib(site.resources.at("redis").memory_limit) * 3 / 4) + "mb")})},
                {"ports", J::array({port("redis", k_redis_port)})},
                {"resources", resources("redis")},
                {"readinessProbe", tcp_probe("redis", 10, 3)},
                {"livenessProbe", tcp_probe("redis", 20, 6)},
                {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"}, true, false)},
                {"volumeMounts", J::array({mount("data", "/data"), mount("run", "/run/redis"),
                                           mount("redis-secret", "/run/secrets/redis", true)})}};
        J volumes = J::array({empty_dir("data", "1Gi"), empty_dir("run"), secret_volume("redis-secret", "redis", {"password"})});
        emit(deployment("redis", 1, pod_spec(J::array({c}), std::move(volumes)), true));
    }

    void varnish() {
        J c = J{{"name", "varnish"}, {"image", site.images.varnish}, {"imagePullPolicy", site.images.pull_policy},
                {"env", J::array({env("VARNISH_BACKEND_HOST", "magento"), env("VARNISH_BACKEND_PORT", std::to_string(k_apache_port)),
                                  env("VARNISH_PURGE_ACL", util::join(site.purge_acl, " ")),
                                  env("VARNISH_PORT", std::to_string(k_varnish_port)),
                                  env("VARNISH_STORAGE_SIZE", std::to_string(mib(site.resources.at("varnish").memory_limit) / 2) + "m")})},
                {"ports", J::array({port("http", k_varnish_port)})},
                {"resources", resources("varnish")},
                {"readinessProbe", tcp_probe("http", 10, 3)},
                {"livenessProbe", tcp_probe("http", 20, 6)},
                {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
                {"volumeMounts", J::array({mount("run", "/run/varnish"), mount("work", "/var/lib/varnish"), mount("tmp", "/tmp")})}};
        J volumes = J::array({empty_dir("run"), empty_dir("work", "256Mi"), empty_dir("tmp")});
        emit(deployment("varnish", site.varnish_replicas, pod_spec(J::array({c}), std::move(volumes)), false));
    }

    void magento() {
        J c = J{{"name", "magento"}, {"image", site.images.magento}, {"imagePullPolicy", site.images.pull_policy},
                {"envFrom", J::array({J{{"configMapRef", J{{"name", "magento"}}}}})},
                {"env", J::array({env("MAGENTO_DB_PASSWORD_FILE", "/run/secrets/db/password"),
                                  env("MAGENTO_REDIS_PASSWORD_FILE", "/run/secrets/redis/password"),
                                  env("MAGENTO_CRYPT_KEY_FILE", "/run/secrets/magento/crypt-key")})},
                {"ports", J::array({port("http", k_apache_port)})},
                {"resources", resources("magento")},
                // Up to 15 minutes for a first start (setup, caches); then the usual probes.
                {"startupProbe", http_probe("/health_check.php", "http", 10, 90)},
                {"readinessProbe", http_probe("/health_check.php", "http", 10, 3)},
                // Liveness asks only whether Apache answers: a database outage must not restart every pod.
                {"livenessProbe", tcp_probe("http", 20, 6)},
                {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, false, false)},
                {"volumeMounts", J::array({mount("media", "/var/www/html/pub/media"), mount("db-secret", "/run/secrets/db", true),
                                           mount("redis-secret", "/run/secrets/redis", true),
                                           mount("magento-secret", "/run/secrets/magento", true)})}};
        J media = site.media_host_path.empty()
                      ? empty_dir("media", "10Gi")
                      : J{{"name", "media"}, {"hostPath", J{{"path", site.media_host_path}, {"type", "Directory"}}}};
        J volumes = J::array({media, secret_volume("db-secret", "db", {"password"}),
                              secret_volume("redis-secret", "redis", {"password"}),
                              secret_volume("magento-secret", "magento", {"crypt-key"})});
        emit(deployment("magento", site.hpa_min, pod_spec(J::array({c}), std::move(volumes)), false));

        J hpa = object("autoscaling/v2", "HorizontalPodAutoscaler", "magento", "magento");
        hpa["spec"] = J{{"scaleTargetRef", J{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "magento"}}},
                        {"minReplicas", site.hpa_min},
                        {"maxReplicas", site.hpa_max},
                        {"metrics", J::array({J{{"type", "Resource"},
                                                {"resource", J{{"name", "cpu"},
                                                               {"target", J{{"type", "Utilization"}, {"averageUtilization", site.cpu_percent}}}}}}})}};
        emit(hpa);
        J pdb = object("policy/v1", "PodDisruptionBudget", "magento", "magento");
        pdb["spec"] = J{{"maxUnavailable", 1}, {"selector", J{{"matchLabels", selector("magento")}}}};
        emit(pdb);
    }

    J ingress_rules() const {
        J rules = J::array();
        for (const auto& h : site.hosts) {
            rules.push_back(J{{"host", h},
                              {"http", J{{"paths", J::array({J{{"path", "/"}, {"pathType", "Prefix"},
                                                               {"backend", J{{"service", J{{"name", "varnish"}, {"port", J{{"number", 80}}}}}}}}})}}}});
        }
        return rules;
    }

    void ingress() {
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
        http["metadata"]["annotations"] = J{{"traefik.ingress.kubernetes.io/router.entrypoints", "web"},
                                            {"traefik.ingress.kubernetes.io/router.middlewares", site.name + "-redirect-https@kubernetescrd"}};
        http["spec"] = J{{"ingressClassName", "traefik"}, {"rules", ingress_rules()}};
        emit(http);
    }

    // --- network policies --------------------------------------------------------------------------
    J peer(const std::string& component) const {
        return J{{"podSelector", J{{"matchLabels", selector(component)}}}};
    }
    static J tcp_ports(int p) {
        return J::array({J{{"protocol", "TCP"}, {"port", p}}});
    }
    J policy(const std::string& component, J ingress_rules, J egress_rules) const {
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
    J from(std::vector<std::string> components, int p) const {
        J peers = J::array();
        for (const auto& c : components) {
            peers.push_back(peer(c));
        }
        return J{{"from", peers}, {"ports", tcp_ports(p)}};
    }
    J to(std::vector<std::string> components, int p) const {
        J peers = J::array();
        for (const auto& c : components) {
            peers.push_back(peer(c));
        }
        return J{{"to", peers}, {"ports", tcp_ports(p)}};
    }
    // Egress to a port anywhere (S3, the search engine: outside the namespace, often outside the cluster).
    static J to_anywhere(int p) {
        return J{{"ports", tcp_ports(p)}};
    }

    void network_policies() {
        J deny = object("networking.k8s.io/v1", "NetworkPolicy", "default-deny", "magento");
        deny["spec"] = J{{"podSelector", J::object()}, {"policyTypes", J::array({"Ingress", "Egress"})}};
        emit(deny);
        J dns = object("networking.k8s.io/v1", "NetworkPolicy", "allow-dns", "magento");
        dns["spec"] = J{{"podSelector", J::object()},
                        {"egress", J::array({J{{"to", J::array({J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", "kube-system"}}}}},
                                                                {"podSelector", J{{"matchLabels", J{{"k8s-app", "kube-dns"}}}}}}})},
                                               {"ports", J::array({J{{"protocol", "UDP"}, {"port", 53}}, J{{"protocol", "TCP"}, {"port", 53}}})}}})},
                        {"policyTypes", J::array({"Egress"})}};
        emit(dns);

        std::vector<std::string> db_clients = {"magento"};
        if (site.backup.enabled) {
            db_clients.push_back("backup");
        }
        std::vector<std::string> databases = {"mariadb-master"};
        if (site.mariadb_replicas > 0) {
            databases.push_back("mariadb-replica");
        }
        // Traefik (k3s's packaged one, in kube-system) and Magento's PURGE requests reach Varnish.
        J traefik = J{{"from", J::array({J{{"namespaceSelector", J{{"matchLabels", J{{"kubernetes.io/metadata.name", "kube-system"}}}}},
                                           {"podSelector", J{{"matchLabels", J{{"app.kubernetes.io/name", "traefik"}}}}}}})},
                      {"ports", tcp_ports(k_varnish_port)}};
        emit(policy("varnish", J::array({traefik, from({"magento"}, k_varnish_port)}), J::array({to({"magento"}, k_apache_port)})));
        J magento_egress = J::array({to(databases, k_mysql_port), to({"redis"}, k_redis_port), to({"varnish"}, k_varnish_port),
                                     to_anywhere(search_port())});
        emit(policy("magento", J::array({from({"varnish"}, k_apache_port)}), magento_egress));
        emit(policy("redis", J::array({from({"magento"}, k_redis_port)}), J::array()));
        std::vector<std::string> master_clients = db_clients;
        if (site.mariadb_replicas > 0) {
            master_clients.push_back("mariadb-replica");
        }
        emit(policy("mariadb-master", J::array({from(master_clients, k_mysql_port)}), J::array()));
        if (site.mariadb_replicas > 0) {
            emit(policy("mariadb-replica", J::array({from(db_clients, k_mysql_port)}), J::array({to({"mariadb-master"}, k_mysql_port)})));
        }
        if (site.backup.enabled) {
            emit(policy("backup", J::array(), J::array({to(databases, k_mysql_port), to_anywhere(site.backup.port)})));
        }
    }

    int search_port() const {
        static const std::regex k_re("^(https?)://[^/:]+(:([0-9]+))?(/.*)?$");
        std::smatch m;
        if (std::regex_match(site.search_endpoint, m, k_re)) {
            if (m[3].matched) {
                return std::stoi(m[3]);
            }
            return m[1] == "https" ? 443 : 80;
        }
        return 9200;
    }

    void backup_cron_job() {
        if (!site.backup.enabled) {
            return;
        }
        // nodectl reads its secrets only when no one else can (mode 0400 of root): the job runs as
        // uid 0 with every capability dropped, so it can read them and nothing more.
        J sec = security({}, true, false);
        sec["runAsUser"] = 0;
        J c = J{{"name", "backup"}, {"image", site.images.backup}, {"imagePullPolicy", site.images.pull_policy},
                {"command", J::array({"/usr/local/bin/nodectl", "backup", "run", "--profile", "/etc/nodectl/profile.toml"})},
                {"resources", resources("backup")},
                {"securityContext", sec},
                {"volumeMounts", J::array({mount("profile", "/etc/nodectl", true), mount("db-secret", "/run/secrets/db", true),
                                           mount("backup-secret", "/run/secrets/backup", true), mount("tmp", "/tmp")})}};
        J volumes = J::array({J{{"name", "profile"}, {"configMap", J{{"name", "backup-profile"}, {"items", J::array({J{{"key", "profile.toml"}, {"path", "profile.toml"}}})}}}},
                              secret_volume("db-secret", "db", {"password"}),
                              secret_volume("backup-secret", "backup", {"s3-credentials"}), empty_dir("tmp", "1Gi")});
        J pod = pod_spec(J::array({c}), std::move(volumes));
        pod["restartPolicy"] = "Never";
        J job = object("batch/v1", "CronJob", "backup", "backup");
        job["spec"] = J{{"schedule", site.backup.schedule},
                        {"timeZone", "Etc/UTC"},
                        {"concurrencyPolicy", "Forbid"},
                        {"startingDeadlineSeconds", 3600},
                        {"successfulJobsHistoryLimit", 3},
                        {"failedJobsHistoryLimit", 3},
                        {"jobTemplate", J{{"metadata", J{{"labels", labels("backup")}}},
                                          {"spec", J{{"backoffLimit", 1},
                                                     {"activeDeadlineSeconds", 6 * 3600},
                                                     {"template", pod_template("backup", std::move(pod))}}}}}};
        emit(job);
    }
};

} // namespace

std::string backup_profile(const Site& site) {
    toml::table mariadb{{"host", "mariadb-master"},
                        {"port", k_mysql_port},
                        {"user", site.database_user},
                        {"password", toml::table{{"file", "/run/secrets/db/password"}}},
                        {"databases", toml::array{site.database}}};
    if (site.mariadb_replicas > 0) {
        // Dumps are read from the first replica; restores go to the master.
        mariadb.insert("replica_host", "mariadb-replica-0.mariadb-replica");
        mariadb.insert("replica_port", k_mysql_port);
    }
    toml::table target{{"name", "s3"},
                       {"type", "s3"},
                       {"endpoint", site.backup.endpoint},
                       {"region", site.backup.region},
                       {"bucket", site.backup.bucket},
                       {"prefix", site.backup.prefix},
                       {"path_style", site.backup.path_style},
                       {"credentials_file", "/run/secrets/backup/s3-credentials"},
                       {"keep_last", site.backup.keep_last}};
    toml::table backup{{"name", site.name}, {"enabled", false}, {"mariadb", std::move(mariadb)},
                       {"targets", toml::array{std::move(target)}}};
    toml::table root{{"backup", std::move(backup)}};
    std::ostringstream out;
    out << "# nodectl backup profile of site " << site.name << " (rendered by `nodectl stack render`)\n"
        << toml::toml_formatter(root) << "\n";
    return out.str();
}

Result<std::string> render_site(const Site& site, SecretValues values) {
    Renderer r{site, values, {}, {}};
    r.out = "# nodectl-" + site.name + ".yaml: the Magento stack of site " + site.name +
            ", rendered by `nodectl stack render` (do not edit: it is rendered again)\n";
    if (values == SecretValues::placeholders) {
        r.out += "# Secret values are placeholders (" + std::string(k_placeholder) + "): this file is not deployable as it is.\n";
    }
    r.namespace_object();
    r.secrets();
    r.config_maps();
    r.services();
    r.stateful_set(true);
    if (site.mariadb_replicas > 0) {
        r.stateful_set(false);
    }
    r.redis();
    r.varnish();
    r.magento();
    r.ingress();
    r.network_policies();
    r.backup_cron_job();
    if (!r.problems.empty()) {
        return make_error(ErrorCode::config, util::join(r.problems, "\n"));
    }
    return r.out;
}

} // namespace nodectl::stack

// A site's Services and workloads: MariaDB master and replica StatefulSets, Redis, Varnish, and
// Magento with its HorizontalPodAutoscaler and PodDisruptionBudget.
#include "modules/stack/renderer.hpp"

#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <map>

namespace nodectl::stack::detail {

void Renderer::service(const std::string& name, const std::string& component, int port, const char* target,
                       bool headless) {
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

std::vector<std::string> exported_components(const Site& site) {
    if (!site.monitored) {
        return {};
    }
    std::vector<std::string> out{"mariadb-master"};
    if (site.mariadb_replicas > 0) {
        out.push_back("mariadb-replica");
    }
    for (const char* c : {"redis", "varnish", "magento"}) {
        out.push_back(c);
    }
    return out;
}

void Renderer::services() {
    service("mariadb-master", "mariadb-master", k_mysql_port, "mysql", true);
    if (site.mariadb_replicas > 0) {
        service("mariadb-replica", "mariadb-replica", k_mysql_port, "mysql", true);
    }
    service("redis", "redis", k_redis_port, "redis", false);
    service("varnish", "varnish", 80, "http", false);
    service("magento", "magento", k_apache_port, "http", false);
    // The cron StatefulSet's governing Service: headless, no port (nothing connects to the cron).
    J cron = object("v1", "Service", "magento-cron", "magento-cron");
    cron["spec"] = J{{"clusterIP", "None"}, {"selector", selector("magento-cron")}};
    emit(cron);
    const std::map<std::string, int> exporter_ports = {{"mariadb-master", k_mysqld_exporter_port},
                                                       {"mariadb-replica", k_mysqld_exporter_port},
                                                       {"redis", k_redis_exporter_port},
                                                       {"varnish", k_varnish_exporter_port},
                                                       {"magento", k_apache_exporter_port}};
    for (const auto& component : exported_components(site)) {
        service(component + "-metrics", component, exporter_ports.at(component), "metrics", true);
    }
}

long Renderer::memory_limit_mib(const std::string& component) {
    const std::string& q = site.resources.at(component).memory_limit;
    // The key table admits only digits then Ki, Mi, Gi or Ti. At most 2^40 units: any of them in MiB fits a long.
    auto n = q.size() > 2 ? util::parse_uint(std::string_view(q).substr(0, q.size() - 2), {.max = 1ull << 40})
                          : std::nullopt;
    if (!n) {
        std::string problem = "site " + site.name + ": resources." + component + ".memory_limit \"" + q +
                              "\" is not a size nodectl can count";
        if (std::find(problems.begin(), problems.end(), problem) == problems.end()) {  // once, not per replica set
            problems.push_back(std::move(problem));
        }
        return 0;
    }
    long v = static_cast<long>(*n);
    if (q.ends_with("Ki")) return std::max(1L, v / 1024);
    if (q.ends_with("Gi")) return v * 1024;
    if (q.ends_with("Ti")) return v * 1024 * 1024;
    return v;
}

J Renderer::exporter(const std::string& image, int port_number, J env_list, J mounts) const {
    mounts.push_back(mount("exporter-run", "/run/exporter"));
    return J{
        {"name", "exporter"},
        {"image", image},
        {"imagePullPolicy", site.images.pull_policy},
        {"env", std::move(env_list)},
        {"ports", J::array({port("metrics", port_number)})},
        {"resources", resources("exporter")},
        {"readinessProbe", tcp_probe("metrics", 10, 3)},
        // Starts as root to read its password file and write its configuration, then drops
        // to its own user (images/*-exporter).
        {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
        {"volumeMounts", std::move(mounts)}};
}

void Renderer::add_exporter_secret(J& container, const char* env_name, const char* key) {
    container["env"].push_back(env(env_name, std::string(k_exporter_secrets) + "/" + key));
    container["volumeMounts"].push_back(mount("exporter-secret", k_exporter_secrets, true));
}

// The exporter's scratch volume and, with `key`, the Secret "exporters" key its service reads.
J Renderer::exporter_volumes(const char* key) const {
    J v = J::array({empty_dir("exporter-run", "16Mi")});
    if (key) {
        v.push_back(secret_volume("exporter-secret", "exporters", {key}));
    }
    return v;
}

J Renderer::mariadb_container(bool master) {
    J env_list = J::array();
    if (master) {
        env_list.push_back(env("MYSQL_SERVER_ID", "1"));
        env_list.push_back(env("MYSQL_DATABASE", site.database));
        env_list.push_back(env("MYSQL_USER", site.database_user));
        env_list.push_back(env("MYSQL_PASSWORD_FILE", "/run/secrets/db/password"));
    } else {
        env_list.push_back(
            J{{"name", "POD_INDEX"},
              {"valueFrom", J{{"fieldRef", J{{"fieldPath", "metadata.labels['apps.kubernetes.io/pod-index']"}}}}}});
        env_list.push_back(env("MYSQL_MASTER_HOST", "mariadb-master"));
        env_list.push_back(env("MYSQL_MASTER_PORT", std::to_string(k_mysql_port)));
    }
    env_list.push_back(env("MYSQL_REPLICATION_PASSWORD_FILE", "/run/secrets/db/replication-password"));
    // Half the memory limit for InnoDB's buffer pool leaves room for connections and sorts.
    env_list.push_back(env("MYSQL_INNODB_BUFFER_POOL_SIZE", std::to_string(memory_limit_mib("mariadb") / 2) + "M"));
    J c = J{{"name", "mariadb"},
            {"image", master ? site.images.mariadb_master : site.images.mariadb_replica},
            {"imagePullPolicy", site.images.pull_policy}};
    if (!master) {
        // Each replica needs its own server id: 100 + the StatefulSet's pod index. ($$ is a
        // literal $ for Kubernetes' own $(VAR) expansion.)
        c["command"] = J::array(
            {"/usr/bin/tini", "--", "/bin/sh", "-c",
             "export MYSQL_SERVER_ID=$$((100 + POD_INDEX)) && exec /usr/local/bin/docker-entrypoint.sh mariadbd"});
    }
    c["env"] = std::move(env_list);
    c["ports"] = J::array({port("mysql", k_mysql_port)});
    c["resources"] = resources("mariadb");
    // A first start initialises the datadir (a replica first waits for its master).
    c["startupProbe"] = tcp_probe("mysql", 5, 120);
    c["readinessProbe"] = tcp_probe("mysql", 10, 3);
    c["livenessProbe"] = tcp_probe("mysql", 20, 6);
    // KILL: the entrypoint (root) checks its temporary server (user mysql) with kill -0, and tini
    // (root) forwards SIGTERM to mariadbd (user mysql): without it a stop is a SIGKILL.
    c["securityContext"] = security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false);
    c["volumeMounts"] = J::array({mount("data", "/var/lib/mysql"), mount("run", "/run/mysqld"), mount("tmp", "/tmp"),
                                  mount("db-secret", "/run/secrets/db", true)});
    return c;
}

void Renderer::stateful_set(bool master) {
    const std::string name = master ? "mariadb-master" : "mariadb-replica";
    J volumes = J::array({empty_dir("run"), empty_dir("tmp", "1Gi"),
                          secret_volume("db-secret", "db",
                                        master ? std::vector<std::string>{"password", "replication-password"}
                                               : std::vector<std::string>{"replication-password"})});
    J claim =
        J{{"metadata", J{{"name", "data"}, {"labels", labels(name)}}},
          {"spec",
           J{{"accessModes", J::array({"ReadWriteOnce"})},
             {"storageClassName", "local-path"},
             {"resources", J{{"requests", J{{"storage", master ? site.storage_mariadb : site.storage_replica}}}}}}}};
    J containers = J::array({mariadb_container(master)});
    if (site.monitored) {
        add_exporter_secret(containers[0], "MYSQL_EXPORTER_PASSWORD_FILE", "mariadb-password");
        J e = J::array({env("MYSQLD_EXPORTER_PASSWORD_FILE", std::string(k_exporter_secrets) + "/mariadb-password")});
        containers.push_back(exporter(site.images.mysqld_exporter, k_mysqld_exporter_port, std::move(e),
                                      J::array({mount("exporter-secret", k_exporter_secrets, true)})));
        for (auto& v : exporter_volumes("mariadb-password")) {
            volumes.push_back(v);
        }
    }
    J pod = pod_spec(std::move(containers), std::move(volumes));
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

J Renderer::deployment(const std::string& name, int replicas, J pod, bool recreate) const {
    J d = object("apps/v1", "Deployment", name, name);
    J spec = J{{"replicas", replicas}, {"selector", J{{"matchLabels", selector(name)}}}};
    if (recreate) {
        spec["strategy"] = J{{"type", "Recreate"}};
    }
    spec["template"] = pod_template(name, std::move(pod));
    d["spec"] = std::move(spec);
    return d;
}

void Renderer::redis() {
    J c = J{{"name", "redis"},
            {"image", site.images.redis},
            {"imagePullPolicy", site.images.pull_policy},
            {"env", J::array({env("REDIS_PASSWORD_FILE", "/run/secrets/redis/password"),
                              // Sessions and cache only, in an emptyDir: no persistence to disk.
                              env("REDIS_PERSISTENCE", "none"),
                              env("REDIS_MAXMEMORY", std::to_string(memory_limit_mib("redis") * 3 / 4) + "mb")})},
            {"ports", J::array({port("redis", k_redis_port)})},
            {"resources", resources("redis")},
            {"readinessProbe", tcp_probe("redis", 10, 3)},
            {"livenessProbe", tcp_probe("redis", 20, 6)},
            // FOWNER: the entrypoint chmods /run/redis after giving it to redis; KILL: tini (root)
            // forwards SIGTERM to redis-server (user redis). Both seen missing under containerd.
            {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
            {"volumeMounts", J::array({mount("data", "/data"), mount("run", "/run/redis"),
                                       mount("redis-secret", "/run/secrets/redis", true)})}};
    J volumes =
        J::array({empty_dir("data", "1Gi"), empty_dir("run"), secret_volume("redis-secret", "redis", {"password"})});
    J containers = J::array({c});
    if (site.monitored) {
        add_exporter_secret(containers[0], "REDIS_EXPORTER_PASSWORD_FILE", "redis-password");
        J e = J::array({env("REDIS_EXPORTER_ADDR", "redis://127.0.0.1:" + std::to_string(k_redis_port)),
                        env("REDIS_EXPORTER_PASSWORD_FILE", std::string(k_exporter_secrets) + "/redis-password")});
        containers.push_back(exporter(site.images.redis_exporter, k_redis_exporter_port, std::move(e),
                                      J::array({mount("exporter-secret", k_exporter_secrets, true)})));
        for (auto& v : exporter_volumes("redis-password")) {
            volumes.push_back(v);
        }
    }
    emit(deployment("redis", 1, pod_spec(std::move(containers), std::move(volumes)), true));
}

void Renderer::varnish() {
    J c = J{{"name", "varnish"},
            {"image", site.images.varnish},
            {"imagePullPolicy", site.images.pull_policy},
            {"env", J::array({env("VARNISH_BACKEND_HOST", "magento"),
                              env("VARNISH_BACKEND_PORT", std::to_string(k_apache_port)),
                              env("VARNISH_PURGE_ACL", util::join(site.purge_acl, " ")),
                              env("VARNISH_PORT", std::to_string(k_varnish_port)),
                              env("VARNISH_STORAGE_SIZE", std::to_string(memory_limit_mib("varnish") / 2) + "m")})},
            {"ports", J::array({port("http", k_varnish_port)})},
            {"resources", resources("varnish")},
            {"readinessProbe", tcp_probe("http", 10, 3)},
            {"livenessProbe", tcp_probe("http", 20, 6)},
            {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, true, false)},
            {"volumeMounts",
             J::array({mount("run", "/run/varnish"), mount("work", "/var/lib/varnish"), mount("tmp", "/tmp")})}};
    J volumes = J::array({empty_dir("run"), empty_dir("work", "256Mi"), empty_dir("tmp")});
    J containers = J::array({c});
    if (site.monitored) {
        // varnishstat reads varnishd's shared memory log from its working directory.
        containers.push_back(exporter(site.images.varnish_exporter, k_varnish_exporter_port, J::array(),
                                      J::array({mount("work", "/var/lib/varnish", true)})));
        volumes.push_back(exporter_volumes(nullptr)[0]);
    }
    emit(deployment("varnish", site.varnish_replicas, pod_spec(std::move(containers), std::move(volumes)), false));
}

J Renderer::magento_env() const {
    return J::array({env("MAGENTO_DB_PASSWORD_FILE", "/run/secrets/db/password"),
                     env("MAGENTO_REDIS_PASSWORD_FILE", "/run/secrets/redis/password"),
                     env("MAGENTO_CRYPT_KEY_FILE", "/run/secrets/magento/crypt-key")});
}

J Renderer::magento_mounts() const {
    return J::array({mount("media", "/var/www/html/pub/media"), mount("db-secret", "/run/secrets/db", true),
                     mount("redis-secret", "/run/secrets/redis", true),
                     mount("magento-secret", "/run/secrets/magento", true)});
}

J Renderer::magento_volumes() const {
    J media = site.media_host_path.empty()
                  ? empty_dir("media", "10Gi")
                  : J{{"name", "media"}, {"hostPath", J{{"path", site.media_host_path}, {"type", "Directory"}}}};
    return J::array({media, secret_volume("db-secret", "db", {"password"}),
                     secret_volume("redis-secret", "redis", {"password"}),
                     secret_volume("magento-secret", "magento", {"crypt-key"})});
}

void Renderer::magento() {
    J c =
        J{{"name", "magento"},
          {"image", site.images.magento},
          {"imagePullPolicy", site.images.pull_policy},
          {"envFrom", J::array({J{{"configMapRef", J{{"name", "magento"}}}}})},
          {"env", magento_env()},
          {"ports", J::array({port("http", k_apache_port)})},
          {"resources", resources("magento")},
          // Up to 15 minutes for a first start (setup, caches); then the usual probes.
          {"startupProbe", http_probe("/health_check.php", "http", 10, 90)},
          {"readinessProbe", http_probe("/health_check.php", "http", 10, 3)},
          // Liveness asks only whether Apache answers: a database outage must not restart every pod.
          {"livenessProbe", tcp_probe("http", 20, 6)},
          {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, false, false)},
          {"volumeMounts", magento_mounts()}};
    J containers = J::array({c});
    J volumes = magento_volumes();
    if (site.monitored) {
        // Apache's /server-status answers local connections only: the sidecar shares the pod's network.
        J e = J::array({env("APACHE_EXPORTER_SCRAPE_URI",
                            "http://127.0.0.1:" + std::to_string(k_apache_port) + "/server-status?auto")});
        containers.push_back(exporter(site.images.apache_exporter, k_apache_exporter_port, std::move(e), J::array()));
        volumes.push_back(exporter_volumes(nullptr)[0]);
    }
    emit(deployment("magento", site.hpa_min, pod_spec(std::move(containers), std::move(volumes)), false));

    J hpa = object("autoscaling/v2", "HorizontalPodAutoscaler", "magento", "magento");
    hpa["spec"] =
        J{{"scaleTargetRef", J{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "magento"}}},
          {"minReplicas", site.hpa_min},
          {"maxReplicas", site.hpa_max},
          {"metrics", J::array({J{{"type", "Resource"},
                                  {"resource", J{{"name", "cpu"},
                                                 {"target", J{{"type", "Utilization"},
                                                              {"averageUtilization", site.cpu_percent}}}}}}})}};
    emit(hpa);
    J pdb = object("policy/v1", "PodDisruptionBudget", "magento", "magento");
    pdb["spec"] = J{{"maxUnavailable", 1}, {"selector", J{{"matchLabels", selector("magento")}}}};
    emit(pdb);
}

}  // namespace nodectl::stack::detail

namespace nodectl::stack::detail {

// Magento's cron: `bin/magento cron:run` once a minute, in one pod that cannot run twice. A
// StatefulSet of one replica, not a Deployment or a CronJob: its controller creates the pod
// again only once the old one is confirmed gone (also on a node that stopped answering, where a
// Deployment's ReplicaSet would start a second pod after the eviction timeout), and an update
// deletes the pod before creating its successor. The loop finishes the run in progress on
// SIGTERM (tini forwards it to the shell only), then exits.
void Renderer::magento_cron() {
    J env_list = magento_env();
    // Reads and writes on the master only: the cron's NetworkPolicy opens no path to the replicas.
    env_list.push_back(env("MAGENTO_DB_REPLICA_HOST", ""));
    J c =
        J{{"name", "cron"},
          {"image", site.images.magento},
          {"imagePullPolicy", site.images.pull_policy},
          {"args", J::array({"/bin/sh", "-c", k_cron_loop})},
          {"envFrom", J::array({J{{"configMapRef", J{{"name", "magento"}}}}})},
          {"env", std::move(env_list)},
          {"resources", resources("cron")},
          // The entrypoint writes app/etc/env.php as root (root stays writable), then setpriv to
          // www-data. KILL: tini (root) forwards SIGTERM to the www-data loop; without it tini
          // fails with EPERM and the stop becomes a SIGKILL in the middle of a run.
          {"securityContext", security({"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}, false, false)},
          {"volumeMounts", magento_mounts()}};
    J pod = pod_spec(J::array({c}), magento_volumes());
    pod["terminationGracePeriodSeconds"] = k_cron_grace_seconds;
    J s = object("apps/v1", "StatefulSet", "magento-cron", "magento-cron");
    s["spec"] = J{{"serviceName", "magento-cron"},
                  {"replicas", 1},
                  {"podManagementPolicy", "OrderedReady"},
                  {"updateStrategy", J{{"type", "RollingUpdate"}}},
                  {"selector", J{{"matchLabels", selector("magento-cron")}}},
                  {"template", pod_template("magento-cron", std::move(pod))}};
    emit(s);
}

}  // namespace nodectl::stack::detail

// stack: the Magento stack on k3s. A profile's [[stack.sites]] become, per site, one multi-document
// YAML file of Kubernetes v1.32 objects (namespace, secrets, MariaDB master and replicas, Redis,
// Varnish, Magento with its autoscaler, ingress, network policies, backup CronJob). docs/stack.md
// says what is rendered and what is verified where.
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/module.hpp"
#include "nodectl/result.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::stack {

struct Resources {
    std::string cpu_request, memory_request, cpu_limit, memory_limit;
};

struct Images {
    std::string magento, varnish, redis, mariadb_master, mariadb_replica, backup;
    std::string mysqld_exporter, redis_exporter, varnish_exporter, apache_exporter;  // with [stack.monitoring]
    std::string pull_policy;
    std::string digests_from;  // `nodectl image build --out` directory, absolute ("" : none)
};

// Each reference without a digest that DIR/*/index.json (the OCI layouts `nodectl image build
// --out DIR` writes) names gets "@sha256:..." of that manifest. An unreadable DIR or a malformed
// index is an error; a reference DIR does not hold stays as it is (see unpinned_images).
Result<void> pin_images(const std::vector<std::string*>& refs, const std::string& digests_from);

struct BackupSettings {
    bool enabled = true;
    std::string schedule, endpoint, region, bucket, prefix;
    int port = 443;
    bool path_style = false;
    int keep_last = 14;
    std::optional<SecretRef> credentials;
};

// The namespace's ResourceQuota and LimitRange: "" (or 0 pods) is not set; neither object is
// rendered when none of its values is set.
struct Quota {
    std::string requests_cpu, requests_memory, limits_cpu, limits_memory, requests_storage;
    int pods = 0;
    bool set() const {
        return pods > 0 || !(requests_cpu + requests_memory + limits_cpu + limits_memory + requests_storage).empty();
    }
};

struct LimitRange {
    std::string default_cpu_request, default_memory_request, default_cpu_limit, default_memory_limit, max_cpu,
        max_memory;
    bool set() const {
        return !(default_cpu_request + default_memory_request + default_cpu_limit + default_memory_limit + max_cpu +
                 max_memory)
                    .empty();
    }
};

// The value of a Kubernetes quantity the key table accepted ("500m" = 0.5, "2Gi" = 2^31), or
// nullopt for anything else.
std::optional<long double> quantity_value(const std::string& q);

struct Site {
    std::string name;  // the namespace
    std::vector<std::string> hosts;
    std::string database, database_user;
    std::vector<std::string> purge_acl;
    std::string tls_cert_file;  // "" : self-signed
    std::optional<SecretRef> tls_key;
    Images images;
    int varnish_replicas = 1;
    int mariadb_replicas = 1;
    int hpa_min = 2, hpa_max = 6, cpu_percent = 70;
    std::map<std::string, Resources> resources;  // magento, varnish, redis, mariadb, backup, cron
    Quota quota;
    LimitRange limit_range;
    std::string storage_mariadb, storage_replica;
    std::string media_host_path;  // "" : emptyDir
    std::string search_endpoint;
    std::optional<SecretRef> db_password, replication_password, redis_password, crypt_key;
    BackupSettings backup;
    // [stack.monitoring] enabled: exporter sidecars, their users' passwords, and Prometheus let in.
    bool monitored = false;
    std::optional<SecretRef> exporter_db_password, exporter_redis_password;
};

// [stack.monitoring]: one Prometheus and Alertmanager for every site, in namespace k_monitoring.
constexpr const char* k_monitoring = "monitoring";
struct Monitoring {
    bool enabled = false;
    std::string scrape_interval, retention, storage;
    std::vector<std::string> node_targets;  // HOST:PORT of the nodes' node exporters (job "node")
    std::string cluster_domain;  // the cluster's DNS domain (k3s: cluster.local)
    std::string prometheus_image, alertmanager_image, blackbox_image, pull_policy;
    int tls_probe_port = 443;
    std::optional<SecretRef> webhook_url;
    int webhook_port = 443;
    std::string group_wait, group_interval;
    std::vector<std::string> email_to;
    std::string email_from, smarthost, smtp_username;
    std::optional<SecretRef> smtp_password;
    std::string prometheus_host, alertmanager_host, tls_cert_file;
    std::optional<SecretRef> tls_key, basic_auth;
    bool exposed() const { return !prometheus_host.empty() || !alertmanager_host.empty(); }
};

// [stack.monitoring] of a loaded profile, its rules checked ("file:line:col: reason" each).
Result<Monitoring> monitoring_from(const Profile& profile);

// The sites of a loaded profile, with the rules that tie keys together checked (required keys,
// unique names, min <= max, the media path is an s3fs mount of the same profile). All problems at
// once, each as "file:line:col: reason".
Result<std::vector<Site>> sites_from(const Profile& profile);

// The site's image references that carry no digest (each once), in the order of Images.
std::vector<std::string> unpinned_images(const Site& site);

// Where the values of the rendered Secrets come from.
enum class SecretValues {
    placeholders,  // every value is k_placeholder, and the Secret says so in an annotation
    resolve,  // read from the secret references; a missing one is an error
};

constexpr const char* k_placeholder = "NODECTL-PLACEHOLDER-NOT-A-SECRET";
constexpr const char* k_placeholder_annotation = "nodectl.io/placeholder-values";

// Secret values that do not come from the site's references: generated once on the server node
// and kept there (see delivery_group). Keys: "secrets.db_password", "secrets.replication_password",
// "secrets.redis_password", "secrets.crypt_key", "tls.crt", "tls.key".
using NodeSecrets = std::map<std::string, std::string>;

// The site's objects as one multi-document YAML stream (each document JSON, which is YAML),
// in a fixed order with fixed key order: the same inputs give the same bytes. With
// SecretValues::resolve, a value in `node` wins over a missing reference.
Result<std::string> render_site(const Site& site, SecretValues values, const NodeSecrets& node = {});

// The monitoring namespace's objects (Prometheus with Kubernetes service discovery of every site's
// exporters and the nodes' node exporters, nodectl's alert rules, Alertmanager, their
// NetworkPolicies and, when a host is set, Ingress with basic authentication) as one YAML stream.
Result<std::string> render_monitoring(const Monitoring& m, const std::vector<Site>& sites, SecretValues values);

// The TOML profile the backup CronJob's `nodectl backup run` reads (in a ConfigMap).
std::string backup_profile(const Site& site);

// --- delivery to a k3s server node (`nodectl apply`) ----------------------------------------------

constexpr const char* k_manifests_dir = "/var/lib/rancher/k3s/server/manifests";  // k3s's deploy controller reads it
constexpr const char* k_state_dir = "/var/lib/nodectl/stack";  // SITE/NAME: values generated on the node (0600)
constexpr const char* k_delivered = "/var/lib/nodectl/stack/delivered";  // the sites whose manifest nodectl wrote

// /var/lib/rancher/k3s/server/manifests/nodectl-stack-SITE.yaml
std::string manifest_path(const std::string& site);
// What replaces the manifest of a site that left the profile: no object at all, so that k3s's deploy
// controller deletes every object it applied from the file (deleting the file would leave them).
std::string removed_manifest(const std::string& site);
// The manifest with every Secret value replaced by "(hidden)": what plans show.
std::string masked_manifest(const std::string& content);

// The step that writes each site's manifest (and, with monitoring enabled, nodectl-stack-monitoring.yaml) (0600 root, atomically) on the server node, generates
// the secrets no reference gives once (kept under k_state_dir), and empties the manifests of the
// sites that left the profile. `root` prefixes every path (unit tests); "" on a node.
std::unique_ptr<Step> make_delivery_step(std::vector<Site> sites, Monitoring monitoring = {},
                                         const std::string& root = "");
// [stack] of a profile applied to a k3s server node (and a k3s server's leftovers once [stack] is gone).
Result<StepList> steps(const ModuleContext& ctx);

// A self-signed certificate for `hosts` (the first is the subject) and its key, PEM.
struct TlsPair {
    std::string cert_pem, key_pem;
};
Result<TlsPair> make_self_signed(const std::vector<std::string>& hosts, int days = 825);
// Both PEMs parse (each at most 64 KiB) and the key is the certificate's.
bool tls_pair_valid(const TlsPair& pair);

}  // namespace nodectl::stack

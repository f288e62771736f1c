// stack: the Magento stack on k3s. A profile's [[stack.sites]] become, per site, one multi-document
// YAML file of Kubernetes v1.32 objects (namespace, secrets, MariaDB master and replicas, Redis,
// Varnish, Magento with its autoscaler, ingress, network policies, backup CronJob). docs/stack.md
// says what is rendered and what is verified where.
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/result.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::stack {

struct Resources {
    std::string cpu_request, memory_request, cpu_limit, memory_limit;
};

struct Images {
    std::string magento, varnish, redis, mariadb_master, mariadb_replica, backup;
    std::string pull_policy;
};

struct BackupSettings {
    bool enabled = true;
    std::string schedule, endpoint, region, bucket, prefix;
    int port = 443;
    bool path_style = false;
    int keep_last = 14;
    std::optional<SecretRef> credentials;
};

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
    std::map<std::string, Resources> resources;  // magento, varnish, redis, mariadb, backup
    std::string storage_mariadb, storage_replica;
    std::string media_host_path;  // "" : emptyDir
    std::string search_endpoint;
    std::optional<SecretRef> db_password, replication_password, redis_password, crypt_key;
    BackupSettings backup;
};

// The sites of a loaded profile, with the rules that tie keys together checked (required keys,
// unique names, min <= max, the media path is an s3fs mount of the same profile). All problems at
// once, each as "file:line:col: reason".
Result<std::vector<Site>> sites_from(const Profile& profile);

// Where the values of the rendered Secrets come from.
enum class SecretValues {
    placeholders,  // every value is k_placeholder, and the Secret says so in an annotation
    resolve,       // read from the secret references; a missing one is an error
};

constexpr const char* k_placeholder = "NODECTL-PLACEHOLDER-NOT-A-SECRET";
constexpr const char* k_placeholder_annotation = "nodectl.io/placeholder-values";

// The site's objects as one multi-document YAML stream (each document JSON, which is YAML),
// in a fixed order with fixed key order: the same inputs give the same bytes.
Result<std::string> render_site(const Site& site, SecretValues values);

// The TOML profile the backup CronJob's `nodectl backup run` reads (in a ConfigMap).
std::string backup_profile(const Site& site);

} // namespace nodectl::stack

// A site's Secrets (values from the secret references, or placeholders) and ConfigMaps.
#include "modules/stack/renderer.hpp"

#include "util/file.hpp"

#include <cerrno>
#include <cstring>

namespace nodectl::stack::detail {

std::string Renderer::secret_value(const std::optional<SecretRef>& ref, const std::string& what) {
    if (values == SecretValues::placeholders) {
        return k_placeholder;
    }
    if (!ref) {
        if (auto it = node->find(what); it != node->end()) {
            return it->second;
        }
        problems.push_back(what + ": no secret reference; `nodectl apply` generates it once on the k3s server node "
                                  "(`stack render --out` needs a reference, or --placeholders)");
        return "";
    }
    auto v = resolve_secret(*ref);
    if (!v) {
        problems.push_back(what + ": " + v.error().message);
        return "";
    }
    return v->reveal();
}

J Renderer::secret(const std::string& name, const char* type, J string_data) const {
    J s = object("v1", "Secret", name, part_of);
    if (values == SecretValues::placeholders) {
        s["metadata"]["annotations"] =
            J{{k_placeholder_annotation,
               "true: rendered without the secret values; `nodectl stack render --out DIR` reads them"}};
    }
    s["type"] = type;
    s["stringData"] = std::move(string_data);
    return s;
}

std::string Renderer::tls_certificate() {
    if (values == SecretValues::placeholders) {
        return k_placeholder;
    }
    if (site.tls_cert_file.empty()) {
        if (auto it = node->find("tls.crt"); it != node->end()) {
            return it->second;
        }
        problems.push_back("site " + site.name +
                           ": tls is self-signed; the pair is made once on the k3s server node by `nodectl apply`: "
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

void Renderer::secrets() {
    emit(secret("db", "Opaque",
                J{{"password", secret_value(site.db_password, "secrets.db_password")},
                  {"replication-password", secret_value(site.replication_password, "secrets.replication_password")}}));
    emit(secret("redis", "Opaque", J{{"password", secret_value(site.redis_password, "secrets.redis_password")}}));
    emit(secret("magento", "Opaque", J{{"crypt-key", secret_value(site.crypt_key, "secrets.crypt_key")}}));
    if (site.monitored) {
        emit(secret(
            "exporters", "Opaque",
            J{{"mariadb-password", secret_value(site.exporter_db_password, "secrets.exporter_db_password")},
              {"redis-password", secret_value(site.exporter_redis_password, "secrets.exporter_redis_password")}}));
    }
    if (site.backup.enabled) {
        emit(secret("backup", "Opaque",
                    J{{"s3-credentials", secret_value(site.backup.credentials, "backup.credentials")}}));
    }
    std::string key;
    if (values == SecretValues::placeholders) {
        key = k_placeholder;
    } else if (site.tls_cert_file.empty()) {
        auto it = node->find("tls.key");  // missing: tls_certificate() says why
        key = it == node->end() ? std::string() : it->second;
    } else {
        key = secret_value(site.tls_key, "tls.key");
    }
    J tls = secret("tls", "kubernetes.io/tls", J{{"tls.crt", tls_certificate()}, {"tls.key", key}});
    if (site.tls_cert_file.empty()) {
        tls["metadata"]["annotations"]["nodectl.io/self-signed"] =
            "true: no tls.cert_file in the profile; the pair is made once on the k3s server node by nodectl apply";
    }
    emit(tls);
}

void Renderer::config_maps() {
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

}  // namespace nodectl::stack::detail

// [[stack.sites]] read from a profile, with the rules that span keys.
#include "modules/stack/limits.hpp"
#include "modules/stack/stack.hpp"

#include "util/strings.hpp"

#include <filesystem>
#include <set>

namespace nodectl::stack {

namespace {

const char* const k_components[] = {"magento", "varnish", "redis", "mariadb", "backup", "cron", "exporter"};

struct Reader {
    std::vector<std::string> problems;

    std::optional<SecretRef> required_secret(const ConfigView& v, const std::string& key, const std::string& what) {
        auto ref = v.secret(key);
        if (!ref) {
            problems.push_back(v.where(key) + ": " + what + " needs '" + key +
                               "' = { file = \"PATH\" } or { env = \"VAR\" }");
        }
        return ref;
    }

    // `digests_from` made absolute (relative to the profile's folder, like `extends`) and the
    // references it records pinned.
    void pin(const Profile& profile, const ConfigView& images, std::string& digests_from, const std::string& what,
             const std::vector<std::string*>& refs) {
        if (digests_from.empty()) {
            return;
        }
        if (digests_from.front() != '/' && !profile.files().empty()) {
            auto base = std::filesystem::path(profile.files().back()).parent_path();
            digests_from = (base / digests_from).lexically_normal().string();
        }
        if (auto pinned = pin_images(refs, digests_from); !pinned) {
            problems.push_back(images.where("digests_from") + ": " + what + " " + pinned.error().message);
        }
    }
};

// The `where`s of the profile's s3fs mounts that other users (Magento's www-data) may read.
std::map<std::string, bool> s3fs_mounts(const Profile& profile) {
    std::map<std::string, bool> out;
    for (const auto& m : profile.section("mounts").tables("s3fs")) {
        out[m.str("where")] = m.boolean("allow_other");
    }
    return out;
}

}  // namespace

namespace {

// One [[stack.sites]] table, read part by part; each part adds its problems to the Reader.
struct SiteReader {
    Reader& r;
    const Profile& profile;
    const ConfigView& v;
    Site& s;
    std::string what;

    void images() {
        auto img = v.section("images");
        s.images = {img.str("magento"),         img.str("varnish"),         img.str("redis"),
                    img.str("mariadb_master"),  img.str("mariadb_replica"), img.str("backup"),
                    img.str("mysqld_exporter"), img.str("redis_exporter"),  img.str("varnish_exporter"),
                    img.str("apache_exporter"), img.str("pull_policy"),     img.str("digests_from")};
        auto& i = s.images;
        r.pin(profile, img, i.digests_from, what,
              {&i.magento, &i.varnish, &i.redis, &i.mariadb_master, &i.mariadb_replica, &i.backup, &i.mysqld_exporter,
               &i.redis_exporter, &i.varnish_exporter, &i.apache_exporter});
    }

    void scaling() {
        auto rep = v.section("replicas");
        s.varnish_replicas = static_cast<int>(rep.integer("varnish"));
        s.mariadb_replicas = static_cast<int>(rep.integer("mariadb_replicas"));
        auto hpa = v.section("autoscaling");
        s.hpa_min = static_cast<int>(hpa.integer("min"));
        s.hpa_max = static_cast<int>(hpa.integer("max"));
        s.cpu_percent = static_cast<int>(hpa.integer("cpu_percent"));
        if (s.hpa_min > s.hpa_max) {
            r.problems.push_back(hpa.where("min") + ": " + what + " autoscaling.min (" + std::to_string(s.hpa_min) +
                                 ") is larger than autoscaling.max (" + std::to_string(s.hpa_max) + ")");
        }
    }

    void resources() {
        auto res = v.section("resources");
        for (const char* c : k_components) {
            auto rc = res.section(c);
            s.resources[c] = {rc.str("cpu_request"), rc.str("memory_request"), rc.str("cpu_limit"),
                              rc.str("memory_limit")};
        }
        auto quota = v.section("quota");
        s.quota = {quota.str("requests_cpu"),  quota.str("requests_memory"),  quota.str("limits_cpu"),
                   quota.str("limits_memory"), quota.str("requests_storage"), static_cast<int>(quota.integer("pods"))};
        auto lr = v.section("limit_range");
        s.limit_range = {lr.str("default_cpu_request"),
                         lr.str("default_memory_request"),
                         lr.str("default_cpu_limit"),
                         lr.str("default_memory_limit"),
                         lr.str("max_cpu"),
                         lr.str("max_memory")};
        auto storage = v.section("storage");
        s.storage_mariadb = storage.str("mariadb");
        s.storage_replica = storage.str("mariadb_replica");
    }

    // Requests and limits against the quota and the limit range (after every part is read).
    void limits() {
        for (auto& p : detail::limit_problems(s, v.section("quota"), v.section("limit_range"))) {
            r.problems.push_back(std::move(p));
        }
    }

    // pub/media shared by the Magento pods: an s3fs mount of this profile, readable by www-data.
    void media(const std::map<std::string, bool>& mounts) {
        s.media_host_path = v.str("media_host_path");
        if (!s.media_host_path.empty() && !mounts.empty()) {
            // A profile that mounts s3fs itself must mount the media path; a stack profile that
            // leaves the nodes' mounts to their own profile is taken at its word.
            auto m = mounts.find(s.media_host_path);
            if (m == mounts.end()) {
                r.problems.push_back(v.where("media_host_path") + ": " + what + " media_host_path " +
                                     s.media_host_path + " is not the 'where' of a [[mounts.s3fs]] in this profile");
            } else if (!m->second) {
                r.problems.push_back(v.where("media_host_path") + ": " + what + " media_host_path " +
                                     s.media_host_path +
                                     ": its [[mounts.s3fs]] needs allow_other = true (Apache runs as www-data)");
            }
        } else if (s.media_host_path.empty() && s.hpa_max > 1) {
            r.problems.push_back(
                v.where("media_host_path") + ": " + what +
                " with more than one Magento pod (autoscaling.max > 1) needs media_host_path: pods would not share pub/media");
        }
    }

    // Not given: generated once on the k3s server node by `nodectl apply` (deliver.cpp).
    void secrets() {
        auto sec = v.section("secrets");
        s.db_password = sec.secret("db_password");
        s.replication_password = sec.secret("replication_password");
        s.redis_password = sec.secret("redis_password");
        s.crypt_key = sec.secret("crypt_key");
        s.exporter_db_password = sec.secret("exporter_db_password");
        s.exporter_redis_password = sec.secret("exporter_redis_password");
    }

    void backup() {
        auto b = v.section("backup");
        s.backup.enabled = b.boolean("enabled");
        s.backup.schedule = b.str("schedule");
        s.backup.endpoint = b.str("endpoint");
        s.backup.port = static_cast<int>(b.integer("port"));
        s.backup.region = b.str("region");
        s.backup.bucket = b.str("bucket");
        s.backup.prefix = b.str("prefix");
        s.backup.path_style = b.boolean("path_style");
        s.backup.keep_last = static_cast<int>(b.integer("keep_last"));
        s.backup.credentials = b.secret("credentials");
        if (s.backup.enabled) {
            for (const char* key : {"endpoint", "bucket"}) {
                if (b.str(key).empty()) {
                    r.problems.push_back(b.where(key) + ": " + what + " backup needs '" + key +
                                         "' (or enabled = false)");
                }
            }
            r.required_secret(b, "credentials", what + " backup");
        }
    }
};

}  // namespace

Result<std::vector<Site>> sites_from(const Profile& profile) {
    Reader r;
    std::vector<Site> sites;
    std::set<std::string> names;
    auto mounts = s3fs_mounts(profile);
    const bool monitored = profile.section("stack").section("monitoring").boolean("enabled");
    for (const auto& v : profile.section("stack").tables("sites")) {
        Site s;
        s.name = v.str("name");
        s.monitored = monitored;
        SiteReader site{r, profile, v, s, "[[stack.sites]] '" + s.name + "'"};
        const std::string& what = site.what;
        if (s.name.empty()) {
            r.problems.push_back(v.where() + ": [[stack.sites]] needs 'name' (its namespace)");
        } else if (!names.insert(s.name).second) {
            r.problems.push_back(v.where("name") + ": site '" + s.name + "' is defined twice");
        } else if (s.name == k_monitoring) {
            r.problems.push_back(v.where("name") + ": site '" + s.name + "': the namespace '" + k_monitoring +
                                 "' (and its manifest) belong to [stack.monitoring]; give the site another name");
        }
        s.hosts = v.strings("hosts");
        if (s.hosts.empty()) {
            r.problems.push_back(v.where("hosts") + ": " + what + " needs 'hosts' (the names the Ingress serves)");
        }
        s.database = v.str("database");
        s.database_user = v.str("database_user");
        s.purge_acl = v.strings("purge_acl");
        if (s.purge_acl.empty()) {
            r.problems.push_back(v.where("purge_acl") + ": " + what + " needs at least one network in 'purge_acl'");
        }
        auto tls = v.section("tls");
        s.tls_cert_file = tls.str("cert_file");
        s.tls_key = tls.secret("key");
        if (s.tls_cert_file.empty() != !s.tls_key) {
            r.problems.push_back(tls.where() + ": " + what +
                                 " tls needs both 'cert_file' and 'key', or neither (self-signed)");
        }
        site.images();
        site.scaling();
        site.resources();
        site.media(mounts);
        s.search_endpoint = v.str("search_endpoint");
        if (s.search_endpoint.empty()) {
            r.problems.push_back(
                v.where("search_endpoint") + ": " + what +
                " needs 'search_endpoint' (Magento 2.4 needs OpenSearch or Elasticsearch; nodectl builds no search image)");
        }
        site.secrets();
        site.backup();
        site.limits();
        sites.push_back(std::move(s));
    }
    if (!r.problems.empty()) {
        return make_error(ErrorCode::config, util::join(r.problems, "\n"));
    }
    return sites;
}

Result<Monitoring> monitoring_from(const Profile& profile) {
    Reader r;
    Monitoring m;
    auto v = profile.section("stack").section("monitoring");
    m.enabled = v.boolean("enabled");
    m.scrape_interval = v.str("scrape_interval");
    m.retention = v.str("retention");
    m.storage = v.str("storage");
    m.node_targets = v.strings("node_targets");
    m.cluster_domain = v.str("cluster_domain");
    auto img = v.section("images");
    m.prometheus_image = img.str("prometheus");
    m.alertmanager_image = img.str("alertmanager");
    m.blackbox_image = img.str("blackbox_exporter");
    m.pull_policy = img.str("pull_policy");
    std::string digests_from = img.str("digests_from");
    const std::string what = "[stack.monitoring]";
    r.pin(profile, img, digests_from, what, {&m.prometheus_image, &m.alertmanager_image, &m.blackbox_image});
    m.tls_probe_port = static_cast<int>(v.integer("tls_probe_port"));
    auto a = v.section("alerts");
    m.webhook_url = a.secret("webhook_url");
    m.webhook_port = static_cast<int>(a.integer("webhook_port"));
    m.group_wait = a.str("group_wait");
    m.group_interval = a.str("group_interval");
    m.email_to = a.strings("email_to");
    m.email_from = a.str("email_from");
    m.smarthost = a.str("smarthost");
    m.smtp_username = a.str("smtp_username");
    m.smtp_password = a.secret("smtp_password");
    if (!m.email_to.empty()) {
        for (const char* key : {"email_from", "smarthost"}) {
            if (a.str(key).empty()) {
                r.problems.push_back(a.where(key) + ": " + what + " alerts.email_to needs '" + key + "'");
            }
        }
    }
    if (!m.smtp_username.empty()) {
        r.required_secret(a, "smtp_password", what + " alerts.smtp_username");
    }
    auto in = v.section("ingress");
    m.prometheus_host = in.str("prometheus_host");
    m.alertmanager_host = in.str("alertmanager_host");
    m.tls_cert_file = in.str("tls_cert_file");
    m.tls_key = in.secret("tls_key");
    m.basic_auth = in.secret("basic_auth");
    if (m.exposed()) {
        if (m.tls_cert_file.empty()) {
            r.problems.push_back(in.where("tls_cert_file") + ": " + what +
                                 " ingress needs 'tls_cert_file' (and tls_key) with a host");
        }
        r.required_secret(in, "tls_key", what + " ingress");
        r.required_secret(in, "basic_auth", what + " ingress");
        if (m.prometheus_host == m.alertmanager_host) {
            r.problems.push_back(in.where("alertmanager_host") + ": " + what +
                                 " ingress: Prometheus and Alertmanager need different host names");
        }
    }
    if (!r.problems.empty()) {
        return make_error(ErrorCode::config, util::join(r.problems, "\n"));
    }
    return m;
}

}  // namespace nodectl::stack

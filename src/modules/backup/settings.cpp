// [backup] of a profile, read through the key table (src/config/keys.cpp) into Settings.
#include "modules/backup/backup.hpp"

#include <unistd.h>

#include <climits>
#include <filesystem>

namespace nodectl::backup {

namespace {

Retention retention_of(const ConfigView& t) {
    Retention r;
    r.keep_last = static_cast<int>(t.integer("keep_last"));
    r.keep_daily = static_cast<int>(t.integer("keep_daily"));
    r.keep_weekly = static_cast<int>(t.integer("keep_weekly"));
    r.keep_monthly = static_cast<int>(t.integer("keep_monthly"));
    return r;
}

std::string this_host() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || !*buf) {
        return "localhost";
    }
    return buf;
}

}  // namespace

Result<Settings> load_settings(const Profile& profile) {
    auto cfg = profile.section("backup");
    Settings s;
    s.host = this_host();
    s.name = cfg.str("name").empty() ? s.host : cfg.str("name");
    s.schedule = cfg.str("schedule");
    s.randomized_delay = cfg.str("randomized_delay");
    s.compression_level = static_cast<int>(cfg.integer("compression_level"));
    s.compression_threads = static_cast<int>(cfg.integer("compression_threads"));
    s.chunk_bytes = static_cast<uint64_t>(cfg.integer("chunk_mib")) << 20;
    s.encryption_key_file = cfg.str("encryption_key_file");
    s.metrics_file = cfg.str("metrics_file");
    s.webhook_url = cfg.str("webhook_url");
    s.pre_hooks = cfg.strings("pre_hooks");
    s.post_hooks = cfg.strings("post_hooks");

    if (cfg.has("mariadb")) {
        auto m = cfg.section("mariadb");
        auto& d = s.mariadb;
        d.enabled = m.boolean("enabled");
        d.host = m.str("host");
        d.port = static_cast<int>(m.integer("port"));
        d.socket = m.str("socket");
        d.user = m.str("user");
        d.password = m.secret("password");
        d.replica_host = m.str("replica_host");
        d.replica_port = static_cast<int>(m.integer("replica_port"));
        d.replica_socket = m.str("replica_socket");
        d.databases = m.strings("databases");
        d.dump_command = m.str("dump_command");
        d.client_command = m.str("client_command");
    }
    for (const auto& f : cfg.tables("files")) {
        FileTree t;
        t.path = f.str("path");
        t.name = f.str("name").empty() ? std::filesystem::path(t.path).filename().string() : f.str("name");
        if (t.name.empty()) {
            t.name = "root";
        }
        t.include = f.strings("include");
        t.exclude = f.strings("exclude");
        for (const auto& other : s.files) {
            if (other.name == t.name) {
                return make_error(ErrorCode::config, f.where("name") + ": two [[backup.files]] trees are both named '" +
                                                         t.name + "'; give one a different `name`");
            }
        }
        s.files.push_back(std::move(t));
    }
    for (const auto& t : cfg.tables("targets")) {
        TargetSettings ts;
        ts.name = t.str("name");
        ts.kind = t.str("type") == "s3" ? TargetKind::s3 : TargetKind::directory;
        ts.path = t.str("path");
        ts.min_free_bytes = static_cast<uint64_t>(t.integer("min_free_mib")) << 20;
        ts.endpoint = t.str("endpoint");
        ts.region = t.str("region");
        ts.bucket = t.str("bucket");
        ts.prefix = t.str("prefix");
        ts.path_style = t.boolean("path_style");
        ts.storage_class = t.str("storage_class");
        ts.credentials_file = t.str("credentials_file");
        ts.parallel_parts = static_cast<int>(t.integer("parallel_parts"));
        ts.retention = retention_of(t);
        if (ts.kind == TargetKind::directory && ts.path.empty()) {
            return make_error(ErrorCode::config, t.where() + ": target '" + ts.name + "' (directory) needs `path`");
        }
        if (ts.kind == TargetKind::s3 && (ts.bucket.empty() || ts.endpoint.empty())) {
            return make_error(ErrorCode::config,
                              t.where() + ": target '" + ts.name + "' (s3) needs `endpoint` and `bucket`");
        }
        for (const auto& other : s.targets) {
            if (other.name == ts.name) {
                return make_error(ErrorCode::config, t.where("name") + ": two targets are named '" + ts.name + "'");
            }
        }
        s.targets.push_back(std::move(ts));
    }
    if (s.targets.empty()) {
        return make_error(ErrorCode::config, cfg.where() + ": [backup] has no [[backup.targets]]");
    }
    if (!s.mariadb.enabled && s.files.empty()) {
        return make_error(ErrorCode::config,
                          cfg.where() + ": [backup] has nothing to back up (no [backup.mariadb], no [[backup.files]])");
    }
    return s;
}

}  // namespace nodectl::backup

// Monitoring of backup runs: a Prometheus textfile (for node_exporter's textfile collector),
// rewritten atomically after every run, and a JSON webhook on failure.
#include "modules/backup/detail.hpp"
#include "util/json.hpp"
#include "util/file.hpp"
#include "util/http.hpp"

#include <nlohmann/json.hpp>

#include <cstring>

#include <map>
#include <sstream>

namespace nodectl::backup {

namespace {

// The previous file's last-success times, so a failed run does not reset them.
std::map<std::string, std::string> previous_success(const std::string& path) {
    std::map<std::string, std::string> out;
    auto text = util::read_file(path);
    if (!text) {
        return out;
    }
    std::istringstream in(*text);
    std::string line;
    const std::string prefix = "nodectl_backup_last_success_timestamp_seconds{target=\"";
    while (std::getline(in, line)) {
        if (line.rfind(prefix, 0) != 0) {
            continue;
        }
        auto end = line.find("\"}", prefix.size());
        if (end == std::string::npos) {
            continue;
        }
        out[line.substr(prefix.size(), end - prefix.size())] = line.substr(end + 3);
    }
    return out;
}

}  // namespace

Result<void> write_metrics(const std::string& path, const RunReport& report,
                           std::chrono::system_clock::time_point now) {
    auto last = previous_success(path);
    double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
    char now_text[32];
    std::snprintf(now_text, sizeof now_text, "%.0f", now_s);
    std::ostringstream m;
    auto metric = [&](const char* name, const char* help) {
        m << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    };
    metric("nodectl_backup_last_success_timestamp_seconds", "Time of the last successful backup to the target.");
    for (const auto& t : report.targets) {
        std::string v = t.ok ? now_text : (last.contains(t.target) ? last[t.target] : "0");
        m << "nodectl_backup_last_success_timestamp_seconds{target=\"" << t.target << "\"} " << v << "\n";
    }
    metric("nodectl_backup_last_run_timestamp_seconds", "Time of the last backup run.");
    for (const auto& t : report.targets) {
        m << "nodectl_backup_last_run_timestamp_seconds{target=\"" << t.target << "\"} " << now_text << "\n";
    }
    metric("nodectl_backup_last_outcome", "1 when the last run to the target succeeded, 0 when it failed.");
    for (const auto& t : report.targets) {
        m << "nodectl_backup_last_outcome{target=\"" << t.target << "\"} " << (t.ok ? 1 : 0) << "\n";
    }
    metric("nodectl_backup_last_bytes", "Bytes of the archive the last run stored on the target (0 when it failed).");
    for (const auto& t : report.targets) {
        m << "nodectl_backup_last_bytes{target=\"" << t.target << "\"} " << (t.ok ? t.bytes : 0) << "\n";
    }
    metric("nodectl_backup_last_duration_seconds", "Duration of the last run to the target.");
    for (const auto& t : report.targets) {
        m << "nodectl_backup_last_duration_seconds{target=\"" << t.target << "\"} "
          << (t.ok ? t.seconds : report.seconds) << "\n";
    }
    metric("nodectl_backup_last_source_bytes", "Bytes of database dumps and files read by the last run.");
    m << "nodectl_backup_last_source_bytes " << report.raw_bytes << "\n";
    auto err = util::write_file_atomic(path, m.str(), 0644);
    if (!err) {
        return make_error(ErrorCode::io, "metrics file: " + err.error());
    }
    return Ok{};
}

namespace {

// `message` with every http(s) URL cut to its scheme and host: a webhook's token is usually in
// its path or query (or user info), and the message goes to logs.
std::string mask_urls(std::string message) {
    for (const char* scheme : {"http://", "https://"}) {
        size_t pos = 0;
        while ((pos = message.find(scheme, pos)) != std::string::npos) {
            size_t host = pos + std::strlen(scheme);
            size_t end = message.find_first_of(" \t\n)\"'", host);
            if (end == std::string::npos) {
                end = message.size();
            }
            while (end > host && std::strchr(":,;.", message[end - 1])) {
                --end;  // "POST URL: why"
            }
            std::string url = message.substr(host, end - host);
            size_t at = url.find('@');
            size_t slash = url.find_first_of("/?#");
            if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
                url = url.substr(at + 1);
                slash = url.find_first_of("/?#");
            }
            std::string shown = (slash == std::string::npos ? url : url.substr(0, slash)) + "/...";
            message.replace(host, end - host, shown);
            pos = host + shown.size();
        }
    }
    return message;
}

}  // namespace

std::string post_webhook(const std::string& url, const Settings& settings, const RunReport& report) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : report.targets) {
        targets.push_back({{"target", t.target}, {"ok", t.ok}, {"error", t.error}, {"bytes", t.bytes}});
    }
    int ok = report.ok_count();
    nlohmann::json body = {{"event", "nodectl.backup.failed"},
                           {"host", settings.host},
                           {"name", settings.name},
                           {"id", report.id},
                           {"outcome", ok == 0 ? "failed" : "partial"},
                           {"error", report.error},
                           {"targets", targets},
                           {"seconds", report.seconds}};
    util::HttpOptions o;
    o.attempts = 3;
    o.initial_backoff = std::chrono::milliseconds(500);
    o.connect_timeout_seconds = 10;
    o.timeout_seconds = 30;
    auto r = util::post(url, util::json_text(body), "application/json", o);
    return r ? "" : mask_urls(r.error().message);
}

}  // namespace nodectl::backup

// The backup CronJob (nodectl backup run in the backup image) and the nodectl profile it reads.
#include "modules/stack/renderer.hpp"

#include <sstream>

namespace nodectl::stack {

namespace detail {

void Renderer::backup_cron_job() {
    if (!site.backup.enabled) {
        return;
    }
    // nodectl reads its secrets only when no one else can (mode 0400 of root): the job runs as
    // uid 0 with every capability dropped, so it can read them and nothing more.
    J sec = security({}, true, false);
    sec["runAsUser"] = 0;
    J c = J{
        {"name", "backup"},
        {"image", site.images.backup},
        {"imagePullPolicy", site.images.pull_policy},
        {"command", J::array({"/usr/local/bin/nodectl", "backup", "run", "--profile", "/etc/nodectl/profile.toml"})},
        {"resources", resources("backup")},
        {"securityContext", sec},
        {"volumeMounts", J::array({mount("profile", "/etc/nodectl", true), mount("db-secret", "/run/secrets/db", true),
                                   mount("backup-secret", "/run/secrets/backup", true), mount("tmp", "/tmp")})}};
    J volumes =
        J::array({J{{"name", "profile"},
                    {"configMap", J{{"name", "backup-profile"},
                                    {"items", J::array({J{{"key", "profile.toml"}, {"path", "profile.toml"}}})}}}},
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

}  // namespace detail

using detail::k_mysql_port;

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
    toml::table backup{{"name", site.name},
                       {"enabled", false},
                       {"mariadb", std::move(mariadb)},
                       {"targets", toml::array{std::move(target)}}};
    toml::table root{{"backup", std::move(backup)}};
    std::ostringstream out;
    out << "# nodectl backup profile of site " << site.name << " (rendered by `nodectl stack render`)\n"
        << toml::toml_formatter(root) << "\n";
    return out.str();
}
}  // namespace nodectl::stack

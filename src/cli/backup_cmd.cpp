// `nodectl backup run|list|verify|restore|prune`: backups on the node itself
// (src/modules/backup/), usually started by nodectl-backup.timer.
#include "cli/cli.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "modules/backup/backup.hpp"
#include "util/time.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>

namespace nodectl::cli {

namespace {

struct BackupOptions {
    std::string profile = "/etc/nodectl/profile.toml";
    std::string id;
    std::string target;
    std::vector<std::string> targets;
    bool no_prune = false;
    bool dry_run = false;
    backup::RestoreOptions restore;
};

BackupOptions& backup_options() {
    static BackupOptions o;
    return o;
}

int backup_fail(const Error& e, int code) {
    std::cerr << "nodectl backup: " << e.message << "\n";
    return code;
}

int code_of(const Error& e) {
    if (e.code == ErrorCode::auth) {
        return k_exit_config;  // wrong encryption key
    }
    return exit_code_for(e);
}

std::string human(uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

int do_run(const Context& ctx, const backup::Settings& s) {
    auto& o = backup_options();
    auto report = backup::run(s, {o.targets, !o.no_prune});
    int ok = report.ok_count();
    int total = static_cast<int>(report.targets.size());
    if (!s.metrics_file.empty()) {
        auto m = backup::write_metrics(s.metrics_file, report, std::chrono::system_clock::now());
        if (!m) {
            log::warn("backup", "{}", m.error().message);
        }
    }
    if ((ok < total || !report.error.empty()) && !s.webhook_url.empty()) {
        auto err = backup::post_webhook(s.webhook_url, s, report);
        if (!err.empty()) {
            log::warn("backup", "failure webhook not delivered: {}", err);
        }
    }
    if (ctx.global.json) {
        nlohmann::json t = nlohmann::json::array();
        for (const auto& x : report.targets) {
            t.push_back({{"target", x.target},
                         {"ok", x.ok},
                         {"error", x.error},
                         {"bytes", x.bytes},
                         {"seconds", x.seconds},
                         {"pruned", x.pruned}});
        }
        nlohmann::json out{{"id", report.id},
                           {"error", report.error},
                           {"entries", report.entries},
                           {"source_bytes", report.raw_bytes},
                           {"seconds", report.seconds},
                           {"post_hook_failed", report.post_hook_failed},
                           {"targets", t}};
        std::cout << util::json_text(out, 2) << "\n";
    } else {
        std::cout << "backup " << report.id << ": " << report.entries << " entries, " << human(report.raw_bytes)
                  << " read, " << static_cast<int>(report.seconds * 10) / 10.0 << " s\n";
        for (const auto& x : report.targets) {
            std::cout << "  " << x.target << ": "
                      << (x.ok ? "ok, " + human(x.bytes) +
                                     (x.pruned.empty() ? "" : ", pruned " + std::to_string(x.pruned.size()))
                               : "FAILED: " + x.error)
                      << "\n";
        }
    }
    if (ok == 0) {
        return k_exit_all_failed;
    }
    if (ok < total || report.post_hook_failed) {
        return k_exit_partial;
    }
    return k_exit_ok;
}

}  // namespace

void configure_backup(CLI::App& app, Context&) {
    auto& o = backup_options();
    app.require_subcommand(1);
    app.add_option("-p,--profile", o.profile, "Profile with [backup] (default /etc/nodectl/profile.toml)");
    auto* run = app.add_subcommand("run", "Make a backup now, to every target (or --target)");
    run->add_option("--target", o.targets, "Only this target (repeatable)");
    run->add_flag("--no-prune", o.no_prune, "Do not apply retention after the backup");
    auto* list = app.add_subcommand("list", "List the archives on every target");
    list->add_option("--target", o.target, "Only this target");
    auto* verify = app.add_subcommand("verify", "Read an archive and check every entry's sha256 (and decryption)");
    verify->add_option("id", o.id, "Archive id (NAME-YYYYMMDDTHHMMSSZ) or object name")->required();
    verify->add_option("--target", o.target, "Target to read it from (default: the first that has it)");
    auto* restore = app.add_subcommand("restore", "Verify an archive, then restore a database and/or files");
    restore->add_option("id", o.restore.id, "Archive id")->required();
    restore->add_option("--target", o.restore.target, "Target to read it from (default: the first that has it)");
    restore->add_option("--db", o.restore.db, "Database of the archive to restore");
    restore->add_option("--into", o.restore.into, "Name to restore it as (default: its own name, which needs --force)");
    restore->add_flag("--force", o.restore.force, "Restore into an existing database (over the original)");
    restore->add_option("--db-host", o.restore.db_host, "Server to restore into (default: [backup.mariadb] host)");
    restore->add_option("--db-port", o.restore.db_port, "Its TCP port");
    restore->add_option("--db-socket", o.restore.db_socket, "Its Unix socket");
    restore->add_flag("--files", o.restore.files, "Restore the file trees");
    restore->add_option("--to", o.restore.to, "Directory the file trees go to (must not exist, or be empty)");
    restore->add_flag("--keep-setid", o.restore.keep_setid,
                      "Keep setuid/setgid bits of restored files (dropped by default)");
    auto* prune = app.add_subcommand("prune", "Delete archives the targets' retention rules do not keep");
    prune->add_flag("--dry-run,-n", o.dry_run, "Only show what would be deleted");
    prune->add_option("--target", o.target, "Only this target");
}

int run_backup(CLI::App& app, Context& ctx) {
    auto& o = backup_options();
    auto profile = load_profile(o.profile);
    if (!profile) {
        return backup_fail(profile.error(), k_exit_config);
    }
    if (!profile->table().contains("backup")) {
        std::cerr << "nodectl backup: " << o.profile << " has no [backup] section\n";
        return k_exit_config;
    }
    auto settings = backup::load_settings(*profile);
    if (!settings) {
        return backup_fail(settings.error(), k_exit_config);
    }
    const auto& s = *settings;
    if (app.got_subcommand("run")) {
        return do_run(ctx, s);
    }
    if (app.got_subcommand("list")) {
        auto l = backup::list(s, o.target);
        if (!l) {
            return backup_fail(l.error(), code_of(l.error()));
        }
        if (ctx.global.json) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& a : *l) {
                out.push_back({{"target", a.target},
                               {"id", a.stored.id},
                               {"object", a.stored.object},
                               {"size", a.stored.size},
                               {"time", util::format_utc(a.stored.time, "%Y-%m-%d %H:%M:%SZ")},
                               {"encrypted", a.stored.encrypted}});
            }
            std::cout << util::json_text(out, 2) << "\n";
        } else {
            for (const auto& a : *l) {
                std::cout << a.target << "  " << a.stored.id << "  "
                          << util::format_utc(a.stored.time, "%Y-%m-%d %H:%M:%SZ") << "  " << human(a.stored.size)
                          << (a.stored.encrypted ? "  encrypted" : "") << "\n";
            }
        }
        return k_exit_ok;
    }
    if (app.got_subcommand("verify")) {
        auto v = backup::verify(s, o.id, o.target);
        if (!v) {
            return backup_fail(v.error(), code_of(v.error()));
        }
        uint64_t total = 0;
        for (const auto& e : v->entries) {
            total += e.size;
        }
        if (ctx.global.json) {
            std::cout << v->manifest_text;
        } else {
            std::cout << v->target << ": " << v->object << ": intact, " << v->entries.size() << " entries, "
                      << human(total) << " match manifest.json\n";
        }
        return k_exit_ok;
    }
    if (app.got_subcommand("restore")) {
        auto r = backup::restore(s, o.restore);
        if (!r) {
            return backup_fail(r.error(), code_of(r.error()));
        }
        for (const auto& line : r->done) {
            std::cout << line << "\n";
        }
        return k_exit_ok;
    }
    auto p = backup::prune(s, o.dry_run, o.target);
    if (!p) {
        return backup_fail(p.error(), code_of(p.error()));
    }
    for (const auto& item : *p) {
        std::cout << (o.dry_run ? "would delete " : "deleted ") << item.target << "  " << item.object << "\n";
    }
    if (p->empty()) {
        std::cout << "nothing to prune\n";
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

// Backups of databases and files, run on the node itself (`nodectl backup ...`, usually from
// nodectl-backup.timer). One run makes one archive, streamed once and fanned out to every target:
//
//   mariadb-dump stdout / file trees -> tar (pax) entries -> zstd (libzstd) -> [AES-256-GCM
//   chunks] -> directory target (temp name, fsync, rename) and/or S3 (streaming multipart)
//
// with the stages on threads of their own, joined by bounded queues (docs/backup.md, "Threads
// and memory").
// The archive's last entry is manifest.json (size and sha256 of every entry, source versions,
// host, time). See ARCHITECTURE.md "Backup archives" for the format, chunking and encryption.
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::backup {

inline constexpr int k_format_version = 1;
inline constexpr const char* k_manifest_name = "manifest.json";

struct MariadbSource {
    bool enabled = false;
    std::string host;  // empty: the socket (or the client's default)
    int port = 3306;
    std::string socket;
    std::string user = "root";
    std::optional<SecretRef> password;
    // Dumps are read from the replica when one is configured.
    std::string replica_host;
    int replica_port = 3306;
    std::string replica_socket;
    std::vector<std::string> databases;  // empty: every database but the server's own schemas
    std::string dump_command = "mariadb-dump";
    std::string client_command = "mariadb";
};

struct FileTree {
    std::string name;  // stored under files/<name>/
    std::string path;
    std::vector<std::string> include;  // empty: everything
    std::vector<std::string> exclude;
};

struct Retention {
    int keep_last = 0;
    int keep_daily = 0;
    int keep_weekly = 0;
    int keep_monthly = 0;
    bool any() const { return keep_last + keep_daily + keep_weekly + keep_monthly > 0; }
};

enum class TargetKind { directory, s3 };

struct TargetSettings {
    std::string name;
    TargetKind kind = TargetKind::directory;
    std::string path;  // directory
    uint64_t min_free_bytes = 64ull << 20;
    // s3
    std::string endpoint;
    std::string region = "us-east-1";
    std::string bucket;
    std::string prefix;
    bool path_style = false;
    std::string storage_class;
    std::string credentials_file;  // empty: the environment (AWS_ACCESS_KEY_ID, ...)
    int parallel_parts = 2;
    Retention retention;
};

struct Settings {
    std::string name;  // archive names start with it; default: the host name
    std::string host;  // gethostname(), recorded in the manifest
    MariadbSource mariadb;
    std::vector<FileTree> files;
    std::vector<std::string> pre_hooks;
    std::vector<std::string> post_hooks;
    std::vector<TargetSettings> targets;
    std::string encryption_key_file;  // empty: archives are not encrypted
    int compression_level = 3;
    int compression_threads = 1;
    uint64_t chunk_bytes = 8ull << 20;  // size of the pieces a database dump is stored in
    std::string metrics_file;  // Prometheus textfile; empty: none
    std::string webhook_url;  // POSTed JSON on failure; empty: none
    std::string schedule = "*-*-* 02:00:00";
    std::string randomized_delay = "30min";
};

// Reads [backup] of a validated profile.
Result<Settings> load_settings(const Profile& profile);

// One archive as stored on a target.
struct Stored {
    std::string id;  // NAME-YYYYMMDDTHHMMSSZ
    std::string object;  // file or key name: ID.tar.zst or ID.tar.zst.enc
    uint64_t size = 0;
    std::chrono::sys_seconds time{};  // from the id
    bool encrypted = false;
};

// Parses "NAME-20261201T020000Z.tar.zst[.enc]"; nullopt for anything else (temp files, strangers).
std::optional<Stored> parse_object_name(const std::string& object);
std::string make_id(const std::string& name, std::chrono::sys_seconds time);

// Which archives a retention policy keeps. Returns the ids to delete (newest kept first by the
// rules, in the order of `archives`). With no rule set, nothing is deleted.
std::vector<std::string> to_prune(const std::vector<Stored>& archives, const Retention& retention);

// The archives of this backup among what a target lists: named exactly NAME-YYYYMMDDTHHMMSSZ
// (another host's archives in a shared target are not ours), encrypted when `encrypted_only` (a
// key is configured: anyone who can write to the target can plant a plain one), and not dated
// after `now`. Each archive of this name left out gets a line in `ignored` saying why.
std::vector<Stored> own_archives(const std::vector<Stored>& listed, const std::string& name, bool encrypted_only,
                                 std::chrono::sys_seconds now, std::vector<std::string>* ignored);

// What retention deletes on one target: to_prune() over own_archives(), warning about what it ignores.
std::vector<std::string> prunable(const Settings& settings, const TargetSettings& target,
                                  const std::vector<Stored>& listed, std::chrono::sys_seconds now);

// Outcome of one target in a run.
struct TargetOutcome {
    std::string target;
    bool ok = false;
    std::string error;
    uint64_t bytes = 0;
    double seconds = 0;
    std::vector<std::string> pruned;
};

struct RunReport {
    std::string id;
    std::string error;  // set when the run failed before or outside any target (sources, hooks)
    std::vector<TargetOutcome> targets;
    uint64_t entries = 0;
    uint64_t raw_bytes = 0;
    double seconds = 0;
    bool post_hook_failed = false;
    int ok_count() const;
};

struct RunOptions {
    std::vector<std::string> only_targets;  // empty: all
    bool prune = true;
};

RunReport run(const Settings& settings, const RunOptions& options);

struct ListedArchive {
    std::string target;
    Stored stored;
};
Result<std::vector<ListedArchive>> list(const Settings& settings, const std::string& only_target);

struct EntryInfo {
    std::string path;
    uint64_t size = 0;
    std::string sha256;
};

struct VerifyReport {
    std::string target;
    std::string object;
    std::string manifest_text;
    std::vector<EntryInfo> entries;
};

// Reads the archive once and checks every entry against the manifest (and, when encrypted,
// every chunk's tag). An error about the content has ErrorCode::damaged; a wrong key, auth.
Result<VerifyReport> verify(const Settings& settings, const std::string& id, const std::string& target);

struct RestoreOptions {
    std::string id;
    std::string target;
    std::string db;  // a database of the archive
    std::string into;  // name to restore it as; empty: its own name (needs force)
    bool force = false;  // replace an existing database
    bool files = false;
    std::string to;  // directory for files (must not exist, or be empty)
    bool keep_setid = false;  // restore setuid/setgid bits (dropped by default)
    // Override where the database goes (default: [backup.mariadb] host/port/socket).
    std::string db_host;
    int db_port = 0;
    std::string db_socket;
};

struct RestoreReport {
    std::vector<std::string> done;  // human lines
};

Result<RestoreReport> restore(const Settings& settings, const RestoreOptions& options);

struct PruneItem {
    std::string target;
    std::string object;
};
Result<std::vector<PruneItem>> prune(const Settings& settings, bool dry_run, const std::string& only_target);

// ---- monitoring (monitor.cpp) ----

// Rewrites the Prometheus textfile atomically (0644), keeping the previous last-success times of
// targets that failed this time.
Result<void> write_metrics(const std::string& path, const RunReport& report, std::chrono::system_clock::time_point now);
// POSTs the report as JSON. Returns why it failed, empty when delivered.
std::string post_webhook(const std::string& url, const Settings& settings, const RunReport& report);

}  // namespace nodectl::backup

// `backup run`: hooks, sources into one archive stream, fanned out to every target at once.
// A target that fails mid-stream is dropped (its upload aborted, nothing left under a final
// name) and the others go on; a source that fails (mariadb-dump exits non-zero) fails the whole
// run, since an archive missing a database would be a backup that lies.
#include "modules/backup/detail.hpp"
#include "util/json.hpp"
#include "core/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace nodectl::backup {

namespace fs = std::filesystem;

int RunReport::ok_count() const {
    return static_cast<int>(std::count_if(targets.begin(), targets.end(), [](const auto& t) { return t.ok; }));
}

namespace {

// Every live upload gets every byte; one that fails is aborted and dropped.
class FanoutSink : public Sink {
public:
    struct Leg {
        TargetOutcome* outcome;
        std::unique_ptr<Upload> upload;
        std::chrono::steady_clock::time_point started;
    };
    std::vector<Leg> legs;
    uint64_t bytes = 0;

    size_t live() const {
        return static_cast<size_t>(std::count_if(legs.begin(), legs.end(), [](const Leg& l) { return l.upload != nullptr; }));
    }

    Result<void> write(const char* data, size_t size) override {
        for (auto& l : legs) {
            if (!l.upload) {
                continue;
            }
            auto r = l.upload->write(data, size);
            if (!r) {
                fail(l, r.error().message);
            }
        }
        bytes += size;
        if (live() == 0) {
            return make_error(ErrorCode::io, "every target failed");
        }
        return Ok{};
    }
    Result<void> close() override { return Ok{}; }

    void fail(Leg& l, const std::string& why) {
        log::error(k_log, "target {}: {}", l.outcome->target, why);
        l.outcome->ok = false;
        l.outcome->error = why;
        l.upload->abort();
        l.upload.reset();
    }
    void abort_all(const std::string& why) {
        for (auto& l : legs) {
            if (l.upload) {
                fail(l, why);
            }
        }
    }
};

ArchiveWriter::Meta meta_from(const struct stat& st) {
    ArchiveWriter::Meta m;
    m.mode = st.st_mode & 07777;
    m.mtime = st.st_mtime;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    if (auto* pw = getpwuid(st.st_uid)) {
        m.uname = pw->pw_name;
    }
    if (auto* gr = getgrgid(st.st_gid)) {
        m.gname = gr->gr_name;
    }
    return m;
}

ArchiveWriter::Meta generated_meta() {
    ArchiveWriter::Meta m;
    m.mode = 0600;
    m.mtime = std::time(nullptr);
    return m;
}

// ---- MariaDB ----

struct DbConnection {
    std::string host;
    int port = 3306;
    std::string socket;
};

Result<std::string> password_of(const MariadbSource& m) {
    if (!m.password) {
        return std::string();
    }
    auto s = resolve_secret(*m.password);
    if (!s) {
        return s.error();
    }
    return s->reveal();
}

Result<std::vector<std::string>> query_lines(const MariadbSource& m, const ClientOptionFile& opt, const std::string& sql) {
    auto out = TRY(run_capture({m.client_command, opt.arg(), "-N", "-B", "-e", sql}));
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < out.size()) {
        size_t nl = out.find('\n', start);
        if (nl == std::string::npos) {
            nl = out.size();
        }
        if (nl > start) {
            lines.push_back(out.substr(start, nl - start));
        }
        start = nl + 1;
    }
    return lines;
}

bool system_schema(const std::string& db) {
    return db == "information_schema" || db == "performance_schema" || db == "sys" || db == "mysql";
}

// A database name given to mariadb-dump as an argument: any server user can create databases, so
// a name that could read as an option (or that the client's batch output mangles) is skipped.
bool dumpable_name(const std::string& db) {
    if (db.empty() || db[0] == '-') {
        return false;
    }
    return std::none_of(db.begin(), db.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\';
    });
}

std::string sql_string(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

std::string chunk_name(const std::string& db, size_t index) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06zu", index);
    return "db/" + db + ".sql." + buf;
}

Result<size_t> read_some(int fd, char* p, size_t n) {
    for (;;) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return make_error(ErrorCode::io, std::string("reading the dump: ") + std::strerror(errno));
        }
        return static_cast<size_t>(r);
    }
}

// Dumps every database into the archive; fills the manifest's "mariadb" part.
Result<void> dump_databases(const Settings& s, ArchiveWriter& w, nlohmann::json& out) {
    const auto& m = s.mariadb;
    auto password = TRY(password_of(m));
    bool replica = !m.replica_host.empty() || !m.replica_socket.empty();
    ClientOptionFile opt;
    if (replica) {
        TRY_VOID(opt.create(m.replica_host, m.replica_port, m.replica_socket, m.user, password));
    } else {
        TRY_VOID(opt.create(m.host, m.port, m.socket, m.user, password));
    }
    std::fill(password.begin(), password.end(), '\0');
    auto version = TRY(query_lines(m, opt, "SELECT VERSION()"));
    auto dump_version = run_capture({m.dump_command, "--version"});
    std::vector<std::string> dbs;
    std::vector<std::string> wanted = m.databases;
    if (wanted.empty()) {
        for (auto& d : TRY(query_lines(m, opt, "SHOW DATABASES"))) {
            if (!system_schema(d)) {
                wanted.push_back(d);
            }
        }
    }
    for (auto& d : wanted) {
        if (dumpable_name(d)) {
            dbs.push_back(d);
        } else {
            std::string shown = d;
            std::replace_if(shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }, '?');
            log::warn(k_log, "database '{}' skipped: its name starts with '-' or holds a control character or a backslash",
                      shown);
        }
    }
    out = {{"server_version", version.empty() ? "" : version[0]},
           {"dump_version", dump_version ? util::trim(*dump_version) : ""},
           {"read_from", replica ? "replica" : "primary"},
           {"databases", nlohmann::json::array()}};
    std::vector<char> chunk(s.chunk_bytes);
    for (const auto& db : dbs) {
        auto cs = TRY(query_lines(m, opt, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                                          "information_schema.SCHEMATA WHERE SCHEMA_NAME = " + sql_string(db)));
        if (cs.empty()) {
            return make_error(ErrorCode::command, "database '" + db + "' does not exist on the server");
        }
        auto tab = cs[0].find('\t');
        std::string charset = cs[0].substr(0, tab), collation = tab == std::string::npos ? "" : cs[0].substr(tab + 1);
        log::info(k_log, "dumping database {}", db);
        Child dump;
        TRY_VOID(dump.start({m.dump_command, opt.arg(), "--single-transaction", "--routines", "--events", "--triggers",
                             "--hex-blob", "--quick", "--default-character-set=utf8mb4", "--", db},
                            false, true));
        util::Sha256 whole;
        uint64_t total = 0;
        std::vector<std::string> chunks;
        bool eof = false;
        while (!eof) {
            size_t fill = 0;
            while (fill < chunk.size()) {
                size_t n = TRY(read_some(dump.stdout_fd(), chunk.data() + fill, chunk.size() - fill));
                if (n == 0) {
                    eof = true;
                    break;
                }
                fill += n;
            }
            if (fill == 0 && !chunks.empty()) {
                break;
            }
            std::string name = chunk_name(db, chunks.size());
            auto meta = generated_meta();
            TRY_VOID(w.begin_file(name, fill, meta));
            TRY_VOID(w.data(chunk.data(), fill));
            TRY_VOID(w.end_file());
            whole.update(chunk.data(), fill);
            total += fill;
            chunks.push_back(name);
        }
        auto r = dump.wait();
        if (!r) {
            return make_error(ErrorCode::command, "dump of database '" + db + "' failed: " + r.error().message);
        }
        out["databases"].push_back({{"name", db},
                                    {"size", total},
                                    {"sha256", whole.final_hex()},
                                    {"chunks", chunks},
                                    {"character_set", charset},
                                    {"collation", collation}});
    }
    return Ok{};
}

// ---- files ----

bool matches(const std::vector<std::string>& patterns, const std::string& rel) {
    std::string base = fs::path(rel).filename().string();
    for (const auto& p : patterns) {
        if (fnmatch(p.c_str(), rel.c_str(), 0) == 0 || fnmatch(p.c_str(), base.c_str(), 0) == 0) {
            return true;
        }
    }
    return false;
}

// One regular file, opened beneath its directory's descriptor without following a link and
// without blocking (a FIFO swapped in since the listing would stall the run): what is opened must
// still be a regular file.
Result<void> add_file(ArchiveWriter& w, int dir, const std::string& leaf, const std::string& abs, const std::string& name,
                      uint64_t& bytes, bool& added) {
    added = false;
    UniqueFd fd(::openat(dir, leaf.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        log::warn(k_log, "skipped {}: {}", abs, std::strerror(errno));
        return Ok{};
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        log::warn(k_log, "skipped {}: no longer a regular file", abs);
        return Ok{};
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    TRY_VOID(w.begin_file(name, size, meta_from(st)));
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    while (done < size) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
        ssize_t n = ::read(fd.get(), buf.data(), want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            // The file shrank while it was read: tar needs the size given, so it is padded.
            log::warn(k_log, "{} shrank while it was read ({} of {} bytes); padded with zeros", abs, done, size);
            std::fill(buf.begin(), buf.end(), '\0');
            while (done < size) {
                size_t pad = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
                TRY_VOID(w.data(buf.data(), pad));
                done += pad;
            }
            break;
        }
        TRY_VOID(w.data(buf.data(), static_cast<size_t>(n)));
        done += static_cast<uint64_t>(n);
    }
    bytes += size;
    added = true;
    return w.end_file();
}

struct TreeWalk {
    ArchiveWriter& w;
    const FileTree& t;
    uint64_t files = 0, bytes = 0;

    // The entries of the directory `dir` (opened beneath the tree's root; `rel` is its path in the
    // tree, empty for the root), in name order. Every child is looked at with fstatat(NOFOLLOW)
    // and opened with openat(O_NOFOLLOW) relative to `dir`: a directory swapped for a symbolic
    // link while the walk runs is never followed out of the tree.
    Result<void> walk(int dir, const std::string& rel) {
        std::vector<std::string> names;
        {
            int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
            DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
            if (!d) {
                if (copy >= 0) {
                    ::close(copy);
                }
                return errno_error("cannot read " + t.path + "/" + rel);
            }
            while (auto* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n != "." && n != "..") {
                    names.push_back(std::move(n));
                }
            }
            ::closedir(d);
        }
        std::sort(names.begin(), names.end());
        for (const auto& n : names) {
            std::string child = rel.empty() ? n : rel + "/" + n;
            std::string abs = t.path + "/" + child;
            std::string name = "files/" + t.name + "/" + child;
            struct stat st{};
            if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                continue;  // gone since it was listed
            }
            if (!t.exclude.empty() && matches(t.exclude, child)) {
                continue;
            }
            if (S_ISDIR(st.st_mode)) {
                UniqueFd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!sub) {
                    log::warn(k_log, "skipped {}: {}", abs, std::strerror(errno));
                    continue;
                }
                struct stat sst{};
                ::fstat(sub.get(), &sst);
                TRY_VOID(w.add_directory(name, meta_from(sst)));
                TRY_VOID(walk(sub.get(), child));
                continue;
            }
            if (!t.include.empty() && !matches(t.include, child)) {
                continue;
            }
            if (S_ISLNK(st.st_mode)) {
                std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
                ssize_t len = ::readlinkat(dir, n.c_str(), target.data(), target.size());
                if (len >= 0) {
                    target.resize(static_cast<size_t>(len));
                    TRY_VOID(w.add_symlink(name, target, meta_from(st)));
                    ++files;
                }
            } else if (S_ISREG(st.st_mode)) {
                bool added = false;
                TRY_VOID(add_file(w, dir, n, abs, name, bytes, added));
                files += added ? 1 : 0;
            } else {
                log::debug(k_log, "skipped {}: not a regular file, directory or symbolic link", abs);
            }
        }
        return Ok{};
    }
};

Result<void> add_tree(ArchiveWriter& w, const FileTree& t, nlohmann::json& out) {
    UniqueFd root_dir(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat root{};
    if (!root_dir || ::fstat(root_dir.get(), &root) != 0) {
        return make_error(ErrorCode::io, "file tree " + t.name + ": " + t.path + " is not a directory");
    }
    TRY_VOID(w.add_directory("files/" + t.name, meta_from(root)));
    TreeWalk walk{w, t};
    TRY_VOID(walk.walk(root_dir.get(), ""));
    out.push_back({{"name", t.name}, {"path", t.path}, {"files", walk.files}, {"bytes", walk.bytes}});
    return Ok{};
}

} // namespace

RunReport run(const Settings& s, const RunOptions& options) {
    RunReport report;
    auto started_wall = std::chrono::system_clock::now();
    auto started = std::chrono::steady_clock::now();
    auto now_s = std::chrono::time_point_cast<std::chrono::seconds>(started_wall);
    report.id = make_id(s.name, now_s);
    bool encrypt = !s.encryption_key_file.empty();
    std::string object = report.id + ".tar.zst" + (encrypt ? ".enc" : "");

    std::vector<const TargetSettings*> chosen;
    for (const auto& t : s.targets) {
        if (options.only_targets.empty() ||
            std::find(options.only_targets.begin(), options.only_targets.end(), t.name) != options.only_targets.end()) {
            chosen.push_back(&t);
            report.targets.push_back({t.name});
        }
    }
    auto finish_report = [&] {
        report.seconds = util::seconds_since(started);
    };
    auto fail_all = [&](const std::string& why) {
        report.error = why;
        for (auto& t : report.targets) {
            if (t.error.empty()) {
                t.ok = false;
                t.error = why;
            }
        }
    };
    auto run_post = [&] {
        std::string outcome = report.ok_count() == static_cast<int>(report.targets.size()) && report.error.empty()
                                  ? "ok"
                                  : (report.ok_count() > 0 ? "partial" : "failed");
        for (const auto& h : s.post_hooks) {
            auto r = run_hook(h, {"NODECTL_BACKUP_OUTCOME=" + outcome, "NODECTL_BACKUP_ID=" + report.id});
            if (!r) {
                log::error(k_log, "{}", r.error().message);
                report.post_hook_failed = true;
            }
        }
    };
    if (chosen.empty()) {
        fail_all("no target named like that");
        return report;
    }

    std::optional<Key> key;
    if (encrypt) {
        auto k = load_key(s.encryption_key_file);
        if (!k) {
            fail_all(k.error().message);
            finish_report();
            return report;
        }
        key = *k;
    }

    for (const auto& h : s.pre_hooks) {
        auto r = run_hook(h, {"NODECTL_BACKUP_ID=" + report.id});
        if (!r) {
            fail_all("pre hook failed, nothing backed up: " + r.error().message);
            run_post();
            finish_report();
            return report;
        }
    }

    FanoutSink fan;
    std::vector<std::unique_ptr<BackupTarget>> targets;
    for (size_t i = 0; i < chosen.size(); ++i) {
        auto& outcome = report.targets[i];
        auto t = make_target(*chosen[i]);
        if (!t) {
            outcome.error = t.error().message;
            log::error(k_log, "target {}: {}", outcome.target, outcome.error);
            targets.emplace_back();
            continue;
        }
        auto ready = (*t)->prepare();
        if (!ready) {
            outcome.error = ready.error().message;
            log::error(k_log, "target {}: {}", outcome.target, outcome.error);
            targets.push_back(std::move(*t));
            continue;
        }
        auto up = (*t)->upload(object);
        if (!up) {
            outcome.error = up.error().message;
            log::error(k_log, "target {}: {}", outcome.target, outcome.error);
            targets.push_back(std::move(*t));
            continue;
        }
        fan.legs.push_back({&outcome, std::move(*up), std::chrono::steady_clock::now()});
        targets.push_back(std::move(*t));
    }
    if (fan.live() == 0) {
        fail_all("no target could be written");
        report.error = "no target could be written";
        run_post();
        finish_report();
        return report;
    }
    log::info(k_log, "writing {} to {} target(s)", object, fan.live());

    std::unique_ptr<Sink> enc;
    Sink* out = &fan;
    if (key) {
        enc = encrypting_sink(*key, fan);
        out = enc.get();
    }
    ArchiveWriter w(*out, {s.compression_level, s.compression_threads});
    auto body = [&]() -> Result<void> {
        TRY_VOID(w.open());
        nlohmann::json sources = nlohmann::json::object();
        if (s.mariadb.enabled) {
            nlohmann::json db;
            TRY_VOID(dump_databases(s, w, db));
            sources["mariadb"] = db;
        }
        nlohmann::json trees = nlohmann::json::array();
        for (const auto& t : s.files) {
            log::info(k_log, "adding files {} ({})", t.name, t.path);
            TRY_VOID(add_tree(w, t, trees));
        }
        sources["files"] = trees;
        nlohmann::json entries = nlohmann::json::array();
        for (const auto& e : w.entries()) {
            entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
        }
        nlohmann::json manifest = {{"format", k_format_version},
                                   {"id", report.id},
                                   {"name", s.name},
                                   {"host", s.host},
                                   {"created", util::format_utc(started_wall)},
                                   {"nodectl_version", NODECTL_VERSION},
                                   {"encrypted", encrypt},
                                   {"compression", "zstd level " + std::to_string(s.compression_level)},
                                   {"chunk_bytes", s.chunk_bytes},
                                   {"sources", sources},
                                   {"entries", entries}};
        report.entries = w.entries().size();
        report.raw_bytes = w.raw_bytes();
        TRY_VOID(w.add_buffer(k_manifest_name, util::json_text(manifest, 2) + "\n", generated_meta()));
        return w.finish();
    }();
    if (!body) {
        std::string why = body.error().message;
        if (fan.live() == 0) {
            // The targets' own errors say why; the sink's "every target failed" adds nothing.
            report.error = "every target failed";
        } else {
            report.error = why;
            fan.abort_all("backup aborted: " + why);
        }
        log::error(k_log, "{}", report.error);
        fail_all(report.error);
        run_post();
        finish_report();
        return report;
    }
    for (size_t i = 0; i < fan.legs.size(); ++i) {
        auto& l = fan.legs[i];
        if (!l.upload) {
            continue;
        }
        auto c = l.upload->commit();
        if (!c) {
            fan.fail(l, c.error().message);
            continue;
        }
        l.upload.reset();
        l.outcome->ok = true;
        l.outcome->bytes = fan.bytes;
        l.outcome->seconds = util::seconds_since(l.started);
        log::info(k_log, "target {}: {} written ({} bytes)", l.outcome->target, object, fan.bytes);
    }
    if (options.prune) {
        for (size_t i = 0; i < chosen.size(); ++i) {
            auto& outcome = report.targets[i];
            if (!outcome.ok || !chosen[i]->retention.any() || !targets[i]) {
                continue;
            }
            auto listed = targets[i]->list();
            if (!listed) {
                log::warn(k_log, "target {}: retention skipped: {}", outcome.target, listed.error().message);
                continue;
            }
            for (const auto& o : prunable(s, *chosen[i], *listed, now_s)) {
                auto r = targets[i]->remove(o);
                if (r) {
                    outcome.pruned.push_back(o);
                    log::info(k_log, "target {}: pruned {}", outcome.target, o);
                } else {
                    log::warn(k_log, "target {}: cannot prune {}: {}", outcome.target, o, r.error().message);
                }
            }
        }
    }
    run_post();
    finish_report();
    return report;
}

} // namespace nodectl::backup

// `backup list | verify | restore | prune`. Restore always verifies the whole archive first
// (one full read), then reads it again to restore: nothing reaches a live server or a directory
// from an archive that does not match its manifest. Files are restored into DIR.partial-PID and
// renamed to DIR at the end; a database restored under a new name is dropped again when the
// restore fails.
#include "modules/backup/detail.hpp"
#include "nodectl/target.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>

namespace nodectl::backup {

namespace fs = std::filesystem;

namespace {

struct Found {
    std::unique_ptr<BackupTarget> target;
    Stored stored;
};

// With encryption_key_file set, an archive that is not encrypted is never read: anyone who can
// write to a shared target could have planted it.
std::string unencrypted_refusal(const Stored& a) {
    return a.object + " is not encrypted, but [backup] sets encryption_key_file: refused (anyone who can write to "
                      "the target could have put it there)";
}

// The targets a command works on: all of [backup]'s, or the one named.
Result<std::vector<const TargetSettings*>> chosen_targets(const Settings& s, const std::string& name) {
    std::vector<const TargetSettings*> out;
    for (const auto& ts : s.targets) {
        if (name.empty() || ts.name == name) {
            out.push_back(&ts);
        }
    }
    if (out.empty()) {
        return make_error(ErrorCode::usage, name.empty() ? std::string("no target in [backup]")
                                                         : "no target named " + shell_quote(name) + " in [backup]");
    }
    return out;
}

// The archive `id` on `target_name` (or the first target that has it).
Result<Found> find_archive(const Settings& s, const std::string& id, const std::string& target_name) {
    bool key = !s.encryption_key_file.empty();
    std::vector<std::string> tried;
    std::vector<std::string> refused;
    auto chosen = TRY(chosen_targets(s, target_name));
    for (const TargetSettings* target : chosen) {
        const TargetSettings& ts = *target;
        auto t = make_target(ts);
        if (!t) {
            tried.push_back(ts.name + " (" + t.error().message + ")");
            continue;
        }
        auto listed = (*t)->list();
        if (!listed) {
            tried.push_back(ts.name + " (" + listed.error().message + ")");
            continue;
        }
        for (const auto& a : *listed) {
            if (a.id != id && a.object != id) {
                continue;
            }
            if (key && !a.encrypted) {
                refused.push_back(ts.name + ": " + unencrypted_refusal(a));
                continue;
            }
            return Found{std::move(*t), a};
        }
        tried.push_back(ts.name);
    }
    if (!refused.empty()) {
        return make_error(ErrorCode::auth, util::join(refused, "; "));
    }
    return make_error(ErrorCode::io, "no archive '" + id + "' on " + util::join(tried, ", "));
}

// The pull side of an archive: the target's bytes, decrypted when the name says .enc.
struct OpenedArchive {
    std::unique_ptr<Source> raw;
    std::unique_ptr<Source> plain;
    Source* source = nullptr;
};

Result<OpenedArchive> open_archive(const Settings& s, Found& f) {
    if (!s.encryption_key_file.empty() && !f.stored.encrypted) {
        return make_error(ErrorCode::auth, unencrypted_refusal(f.stored));
    }
    OpenedArchive o;
    o.raw = TRY(f.target->open(f.stored.object));
    o.source = o.raw.get();
    if (f.stored.encrypted) {
        if (s.encryption_key_file.empty()) {
            return make_error(ErrorCode::config,
                              f.stored.object + " is encrypted, but [backup] sets no encryption_key_file");
        }
        auto key = TRY(load_key(s.encryption_key_file));
        o.plain = decrypting_source(key, *o.raw);
        o.source = o.plain.get();
    }
    return o;
}

Result<ReadResult> read_once(const Settings& s, Found& f, const ReadCallbacks& cb) {
    auto o = TRY(open_archive(s, f));
    auto r = read_archive(*o.source, cb);
    if (!r) {
        auto e = r.error();
        e.message = f.stored.object + ": " + e.message;
        return e;
    }
    return r;
}

// The parts of a path below files/; nullopt for an absolute path or one with empty, "." or ".."
// parts.
std::optional<std::vector<std::string>> path_parts(const std::string& rel) {
    if (rel.empty() || rel[0] == '/') {
        return std::nullopt;
    }
    auto parts = util::split(rel, '/');
    for (const auto& p : parts) {
        if (p.empty() || p == "." || p == "..") {
            return std::nullopt;
        }
    }
    return parts;
}

// The directory parts[0..n) beneath `root`, opened one part at a time with O_NOFOLLOW: a path can
// never leave the restore directory through a symbolic link, whether the archive made it or not.
Result<util::Fd> open_beneath(int root, const std::vector<std::string>& parts, size_t n) {
    util::Fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
    for (size_t i = 0; i < n; ++i) {
        util::Fd next(::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            int err = errno;
            return damaged("'" + util::join({parts.begin(), parts.begin() + static_cast<long>(i) + 1}, "/") +
                           "' is not a directory of the restore" +
                           (err == ELOOP || err == ENOTDIR ? std::string(" (a symbolic link is never followed)")
                                                           : ": " + std::string(std::strerror(err))));
        }
        dir = std::move(next);
    }
    return dir;
}

// Restored permission bits: setuid and setgid only when asked for.
unsigned restored_mode(unsigned mode, bool keep_setid) {
    return mode & (keep_setid ? 07777u : 01777u);
}

std::string sql_ident(const std::string& name) {
    return "`" + name + "`";
}

Result<void> write_fd(int fd, const char* p, size_t n, const std::string& what) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return errno_error(what);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return Ok{};
}

// The database a restore reads, as the archive's manifest describes it.
struct DumpedDatabase {
    std::vector<std::string> chunks;  // entry paths of its SQL, in order
    std::string charset;
    std::string collation;
    std::string into;  // the database it is restored into
};

// Finds database `o.db` in the manifest and checks what a restore takes from it. The manifest is
// as trusted as the target it came from (entries_matching_manifest checked only its entry list):
// every field is checked for its type before use, and the character set and collation reach SQL
// only when they are plain names.
Result<DumpedDatabase> dumped_database(const RestoreOptions& o, const Found& f, const nlohmann::json& manifest) {
    const nlohmann::json* db = nullptr;
    auto sources = manifest.find("sources");
    if (sources != manifest.end() && sources->is_object()) {
        auto mariadb = sources->find("mariadb");
        if (mariadb != sources->end() && mariadb->is_object()) {
            auto databases = mariadb->find("databases");
            if (databases != mariadb->end() && databases->is_array()) {
                for (const auto& d : *databases) {
                    if (d.is_object() && d.contains("name") && d["name"] == o.db) {
                        db = &d;
                    }
                }
            }
        }
    }
    if (!db) {
        return make_error(ErrorCode::usage, "archive " + f.stored.id + " holds no database " + shell_quote(o.db));
    }
    DumpedDatabase out;
    auto text_field = [&](const char* key, const char* fallback) -> std::string {
        auto it = db->find(key);
        return it != db->end() && it->is_string() ? it->get<std::string>() : fallback;
    };
    out.charset = text_field("character_set", "utf8mb4");
    out.collation = text_field("collation", "");
    static const std::regex k_charset("^[A-Za-z0-9_]{1,64}$");
    if (!std::regex_match(out.charset, k_charset) ||
        (!out.collation.empty() && !std::regex_match(out.collation, k_charset))) {
        return damaged("archive " + f.stored.id + ": database " + shell_quote(o.db) +
                       " has a character set or collation that is not a plain name: refused");
    }
    auto chunks = db->find("chunks");
    if (chunks == db->end() || !chunks->is_array()) {
        return damaged("archive " + f.stored.id + ": database " + shell_quote(o.db) + " lists no pieces");
    }
    for (const auto& c : *chunks) {
        if (!c.is_string()) {
            return damaged("archive " + f.stored.id + ": database " + shell_quote(o.db) +
                           " lists a piece that is not a name");
        }
        out.chunks.push_back(c.get<std::string>());
    }
    static const std::regex k_name("^[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}$");
    out.into = o.into.empty() ? o.db : o.into;
    if (!std::regex_match(out.into, k_name)) {
        return make_error(ErrorCode::usage,
                          "--into " + shell_quote(out.into) + " is not a database name nodectl accepts");
    }
    if (out.into == o.db && !o.force) {
        return make_error(ErrorCode::usage, "restoring over the original database " + shell_quote(o.db) +
                                                " needs --force (or restore beside it with --into NEW_NAME)");
    }
    return out;
}

Result<RestoreReport> restore_db(const Settings& s, const RestoreOptions& o, Found& f, const nlohmann::json& manifest) {
    auto dumped = TRY(dumped_database(o, f, manifest));
    const std::string& into = dumped.into;
    const std::vector<std::string>& chunks = dumped.chunks;
    const auto& m = s.mariadb;
    std::string password;
    if (m.password) {
        password = TRY(resolve_secret(*m.password)).reveal();
    }
    ClientOptionFile opt;
    std::string host = o.db_host.empty() && o.db_socket.empty() ? m.host : o.db_host;
    std::string socket = o.db_host.empty() && o.db_socket.empty() ? m.socket : o.db_socket;
    TRY_VOID(opt.create(host, o.db_port > 0 ? o.db_port : m.port, socket, m.user, password));
    std::fill(password.begin(), password.end(), '\0');
    auto exists =
        TRY(run_capture({m.client_command, opt.arg(), "-N", "-B", "-e",
                         "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '" + into + "'"}));
    bool existed = exists.find('1') == 0;
    if (existed && !o.force) {
        return make_error(ErrorCode::usage, "database " + shell_quote(into) +
                                                " exists on the server; choose another --into or add --force");
    }
    if (!existed) {
        std::string sql = "CREATE DATABASE " + sql_ident(into) + " CHARACTER SET " + dumped.charset +
                          (dumped.collation.empty() ? "" : " COLLATE " + dumped.collation);
        TRY(run_capture({m.client_command, opt.arg(), "-e", sql}));
    }
    auto drop_created = [&] {
        if (!existed) {
            auto r = run_capture({m.client_command, opt.arg(), "-e", "DROP DATABASE " + sql_ident(into)});
            if (!r) {
                log::warn(k_log, "could not drop the partly restored database {}: {}", into, r.error().message);
            }
        }
    };
    Child client;
    auto started = client.start({m.client_command, opt.arg(), "--binary-mode", "--", into}, true, false);
    if (!started) {
        drop_created();
        return started.error();
    }
    size_t next = 0;
    std::string prefix = "db/" + o.db + ".sql.";
    uint64_t bytes = 0;
    ReadCallbacks cb;
    cb.on_entry = [&](const ReadEntry& e) -> Result<void> {
        if (e.path.rfind(prefix, 0) == 0) {
            if (next >= chunks.size() || chunks[next] != e.path) {
                return damaged("entry " + shell_quote(e.path) + " is out of order (expected " +
                               (next < chunks.size() ? shell_quote(chunks[next]) : std::string("no more pieces")) +
                               ")");
            }
            ++next;
        }
        return Ok{};
    };
    cb.on_data = [&](const ReadEntry& e, const char* p, size_t n) -> Result<void> {
        if (e.path.rfind(prefix, 0) != 0) {
            return Ok{};
        }
        bytes += n;
        auto w = write_fd(client.stdin_fd(), p, n, "feeding " + m.client_command);
        if (!w) {
            return make_error(ErrorCode::command,
                              m.client_command + " stopped reading while " + e.path + " was restored");
        }
        return Ok{};
    };
    auto read = read_once(s, f, cb);
    client.close_stdin();
    auto exited = client.wait();
    if (!read || !exited || next != chunks.size()) {
        drop_created();
        if (!exited) {
            return make_error(ErrorCode::command, "restore of " + shell_quote(o.db) + " into " + shell_quote(into) +
                                                      " failed: " + exited.error().message);
        }
        if (!read) {
            return read.error();
        }
        return damaged("the archive holds " + std::to_string(next) + " of the " + std::to_string(chunks.size()) +
                       " pieces of database " + shell_quote(o.db));
    }
    RestoreReport rep;
    rep.done.push_back("database " + shell_quote(o.db) + " restored into " + shell_quote(into) + " (" +
                       std::to_string(bytes) + " bytes of SQL, " + std::to_string(chunks.size()) + " piece(s))");
    return rep;
}

// Every entry is created beneath the restore directory through directory descriptors opened with
// O_NOFOLLOW (open_beneath), so neither a symbolic link of the archive nor anything else can make
// a later entry land, or an owner or mode change apply, outside it. Symbolic links are created as
// they are and never followed; hard links are refused (nodectl writes none); setuid/setgid bits
// are dropped unless --keep-setid.
class FileRestorer {
public:
    FileRestorer(int root_dir, std::string work, bool keep_setid)
        : m_root_dir(root_dir), m_work(std::move(work)), m_keep_setid(keep_setid), m_root(::geteuid() == 0) {}

    ReadCallbacks callbacks() {
        ReadCallbacks cb;
        cb.on_entry = [this](const ReadEntry& e) { return entry(e); };
        cb.on_data = [this](const ReadEntry& e, const char* p, size_t n) { return data(e, p, n); };
        cb.on_end = [this](const ReadEntry& e) { return end(e); };
        return cb;
    }

    // Directories last, deepest first: writing into them changed their mtimes.
    Result<void> finish_directories() {
        m_fd = util::Fd();
        for (auto it = m_dirs.rbegin(); it != m_dirs.rend(); ++it) {
            auto dir = TRY(open_beneath(m_root_dir, it->parts, it->parts.size()));
            ::fchmod(dir.get(), restored_mode(it->mode, m_keep_setid));
            timespec times[2] = {{it->mtime, 0}, {it->mtime, 0}};
            ::futimens(dir.get(), times);
        }
        ::fchmod(m_root_dir, 0755);
        return Ok{};
    }

    std::string summary(const std::string& dest) const {
        return std::to_string(m_count) + " file(s), " + std::to_string(m_bytes) + " bytes restored into " + dest;
    }

private:
    Result<void> entry(const ReadEntry& e) {
        if (e.path.rfind("files/", 0) != 0) {
            return Ok{};
        }
        auto parts = path_parts(e.path.substr(6));
        if (!parts) {
            return damaged("entry '" + e.path + "' has an unsafe path (absolute, or with empty, '.' or '..' parts)");
        }
        if (!e.hardlink.empty()) {
            return damaged("entry '" + e.path + "' is a hard link to '" + e.hardlink +
                           "' (nodectl archives hold none): refused");
        }
        auto parent_r = open_beneath(m_root_dir, *parts, parts->size() - 1);
        if (!parent_r) {
            return damaged("entry '" + e.path + "': " + parent_r.error().message);
        }
        int parent = parent_r->get();
        const char* leaf = parts->back().c_str();
        m_current = m_work + "/" + e.path.substr(6);
        if (e.type == AE_IFDIR) {
            if (::mkdirat(parent, leaf, 0700) != 0) {
                struct stat st {};
                if (errno != EEXIST || ::fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
                    return errno_error("cannot create " + m_current);
                }
            }
            chown_leaf(parent, leaf, e);
            m_dirs.push_back({*parts, e.mtime, e.mode});
        } else if (e.type == AE_IFLNK) {
            if (::symlinkat(e.symlink.c_str(), parent, leaf) != 0) {
                return errno_error("cannot create link " + m_current);
            }
            chown_leaf(parent, leaf, e);
            ++m_count;
        } else if (e.type == AE_IFREG) {
            m_fd = util::Fd(::openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!m_fd) {
                return errno_error("cannot create " + m_current);
            }
            ++m_count;
        } else {
            log::warn(k_log, "skipped {}: not a regular file, directory or symbolic link", e.path);
        }
        return Ok{};
    }

    Result<void> data(const ReadEntry& e, const char* p, size_t n) {
        if (!m_fd || e.path.rfind("files/", 0) != 0) {
            return Ok{};
        }
        m_bytes += n;
        return write_fd(m_fd.get(), p, n, "cannot write " + m_current);
    }

    Result<void> end(const ReadEntry& e) {
        if (!m_fd) {
            return Ok{};
        }
        if (m_root) {
            (void)::fchown(m_fd.get(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid));
        }
        ::fchmod(m_fd.get(), restored_mode(e.mode, m_keep_setid));
        timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
        ::futimens(m_fd.get(), times);
        bool ok = ::fsync(m_fd.get()) == 0;
        int err = errno;
        m_fd = util::Fd();
        if (!ok) {
            return make_error(ErrorCode::io, "fsync " + m_current + ": " + std::strerror(err));
        }
        return Ok{};
    }

    void chown_leaf(int parent, const char* leaf, const ReadEntry& e) const {
        if (m_root) {
            (void)::fchownat(parent, leaf, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW);
        }
    }

    struct DirTime {
        std::vector<std::string> parts;
        int64_t mtime;
        unsigned mode;
    };

    int m_root_dir;
    std::string m_work;
    bool m_keep_setid;
    bool m_root;
    util::Fd m_fd;
    uint64_t m_count = 0, m_bytes = 0;
    std::vector<DirTime> m_dirs;
    std::string m_current;
};

// Restored into DEST.partial-PID first and renamed to DEST (absent or empty) only when complete.
Result<RestoreReport> restore_files(const Settings& s, const RestoreOptions& o, Found& f) {
    std::string dest = fs::absolute(o.to).lexically_normal().string();
    while (dest.size() > 1 && dest.back() == '/') {
        dest.pop_back();
    }
    std::error_code ec;
    if (fs::exists(dest, ec) && !(fs::is_directory(dest, ec) && fs::is_empty(dest, ec))) {
        return make_error(ErrorCode::usage, "--to " + dest + " exists and is not an empty directory");
    }
    std::string work = dest + ".partial-" + std::to_string(::getpid());
    fs::remove_all(work, ec);
    if (::mkdir(work.c_str(), 0700) != 0) {
        return errno_error("cannot create " + work);
    }
    util::Fd root_dir(::open(work.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_dir) {
        int err = errno;
        fs::remove_all(work, ec);
        return make_error(ErrorCode::io, "cannot open " + work + ": " + std::strerror(err));
    }
    FileRestorer restorer(root_dir.get(), work, o.keep_setid);
    auto read = read_once(s, f, restorer.callbacks());
    auto restored = read ? restorer.finish_directories() : Result<void>(read.error());
    if (!restored) {
        fs::remove_all(work, ec);
        return restored.error();
    }
    if (fs::exists(dest, ec)) {
        ::rmdir(dest.c_str());
    }
    if (::rename(work.c_str(), dest.c_str()) != 0) {
        int err = errno;
        fs::remove_all(work, ec);
        return make_error(ErrorCode::io, "cannot rename " + work + " to " + dest + ": " + std::strerror(err));
    }
    RestoreReport rep;
    rep.done.push_back(restorer.summary(dest));
    return rep;
}

}  // namespace

Result<std::vector<ListedArchive>> list(const Settings& s, const std::string& only_target) {
    std::vector<ListedArchive> out;
    auto chosen = TRY(chosen_targets(s, only_target));
    for (const TargetSettings* target : chosen) {
        const TargetSettings& ts = *target;
        auto t = TRY(make_target(ts));
        auto listed = (*t).list();
        if (!listed) {
            auto e = listed.error();
            e.message = "target " + ts.name + ": " + e.message;
            return e;
        }
        std::sort(listed->begin(), listed->end(), [](const Stored& a, const Stored& b) { return a.time < b.time; });
        for (auto& a : *listed) {
            if (!s.encryption_key_file.empty() && !a.encrypted) {
                log::warn(k_log, "target {}: {}", ts.name, unencrypted_refusal(a));
                continue;
            }
            out.push_back({ts.name, a});
        }
    }
    return out;
}

Result<VerifyReport> verify(const Settings& s, const std::string& id, const std::string& target) {
    auto f = TRY(find_archive(s, id, target));
    auto r = TRY(read_once(s, f, {}));
    VerifyReport rep;
    rep.target = f.target->name();
    rep.object = f.stored.object;
    rep.manifest_text = r.manifest_text;
    rep.entries = r.entries;
    return rep;
}

Result<RestoreReport> restore(const Settings& s, const RestoreOptions& o) {
    if (o.db.empty() && !o.files) {
        return make_error(ErrorCode::usage, "say what to restore: --db NAME [--into NEW] and/or --files --to DIR");
    }
    if (o.files && o.to.empty()) {
        return make_error(ErrorCode::usage, "--files needs --to DIR");
    }
    auto f = TRY(find_archive(s, o.id, o.target));
    log::info(k_log, "verifying {} on {} before restoring", f.stored.object, f.target->name());
    auto checked = TRY(read_once(s, f, {}));
    auto manifest = util::parse_json(checked.manifest_text);  // read_once checked it already
    if (!manifest) {
        return damaged(f.stored.object + ": manifest.json is not valid JSON");
    }
    RestoreReport rep;
    if (!o.db.empty()) {
        auto r = TRY(restore_db(s, o, f, *manifest));
        rep.done.insert(rep.done.end(), r.done.begin(), r.done.end());
    }
    if (o.files) {
        auto r = TRY(restore_files(s, o, f));
        rep.done.insert(rep.done.end(), r.done.begin(), r.done.end());
    }
    return rep;
}

Result<std::vector<PruneItem>> prune(const Settings& s, bool dry_run, const std::string& only_target) {
    std::vector<PruneItem> out;
    auto chosen = TRY(chosen_targets(s, only_target));
    for (const TargetSettings* target : chosen) {
        const TargetSettings& ts = *target;
        auto t = TRY(make_target(ts));
        auto listed = TRY(t->list());
        for (const auto& o : prunable(
                 s, ts, listed, std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()))) {
            if (!dry_run) {
                TRY_VOID(t->remove(o));
            }
            out.push_back({ts.name, o});
        }
    }
    return out;
}

}  // namespace nodectl::backup

// The sources of `backup run`, each read on a reading thread of its own into the entry queue:
// MariaDB's databases, dumped in chunks through mariadb-dump, and file trees, walked beneath their
// root without following a link out of it.
#include "modules/backup/detail.hpp"
#include "util/log.hpp"
#include "nodectl/target.hpp"
#include "util/strings.hpp"

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace nodectl::backup {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

ArchiveWriter::Meta generated_meta() {
    ArchiveWriter::Meta m;
    m.mode = 0600;
    m.mtime = std::time(nullptr);
    return m;
}

namespace {

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

Result<std::vector<std::string>> query_lines(const MariadbSource& m, const ClientOptionFile& opt,
                                             const std::string& sql) {
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
    return std::none_of(db.begin(), db.end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; });
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

// Some bytes of the dump (0 at its end). Waits for the pipe or for the queue's cancellation, so
// a dump that stalls cannot hold a run whose archive side already stopped.
Result<size_t> read_dump(int fd, char* p, size_t n, const EntrySource& q) {
    StageClock clock(q.times(), Stage::read);
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {q.cancel_fd(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno_error("waiting for the dump");
        }
        if (fds[1].revents != 0) {
            return make_error(ErrorCode::io, "the archive stopped");
        }
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (r < 0) {
            return make_error(ErrorCode::io, std::string("reading the dump: ") + std::strerror(errno));
        }
        return static_cast<size_t>(r);
    }
}

// The next piece of a dump, up to `piece` bytes in blocks (fewer at its end, none once it ended).
Result<std::vector<Block>> read_piece(int fd, uint64_t piece, EntrySource& q) {
    std::vector<Block> blocks;
    uint64_t total = 0;
    while (total < piece) {
        Block b = TRY(q.block());
        size_t want = static_cast<size_t>(std::min<uint64_t>(k_block_bytes, piece - total));
        while (b.size < want) {
            size_t n = TRY(read_dump(fd, b.bytes.get() + b.size, want - b.size, q));
            if (n == 0) {
                break;
            }
            b.size += n;
        }
        total += b.size;
        bool ended = b.size < want;
        if (b.size > 0) {
            blocks.push_back(std::move(b));
        } else {
            q.give_back(std::move(b));
        }
        if (ended) {
            break;
        }
    }
    return blocks;
}

// One database: mariadb-dump's output as pieces db/NAME.sql.NNNNNN (at least one, maybe empty).
Result<void> dump_one(const MariadbSource& m, const ClientOptionFile& opt, const std::string& db, uint64_t piece,
                      EntrySource& q, nlohmann::json& out) {
    Child dump;
    TRY_VOID(dump.start({m.dump_command, opt.arg(), "--single-transaction", "--routines", "--events", "--triggers",
                         "--hex-blob", "--quick", "--default-character-set=utf8mb4", "--", db},
                        false, true));
    util::Sha256 whole;
    uint64_t total = 0;
    std::vector<std::string> chunks;
    for (;;) {
        auto blocks = TRY(read_piece(dump.stdout_fd(), piece, q));
        uint64_t size = 0;
        for (const auto& b : blocks) {
            size += b.size;
        }
        if (size == 0 && !chunks.empty()) {
            break;
        }
        {
            StageClock clock(q.times(), Stage::hash);
            for (const auto& b : blocks) {
                whole.update(b.bytes.get(), b.size);
            }
        }
        std::string name = chunk_name(db, chunks.size());
        TRY_VOID(q.begin_file(name, size, generated_meta()));  // waits for the queue's turn
        for (auto& b : blocks) {
            TRY_VOID(q.data(std::move(b)));
        }
        TRY_VOID(q.end_file());
        total += size;
        chunks.push_back(name);
        if (size < piece) {
            break;
        }
    }
    auto r = dump.wait();
    if (!r) {
        return make_error(ErrorCode::command, "dump of database '" + db + "' failed: " + r.error().message);
    }
    out = {{"name", db}, {"size", total}, {"sha256", whole.final_hex()}, {"chunks", chunks}};
    return Ok{};
}

}  // namespace

Result<void> dump_databases(const Settings& s, EntrySource& q, nlohmann::json& out) {
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
            std::replace_if(
                shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; },
                '?');
            log::warn(k_log,
                      "database '{}' skipped: its name starts with '-' or holds a control character or a backslash",
                      shown);
        }
    }
    out = {{"server_version", version.empty() ? "" : version[0]},
           {"dump_version", dump_version ? util::trim(*dump_version) : ""},
           {"read_from", replica ? "replica" : "primary"},
           {"databases", nlohmann::json::array()}};
    for (const auto& db : dbs) {
        auto cs = TRY(query_lines(m, opt,
                                  "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                                  "information_schema.SCHEMATA WHERE SCHEMA_NAME = " +
                                      sql_string(db)));
        if (cs.empty()) {
            return make_error(ErrorCode::command, "database " + shell_quote(db) + " does not exist on the server");
        }
        auto tab = cs[0].find('\t');
        std::string charset = cs[0].substr(0, tab), collation = tab == std::string::npos ? "" : cs[0].substr(tab + 1);
        log::info(k_log, "dumping database {}", db);
        nlohmann::json entry;
        TRY_VOID(dump_one(m, opt, db, s.chunk_bytes, q, entry));
        entry["character_set"] = charset;
        entry["collation"] = collation;
        out["databases"].push_back(entry);
    }
    return Ok{};
}

namespace {

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
Result<void> add_file(EntrySource& q, int dir, const std::string& leaf, const std::string& abs, const std::string& name,
                      uint64_t& bytes, bool& added) {
    added = false;
    util::Fd fd(::openat(dir, leaf.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        log::warn(k_log, "skipped {}: {}", abs, std::strerror(errno));
        return Ok{};
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        log::warn(k_log, "skipped {}: no longer a regular file", abs);
        return Ok{};
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    TRY_VOID(q.begin_file(name, size, meta_from(st)));
    uint64_t done = 0;
    bool shrank = false;
    while (done < size) {
        Block b = TRY(q.block());
        size_t want = static_cast<size_t>(std::min<uint64_t>(k_block_bytes, size - done));
        while (b.size < want && !shrank) {
            ssize_t n = 0;
            {
                StageClock clock(q.times(), Stage::read);
                n = ::read(fd.get(), b.bytes.get() + b.size, want - b.size);
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                // The file shrank while it was read: tar needs the size given, so it is padded.
                log::warn(k_log, "{} shrank while it was read ({} of {} bytes); padded with zeros", abs, done + b.size,
                          size);
                shrank = true;
                break;
            }
            b.size += static_cast<size_t>(n);
        }
        if (shrank) {
            std::memset(b.bytes.get() + b.size, 0, want - b.size);
            b.size = want;
        }
        done += b.size;
        TRY_VOID(q.data(std::move(b)));
    }
    bytes += size;
    added = true;
    return q.end_file();
}

struct TreeWalk {
    EntrySource& q;
    const FileTree& t;
    uint64_t files = 0, bytes = 0;

    // The entries of the directory `dir` (opened beneath the tree's root; `rel` is its path in the
    // tree, empty for the root), in name order. Every child is looked at with fstatat(NOFOLLOW)
    // and opened with openat(O_NOFOLLOW) relative to `dir`: a directory swapped for a symbolic
    // link while the walk runs is never followed out of the tree.
    Result<void> walk(int dir, const std::string& rel) {
        std::vector<std::string> names;
        {
            util::Fd copy(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
            DIR* d = copy ? ::fdopendir(copy.get()) : nullptr;
            if (!d) {
                return errno_error("cannot read " + t.path + "/" + rel);
            }
            (void)copy.release();  // closedir closes it
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
            struct stat st {};
            if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                continue;  // gone since it was listed
            }
            if (!t.exclude.empty() && matches(t.exclude, child)) {
                continue;
            }
            if (S_ISDIR(st.st_mode)) {
                util::Fd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!sub) {
                    log::warn(k_log, "skipped {}: {}", abs, std::strerror(errno));
                    continue;
                }
                struct stat sst {};
                ::fstat(sub.get(), &sst);
                TRY_VOID(q.add_directory(name, meta_from(sst)));
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
                    TRY_VOID(q.add_symlink(name, target, meta_from(st)));
                    ++files;
                }
            } else if (S_ISREG(st.st_mode)) {
                bool added = false;
                TRY_VOID(add_file(q, dir, n, abs, name, bytes, added));
                files += added ? 1 : 0;
            } else {
                log::debug(k_log, "skipped {}: not a regular file, directory or symbolic link", abs);
            }
        }
        return Ok{};
    }
};

}  // namespace

Result<void> add_tree(EntrySource& q, const FileTree& t, nlohmann::json& out) {
    util::Fd root_dir(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat root {};
    if (!root_dir || ::fstat(root_dir.get(), &root) != 0) {
        return make_error(ErrorCode::io, "file tree " + t.name + ": " + t.path + " is not a directory");
    }
    TRY_VOID(q.add_directory("files/" + t.name, meta_from(root)));
    TreeWalk walk{q, t};
    TRY_VOID(walk.walk(root_dir.get(), ""));
    out.push_back({{"name", t.name}, {"path", t.path}, {"files", walk.files}, {"bytes", walk.bytes}});
    return Ok{};
}

}  // namespace nodectl::backup

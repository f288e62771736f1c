// What `backup` refuses or survives from a shared target and from the node's own users: links and
// setid bits in a restore, an unencrypted archive beside a key, retention over other hosts' and
// future-dated archives, links and partial files planted in a directory target, a password or a
// manifest value that would add an option or SQL, a webhook URL's secret, and a tree whose entries
// are swapped (for a link, a FIFO, a device node) while the walk runs.
#include "modules/backup/detail.hpp"
#include "modules/backup/module.hpp"
#include "backup_support.hpp"
#include "test_support.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>

#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

using namespace nodectl;
// nodectl::backup's names unqualified in this file only (unity build: see test_modules_backup.cpp).
namespace backup_untrusted_test {
using namespace nodectl::backup;
using namespace nodectl::backup_testing;
using nodectl::testing::TempDir;
namespace fs = std::filesystem;

// ---- a shared target is untrusted: restore, encryption, retention, the directory target ----

namespace {

// The permission bits of `path` itself (lstat: a symbolic link is not followed).
unsigned lstat_mode(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("restore --files: a symbolic link of the archive never leads a later entry outside --to") {
    TempDir tmp;
    std::string store = tmp.file("store"), outside = tmp.file("outside");
    REQUIRE(fs::create_directories(store));
    REQUIRE(fs::create_directories(outside + "/keep"));
    ::chmod((outside + "/keep").c_str(), 0700);
    put_file(store + "/web1-20260101T000000Z.tar.zst", make_archive([&](ArchiveWriter& w) {
                 REQUIRE(w.add_directory("files/t", meta_with_mode(0755)));
                 REQUIRE(w.add_symlink("files/t/l", outside, meta_with_mode(0777)));
                 REQUIRE(w.add_directory("files/t/l/keep", meta_with_mode(0777)));  // an existing outside directory
                 REQUIRE(w.add_buffer("files/t/l/planted", "#!/bin/sh\n", meta_with_mode(04755)));  // a setuid file
             }));
    RestoreOptions o;
    o.id = "web1-20260101T000000Z";
    o.files = true;
    o.to = tmp.file("restored");
    auto r = restore(dir_settings(store), o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("symbolic link is never followed") != std::string::npos);
    CHECK_FALSE(fs::exists(outside + "/planted"));
    CHECK(lstat_mode(outside + "/keep") == 0700);  // not chmodded
    CHECK_FALSE(fs::exists(o.to));
    CHECK_FALSE(fs::exists(o.to + ".partial-" + std::to_string(::getpid())));
}

TEST_CASE("restore --files: setuid/setgid bits only with --keep-setid; links restored as links") {
    TempDir tmp;
    std::string store = tmp.file("store");
    REQUIRE(fs::create_directories(store));
    put_file(store + "/web1-20260101T000000Z.tar.zst", make_archive([&](ArchiveWriter& w) {
                 REQUIRE(w.add_directory("files/t", meta_with_mode(0755)));
                 REQUIRE(w.add_directory("files/t/shared", meta_with_mode(02775)));
                 REQUIRE(w.add_buffer("files/t/tool", "x", meta_with_mode(04755)));
                 REQUIRE(w.add_symlink("files/t/etc", "/etc", meta_with_mode(0777)));
             }));
    RestoreOptions o;
    o.id = "web1-20260101T000000Z";
    o.files = true;
    o.to = tmp.file("plain");
    REQUIRE(restore(dir_settings(store), o));
    CHECK(lstat_mode(o.to + "/t/tool") == 0755);
    CHECK(lstat_mode(o.to + "/t/shared") == 0775);
    CHECK(fs::read_symlink(o.to + "/t/etc") == "/etc");
    o.to = tmp.file("kept");
    o.keep_setid = true;
    REQUIRE(restore(dir_settings(store), o));
    CHECK(lstat_mode(o.to + "/t/tool") == 04755);
    CHECK(lstat_mode(o.to + "/t/shared") == 02775);
}

TEST_CASE("with a key configured, an unencrypted archive is not listed, verified or restored") {
    TempDir tmp;
    std::string store = tmp.file("store");
    REQUIRE(fs::create_directories(store));
    put_file(tmp.file("key"), std::string(64, 'a') + "\n");
    auto s = dir_settings(store);
    s.encryption_key_file = tmp.file("key");
    auto plain = make_archive([&](ArchiveWriter& w) {
        REQUIRE(w.add_directory("files/t", meta_with_mode(0755)));
        REQUIRE(w.add_buffer("files/t/cron", "* * * * * root evil\n", meta_with_mode(0644)));
    });
    put_file(store + "/web1-20260102T000000Z.tar.zst", plain);  // planted
    put_file(store + "/web1-20260101T000000Z.tar.zst.enc", encrypt(plain, *load_key(s.encryption_key_file), 4096));
    auto l = list(s, "");
    REQUIRE(l);
    REQUIRE(l->size() == 1);
    CHECK((*l)[0].stored.object == "web1-20260101T000000Z.tar.zst.enc");
    auto v = verify(s, "web1-20260102T000000Z", "");
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("is not encrypted, but [backup] sets encryption_key_file") != std::string::npos);
    RestoreOptions o;
    o.id = "web1-20260102T000000Z";
    o.files = true;
    o.to = tmp.file("restored");
    CHECK_FALSE(restore(s, o));
    CHECK_FALSE(fs::exists(o.to));
    CHECK(verify(s, "web1-20260101T000000Z", ""));
    // Not counted for retention either: keep_last = 1 keeps the encrypted one and leaves the plant.
    s.targets[0].retention.keep_last = 1;
    auto p = prune(s, true, "");
    REQUIRE(p);
    CHECK(p->empty());
}

TEST_CASE("retention prunes only this backup's archives: not another host's, not future-dated ones") {
    TempDir tmp;
    std::string store = tmp.file("store");
    REQUIRE(fs::create_directories(store));
    for (const char* n :
         {"web1-20260101T020000Z.tar.zst", "web1-20260102T020000Z.tar.zst", "web1-20260103T020000Z.tar.zst",
          "web2-20260101T020000Z.tar.zst", "web2-20260104T020000Z.tar.zst", "web1-db-20260104T020000Z.tar.zst",
          "web1-20990101T000000Z.tar.zst"}) {
        put_file(store + "/" + n, "");
    }
    auto s = dir_settings(store);
    s.targets[0].retention.keep_last = 2;
    auto p = prune(s, false, "");
    REQUIRE(p);
    REQUIRE(p->size() == 1);
    CHECK((*p)[0].object == "web1-20260101T020000Z.tar.zst");
    for (const char* n :
         {"web1-20260102T020000Z.tar.zst", "web1-20260103T020000Z.tar.zst", "web2-20260101T020000Z.tar.zst",
          "web2-20260104T020000Z.tar.zst", "web1-db-20260104T020000Z.tar.zst", "web1-20990101T000000Z.tar.zst"}) {
        CHECK_MESSAGE(fs::exists(store + "/" + n), n);
    }
    std::vector<std::string> ignored;
    auto own = own_archives({stored_at("20260101T020000Z"), stored_at("20990101T000000Z")}, "web1", false,
                            std::chrono::sys_seconds(std::chrono::seconds(1798761600)), &ignored);
    CHECK(own.size() == 1);
    REQUIRE(ignored.size() == 1);
    CHECK(ignored[0].find("dated in the future") != std::string::npos);
}

TEST_CASE("directory target: a link planted in the shared directory is neither written through nor listed") {
    TempDir tmp;
    std::string store = tmp.file("store"), victim = tmp.file("victim");
    REQUIRE(fs::create_directories(store));
    put_file(victim, "precious");
    std::string object = "web1-20260101T000000Z.tar.zst";
    // The temp name the target used to pick (PID only), and an archive name, both links to the victim.
    fs::create_symlink(victim, store + "/." + object + ".partial-" + std::to_string(::getpid()));
    fs::create_symlink(victim, store + "/web1-20250101T000000Z.tar.zst");
    TargetSettings ts;
    ts.name = "shared";
    ts.path = store;
    auto t = make_directory_target(ts);
    auto up = t->upload(object);
    REQUIRE(up);
    REQUIRE((*up)->write("archive", 7));
    REQUIRE((*up)->commit());
    CHECK(*util::read_file(victim) == "precious");
    CHECK(*util::read_file(store + "/" + object) == "archive");
    auto l = t->list();
    REQUIRE(l);
    REQUIRE(l->size() == 1);
    CHECK((*l)[0].object == object);
    CHECK_FALSE(t->open("web1-20250101T000000Z.tar.zst"));
}

TEST_CASE("directory target: an upload removes this host's partial files of runs that died, nothing else") {
    TempDir tmp;
    std::string store = tmp.file("store");
    REQUIRE(fs::create_directories(store));
    char host[256] = {};
    REQUIRE(::gethostname(host, sizeof host - 1) == 0);
    // A process that has ended: its PID is not running (the kernel does not reuse it this soon).
    pid_t dead = ::fork();
    if (dead == 0) {
        ::_exit(0);
    }
    REQUIRE(dead > 0);
    ::waitpid(dead, nullptr, 0);
    std::string h = host;
    for (auto& c : h) {
        c = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
    }
    std::string stale = "/.web1-20260101T000000Z.tar.zst.partial-" + h + "-" + std::to_string(dead) + "-AbC123";
    std::string running = "/.web1-20260101T010000Z.tar.zst.partial-" + h + "-" + std::to_string(::getpid()) + "-XyZ789";
    std::string other_host =
        "/.web2-20260101T000000Z.tar.zst.partial-otherhost.test-" + std::to_string(dead) + "-QwE456";
    for (const auto& f : {stale, running, other_host}) {
        put_file(store + f, "partial");
    }
    TargetSettings ts;
    ts.name = "shared";
    ts.path = store;
    auto t = make_directory_target(ts);
    auto up = t->upload("web1-20260102T000000Z.tar.zst");
    REQUIRE(up);
    CHECK_FALSE(fs::exists(store + stale));
    CHECK(fs::exists(store + running));
    CHECK(fs::exists(store + other_host));
    (*up)->abort();
}

TEST_CASE("MariaDB option file: a newline in the password cannot add an option line") {
    ClientOptionFile opt;
    std::string pw = "a\"b\\c\nhost=evil.example\td";
    REQUIRE(opt.create("", 3306, "/run/mysqld/mysqld.sock", "root", pw));
    std::string file = opt.arg().substr(std::string("--defaults-extra-file=").size());
    auto text = util::read_file(file);
    REQUIRE(text);
    CHECK(text->find("\nhost=") == std::string::npos);
    // An anonymous memory file, never on disk (a killed run leaves no password behind), 0600.
    CHECK(file.starts_with("/dev/fd/"));
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_nlink == 0);
    // MariaDB's own option-file reader reads the password back exactly.
    if (fs::exists("/usr/bin/my_print_defaults")) {
        auto out = run_capture({"/usr/bin/my_print_defaults", "--defaults-file=" + file, "client"});
        REQUIRE(out);
        CHECK(*out == "--user=root\n--password=" + pw + "\n--socket=/run/mysqld/mysqld.sock\n");
    }
    ClientOptionFile bad;
    CHECK_FALSE(bad.create("", 3306, "", "root", std::string("pw\x01", 3)));
}

TEST_CASE("restore --db: a manifest whose database entry is malformed or would add SQL is refused, never thrown on") {
    // The manifest comes from a shared target: each case changes the `sources` it declares.
    const nlohmann::json good_db = {{"name", "shop"}, {"chunks", {"db/shop.sql.000000"}}, {"collation", ""}};
    auto with_db = [&](const char* key, nlohmann::json value) {
        nlohmann::json db = good_db;
        db[key] = std::move(value);
        return nlohmann::json{{"mariadb", {{"databases", {db}}}}};
    };
    struct Case {
        const char* what;
        nlohmann::json sources;
        ErrorCode code;
        const char* message;
    };
    const Case cases[] = {
        {"a character set that adds SQL",
         with_db("character_set", "utf8mb4 COLLATE utf8mb4_bin; DROP DATABASE mysql; --"), ErrorCode::damaged,
         "character set or collation that is not a plain name"},
        {"a collation that adds SQL", with_db("collation", "x; DROP DATABASE mysql"), ErrorCode::damaged,
         "character set or collation that is not a plain name"},
        {"chunks that are not a list", with_db("chunks", "db/shop.sql.000000"), ErrorCode::damaged, "lists no pieces"},
        {"a chunk that is not a name", with_db("chunks", {42}), ErrorCode::damaged, "a piece that is not a name"},
        {"mariadb without databases", {{"mariadb", {{"other", 1}}}}, ErrorCode::usage, "holds no database 'shop'"},
        {"databases that are not a list",
         {{"mariadb", {{"databases", "shop"}}}},
         ErrorCode::usage,
         "holds no database 'shop'"},
        {"a database entry that is not an object",
         {{"mariadb", {{"databases", {7, "shop"}}}}},
         ErrorCode::usage,
         "holds no database 'shop'"},
        {"mariadb that is not an object", {{"mariadb", {1, 2}}}, ErrorCode::usage, "holds no database 'shop'"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        TempDir tmp;
        std::string store = tmp.file("store");
        REQUIRE(fs::create_directories(store));
        std::string dump = "CREATE TABLE t (i INT);\n";
        put_file(store + "/web1-20260101T000000Z.tar.zst",
                 make_archive(
                     [&](ArchiveWriter& w) { REQUIRE(w.add_buffer("db/shop.sql.000000", dump, meta_with_mode(0600))); },
                     c.sources));
        auto s = dir_settings(store);
        s.mariadb.client_command = tmp.file("no-such-client");
        RestoreOptions o;
        o.id = "web1-20260101T000000Z";
        o.db = "shop";
        o.into = "shop_copy";
        auto r = restore(s, o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == c.code);
        CHECK(r.error().message.find(c.message) != std::string::npos);
    }
}

TEST_CASE("failure webhook: its URL (and token) never reaches the error message") {
    Settings s;
    RunReport report;
    auto err = post_webhook("http://user:pw-secret@127.0.0.1:1/hooks/T0-SECRET-TOKEN?token=SECRET2", s, report);
    CHECK_FALSE(err.empty());
    CHECK(err.find("SECRET") == std::string::npos);
    CHECK(err.find("pw-secret") == std::string::npos);
    CHECK(err.find("127.0.0.1:1/...") != std::string::npos);
}

// ---- the file walk: entries swapped while the walk runs (a node's local users own parts of the tree) ----

namespace {

// Every regular file of the archive `object` in `store`, by archive path.
std::map<std::string, std::string> archived_files(const std::string& store, const std::string& object) {
    TargetSettings ts;
    ts.name = "shared";
    ts.path = store;
    auto target = make_directory_target(ts);
    auto src = target->open(object);
    REQUIRE(src);
    std::map<std::string, std::string> out;
    ReadCallbacks cb;
    cb.on_entry = [&](const ReadEntry& e) -> Result<void> {
        if (e.type == AE_IFREG) {
            out[e.path];
        }
        return Ok{};
    };
    cb.on_data = [&](const ReadEntry& e, const char* p, size_t n) -> Result<void> {
        out[e.path].append(p, n);
        return Ok{};
    };
    cb.on_end = [](const ReadEntry&) -> Result<void> { return Ok{}; };
    REQUIRE(read_archive(**src, cb));
    return out;
}

// Ignores SIGIO (a broken file lease signals its holder) while alive.
struct IgnoreSigio {
    struct sigaction old {};
    IgnoreSigio() {
        struct sigaction ign {};
        ign.sa_handler = SIG_IGN;
        ::sigaction(SIGIO, &ign, &old);
    }
    ~IgnoreSigio() { ::sigaction(SIGIO, &old, nullptr); }
};

}  // namespace

TEST_CASE("backup files: a directory swapped for a symbolic link during the walk is not followed out of the tree") {
    // tree/a/f0..f7 hold "original"; outside/f0..f7 hold "SECRET". Each tree/a/fN carries a write
    // lease: the walk's first open of one of them waits (or, non-blocking, fails) until the lease
    // is given back, and before giving it back this test swaps tree/a for a link to outside/. What
    // the walk reads after that must still come from the tree, never from outside/.
    TempDir tmp;
    std::string tree = tmp.file("tree"), outside = tmp.file("outside"), store = tmp.file("store");
    REQUIRE(fs::create_directories(tree + "/a"));
    REQUIRE(fs::create_directories(outside));
    REQUIRE(fs::create_directories(store));
    constexpr int k_files = 8;
    std::vector<int> leased;
    for (int i = 0; i < k_files; ++i) {
        std::string f = "/f" + std::to_string(i);
        put_file(tree + "/a" + f, "original\n");
        put_file(outside + f, "SECRET\n");
    }
    IgnoreSigio ignore;
    for (int i = 0; i < k_files; ++i) {
        int fd = ::open((tree + "/a/f" + std::to_string(i)).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE_MESSAGE(::fcntl(fd, F_SETLEASE, F_WRLCK) == 0, "file leases: ", std::strerror(errno));
        leased.push_back(fd);
    }
    std::atomic<bool> swapped{false}, stop{false};
    std::thread holder([&] {
        while (!stop) {
            for (int fd : leased) {
                if (::fcntl(fd, F_GETLEASE) != F_WRLCK) {  // somebody opens it: the lease is being broken
                    swapped = ::rename((tree + "/a").c_str(), (tree + "/a.away").c_str()) == 0 &&
                              ::symlink(outside.c_str(), (tree + "/a").c_str()) == 0;
                    for (int l : leased) {
                        ::close(l);
                    }
                    return;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        for (int l : leased) {
            ::close(l);
        }
    });
    auto s = dir_settings(store);
    s.files.push_back({"t", tree, {}, {}});
    backup::RunOptions o;
    o.prune = false;
    auto report = run(s, o);
    stop = true;
    holder.join();
    REQUIRE(swapped);
    REQUIRE(report.ok_count() == 1);
    auto files = archived_files(store, report.id + ".tar.zst");
    for (const auto& [path, content] : files) {
        INFO(path);
        CHECK(content.find("SECRET") == std::string::npos);
        CHECK(content == "original\n");
    }
}

TEST_CASE("backup files: a file swapped for a FIFO or a device node during the walk is skipped; the run never blocks") {
    // tree/x is flipped, as fast as the test can, between a regular file and a FIFO (or a
    // character device) by renaming hard links of two fixed files over it. A long include list
    // widens the gap between the walk's stat and its open of x, so the swap lands in it. What is
    // archived as x must always be the regular file's content; an open that blocks on the FIFO is
    // released after 10 s by opening the FIFO for writing (and counted). Not sooner: the walk's own
    // non-blocking open holds the FIFO for an instant, and on a loaded machine a run can last
    // seconds, so a short wait could catch that instant and count a run that never blocked.
    for (bool fifo : {true, false}) {
        CAPTURE(fifo);
        TempDir tmp;
        std::string tree = tmp.file("tree"), spare = tmp.file("spare");
        REQUIRE(fs::create_directories(tree));
        REQUIRE(fs::create_directories(spare));
        put_file(spare + "/reg", "regular\n");
        int made = fifo ? ::mkfifo((spare + "/special").c_str(), 0644)
                        : ::mknod((spare + "/special").c_str(), S_IFCHR | 0644, ::makedev(1, 3));  // like /dev/null
        if (made != 0 && !fifo) {
            MESSAGE("cannot make a device node here (" << std::strerror(errno) << "): device case skipped");
            continue;
        }
        REQUIRE(made == 0);
        REQUIRE(::link((spare + "/reg").c_str(), (tree + "/x").c_str()) == 0);

        std::atomic<bool> stop{false}, blocked{false};
        std::atomic<int64_t> run_started{0};
        auto now_ms = [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                .count();
        };
        std::thread flipper([&] {
            bool special = false;
            while (!stop) {
                special = !special;
                std::string from = spare + (special ? "/special" : "/reg"), tmp_link = spare + "/next";
                if (::link(from.c_str(), tmp_link.c_str()) == 0) {
                    ::rename(tmp_link.c_str(), (tree + "/x").c_str());
                    ::unlink(tmp_link.c_str());
                }
                int64_t started = run_started;
                if (fifo && started != 0 && now_ms() - started > 10000) {
                    int w = ::open((spare + "/special").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                    if (w >= 0) {  // only succeeds while a reader has the FIFO open
                        blocked = true;
                        ::close(w);
                    }
                }
                std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
            ::link((spare + "/reg").c_str(), (spare + "/next").c_str());
            ::rename((spare + "/next").c_str(), (tree + "/x").c_str());
        });
        FileTree t{"t", tree, {}, {}};
        for (int i = 0; i < 20000; ++i) {
            t.include.push_back("nothing-matches-" + std::to_string(i));
        }
        t.include.push_back("x");
        int archived = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(6);
        for (int i = 0; i < 40 && std::chrono::steady_clock::now() < deadline && !blocked; ++i) {
            std::string store = tmp.file("store" + std::to_string(i));
            REQUIRE(fs::create_directories(store));
            auto s = dir_settings(store);
            s.files = {t};
            backup::RunOptions o;
            o.prune = false;
            run_started = now_ms();
            auto report = run(s, o);
            run_started = 0;
            REQUIRE(report.ok_count() == 1);
            auto files = archived_files(store, report.id + ".tar.zst");
            if (auto x = files.find("files/t/x"); x != files.end()) {
                CHECK(x->second == "regular\n");
                ++archived;
            }
        }
        stop = true;
        flipper.join();
        CHECK_FALSE(blocked);
        MESSAGE("x archived in " << archived << " runs");
    }
}

}  // namespace backup_untrusted_test

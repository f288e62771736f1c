// The backup module's pure parts: archive names, retention with fixed dates (month, year and ISO
// week boundaries), the chunked AES-256-GCM stream (round trip, flipped bit, reordered, dropped and
// truncated chunks, wrong key), and the archive + manifest round trip with a damaged entry.
#include "modules/backup/detail.hpp"
#include "modules/backup/module.hpp"
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
// nodectl::backup's names unqualified in this file only: its own namespace keeps the using-directive
// out of the test files compiled together with this one (unity build).
namespace backup_test {
using namespace nodectl::backup;
using nodectl::testing::TempDir;
namespace fs = std::filesystem;

namespace {

class StringSink : public Sink {
public:
    std::string data;
    Result<void> write(const char* p, size_t n) override {
        data.append(p, n);
        return Ok{};
    }
    Result<void> close() override { return Ok{}; }
};

class StringSource : public Source {
public:
    explicit StringSource(std::string d, size_t step = 7777) : m_d(std::move(d)), m_step(step) {}
    Result<size_t> read(char* buf, size_t size) override {
        size_t n = std::min({size, m_step, m_d.size() - m_pos});
        std::memcpy(buf, m_d.data() + m_pos, n);
        m_pos += n;
        return n;
    }

private:
    std::string m_d;
    size_t m_step;
    size_t m_pos = 0;
};

Result<std::string> read_all(Source& s) {
    std::string out;
    char buf[4096];
    for (;;) {
        size_t n = TRY(s.read(buf, sizeof buf));
        if (n == 0) {
            return out;
        }
        out.append(buf, n);
    }
}

Key key_of(unsigned char v) {
    Key k;
    k.fill(v);
    return k;
}

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>((i * 131) ^ (i >> 8));
    }
    return s;
}

std::string encrypt(const std::string& plain, const Key& k, size_t chunk) {
    StringSink out;
    auto enc = encrypting_sink(k, out, chunk);
    size_t pos = 0;
    while (pos < plain.size()) {  // uneven writes
        size_t n = std::min<size_t>(plain.size() - pos, 1000 + pos % 3000);
        REQUIRE(enc->write(plain.data() + pos, n));
        pos += n;
    }
    REQUIRE(enc->close());
    return out.data;
}

Result<std::string> decrypt(const std::string& cipher, const Key& k) {
    StringSource in(cipher);
    auto dec = decrypting_source(k, in);
    return read_all(*dec);
}

Stored at(const std::string& ts) {
    auto s = parse_object_name("web1-" + ts + ".tar.zst");
    REQUIRE(s);
    return *s;
}

std::set<std::string> pruned(const std::vector<Stored>& all, const Retention& r) {
    auto v = to_prune(all, r);
    std::set<std::string> out;
    for (const auto& o : v) {
        out.insert(o.substr(5, 16));  // the timestamp
    }
    return out;
}

} // namespace

TEST_CASE("backup archive names: made and parsed back; strangers and temp files are not archives") {
    auto t = std::chrono::sys_seconds(std::chrono::seconds(1798761600));  // 2027-01-01T00:00:00Z
    CHECK(make_id("web1", t) == "web1-20270101T000000Z");
    auto s = parse_object_name("web1-20270101T000000Z.tar.zst.enc");
    REQUIRE(s);
    CHECK(s->id == "web1-20270101T000000Z");
    CHECK(s->encrypted);
    CHECK(s->time == t);
    CHECK_FALSE(parse_object_name(".web1-20270101T000000Z.tar.zst.partial-12"));
    CHECK_FALSE(parse_object_name("web1-20270101T000000Z.tar.gz"));
    CHECK_FALSE(parse_object_name("notes.txt"));
}

TEST_CASE("retention: keep_last, daily across a month boundary, monthly across a year boundary") {
    std::vector<Stored> all = {at("20251231T020000Z"), at("20260101T020000Z"), at("20260115T020000Z"),
                               at("20260131T020000Z"), at("20260201T020000Z"), at("20260201T140000Z"),
                               at("20260202T020000Z"), at("20260203T020000Z")};
    CHECK(to_prune(all, {}).empty());  // no rule: nothing is ever deleted
    CHECK(pruned(all, {2, 0, 0, 0}).size() == 6);
    CHECK(pruned(all, {2, 0, 0, 0}).count("20260202T020000Z") == 0);
    // 3 days: 02-03, 02-02 and the *later* archive of 02-01; the day before (01-31) is another month.
    CHECK(pruned(all, {0, 3, 0, 0}) == std::set<std::string>{"20251231T020000Z", "20260101T020000Z", "20260115T020000Z",
                                                              "20260131T020000Z", "20260201T020000Z"});
    // 3 months: the newest of 2026-02, 2026-01 (01-31) and 2025-12 (12-31).
    CHECK(pruned(all, {0, 0, 0, 3}) == std::set<std::string>{"20260101T020000Z", "20260115T020000Z", "20260201T020000Z",
                                                              "20260201T140000Z", "20260202T020000Z"});
    // Rules add up: an archive any rule keeps stays.
    CHECK(pruned(all, {0, 3, 0, 3}) == std::set<std::string>{"20260101T020000Z", "20260115T020000Z", "20260201T020000Z"});
}

TEST_CASE("retention: weekly uses ISO weeks, which cross the year boundary") {
    // 2024-12-30 (Mon) and 2025-01-05 (Sun) are both in 2025-W01; 2024-12-29 (Sun) is 2024-W52.
    std::vector<Stored> all = {at("20241229T010000Z"), at("20241230T010000Z"), at("20250105T010000Z"),
                               at("20250106T010000Z")};
    CHECK(pruned(all, {0, 0, 2, 0}) == std::set<std::string>{"20241229T010000Z", "20241230T010000Z"});
    CHECK(pruned(all, {0, 0, 3, 0}) == std::set<std::string>{"20241230T010000Z"});
}

TEST_CASE("encryption: round trip for empty, exact-chunk and uneven sizes") {
    auto k = key_of(7);
    for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{8192}, size_t{10000}, size_t{100000}}) {
        auto plain = pattern(n);
        auto c = encrypt(plain, k, 4096);
        CHECK(c.size() > plain.size());
        auto back = decrypt(c, k);
        REQUIRE(back);
        CHECK(*back == plain);
    }
    // The same input encrypts differently each time (random file id).
    CHECK(encrypt("same", k, 4096) != encrypt("same", k, 4096));
}

TEST_CASE("encryption: a flipped bit, reordered, dropped or foreign chunks and truncation are detected") {
    auto k = key_of(9);
    auto plain = pattern(4096 * 3 + 100);  // 4 chunks
    auto c = encrypt(plain, k, 4096);
    const size_t header = 44, frame = 5 + 4096 + 16;
    SUBCASE("a flipped bit in a chunk") {
        auto bad = c;
        bad[header + frame + 100] ^= 0x01;
        auto r = decrypt(bad, k);
        REQUIRE_FALSE(r);
        CHECK(is_damaged(r.error()));
        CHECK(r.error().message.find("chunk 1 failed authentication") != std::string::npos);
    }
    SUBCASE("two chunks swapped") {
        auto bad = c.substr(0, header) + c.substr(header + frame, frame) + c.substr(header, frame) +
                   c.substr(header + 2 * frame);
        auto r = decrypt(bad, k);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("chunk 0 failed authentication") != std::string::npos);
    }
    SUBCASE("a whole chunk dropped") {
        auto bad = c.substr(0, header + frame) + c.substr(header + 2 * frame);
        REQUIRE_FALSE(decrypt(bad, k));
    }
    SUBCASE("truncated after a full chunk: the final flag is missing") {
        auto r = decrypt(c.substr(0, header + 2 * frame), k);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("truncated") != std::string::npos);
    }
    SUBCASE("a chunk from another file of the same key") {
        auto other = encrypt(pattern(4096 * 3 + 100), k, 4096);
        auto bad = c.substr(0, header + frame) + other.substr(header + frame, frame) + c.substr(header + 2 * frame);
        REQUIRE_FALSE(decrypt(bad, k));
    }
    SUBCASE("data after the final chunk") {
        REQUIRE_FALSE(decrypt(c + "x", k));
    }
    SUBCASE("the wrong key is told apart from damage") {
        auto r = decrypt(c, key_of(10));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ErrorCode::auth);
        CHECK(r.error().message.find("wrong encryption key") != std::string::npos);
    }
}

TEST_CASE("archive: entries and manifest written as a stream, read back and checked; a damaged entry is named") {
    StringSink out;
    std::string manifest_text;
    {
        ArchiveWriter w(out, {3, 1});
        REQUIRE(w.open());
        ArchiveWriter::Meta m;
        auto a = pattern(300000), b = std::string("second");
        REQUIRE(w.begin_file("db/x.sql.000000", a.size(), m));
        REQUIRE(w.data(a.data(), 1000));
        REQUIRE(w.data(a.data() + 1000, a.size() - 1000));
        REQUIRE(w.end_file());
        REQUIRE(w.add_directory("files/t", m));
        REQUIRE(w.add_buffer("files/t/b.txt", b, m));
        REQUIRE(w.begin_file("files/t/c", 2, m));
        bool too_much = w.data("abc", 3).ok();  // more than its header said
        CHECK_FALSE(too_much);
        nlohmann::json entries = nlohmann::json::array();
        for (const auto& e : w.entries()) {
            entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
        }
        CHECK(w.entries().size() == 3);
        CHECK(w.entries()[0].sha256 == util::sha256_hex(a));
        manifest_text = nlohmann::json{{"format", k_format_version}, {"entries", entries}}.dump();
    }
    // A fresh writer for the valid archive (the one above saw a refused write).
    StringSink good;
    {
        ArchiveWriter w(good, {3, 1});
        REQUIRE(w.open());
        ArchiveWriter::Meta m;
        auto a = pattern(300000);
        REQUIRE(w.add_buffer("db/x.sql.000000", a, m));
        REQUIRE(w.add_directory("files/t", m));
        REQUIRE(w.add_buffer("files/t/b.txt", "second", m));
        nlohmann::json entries = nlohmann::json::array();
        for (const auto& e : w.entries()) {
            entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
        }
        manifest_text = nlohmann::json{{"format", k_format_version}, {"entries", entries}}.dump();
        REQUIRE(w.add_buffer(k_manifest_name, manifest_text, m));
        REQUIRE(w.finish());
    }
    CHECK(good.data.substr(0, 4) == std::string("\x28\xb5\x2f\xfd", 4));  // a zstd frame
    StringSource in(good.data);
    std::vector<std::string> seen;
    ReadCallbacks cb;
    cb.on_entry = [&](const ReadEntry& e) -> Result<void> {
        seen.push_back(e.path);
        return Ok{};
    };
    auto r = read_archive(in, cb);
    REQUIRE(r);
    CHECK(r->manifest_text == manifest_text);
    CHECK(seen == std::vector<std::string>{"db/x.sql.000000", "files/t", "files/t/b.txt"});

    SUBCASE("a manifest that lists another hash names the entry") {
        StringSink bad;
        ArchiveWriter w(bad, {3, 1});
        REQUIRE(w.open());
        ArchiveWriter::Meta m;
        REQUIRE(w.add_buffer("files/t/b.txt", "second", m));
        nlohmann::json mf = {{"format", k_format_version},
                             {"entries", {{{"path", "files/t/b.txt"}, {"size", 6}, {"sha256", std::string(64, '0')}}}}};
        REQUIRE(w.add_buffer(k_manifest_name, mf.dump(), m));
        REQUIRE(w.finish());
        StringSource bin(bad.data);
        auto rr = read_archive(bin, {});
        REQUIRE_FALSE(rr);
        CHECK(is_damaged(rr.error()));
        CHECK(rr.error().message.find("entry 'files/t/b.txt' does not match manifest.json") != std::string::npos);
    }
    SUBCASE("an archive cut short has no manifest") {
        StringSource cut(good.data.substr(0, good.data.size() / 2));
        auto rr = read_archive(cut, {});
        REQUIRE_FALSE(rr);
        CHECK(is_damaged(rr.error()));
    }
}

TEST_CASE("backup units: the files in systemd/ are what apply renders with the defaults") {
    UnitSettings u;
    auto service = util::read_file(std::string(NODECTL_SOURCE_DIR) + "/systemd/nodectl-backup.service");
    auto timer = util::read_file(std::string(NODECTL_SOURCE_DIR) + "/systemd/nodectl-backup.timer");
    REQUIRE(service);
    REQUIRE(timer);
    CHECK(*service == render_service(u));
    CHECK(*timer == render_timer(u));
    u.mount_paths = {"/mnt/nfs"};
    u.write_paths = {"/mnt/nfs", "/var/lib/prometheus/node-exporter"};
    auto s = render_service(u);
    CHECK(s.find("RequiresMountsFor=/mnt/nfs\n") != std::string::npos);
    CHECK(s.find("ReadWritePaths=-/mnt/nfs -/var/lib/prometheus/node-exporter\n") != std::string::npos);
    for (const char* k : {"Type=oneshot", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                          "IOSchedulingClass=idle", "Nice=19"}) {
        CHECK(s.find(std::string(k) + "\n") != std::string::npos);
    }
    CHECK(render_timer(u).find("Persistent=true\n") != std::string::npos);
}

// ---- a shared target is untrusted: restore, encryption, retention, the directory target ----

namespace {

// A valid archive: what `fill` wrote, then a manifest listing it (plus `sources`).
std::string make_archive(const std::function<void(ArchiveWriter&)>& fill,
                         const nlohmann::json& sources = nlohmann::json::object()) {
    StringSink out;
    ArchiveWriter w(out, {3, 1});
    REQUIRE(w.open());
    fill(w);
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& e : w.entries()) {
        entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
    }
    nlohmann::json m = {{"format", k_format_version}, {"sources", sources}, {"entries", entries}};
    REQUIRE(w.add_buffer(k_manifest_name, m.dump(), {}));
    REQUIRE(w.finish());
    return out.data;
}

void put(const std::string& path, const std::string& data) {
    REQUIRE(util::write_file_atomic(path, data, 0600).empty());
}

ArchiveWriter::Meta mode(unsigned m) {
    ArchiveWriter::Meta meta;
    meta.mode = m;
    meta.mtime = 1700000000;
    return meta;
}

// [backup] with one directory target in `store`.
Settings dir_settings(const std::string& store) {
    Settings s;
    s.name = "web1";
    TargetSettings t;
    t.name = "shared";
    t.path = store;
    s.targets.push_back(t);
    return s;
}

// The permission bits of `path` itself (lstat: a symbolic link is not followed).
unsigned lstat_mode(const std::string& path) {
    struct stat st{};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

TEST_CASE("restore --files: a symbolic link of the archive never leads a later entry outside --to") {
    TempDir tmp;
    std::string store = tmp.file("store"), outside = tmp.file("outside");
    REQUIRE(fs::create_directories(store));
    REQUIRE(fs::create_directories(outside + "/keep"));
    ::chmod((outside + "/keep").c_str(), 0700);
    put(store + "/web1-20260101T000000Z.tar.zst", make_archive([&](ArchiveWriter& w) {
            REQUIRE(w.add_directory("files/t", mode(0755)));
            REQUIRE(w.add_symlink("files/t/l", outside, mode(0777)));
            REQUIRE(w.add_directory("files/t/l/keep", mode(0777)));   // an existing outside directory
            REQUIRE(w.add_buffer("files/t/l/planted", "#!/bin/sh\n", mode(04755)));  // a setuid file
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
    put(store + "/web1-20260101T000000Z.tar.zst", make_archive([&](ArchiveWriter& w) {
            REQUIRE(w.add_directory("files/t", mode(0755)));
            REQUIRE(w.add_directory("files/t/shared", mode(02775)));
            REQUIRE(w.add_buffer("files/t/tool", "x", mode(04755)));
            REQUIRE(w.add_symlink("files/t/etc", "/etc", mode(0777)));
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
    put(tmp.file("key"), std::string(64, 'a') + "\n");
    auto s = dir_settings(store);
    s.encryption_key_file = tmp.file("key");
    auto plain = make_archive([&](ArchiveWriter& w) {
        REQUIRE(w.add_directory("files/t", mode(0755)));
        REQUIRE(w.add_buffer("files/t/cron", "* * * * * root evil\n", mode(0644)));
    });
    put(store + "/web1-20260102T000000Z.tar.zst", plain);  // planted
    put(store + "/web1-20260101T000000Z.tar.zst.enc", encrypt(plain, *load_key(s.encryption_key_file), 4096));
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
    for (const char* n : {"web1-20260101T020000Z.tar.zst", "web1-20260102T020000Z.tar.zst", "web1-20260103T020000Z.tar.zst",
                          "web2-20260101T020000Z.tar.zst", "web2-20260104T020000Z.tar.zst", "web1-db-20260104T020000Z.tar.zst",
                          "web1-20990101T000000Z.tar.zst"}) {
        put(store + "/" + n, "");
    }
    auto s = dir_settings(store);
    s.targets[0].retention.keep_last = 2;
    auto p = prune(s, false, "");
    REQUIRE(p);
    REQUIRE(p->size() == 1);
    CHECK((*p)[0].object == "web1-20260101T020000Z.tar.zst");
    for (const char* n : {"web1-20260102T020000Z.tar.zst", "web1-20260103T020000Z.tar.zst", "web2-20260101T020000Z.tar.zst",
                          "web2-20260104T020000Z.tar.zst", "web1-db-20260104T020000Z.tar.zst", "web1-20990101T000000Z.tar.zst"}) {
        CHECK_MESSAGE(fs::exists(store + "/" + n), n);
    }
    std::vector<std::string> ignored;
    auto own = own_archives({at("20260101T020000Z"), at("20990101T000000Z")}, "web1", false,
                            std::chrono::sys_seconds(std::chrono::seconds(1798761600)), &ignored);
    CHECK(own.size() == 1);
    REQUIRE(ignored.size() == 1);
    CHECK(ignored[0].find("dated in the future") != std::string::npos);
}

TEST_CASE("directory target: a link planted in the shared directory is neither written through nor listed") {
    TempDir tmp;
    std::string store = tmp.file("store"), victim = tmp.file("victim");
    REQUIRE(fs::create_directories(store));
    put(victim, "precious");
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
    std::string other_host = "/.web2-20260101T000000Z.tar.zst.partial-otherhost.test-" + std::to_string(dead) + "-QwE456";
    for (const auto& f : {stale, running, other_host}) {
        put(store + f, "partial");
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
    struct stat st{};
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

TEST_CASE("restore --db: a manifest's character set or collation that is not a plain name is refused") {
    TempDir tmp;
    std::string store = tmp.file("store");
    REQUIRE(fs::create_directories(store));
    std::string dump = "CREATE TABLE t (i INT);\n";
    nlohmann::json sources = {{"mariadb",
                               {{"databases",
                                 {{{"name", "shop"},
                                   {"chunks", {"db/shop.sql.000000"}},
                                   {"character_set", "utf8mb4 COLLATE utf8mb4_bin; DROP DATABASE mysql; --"},
                                   {"collation", ""}}}}}}};
    put(store + "/web1-20260101T000000Z.tar.zst",
        make_archive([&](ArchiveWriter& w) { REQUIRE(w.add_buffer("db/shop.sql.000000", dump, mode(0600))); }, sources));
    auto s = dir_settings(store);
    s.mariadb.client_command = tmp.file("no-such-client");
    RestoreOptions o;
    o.id = "web1-20260101T000000Z";
    o.db = "shop";
    o.into = "shop_copy";
    auto r = restore(s, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("character set or collation that is not a plain name") != std::string::npos);
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
    struct sigaction old{};
    IgnoreSigio() {
        struct sigaction ign{};
        ign.sa_handler = SIG_IGN;
        ::sigaction(SIGIO, &ign, &old);
    }
    ~IgnoreSigio() { ::sigaction(SIGIO, &old, nullptr); }
};

} // namespace

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
        put(tree + "/a" + f, "original\n");
        put(outside + f, "SECRET\n");
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
    // released after 2 s by opening the FIFO for writing (and counted).
    for (bool fifo : {true, false}) {
        CAPTURE(fifo);
        TempDir tmp;
        std::string tree = tmp.file("tree"), spare = tmp.file("spare");
        REQUIRE(fs::create_directories(tree));
        REQUIRE(fs::create_directories(spare));
        put(spare + "/reg", "regular\n");
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
            return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
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
                if (fifo && started != 0 && now_ms() - started > 2000) {
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

} // namespace backup_test

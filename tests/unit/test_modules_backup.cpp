// The backup module's pure parts: archive names, retention with fixed dates (month, year and ISO
// week boundaries), the chunked AES-256-GCM stream (round trip, flipped bit, reordered, dropped and
// truncated chunks, wrong key), and the archive + manifest round trip with a damaged entry.
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
// nodectl::backup's names unqualified in this file only: its own namespace keeps the using-directive
// out of the test files compiled together with this one (unity build).
namespace backup_test {
using namespace nodectl::backup;
using nodectl::testing::TempDir;
using namespace nodectl::backup_testing;
namespace fs = std::filesystem;

namespace {

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

Result<std::string> decrypt(const std::string& cipher, const Key& k) {
    StringSource in(cipher);
    auto dec = decrypting_source(k, in);
    return read_all(*dec);
}

std::set<std::string> pruned(const std::vector<Stored>& all, const Retention& r) {
    auto v = to_prune(all, r);
    std::set<std::string> out;
    for (const auto& o : v) {
        out.insert(o.substr(5, 16));  // the timestamp
    }
    return out;
}

}  // namespace

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
    std::vector<Stored> all = {stored_at("20251231T020000Z"), stored_at("20260101T020000Z"),
                               stored_at("20260115T020000Z"), stored_at("20260131T020000Z"),
                               stored_at("20260201T020000Z"), stored_at("20260201T140000Z"),
                               stored_at("20260202T020000Z"), stored_at("20260203T020000Z")};
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
    CHECK(pruned(all, {0, 3, 0, 3}) ==
          std::set<std::string>{"20260101T020000Z", "20260115T020000Z", "20260201T020000Z"});
}

TEST_CASE("retention: weekly uses ISO weeks, which cross the year boundary") {
    // 2024-12-30 (Mon) and 2025-01-05 (Sun) are both in 2025-W01; 2024-12-29 (Sun) is 2024-W52.
    std::vector<Stored> all = {stored_at("20241229T010000Z"), stored_at("20241230T010000Z"),
                               stored_at("20250105T010000Z"), stored_at("20250106T010000Z")};
    CHECK(pruned(all, {0, 0, 2, 0}) == std::set<std::string>{"20241229T010000Z", "20241230T010000Z"});
    CHECK(pruned(all, {0, 0, 3, 0}) == std::set<std::string>{"20241230T010000Z"});
}

TEST_CASE("--target: list, prune and verify use only the target named; a name [backup] lacks is a usage error") {
    TempDir tmp;
    auto s = dir_settings(tmp.file("a"));
    TargetSettings second = s.targets[0];
    second.name = "second";
    second.path = tmp.file("b");
    s.targets.push_back(second);
    for (const char* d : {"a", "b"}) {
        REQUIRE(fs::create_directories(tmp.file(d)));
    }
    put_file(tmp.file("a") + "/web1-20260101T020000Z.tar.zst", "");
    put_file(tmp.file("b") + "/web1-20260102T020000Z.tar.zst", "");
    auto all = list(s, "");
    REQUIRE(all);
    CHECK(all->size() == 2);
    auto only = list(s, "second");
    REQUIRE(only);
    REQUIRE(only->size() == 1);
    CHECK((*only)[0].target == "second");
    CHECK((*only)[0].stored.object == "web1-20260102T020000Z.tar.zst");
    auto missing = verify(s, "web1-20260101T020000Z", "second");  // it is on the other target
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "no archive 'web1-20260101T020000Z' on second");
    auto l = list(s, "nas");
    auto p = prune(s, true, "nas");
    auto v = verify(s, "web1-20260101T020000Z", "nas");
    REQUIRE_FALSE(l);
    REQUIRE_FALSE(p);
    REQUIRE_FALSE(v);
    for (const auto* e : {&l.error(), &p.error(), &v.error()}) {
        CHECK(e->code == ErrorCode::usage);
        CHECK(e->message == "no target named 'nas' in [backup]");
    }
    s.targets.clear();
    REQUIRE_FALSE(list(s, ""));
    CHECK(list(s, "").error().message == "no target in [backup]");
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
        CHECK(r.error().code == ErrorCode::damaged);
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
    MemorySink out;
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
    MemorySink good;
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
        MemorySink bad;
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
        CHECK(rr.error().code == ErrorCode::damaged);
        CHECK(rr.error().message.find("entry 'files/t/b.txt' does not match manifest.json") != std::string::npos);
    }
    SUBCASE("an archive cut short has no manifest") {
        StringSource cut(good.data.substr(0, good.data.size() / 2));
        auto rr = read_archive(cut, {});
        REQUIRE_FALSE(rr);
        CHECK(rr.error().code == ErrorCode::damaged);
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

}  // namespace backup_test

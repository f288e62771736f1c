// Helpers the backup module's unit tests share (test_modules_backup*.cpp): streams in memory, an
// archive made in memory, a directory target's settings.
#pragma once

#include "modules/backup/detail.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace nodectl::backup_testing {

using namespace nodectl::backup;

// A sink that keeps what it gets; it can refuse bytes past `fail_after` and be slow, as a target can.
class MemorySink : public Sink {
public:
    std::string data;
    int closed = 0;
    size_t fail_after = SIZE_MAX;  // write() fails once this many bytes arrived
    std::chrono::milliseconds delay{0};  // per write(): a slow target
    Result<void> write(const char* p, size_t n) override {
        std::this_thread::sleep_for(delay);
        if (data.size() + n > fail_after) {
            return make_error(ErrorCode::io, "target refused the bytes");
        }
        data.append(p, n);
        return Ok{};
    }
    Result<void> close() override {
        ++closed;
        return Ok{};
    }
};

// A source over a string, handing out at most `step` bytes per read.
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

inline Result<std::string> read_all(Source& s) {
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

// `plain` through the encrypting sink, written in uneven pieces.
inline std::string encrypt(const std::string& plain, const Key& k, size_t chunk) {
    MemorySink out;
    auto enc = encrypting_sink(k, out, chunk);
    size_t pos = 0;
    while (pos < plain.size()) {
        size_t n = std::min<size_t>(plain.size() - pos, 1000 + pos % 3000);
        REQUIRE(enc->write(plain.data() + pos, n));
        pos += n;
    }
    REQUIRE(enc->close());
    return out.data;
}

// host web1's archive of time `ts` (e.g. "20260101T000000Z").
inline Stored stored_at(const std::string& ts) {
    auto s = parse_object_name("web1-" + ts + ".tar.zst");
    REQUIRE(s);
    return *s;
}

// A valid archive: what `fill` wrote, then a manifest listing it (plus `sources`).
inline std::string make_archive(const std::function<void(ArchiveWriter&)>& fill,
                                const nlohmann::json& sources = nlohmann::json::object()) {
    MemorySink out;
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

inline void put_file(const std::string& path, const std::string& data) {
    REQUIRE(util::write_file_atomic(path, data, 0600));
}

inline ArchiveWriter::Meta meta_with_mode(unsigned m) {
    ArchiveWriter::Meta meta;
    meta.mode = m;
    meta.mtime = 1700000000;
    return meta;
}

// [backup] of host web1 with one directory target, "shared", in `store`.
inline Settings dir_settings(const std::string& store) {
    Settings s;
    s.name = "web1";
    TargetSettings t;
    t.name = "shared";
    t.path = store;
    s.targets.push_back(t);
    return s;
}

}  // namespace nodectl::backup_testing

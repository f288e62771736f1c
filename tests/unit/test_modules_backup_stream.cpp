// The threads of `backup run`: zstd on a compressing thread of its own (one frame, any thread
// count; an error of the targets reaches the writer; a writer that leaves early joins it), and the
// entry queue between the two reading threads and the archive (whole entries, the dump first, a
// large file never interleaved with a running dump, errors and cancel() stop every side).
#include "backup_support.hpp"
#include "modules/backup/detail.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace nodectl;
// nodectl::backup's names unqualified in this file only (unity build: see test_modules_backup.cpp).
namespace backup_stream_test {
using namespace nodectl::backup;
using namespace nodectl::backup_testing;
using namespace std::chrono_literals;

namespace {

// Forwards to a sink the test keeps (threaded_sink owns what it writes to).
class ForwardingSink : public Sink {
public:
    explicit ForwardingSink(Sink& to) : m_to(to) {}
    Result<void> write(const char* p, size_t n) override { return m_to.write(p, n); }
    Result<void> close() override { return m_to.close(); }

private:
    Sink& m_to;
};

std::string text_of(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
    }
    return s;
}

std::string unzstd(const std::string& z) {
    std::string out;
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ZSTD_inBuffer in{z.data(), z.size(), 0};
    std::string buf(ZSTD_DStreamOutSize(), '\0');
    while (in.pos < in.size) {
        ZSTD_outBuffer o{buf.data(), buf.size(), 0};
        size_t r = ZSTD_decompressStream(d, &o, &in);
        REQUIRE_FALSE(ZSTD_isError(r));
        out.append(buf.data(), o.pos);
    }
    ZSTD_freeDCtx(d);
    return out;
}

}  // namespace

TEST_CASE("backup compression: zstd on its own thread makes one frame that decompresses to the input") {
    auto input = text_of(5 << 20);
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        MemorySink out;
        StageTimes times;
        auto z = zstd_sink(out, {3, threads, &times});
        REQUIRE(z);
        auto sink = threaded_sink(std::move(*z), &times);
        size_t pos = 0, step = 1;
        while (pos < input.size()) {  // pieces of every size from 1 byte to ~300 KiB
            size_t n = std::min(step, input.size() - pos);
            REQUIRE(sink->write(input.data() + pos, n));
            pos += n;
            step = step * 3 % 300007 + 1;
        }
        REQUIRE(sink->close());
        CHECK(out.closed == 1);
        CHECK(ZSTD_findFrameCompressedSize(out.data.data(), out.data.size()) == out.data.size());  // one frame
        CHECK(unzstd(out.data) == input);
        CHECK(times.zstd_in == input.size());
        CHECK(times.zstd_out == out.data.size());
    }
}

TEST_CASE("backup compression: a target's error reaches the writer; a writer that leaves early stops the thread") {
    SUBCASE("the error is returned by a later write() and by close(); the target is not closed") {
        MemorySink out;
        out.fail_after = 100000;
        auto sink = threaded_sink(std::make_unique<ForwardingSink>(out), nullptr);
        auto chunk = text_of(64 << 10);
        Result<void> r = Ok{};
        for (int i = 0; i < 1000 && r; ++i) {  // 64 MiB at most: the error comes long before
            r = sink->write(chunk.data(), chunk.size());
        }
        REQUIRE_FALSE(r);
        CHECK(r.error().message == "target refused the bytes");
        auto closed = sink->close();
        REQUIRE_FALSE(closed);
        CHECK(closed.error().message == "target refused the bytes");
        CHECK(out.closed == 0);
    }
    SUBCASE("destroyed before close(): the thread stops, what was queued is dropped, the target is not closed") {
        MemorySink out;
        out.delay = 20ms;
        auto started = std::chrono::steady_clock::now();
        {
            auto sink = threaded_sink(std::make_unique<ForwardingSink>(out), nullptr);
            auto chunk = text_of(k_handoff_block_bytes);
            for (size_t i = 0; i < k_handoff_blocks + 1; ++i) {
                REQUIRE(sink->write(chunk.data(), chunk.size()));
            }
        }
        CHECK(out.closed == 0);
        CHECK(out.data.size() < (k_handoff_blocks + 1) * k_handoff_block_bytes);
        CHECK(std::chrono::steady_clock::now() - started < 2s);
    }
}

namespace {

// The archive the queue wrote, with a manifest, read back: every entry whole and as written.
std::vector<std::string> archived_paths(ArchiveWriter& w, MemorySink& out) {
    nlohmann::json entries = nlohmann::json::array();
    std::vector<std::string> paths;
    for (const auto& e : w.entries()) {
        entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
        paths.push_back(e.path);
    }
    nlohmann::json m = {{"format", k_format_version}, {"entries", entries}};
    REQUIRE(w.add_buffer(k_manifest_name, m.dump(), {}));
    REQUIRE(w.finish());
    class OutSource : public Source {
    public:
        explicit OutSource(const std::string& d) : m_d(d) {}
        Result<size_t> read(char* buf, size_t size) override {
            size_t n = std::min(size, m_d.size() - m_pos);
            std::memcpy(buf, m_d.data() + m_pos, n);
            m_pos += n;
            return n;
        }

    private:
        const std::string& m_d;
        size_t m_pos = 0;
    } in(out.data);
    auto read = read_archive(in, {});
    REQUIRE_MESSAGE(read, (read ? "" : read.error().message));
    return paths;
}

// `size` bytes of `fill` as one file entry, in blocks.
Result<void> queue_file(EntrySource& q, const std::string& path, uint64_t size, char fill) {
    TRY_VOID(q.begin_file(path, size, {}));
    for (uint64_t done = 0; done < size;) {
        Block b = TRY(q.block());
        b.size = static_cast<size_t>(std::min<uint64_t>(k_block_bytes, size - done));
        std::memset(b.bytes.get(), fill, b.size);
        done += b.size;
        TRY_VOID(q.data(std::move(b)));
    }
    return q.end_file();
}

// An archive fed by a queue with a dump reader (`dump_blocks`) and a file reader.
struct QueueRig {
    explicit QueueRig(size_t dump_blocks) : dump(queue, dump_blocks, true) { REQUIRE(w.open()); }
    MemorySink out;
    ArchiveWriter w{out, {1, 1}};
    EntryQueue queue{2, nullptr};
    EntrySource dump;
    EntrySource files{queue, k_file_reader_blocks, false};
};

ptrdiff_t index_of(const std::vector<std::string>& v, const std::string& s) {
    auto it = std::find(v.begin(), v.end(), s);
    REQUIRE_MESSAGE(it != v.end(), s);
    return it - v.begin();
}

}  // namespace

TEST_CASE("backup entry queue: dump pieces and files interleave whole; a file over the limit waits for the dump") {
    QueueRig rig(4);
    auto& [out, w, queue, dump, files] = rig;
    std::thread dump_reader([&] {
        dump.finish([&]() -> Result<void> {
            TRY_VOID(queue_file(dump, "db/x.sql.000000", 3 * k_block_bytes, 'd'));
            std::this_thread::sleep_for(300ms);  // the dump is slow: the files go meanwhile
            return queue_file(dump, "db/x.sql.000001", 1000, 'e');
        }());
    });
    std::thread file_reader([&] {
        files.finish([&]() -> Result<void> {
            TRY_VOID(files.add_directory("files/t", {}));
            TRY_VOID(queue_file(files, "files/t/small", 2 * k_block_bytes + 5, 's'));
            return queue_file(files, "files/t/large", k_interleave_max_bytes + 1, 'l');
        }());
    });
    auto drained = queue.drain(w);
    queue.cancel();
    dump_reader.join();
    file_reader.join();
    REQUIRE(drained);
    auto paths = archived_paths(w, out);
    CHECK(paths.size() == 5);
    CHECK(index_of(paths, "db/x.sql.000000") < index_of(paths, "db/x.sql.000001"));
    CHECK(index_of(paths, "files/t") < index_of(paths, "files/t/small"));
    CHECK(index_of(paths, "files/t/small") < index_of(paths, "db/x.sql.000001"));  // filled the dump's pause
    CHECK(index_of(paths, "files/t/large") > index_of(paths, "db/x.sql.000001"));  // only after the dump
}

TEST_CASE(
    "backup entry queue: a reader's error stops the other reader and the archive; cancel() frees a waiting reader") {
    SUBCASE("the dump fails while a file is being read") {
        QueueRig rig(2);
        auto& [out, w, queue, dump, files] = rig;
        Result<void> file_result = Ok{};
        std::thread file_reader([&] {
            file_result = queue_file(files, "files/huge", 1ull << 40, 'h');  // 1 TiB: ends only by being stopped
            files.finish(file_result);
        });
        std::thread dump_reader([&] {
            std::this_thread::sleep_for(100ms);
            dump.finish(make_error(ErrorCode::command, "dump of database 'x' failed"));
        });
        auto drained = queue.drain(w);
        queue.cancel();
        dump_reader.join();
        file_reader.join();
        REQUIRE_FALSE(drained);
        CHECK(drained.error().message == "dump of database 'x' failed");
        CHECK_FALSE(file_result);
    }
    SUBCASE("nobody drains: the reader waits for a block until cancel()") {
        EntryQueue queue(1, nullptr);
        EntrySource files(queue, 2, false);
        std::atomic<bool> back{false};
        Result<void> r = Ok{};
        std::thread reader([&] {
            r = queue_file(files, "files/f", 10 * k_block_bytes, 'f');
            back = true;
        });
        std::this_thread::sleep_for(100ms);
        CHECK_FALSE(back);
        queue.cancel();
        reader.join();
        CHECK(back);
        CHECK_FALSE(r);
    }
}

TEST_CASE("backup run, files only: a file over the interleaving limit is not held back for a dump that is not there") {
    nodectl::testing::QuietLogs quiet;
    nodectl::testing::TempDir tmp;
    std::string tree = tmp.file("tree"), store = tmp.file("store");
    std::filesystem::create_directories(tree);
    std::filesystem::create_directories(store);
    tmp.write("tree/small", "small\n");
    std::filesystem::resize_file(tmp.write("tree/large", ""), k_interleave_max_bytes + 4096);  // sparse: zeros
    Settings s;
    s.name = "web1";
    s.files.push_back({"t", tree, {}, {}});
    TargetSettings t;
    t.name = "dir";
    t.path = store;
    t.min_free_bytes = 0;
    s.targets.push_back(t);
    RunOptions o;
    o.prune = false;
    auto report = run(s, o);  // before the fix it waited forever: a dump source that never ran held the file back
    REQUIRE(report.ok_count() == 1);
    CHECK(report.entries == 3);  // files/t, files/t/large, files/t/small (the manifest is not counted)
    auto target = make_directory_target(t);
    auto src = target->open(report.id + ".tar.zst");
    REQUIRE(src);
    uint64_t large = 0;
    ReadCallbacks cb;
    cb.on_data = [&](const ReadEntry& e, const char*, size_t n) -> Result<void> {
        large += e.path == "files/t/large" ? n : 0;
        return Ok{};
    };
    REQUIRE(read_archive(**src, cb));
    CHECK(large == k_interleave_max_bytes + 4096);
}

}  // namespace backup_stream_test

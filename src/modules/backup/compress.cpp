// Compression on a thread of its own: the archiving thread copies tar into small blocks and goes
// on (hashing, tar) while the compressing thread runs zstd and hands its output to the
// encryption and the targets, the way `tar | zstd | aws s3 cp -` runs as processes at once.
//
// zstd runs through libzstd's streaming API. One compressing thread uses a single-threaded
// context (zstd's worker threads, ZSTD_c_nbWorkers, measured slower here: the caller side of its
// job hand-off cost about 1 s of CPU in locking and wake-ups per 900 MB on 2 cores); with
// compression_threads > 1 that thread drives zstd's workers in jobs of k_zstd_job_bytes. The
// output is one ordinary zstd frame, read by any zstd reader (libarchive, `zstd -d`).
#include "modules/backup/detail.hpp"
#include "util/log.hpp"

#include <zstd.h>

#include <cstring>
#include <thread>

namespace nodectl::backup {

namespace {

class ZstdSink : public Sink {
public:
    ZstdSink(Sink& out, StageTimes* times) : m_out(out), m_times(times), m_buf(ZSTD_CStreamOutSize()) {}
    ~ZstdSink() override { ZSTD_freeCCtx(m_cctx); }  // stops and joins zstd's workers, if any
    ZstdSink(const ZstdSink&) = delete;
    ZstdSink& operator=(const ZstdSink&) = delete;

    Result<void> open(int level, int threads) {
        m_cctx = ZSTD_createCCtx();
        if (!m_cctx) {
            return make_error(ErrorCode::internal, "zstd: cannot create a compression context");
        }
        TRY_VOID(check(ZSTD_CCtx_setParameter(m_cctx, ZSTD_c_compressionLevel, level), "compression level"));
        if (threads > 1) {
            auto set = ZSTD_CCtx_setParameter(m_cctx, ZSTD_c_nbWorkers, threads);
            if (ZSTD_isError(set)) {  // a libzstd built without threads: one thread compresses
                log::warn(k_log, "zstd cannot use worker threads here ({}); compressing on one thread",
                          ZSTD_getErrorName(set));
                return Ok{};
            }
            TRY_VOID(
                check(ZSTD_CCtx_setParameter(m_cctx, ZSTD_c_jobSize, static_cast<int>(k_zstd_job_bytes)), "job size"));
        }
        return Ok{};
    }

    Result<void> write(const char* data, size_t size) override {
        ZSTD_inBuffer in{data, size, 0};
        while (in.pos < in.size) {
            TRY_VOID(step(in, ZSTD_e_continue));
        }
        if (m_times) {
            m_times->zstd_in += size;
        }
        return Ok{};
    }

    Result<void> close() override {
        ZSTD_inBuffer in{nullptr, 0, 0};
        for (;;) {
            size_t left = TRY(step(in, ZSTD_e_end));
            if (left == 0) {
                break;
            }
        }
        return m_out.close();
    }

private:
    static Result<void> check(size_t r, const char* what) {
        if (ZSTD_isError(r)) {
            return make_error(ErrorCode::internal, std::string("zstd ") + what + ": " + ZSTD_getErrorName(r));
        }
        return Ok{};
    }

    // One call into zstd, then its output to `m_out`; returns what zstd says is left to flush.
    Result<size_t> step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
        ZSTD_outBuffer out{m_buf.data(), m_buf.size(), 0};
        size_t left = 0;
        {
            StageClock clock(m_times, Stage::compress);
            left = ZSTD_compressStream2(m_cctx, &out, &in, mode);
        }
        TRY_VOID(check(left, "compression"));
        if (out.pos > 0) {
            if (m_times) {
                m_times->zstd_out += out.pos;
            }
            TRY_VOID(m_out.write(m_buf.data(), out.pos));
        }
        return left;
    }

    Sink& m_out;
    StageTimes* m_times;
    ZSTD_CCtx* m_cctx = nullptr;
    std::vector<char> m_buf;
};

class ThreadedSink : public Sink {
public:
    ThreadedSink(std::unique_ptr<Sink> inner, StageTimes* times)
        : m_inner(std::move(inner)), m_times(times), m_free(k_handoff_blocks), m_full(k_handoff_blocks) {
        for (size_t i = 0; i < k_handoff_blocks; ++i) {
            (void)m_free.push(Block{std::make_unique<char[]>(k_handoff_block_bytes), 0});
        }
        m_thread = std::thread([this] { run(); });
    }
    ~ThreadedSink() override { stop(); }
    ThreadedSink(const ThreadedSink&) = delete;
    ThreadedSink& operator=(const ThreadedSink&) = delete;

    Result<void> write(const char* data, size_t size) override {
        while (size > 0) {
            if (!m_block.bytes) {
                StageClock clock(m_times, Stage::archive_waits_compressor);
                auto b = m_free.pop();
                if (!b) {
                    return thread_error();
                }
                m_block = std::move(*b);
                m_block.size = 0;
            }
            size_t take = std::min(size, k_handoff_block_bytes - m_block.size);
            std::memcpy(m_block.bytes.get() + m_block.size, data, take);
            m_block.size += take;
            data += take;
            size -= take;
            if (m_block.size == k_handoff_block_bytes) {
                TRY_VOID(hand_over());
            }
        }
        return Ok{};
    }

    Result<void> close() override {
        if (m_block.bytes && m_block.size > 0) {
            TRY_VOID(hand_over());
        }
        m_full.close();
        m_thread.join();
        return thread_error_or_ok();
    }

private:
    Result<void> hand_over() {
        StageClock clock(m_times, Stage::archive_waits_compressor);
        if (!m_full.push(std::move(m_block))) {
            return thread_error();
        }
        m_block = Block{};
        return Ok{};
    }

    // The compressing thread: every block to the inner sink, in order, then its close().
    Result<void> pump() {
        for (;;) {
            std::optional<Block> b;
            {
                StageClock clock(m_times, Stage::compressor_waits);
                b = m_full.pop();
            }
            if (!b) {
                break;
            }
            TRY_VOID(m_inner->write(b->bytes.get(), b->size));
            (void)m_free.push(std::move(*b));
        }
        if (m_full.cancelled()) {
            return make_error(ErrorCode::io, "the archive was abandoned");
        }
        return m_inner->close();
    }

    void run() {
        Result<void> done = Ok{};
        try {
            done = pump();
        } catch (const std::exception& ex) {
            done = make_error(ErrorCode::internal, std::string("compressing: ") + ex.what());
        }
        if (!done) {
            {
                std::lock_guard lock(m_mutex);
                m_error = done.error();
            }
            m_free.cancel();  // the writer's next write() returns the error
            m_full.cancel();
        }
    }

    Error thread_error() {
        std::lock_guard lock(m_mutex);
        return m_error ? *m_error : make_error(ErrorCode::internal, "the compressing thread stopped");
    }
    Result<void> thread_error_or_ok() {
        std::lock_guard lock(m_mutex);
        if (m_error) {
            return *m_error;
        }
        return Ok{};
    }

    void stop() {
        if (m_thread.joinable()) {
            m_full.cancel();
            m_free.cancel();
            m_thread.join();
        }
    }

    std::unique_ptr<Sink> m_inner;
    StageTimes* m_times;
    util::BoundedQueue<Block> m_free, m_full;
    Block m_block;  // being filled by the writer
    std::mutex m_mutex;
    std::optional<Error> m_error;
    std::thread m_thread;
};

}  // namespace

Result<std::unique_ptr<Sink>> zstd_sink(Sink& out, const ArchiveOptions& options) {
    auto sink = std::make_unique<ZstdSink>(out, options.times);
    TRY_VOID(sink->open(options.level, options.threads));
    return std::unique_ptr<Sink>(std::move(sink));
}

std::unique_ptr<Sink> threaded_sink(std::unique_ptr<Sink> inner, StageTimes* times) {
    return std::make_unique<ThreadedSink>(std::move(inner), times);
}

}  // namespace nodectl::backup

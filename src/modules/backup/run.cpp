// `backup run`: hooks, sources into one archive stream, fanned out to every target at once.
// A target that fails mid-stream is dropped (its upload aborted, nothing left under a final
// name) and the others go on; a source that fails (mariadb-dump exits non-zero) fails the whole
// run, since an archive missing a database would be a backup that lies.
//
// Threads, all at once: two reading threads run the dumps and the file trees into an EntryQueue
// (whole entries, interleaved: the dump first); this thread hashes entries and writes tar; a
// compressing thread (ArchiveWriter's) runs zstd, the encryption and the writes to the targets;
// util::s3's workers send the parts. Memory: the queues' blocks, zstd's window, the encryption
// chunk and the S3 parts in flight (docs/backup.md, "Threads and memory").
#include "modules/backup/detail.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>

namespace nodectl::backup {

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
    StageTimes* times = nullptr;

    size_t live() const {
        return static_cast<size_t>(
            std::count_if(legs.begin(), legs.end(), [](const Leg& l) { return l.upload != nullptr; }));
    }

    Result<void> write(const char* data, size_t size) override {
        StageClock clock(times, Stage::upload);
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

// Charges the time spent in `inner` (less the stages nested in it) to one stage.
class TimedSink : public Sink {
public:
    TimedSink(Sink& inner, StageTimes* times, Stage stage) : m_inner(inner), m_times(times), m_stage(stage) {}
    Result<void> write(const char* data, size_t size) override {
        StageClock clock(m_times, m_stage);
        return m_inner.write(data, size);
    }
    Result<void> close() override {
        StageClock clock(m_times, m_stage);
        return m_inner.close();
    }

private:
    Sink& m_inner;
    StageTimes* m_times;
    Stage m_stage;
};

// Stops the reading threads when the archiving side leaves, however it leaves; declared after
// the threads, so it runs before they are joined.
struct StopReaders {
    EntryQueue& queue;
    ~StopReaders() { queue.cancel(); }
};

// One run, as phases called in order by run(). A phase that fails returns why; run() then marks
// every target that has no error of its own as failed for that reason.
class BackupRun {
public:
    BackupRun(const Settings& s, const RunOptions& options) : m_s(s), m_options(options) {
        m_report.id = make_id(s.name, m_now);
        m_object = m_report.id + ".tar.zst" + (encrypted() ? ".enc" : "");
    }

    // The targets named by --target (all when none is named).
    Result<void> choose_targets() {
        for (const auto& t : m_s.targets) {
            const auto& only = m_options.only_targets;
            if (only.empty() || std::find(only.begin(), only.end(), t.name) != only.end()) {
                m_chosen.push_back(&t);
                m_report.targets.emplace_back().target = t.name;
            }
        }
        if (m_chosen.empty()) {
            return make_error(ErrorCode::config, "no target named like that");
        }
        return Ok{};
    }

    Result<void> load_encryption_key() {
        if (encrypted()) {
            m_key = TRY(load_key(m_s.encryption_key_file));
        }
        return Ok{};
    }

    Result<void> run_pre_hooks() {
        for (const auto& h : m_s.pre_hooks) {
            auto r = run_hook(h, {"NODECTL_BACKUP_ID=" + m_report.id});
            if (!r) {
                return make_error(ErrorCode::io, "pre hook failed, nothing backed up: " + r.error().message);
            }
        }
        return Ok{};
    }

    // Prepares every chosen target and starts its upload; a target that cannot is left out.
    Result<void> start_uploads() {
        for (size_t i = 0; i < m_chosen.size(); ++i) {
            auto& outcome = m_report.targets[i];
            auto started = [&]() -> Result<void> {
                m_targets.push_back(TRY(make_target(*m_chosen[i])));
                TRY_VOID(m_targets.back()->prepare());
                m_fan.legs.push_back(
                    {&outcome, TRY(m_targets.back()->upload(m_object)), std::chrono::steady_clock::now()});
                return Ok{};
            }();
            if (m_targets.size() == i) {
                m_targets.emplace_back();  // m_targets[i] stays target i's, even when it could not be made
            }
            if (!started) {
                outcome.error = started.error().message;
                log::error(k_log, "target {}: {}", outcome.target, outcome.error);
            }
        }
        if (m_fan.live() == 0) {
            return make_error(ErrorCode::io, "no target could be written");
        }
        log::info(k_log, "writing {} to {} target(s)", m_object, m_fan.live());
        return Ok{};
    }

    // The archive, streamed to every live upload: the sources, then the manifest. On failure the
    // uploads are aborted, so nothing is left under a final name.
    Result<void> write_archive() {
        m_fan.times = times();
        std::unique_ptr<Sink> enc;
        Sink* out = &m_fan;
        if (m_key) {
            enc = encrypting_sink(*m_key, m_fan);
            out = enc.get();
        }
        TimedSink timed(*out, times(), Stage::encrypt);
        auto started = std::chrono::steady_clock::now();
        auto written = [&] {
            // The writer's compressing thread is joined when it goes, before the uploads are touched here.
            ArchiveWriter w(timed, {m_s.compression_level, m_s.compression_threads, times()});
            return write_entries(w);
        }();
        if (written) {
            if (times()) {
                log_stage_times(m_times, util::seconds_since(started));
            }
            return Ok{};
        }
        // When every target failed, their own errors say why; the sink's "every target failed" adds nothing.
        std::string why = m_fan.live() == 0 ? "every target failed" : written.error().message;
        m_fan.abort_all("backup aborted: " + why);
        log::error(k_log, "{}", why);
        return make_error(written.error().code, why);
    }

    // Each upload that is still live appears under its final name.
    void commit_uploads() {
        auto started = std::chrono::steady_clock::now();
        for (auto& l : m_fan.legs) {
            if (!l.upload) {
                continue;
            }
            auto c = l.upload->commit();
            if (!c) {
                m_fan.fail(l, c.error().message);
                continue;
            }
            l.upload.reset();
            l.outcome->ok = true;
            l.outcome->bytes = m_fan.bytes;
            l.outcome->seconds = util::seconds_since(l.started);
            log::info(k_log, "target {}: {} written ({} bytes)", l.outcome->target, m_object, m_fan.bytes);
        }
        log::debug(k_log, "uploads committed in {:.2f} s (the last parts, then each target's final name)",
                   util::seconds_since(started));
    }

    // Retention, on each target this run wrote to; a failure to prune is a warning, not a failed backup.
    void prune() {
        for (size_t i = 0; i < m_chosen.size(); ++i) {
            auto& outcome = m_report.targets[i];
            if (!outcome.ok || !m_chosen[i]->retention.any() || !m_targets[i]) {
                continue;
            }
            auto listed = m_targets[i]->list();
            if (!listed) {
                log::warn(k_log, "target {}: retention skipped: {}", outcome.target, listed.error().message);
                continue;
            }
            for (const auto& o : prunable(m_s, *m_chosen[i], *listed, m_now)) {
                auto r = m_targets[i]->remove(o);
                if (r) {
                    outcome.pruned.push_back(o);
                    log::info(k_log, "target {}: pruned {}", outcome.target, o);
                } else {
                    log::warn(k_log, "target {}: cannot prune {}: {}", outcome.target, o, r.error().message);
                }
            }
        }
    }

    // Post hooks learn the outcome: ok, partial (some targets) or failed.
    void run_post_hooks() {
        int ok = m_report.ok_count();
        std::string outcome = ok == static_cast<int>(m_report.targets.size()) && m_report.error.empty() ? "ok"
                              : ok > 0                                                                  ? "partial"
                                                                                                        : "failed";
        for (const auto& h : m_s.post_hooks) {
            auto r = run_hook(h, {"NODECTL_BACKUP_OUTCOME=" + outcome, "NODECTL_BACKUP_ID=" + m_report.id});
            if (!r) {
                log::error(k_log, "{}", r.error().message);
                m_report.post_hook_failed = true;
            }
        }
    }

    void fail_all(const std::string& why) {
        m_report.error = why;
        for (auto& t : m_report.targets) {
            if (t.error.empty()) {
                t.ok = false;
                t.error = why;
            }
        }
    }

    RunReport finish() {
        m_report.seconds = util::seconds_since(m_started);
        return std::move(m_report);
    }

private:
    bool encrypted() const { return !m_s.encryption_key_file.empty(); }
    // Stage times are taken only when they are logged.
    StageTimes* times() { return log::enabled(log::Level::debug) ? &m_times : nullptr; }

    // The dumps and the file trees, each read on a thread of its own, while this thread archives
    // the entries they queue. An error on any side stops the others; the threads are joined
    // before this returns.
    Result<void> archive_sources(ArchiveWriter& w, nlohmann::json& sources) {
        nlohmann::json db = nlohmann::json::object(), trees = nlohmann::json::array();
        bool dumps = m_s.mariadb.enabled, files = !m_s.files.empty();
        EntryQueue queue((dumps ? 1 : 0) + (files ? 1 : 0), times());
        // Only the sources that run: a dump source that never ran would hold large files back.
        std::optional<EntrySource> dump_source, file_source;
        std::jthread dump_reader, file_reader;
        if (dumps) {
            dump_source.emplace(queue, dump_reader_blocks(m_s), true);
            dump_reader =
                std::jthread([&] { read_source(*dump_source, [&] { return dump_databases(m_s, *dump_source, db); }); });
        }
        if (files) {
            file_source.emplace(queue, k_file_reader_blocks, false);
            file_reader =
                std::jthread([&] { read_source(*file_source, [&] { return add_trees(*file_source, trees); }); });
        }
        StopReaders stop{queue};
        TRY_VOID(queue.drain(w));
        if (dumps) {
            sources["mariadb"] = db;
        }
        sources["files"] = trees;
        return Ok{};
    }

    // A reading thread's whole life: `body`, then the queue learns how it ended.
    static void read_source(EntrySource& source, const std::function<Result<void>()>& body) {
        try {
            source.finish(body());
        } catch (const std::exception& ex) {
            source.finish(make_error(ErrorCode::internal, std::string("reading the sources: ") + ex.what()));
        }
    }

    Result<void> add_trees(EntrySource& source, nlohmann::json& trees) {
        for (const auto& t : m_s.files) {
            log::info(k_log, "adding files {} ({})", t.name, t.path);
            TRY_VOID(add_tree(source, t, trees));
        }
        return Ok{};
    }

    Result<void> write_entries(ArchiveWriter& w) {
        TRY_VOID(w.open());
        nlohmann::json sources = nlohmann::json::object();
        TRY_VOID(archive_sources(w, sources));
        nlohmann::json entries = nlohmann::json::array();
        for (const auto& e : w.entries()) {
            entries.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
        }
        nlohmann::json manifest = {{"format", k_format_version},
                                   {"id", m_report.id},
                                   {"name", m_s.name},
                                   {"host", m_s.host},
                                   {"created", util::format_utc(m_started_wall)},
                                   {"nodectl_version", NODECTL_VERSION},
                                   {"encrypted", encrypted()},
                                   {"compression", "zstd level " + std::to_string(m_s.compression_level)},
                                   {"chunk_bytes", m_s.chunk_bytes},
                                   {"sources", sources},
                                   {"entries", entries}};
        m_report.entries = w.entries().size();
        m_report.raw_bytes = w.raw_bytes();
        TRY_VOID(w.add_buffer(k_manifest_name, util::json_text(manifest, 2) + "\n", generated_meta()));
        return w.finish();
    }

    const Settings& m_s;
    const RunOptions& m_options;
    std::chrono::system_clock::time_point m_started_wall = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
    std::chrono::sys_seconds m_now = std::chrono::time_point_cast<std::chrono::seconds>(m_started_wall);
    RunReport m_report;
    std::string m_object;
    std::vector<const TargetSettings*> m_chosen;
    std::vector<std::unique_ptr<BackupTarget>> m_targets;  // [i] is m_chosen[i]'s, null when it could not be made
    std::optional<Key> m_key;
    FanoutSink m_fan;
    StageTimes m_times;
};

}  // namespace

RunReport run(const Settings& s, const RunOptions& options) {
    BackupRun r(s, options);
    bool hooks_started = false;  // post hooks run once the pre hooks have been tried, whatever follows
    auto done = [&]() -> Result<void> {
        TRY_VOID(r.choose_targets());
        TRY_VOID(r.load_encryption_key());
        hooks_started = true;
        TRY_VOID(r.run_pre_hooks());
        TRY_VOID(r.start_uploads());
        TRY_VOID(r.write_archive());
        r.commit_uploads();
        if (options.prune) {
            r.prune();
        }
        return Ok{};
    }();
    if (!done) {
        r.fail_all(done.error().message);
    }
    if (hooks_started) {
        r.run_post_hooks();
    }
    return r.finish();
}

}  // namespace nodectl::backup

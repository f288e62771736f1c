// Time per stage of `backup run`, for --log-level debug: where the time goes, on which thread,
// and how fast zstd compresses (per second of CPU time, so a busy machine skews it less).
#include "modules/backup/detail.hpp"
#include "util/log.hpp"

#include <array>
#include <chrono>
#include <ctime>

namespace nodectl::backup {

namespace {

int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int64_t own_thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The stage this thread is in, and when it entered it (or left the stage nested in it).
thread_local int t_stage = -1;
thread_local int64_t t_mark_wall = 0;
thread_local int64_t t_mark_cpu = 0;

// Charges the time since the mark to the thread's current stage and moves the mark to now. The
// CPU clock is a system call, and the kernel likes to switch threads when one returns: on a busy
// machine that wait is long. It is charged to the inner stage (a clock being made reads the wall
// clock first, one going away last), never lost between stages.
void charge_current(StageTimes& times, bool entering) {
    int64_t wall = entering ? steady_ns() : 0;
    int64_t cpu = own_thread_cpu_ns();
    wall = entering ? wall : steady_ns();
    if (t_stage >= 0) {
        times.wall_ns[static_cast<size_t>(t_stage)] += wall - t_mark_wall;
        times.cpu_ns[static_cast<size_t>(t_stage)] += cpu - t_mark_cpu;
    }
    t_mark_wall = wall;
    t_mark_cpu = cpu;
}

constexpr std::array<const char*, StageTimes::k_count> k_stage_names = {
    "reader: read (dump pipe, files)",
    "reader+archiver: hash (sha256 of dumps, entries)",
    "archiver: tar (libarchive, copy for the compressor)",
    "compressor: zstd",
    "compressor: encrypt (AES-256-GCM)",
    "compressor: upload (to the targets; S3 parts in flight)",
    "reader waits (entry queue full: archiver behind)",
    "archiver waits for the reader (entry queue empty)",
    "archiver waits for the compressor (its queue full)",
    "compressor waits (its queue empty: archiver behind)"};

double seconds(int64_t ns) {
    return static_cast<double>(ns) / 1e9;
}

}  // namespace

StageClock::StageClock(StageTimes* times, Stage stage) : m_times(times) {
    if (!m_times) {
        return;
    }
    charge_current(*m_times, true);
    m_outer = t_stage;
    t_stage = static_cast<int>(stage);
}

StageClock::~StageClock() {
    if (!m_times) {
        return;
    }
    charge_current(*m_times, false);
    t_stage = m_outer;
}

void log_stage_times(const StageTimes& times, double total_seconds) {
    log::debug(k_log, "stage times of the archive's {:.2f} s (wall, cpu):", total_seconds);
    for (size_t i = 0; i < StageTimes::k_count; ++i) {
        log::debug(k_log, "  {:<58} {:7.2f} s {:7.2f} s", k_stage_names[i], seconds(times.wall_ns[i]),
                   seconds(times.cpu_ns[i]));
    }
    double cpu = seconds(times.cpu_ns[static_cast<size_t>(Stage::compress)]);
    uint64_t in = times.zstd_in, out = times.zstd_out;
    log::debug(k_log,
               "  zstd: {} -> {} bytes, {:.1f} MB/s per second of the compressor's cpu (zstd's own workers, with "
               "compression_threads > 1, not counted)",
               in, out, cpu > 0 ? static_cast<double>(in) / cpu / 1e6 : 0.0);
}

}  // namespace nodectl::backup

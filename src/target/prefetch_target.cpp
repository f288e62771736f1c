#include "target/prefetch_target.hpp"

#include "util/log.hpp"
#include "target/batch.hpp"
#include "util/time.hpp"

#include <algorithm>

namespace nodectl {

namespace {

bool batchable(const Command& cmd) {
    return !cmd.mutates && cmd.input.empty() && !cmd.on_output;
}

}  // namespace

void PrefetchTarget::prefetch(const std::vector<ProbeJob>& jobs, unsigned max_rounds) {
    if (!m_inner.batches_probes() || jobs.empty()) {
        return;
    }
    auto t0 = std::chrono::steady_clock::now();
    m_records.assign(jobs.size(), Record{});
    for (unsigned round = 0; round < max_rounds; ++round) {
        // Every job that is not complete runs once more; each brings the next command it needs.
        std::vector<Command> batch;
        std::vector<std::vector<size_t>> askers;  // batch entry -> the jobs that asked for it
        m_mode = Mode::recording;
        for (size_t j = 0; j < jobs.size(); ++j) {
            if (m_records[j].complete) {
                continue;
            }
            m_job = j;
            m_pending.reset();
            m_stopped = false;
            for (auto& a : m_records[j].answers) {
                a.used = false;
            }
            jobs[j](*this);
            if (!m_pending) {
                m_records[j].complete = true;
                continue;
            }
            size_t k = 0;
            while (k < batch.size() &&
                   (batch[k].script != m_pending->script || batch[k].timeout != m_pending->timeout)) {
                ++k;
            }
            if (k == batch.size()) {
                batch.push_back(std::move(*m_pending));
                askers.emplace_back();
            }
            askers[k].push_back(j);
        }
        m_mode = Mode::off;
        if (batch.empty()) {
            break;
        }
        auto results = run_batch(m_inner, batch);
        ++m_rounds;
        if (!results) {
            // Nothing is lost: every probe runs live, and meets the same failure there if it lasts.
            log::debug(name(), "fetching {} probe commands ahead failed: {}", batch.size(), results.error().message);
            break;
        }
        m_prefetched += batch.size();
        for (size_t k = 0; k < batch.size(); ++k) {
            for (size_t j : askers[k]) {
                m_records[j].answers.push_back({batch[k].script, batch[k].timeout, (*results)[k]});
            }
        }
    }
    m_mode = Mode::off;
    log::debug(name(), "{} probe commands of {} jobs fetched ahead in {} round trips ({:.0f} ms)", m_prefetched,
               jobs.size(), m_rounds, util::seconds_since(t0) * 1000);
}

void PrefetchTarget::replay(size_t job) {
    if (job >= m_records.size()) {
        m_mode = Mode::off;
        return;
    }
    m_mode = Mode::replaying;
    m_job = job;
    for (auto& a : m_records[job].answers) {
        a.used = false;
    }
}

// The current job's first answer to `cmd` not yet given in this run of the job. Each answer is
// given once, so a job that asks again (a wait loop) reaches the host the second time.
const PrefetchTarget::Answer* PrefetchTarget::take(const Command& cmd) {
    if (m_job >= m_records.size()) {
        return nullptr;
    }
    for (auto& a : m_records[m_job].answers) {
        if (!a.used && a.script == cmd.script && a.timeout == cmd.timeout) {
            a.used = true;
            return &a;
        }
    }
    return nullptr;
}

Result<CommandResult> PrefetchTarget::record(const Command& cmd) {
    if (!m_stopped) {
        if (const Answer* a = take(cmd)) {
            return a->result;
        }
        // Another job's answer to the same command (two steps read /etc/hosts) is this job's too,
        // once: a job that asks again (a wait loop) gets a fresh answer.
        const auto& own = m_records[m_job].answers;
        bool asked_before =
            std::any_of(own.begin(), own.end(), [&](const Answer& a) { return a.script == cmd.script; });
        for (size_t j = 0; j < m_records.size() && !asked_before; ++j) {
            for (const auto& a : m_records[j].answers) {
                if (j != m_job && a.script == cmd.script && a.timeout == cmd.timeout) {
                    Answer copy{a.script, a.timeout, a.result, true};
                    m_records[m_job].answers.push_back(copy);
                    return copy.result;
                }
            }
        }
        m_stopped = true;
        if (batchable(cmd)) {
            m_pending = cmd;
        }  // else: a command that cannot go into a batch; the job is fetched no further
    }
    return make_error(ErrorCode::internal, "fetched ahead");
}

void PrefetchTarget::forget() {
    m_records.clear();
    m_mode = Mode::off;
}

Result<CommandResult> PrefetchTarget::run(const Command& cmd) {
    if (m_mode == Mode::recording) {
        return record(cmd);
    }
    if (cmd.mutates) {
        forget();
    } else if (m_mode == Mode::replaying) {
        if (const Answer* a = take(cmd)) {
            return a->result;
        }
    }
    return m_inner.run(cmd);
}

Result<std::optional<std::string>> PrefetchTarget::read_file(const std::string& path) {
    return m_records.empty() ? m_inner.read_file(path) : Target::read_file(path);
}

Result<FileStat> PrefetchTarget::stat(const std::string& path) {
    return m_records.empty() ? m_inner.stat(path) : Target::stat(path);
}

Result<void> PrefetchTarget::write_file(const FileSpec& file) {
    forget();
    return m_inner.write_file(file);
}

Result<void> PrefetchTarget::upload(const std::string& local_path, const FileSpec& dest) {
    forget();
    return m_inner.upload(local_path, dest);
}

Result<std::unique_ptr<HostLock>> PrefetchTarget::lock(const std::string& holder) {
    forget();
    return m_inner.lock(holder);
}

}  // namespace nodectl

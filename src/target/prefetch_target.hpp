// PrefetchTarget: a host's probes fetched ahead, a batch per round trip instead of a round trip per
// command (ARCHITECTURE.md, "Probes: one batch per round, not one round trip per command").
//
// The runner hands it every probe of a run (a step's probe or audit, the journal read) as a job.
// prefetch() runs all the jobs in rounds: a job runs against the answers recorded so far, and the
// first command it asks for that has no answer yet is put into this round's batch (the job
// stops there: it gets an error, which nobody sees); one run_batch() answers the whole round.
// A job that asks for nothing new is complete. Then the runner runs each step as always, after
// replay(job): a command the job recorded is answered from the record, anything else goes to the
// host. Any change to the host (a command with mutates, a write, an upload) drops every
// record: after a change, probes are live again, exactly as without prefetching.
// Only for targets whose commands cost a round trip (Target::batches_probes); on others every call
// goes straight through.
#pragma once

#include "nodectl/target.hpp"

#include <functional>
#include <vector>

namespace nodectl {

// Some read-only work whose commands may be fetched ahead. Its result is not used: the work is
// done again, for real, after replay().
using ProbeJob = std::function<void(Target&)>;

class PrefetchTarget final : public Target {
public:
    explicit PrefetchTarget(Target& inner) : m_inner(inner) {}

    // Records the answers of `jobs` (see above) in at most `max_rounds` batches.
    void prefetch(const std::vector<ProbeJob>& jobs, unsigned max_rounds = 8);
    // Until the next replay() or a change, commands recorded by job `job` are answered from the record.
    void replay(size_t job);
    // Round trips prefetch() made, and commands it answered in them.
    unsigned rounds() const { return m_rounds; }
    size_t prefetched() const { return m_prefetched; }

    const std::string& name() const override { return m_inner.name(); }
    Result<CommandResult> run(const Command& cmd) override;
    // Through run() while records exist (so that they can be batched and replayed), else the inner target's.
    Result<std::optional<std::string>> read_file(const std::string& path) override;
    Result<FileStat> stat(const std::string& path) override;
    Result<void> write_file(const FileSpec& file) override;
    Result<void> upload(const std::string& local_path, const FileSpec& dest) override;
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override;
    bool read_only() const override { return m_inner.read_only(); }
    bool batches_probes() const override { return m_inner.batches_probes(); }
    std::string login_user() const override { return m_inner.login_user(); }
    Result<AccessCheck> check_fresh_login(const std::string& user) override { return m_inner.check_fresh_login(user); }

private:
    struct Answer {
        std::string script;
        std::chrono::seconds timeout;
        Result<CommandResult> result;
        bool used = false;  // already given to the job in its current run
    };
    // One job's recorded commands and answers.
    struct Record {
        std::vector<Answer> answers;
        bool complete = false;  // asked for nothing more, or cannot be fetched further
    };
    enum class Mode { off, recording, replaying };

    const Answer* take(const Command& cmd);
    Result<CommandResult> record(const Command& cmd);
    void forget();

    Target& m_inner;
    std::vector<Record> m_records;
    Mode m_mode = Mode::off;
    size_t m_job = 0;
    // While recording: the command the current job asked for that has no answer yet.
    std::optional<Command> m_pending;
    bool m_stopped = false;  // while recording: the current job got its error, answer nothing more
    unsigned m_rounds = 0;
    size_t m_prefetched = 0;
};

}  // namespace nodectl

// The journal on each host (/var/lib/nodectl/journal.json, mode 0600): which run last touched the
// host, with which profile, how far it got. A run that finds an interrupted run of the same profile
// resumes it, skipping the steps that run had finished.
#pragma once

#include "nodectl/target.hpp"

#include <map>
#include <string>

namespace nodectl {

struct Journal {
    std::string run_id;
    std::string profile_digest;
    std::string state;  // "running", "complete", "failed"
    std::string started;
    std::string finished;
    std::map<std::string, std::string> steps;  // step id -> "done" | "failed"

    static constexpr const char* k_path = "/var/lib/nodectl/journal.json";

    static Result<Journal> read(Target& target);  // an empty Journal when there is none
    Result<void> write(Target& target) const;
    std::string to_json() const;
    static Journal from_json(const std::string& text);
};

// One apply run's journal on a host, with the lock held: read at the start, written `running`
// before the first change, after every step that changed something or failed, and at the end. A
// run that changed nothing, on a host whose journal already records this profile as complete,
// writes nothing: a no-change run leaves the host as it found it.
class RunJournal {
public:
    // Reads the journal through `from`; the writes go to `to`. A journal still saying "running"
    // with the same profile belongs to a run that died (we hold the lock): this run resumes it.
    static Result<RunJournal> start(Target& from, Target& to, const std::string& run_id,
                                    const std::string& profile_digest);
    // The run this one resumes (empty: none), and the steps it had finished.
    const std::string& resumed_run() const { return m_resumed; }
    bool done_before(const std::string& step_id) const;
    size_t done_before_count() const { return m_journal.steps.size(); }
    Result<void> before_change();
    Result<void> step_ended(const std::string& step_id, bool failed);
    Result<void> finish(bool failed);

private:
    explicit RunJournal(Target& to) : m_to(&to) {}
    Result<void> write();

    Target* m_to;
    Journal m_journal;
    std::string m_resumed;
    bool m_written = false;  // by this run
    bool m_up_to_date = false;  // the host's journal says complete, for this profile
};

}  // namespace nodectl

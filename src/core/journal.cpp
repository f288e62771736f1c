#include "core/journal.hpp"
#include "util/json.hpp"
#include "util/time.hpp"

#include <nlohmann/json.hpp>

namespace nodectl {

std::string Journal::to_json() const {
    nlohmann::json j = {{"run_id", run_id},   {"profile", profile_digest}, {"state", state},
                        {"started", started}, {"finished", finished},      {"steps", steps}};
    return util::json_text(j, 2) + "\n";
}

Journal Journal::from_json(const std::string& text) {
    Journal out;
    auto parsed = util::parse_json(text);
    if (!parsed || !parsed->is_object()) {
        return out;  // unreadable journal: nothing to resume
    }
    const nlohmann::json& j = *parsed;
    try {
        out.run_id = j.value("run_id", "");
        out.profile_digest = j.value("profile", "");
        out.state = j.value("state", "");
        out.started = j.value("started", "");
        out.finished = j.value("finished", "");
    } catch (const nlohmann::json::exception&) {
        return Journal{};  // a field of the wrong type: as unreadable as junk
    }
    if (j.contains("steps") && j["steps"].is_object()) {
        for (auto& [k, v] : j["steps"].items()) {
            if (v.is_string()) {
                out.steps[k] = v.get<std::string>();
            }
        }
    }
    return out;
}

Result<Journal> Journal::read(Target& target) {
    auto text = TRY(target.read_file(k_path));
    return text ? from_json(*text) : Journal{};
}

Result<void> Journal::write(Target& target) const {
    FileSpec f;
    f.path = k_path;
    f.content = to_json();
    f.mode = 0600;
    return target.write_file(f);
}

Result<RunJournal> RunJournal::start(Target& from, Target& to, const std::string& run_id,
                                     const std::string& profile_digest) {
    auto previous = Journal::read(from);
    if (!previous) {
        return make_error(previous.error().code, "reading the journal: " + previous.error().message);
    }
    RunJournal out(to);
    if (previous->state == "running" && previous->profile_digest == profile_digest) {
        out.m_resumed = previous->run_id;
        out.m_journal.steps = previous->steps;
    }
    out.m_up_to_date = previous->state == "complete" && previous->profile_digest == profile_digest;
    out.m_journal.run_id = run_id;
    out.m_journal.profile_digest = profile_digest;
    out.m_journal.state = "running";
    out.m_journal.started = util::utc_now();
    return out;
}

bool RunJournal::done_before(const std::string& step_id) const {
    auto it = m_journal.steps.find(step_id);
    return !m_resumed.empty() && it != m_journal.steps.end() && it->second == "done";
}

Result<void> RunJournal::write() {
    m_written = true;
    if (auto w = m_journal.write(*m_to); !w) {
        return make_error(w.error().code, "writing the journal: " + w.error().message);
    }
    return Ok{};
}

Result<void> RunJournal::before_change() {
    return m_written ? Result<void>(Ok{}) : write();
}

Result<void> RunJournal::step_ended(const std::string& step_id, bool failed) {
    m_journal.steps[step_id] = failed ? "failed" : "done";
    return write();
}

Result<void> RunJournal::finish(bool failed) {
    if (!failed && !m_written && m_up_to_date) {
        return Ok{};
    }
    m_journal.state = failed ? "failed" : "complete";
    m_journal.finished = util::utc_now();
    return write();
}

}  // namespace nodectl

// firstboot.json: the machine-readable status (every attempt, each step's result and time, the
// error), and the human-readable report made from it for the technician.
#include "modules/firstboot/firstboot.hpp"
#include "util/json.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace nodectl::firstboot {

namespace {

using nlohmann::json;

json step_json(const StepStatusEntry& s) {
    json j = {{"id", s.id}, {"title", s.title}, {"result", s.result}, {"seconds", s.seconds}};
    if (!s.error.empty()) {
        j["error"] = s.error;
    }
    return j;
}

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

double num(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

std::string Status::to_json() const {
    json attempts_json = json::array();
    for (const auto& a : attempts) {
        json steps_json = json::array();
        for (const auto& s : a.steps) {
            steps_json.push_back(step_json(s));
        }
        attempts_json.push_back({{"started", a.started},
                                 {"finished", a.finished},
                                 {"run_id", a.run_id},
                                 {"resumed_run", a.resumed_run},
                                 {"seconds", a.seconds},
                                 {"error", a.error},
                                 {"steps", steps_json}});
    }
    json j = {{"state", state},
              {"source", source},
              {"config", config},
              {"bundle", bundle},
              {"bundle_digest", bundle_digest},
              {"profile_digest", profile_digest},
              {"signature_required", signature_required},
              {"signature", signature},
              {"started", started},
              {"finished", finished},
              {"error", error},
              {"pid", pid},
              {"attempts", attempts_json}};
    return util::json_text(j, 2) + "\n";
}

Status Status::from_json(const std::string& text) {
    Status out;
    auto parsed = util::parse_json(text);
    if (!parsed || !parsed->is_object()) {
        return out;
    }
    const json& j = *parsed;
    out.state = str(j, "state");
    out.source = str(j, "source");
    out.config = str(j, "config");
    out.bundle = str(j, "bundle");
    out.bundle_digest = str(j, "bundle_digest");
    out.profile_digest = str(j, "profile_digest");
    out.signature = str(j, "signature");
    auto required = j.find("signature_required");  // a wrong type is "not required", never a throw
    out.signature_required = required != j.end() && required->is_boolean() && required->get<bool>();
    out.started = str(j, "started");
    out.finished = str(j, "finished");
    out.error = str(j, "error");
    double pid = num(j, "pid");  // a pid out of range would be undefined behaviour to convert
    out.pid = pid >= 1 && pid <= 4194304 ? static_cast<long>(pid) : 0;
    if (auto it = j.find("attempts"); it != j.end() && it->is_array()) {
        for (const auto& aj : *it) {
            if (!aj.is_object()) {
                continue;
            }
            Attempt a;
            a.started = str(aj, "started");
            a.finished = str(aj, "finished");
            a.run_id = str(aj, "run_id");
            a.resumed_run = str(aj, "resumed_run");
            a.seconds = num(aj, "seconds");
            a.error = str(aj, "error");
            if (auto st = aj.find("steps"); st != aj.end() && st->is_array()) {
                for (const auto& sj : *st) {
                    if (sj.is_object()) {
                        a.steps.push_back(
                            {str(sj, "id"), str(sj, "title"), str(sj, "result"), num(sj, "seconds"), str(sj, "error")});
                    }
                }
            }
            out.attempts.push_back(std::move(a));
        }
    }
    return out;
}

std::string Status::report_text(const std::string& host) const {
    std::ostringstream o;
    o << "nodectl first boot report for " << host << "\n";
    o << "state:     " << (state.empty() ? "not started" : state) << "\n";
    if (!error.empty()) {
        o << "error:     " << error << "\n";
    }
    o << "config:    " << (config.empty() ? "(none found)" : config) << (source.empty() ? "" : " (" + source + ")")
      << "\n";
    if (!bundle.empty()) {
        o << "bundle:    " << bundle << (bundle_digest.empty() ? "" : " (manifest " + bundle_digest.substr(0, 16) + ")")
          << "\n";
    }
    o << "signature: " << (signature.empty() ? "not required" : signature) << "\n";
    o << "started:   " << started << "\n";
    if (!finished.empty()) {
        o << "finished:  " << finished << "\n";
    }
    int n = 0;
    for (const auto& a : attempts) {
        ++n;
        bool live = state == "running" && n == static_cast<int>(attempts.size());
        o << "\nattempt " << n << ": started " << a.started
          << (!a.finished.empty() ? ", finished " + a.finished
              : live              ? ", in progress"
                                  : ", interrupted");
        if (!a.resumed_run.empty()) {
            o << ", resumed run " << a.resumed_run;
        }
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.1f", a.seconds);
        o << " (" << secs << " s)\n";
        if (!a.error.empty()) {
            o << "  " << a.error << "\n";
        }
        for (const auto& s : a.steps) {
            std::snprintf(secs, sizeof secs, "%6.1f s", s.seconds);
            const std::string& result = live && s.result == "not run" ? std::string("pending") : s.result;
            o << "  " << (s.result == "failed" ? "FAIL " : "     ") << secs << "  " << result << "  " << s.title
              << "\n";
            if (!s.error.empty()) {
                o << "            " << s.error << "\n";
            }
        }
    }
    if (state == "done") {
        o << "\nThis machine is provisioned. A stick or config that appears later is ignored\n"
             "(nodectl firstboot --force runs again).\n";
    } else if (state == "failed") {
        o << "\nNothing further happens by itself. Fix the cause and reboot, or run `nodectl firstboot`;\n"
             "a failed run resumes where it stopped when the profile is unchanged.\n";
    }
    return o.str();
}

Result<std::optional<Status>> read_status(const std::string& root) {
    auto text = util::read_file(root + k_status_file);
    if (!text) {
        if (errno == ENOENT) {
            return std::optional<Status>{};
        }
        return errno_error(root + k_status_file);
    }
    return std::optional<Status>{Status::from_json(*text)};
}

Result<void> write_status(const Status& status, const std::string& root) {
    std::error_code ec;
    std::filesystem::create_directories(root + k_state_dir, ec);
    // Readable by anyone: it says what happened, never a secret (profiles keep secrets in files).
    auto why = util::write_file_atomic(root + k_status_file, status.to_json(), 0644);
    if (!why) {
        return make_error(ErrorCode::io, "writing " + root + k_status_file + ": " + why.error());
    }
    return Ok{};
}

std::string_view state_name(State s) {
    switch (s) {
    case State::not_started: return "not started";
    case State::running: return "running";
    case State::interrupted: return "interrupted";
    case State::done: return "done";
    case State::failed: return "failed";
    }
    return "?";
}

Observed observe(const std::string& root) {
    Observed out;
    auto st = read_status(root);
    if (st && *st) {
        out.status = **st;
    }
    if (auto done = util::read_file(root + k_done_file)) {
        out.state = State::done;
        out.done_line = *done;
        while (!out.done_line.empty() && out.done_line.back() == '\n') {
            out.done_line.pop_back();
        }
        return out;
    }
    if (!out.status) {
        return out;
    }
    const auto& s = out.status->state;
    if (s == "done") {
        out.state = State::done;
    } else if (s == "failed") {
        out.state = State::failed;
    } else if (s == "running") {
        // The lock tells whether the writer still works: a dead process holds no flock.
        out.state = util::FileLock::held_by_other(root + k_lock_file) ? State::running : State::interrupted;
    } else {
        out.state = State::not_started;
    }
    return out;
}

}  // namespace nodectl::firstboot

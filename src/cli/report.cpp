#include "cli/report.hpp"
#include "util/json.hpp"

#include "util/strings.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace nodectl::cli {

namespace {

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fs", s);
    return buf;
}

const char* mark(StepStatus s) {
    switch (s) {
    case StepStatus::unchanged: return "=";
    case StepStatus::changed: return "~";
    case StepStatus::would_change: return "~";
    case StepStatus::done_before: return "=";
    case StepStatus::failed: return "!";
    case StepStatus::not_run: return "-";
    }
    return "?";
}

std::string indent(const std::string& text, const std::string& pad) {
    std::string out;
    for (const auto& line : util::split_lines(text)) {
        out += pad + line + "\n";
    }
    return out;
}

const char* control_mark(ControlStatus s) {
    switch (s) {
    case ControlStatus::pass: return "PASS";
    case ControlStatus::fail: return "FAIL";
    case ControlStatus::not_applicable: return "N/A ";
    }
    return "?";
}

std::string one_line(const std::string& s) {
    auto lines = util::split_lines(s);
    return util::join(lines, " | ");
}

std::string control_text(const ControlResult& c) {
    std::string out = "  " + std::string(control_mark(c.status)) + "  " + c.id;
    switch (c.status) {
    case ControlStatus::pass: out += ": " + one_line(c.observed); break;
    case ControlStatus::fail:
        out += ": " + (c.observed.empty() ? std::string("(nothing)") : one_line(c.observed)) + "  [expected " +
               one_line(c.expected) + "]";
        if (!c.reason.empty()) {
            out += " " + c.reason;
        }
        break;
    case ControlStatus::not_applicable: out += ": not applicable: " + c.reason; break;
    }
    return out + "\n";
}

}  // namespace

std::string reports_text(const std::vector<HostReport>& reports, RunMode mode) {
    std::string out;
    size_t ok = 0, changed_hosts = 0;
    for (const auto& r : reports) {
        size_t changing = r.count(mode == RunMode::apply ? StepStatus::changed : StepStatus::would_change);
        ok += r.ok;
        changed_hosts += changing > 0;
        out += "== " + r.host + ": ";
        if (!r.ok && r.steps.empty()) {
            out += "FAILED";
        } else if (!r.ok) {
            out += "FAILED after " + std::to_string(r.count(StepStatus::changed)) + " changed";
        } else if (mode == RunMode::apply) {
            out +=
                std::to_string(changing) + " changed, " + std::to_string(r.count(StepStatus::unchanged)) + " unchanged";
        } else if (mode == RunMode::plan) {
            out += std::to_string(changing) + " to change, " + std::to_string(r.count(StepStatus::unchanged)) +
                   " unchanged";
        } else {
            out += std::to_string(r.count(ControlStatus::pass)) + " passed, " +
                   std::to_string(r.count(ControlStatus::fail)) + " failed, " +
                   std::to_string(r.count(ControlStatus::not_applicable)) + " not applicable";
        }
        out += " (" + seconds(r.seconds) + ")";
        if (!r.resumed_run.empty()) {
            out += " [resumed interrupted run " + r.resumed_run + "]";
        }
        out += "\n";
        if (!r.ok && !r.error.empty()) {
            out += indent(r.error, "   error: ");
        }
        size_t not_run = r.count(StepStatus::not_run);
        if (not_run > 0) {
            out += "  - " + std::to_string(not_run) + " step" + (not_run == 1 ? "" : "s") + " not run\n";
        }
        for (const auto& s : r.steps) {
            bool show = s.status != StepStatus::unchanged && s.status != StepStatus::done_before &&
                        s.status != StepStatus::not_run;
            if (mode == RunMode::check && s.status != StepStatus::failed) {
                for (const auto& c : s.controls) {
                    out += control_text(c);
                }
                continue;
            }
            if (!show) {
                continue;
            }
            out +=
                "  " + std::string(mark(s.status)) + " " + s.title + " [" + std::string(status_name(s.status)) + "]\n";
            for (const auto& c : s.plan.changes) {
                out += "      " + c.summary + "\n";
                if (!c.diff.empty()) {
                    out += indent(c.diff, "        ");
                }
            }
            if (!s.error.empty()) {
                out += "      " + s.error + "\n";
            }
        }
    }
    const char* verb = mode == RunMode::apply  ? "changed"
                       : mode == RunMode::plan ? "would change"
                                               : "with failed controls";
    out += "Summary: " + std::to_string(reports.size()) + " host" + (reports.size() == 1 ? "" : "s") + ", " +
           std::to_string(ok) + " ok, " + std::to_string(reports.size() - ok) + " failed, " +
           std::to_string(changed_hosts) + " " + verb + "\n";
    for (const auto& r : reports) {
        if (!r.ok) {
            out += "  " + r.host + ": " + util::split_lines(r.error).front() + "\n";
        }
    }
    return out;
}

std::string reports_json(const std::vector<HostReport>& reports, RunMode mode) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& r : reports) {
        nlohmann::json steps = nlohmann::json::array();
        for (const auto& s : r.steps) {
            nlohmann::json changes = nlohmann::json::array();
            for (const auto& c : s.plan.changes) {
                changes.push_back({{"summary", c.summary}, {"diff", c.diff}});
            }
            nlohmann::json step = {{"id", s.id},         {"title", s.title}, {"status", status_name(s.status)},
                                   {"changes", changes}, {"error", s.error}, {"seconds", s.seconds}};
            if (mode == RunMode::check) {
                nlohmann::json controls = nlohmann::json::array();
                for (const auto& c : s.controls) {
                    controls.push_back({{"id", c.id},
                                        {"title", c.title},
                                        {"status", control_status_name(c.status)},
                                        {"observed", c.observed},
                                        {"expected", c.expected},
                                        {"reason", c.reason}});
                }
                step["controls"] = controls;
            }
            steps.push_back(step);
        }
        hosts.push_back({{"host", r.host},
                         {"ok", r.ok},
                         {"error", r.error},
                         {"resumed_run", r.resumed_run},
                         {"seconds", r.seconds},
                         {"steps", steps}});
    }
    const char* m = mode == RunMode::apply ? "apply" : mode == RunMode::plan ? "plan" : "check";
    return util::json_text(nlohmann::json({{"mode", m}, {"hosts", hosts}}), 2);
}

}  // namespace nodectl::cli

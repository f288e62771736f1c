// `nodectl firstboot`: once per machine, find the configuration, check it (signature, profile,
// bundle) before anything changes, then run the same steps as `apply --local` through the same
// runner and journal, keeping firstboot.json current after every step. The phases are listed in
// firstboot.hpp and called in that order by firstboot() below.
#include "actions/firstboot.hpp"

#include "util/log.hpp"
#include "target/local_target.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

namespace nodectl::actions {

namespace {

namespace fb = nodectl::firstboot;

constexpr const char* k_log = "firstboot";

std::string machine_hostname() {
    char name[256] = "local";
    gethostname(name, sizeof name - 1);
    return name;
}

// Phase 1. Held for the whole run (and by a second `nodectl firstboot`, say cloud-init's runcmd
// while the unit runs, which waits and then finds the machine done). The kernel drops it if we die.
Result<util::FileLock> lock_firstboot(int wait_seconds) {
    std::error_code ec;
    std::filesystem::create_directories(fb::k_state_dir, ec);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    bool told = false;
    while (true) {
        auto lock = util::FileLock::take(fb::k_lock_file, 0600, util::FileLock::Wait::no);
        if (lock) {
            return std::move(*lock);
        }
        if (errno != EWOULDBLOCK) {
            return make_error(ErrorCode::io, lock.error());
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return make_error(ErrorCode::locked,
                              "another nodectl firstboot still runs after " + std::to_string(wait_seconds) + " s");
        }
        if (!told) {
            log::info(k_log, "another nodectl firstboot is running; waiting for it to finish");
            told = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

// What a run applies, found and checked before anything on the machine changes. The stick, when
// the configuration came from one, is released when this goes.
struct Prepared {
    fb::Source src;
    fb::Checked checked;
    HostSpec host;
    std::optional<ModuleContext> ctx;  // refers to checked.profile and host
    StepList steps;

    Prepared() = default;
    Prepared(const Prepared&) = delete;
    Prepared& operator=(const Prepared&) = delete;
    ~Prepared() { fb::release_stick(src); }
};

// Phase 4: discovery, the checks and the steps. Fills `out` as far as it gets (a refusal's report
// is written back to the stick that was found) and `status` with what was found and checked.
Result<void> prepare(const fb::RunOptions& options, fb::Status& status, Prepared& out) {
    fb::DiscoverOptions d;
    d.config = options.config;
    d.cmdline_file = options.cmdline_file;
    out.src = TRY(fb::discover(d));
    status.source = out.src.kind;
    status.config = out.src.shown;
    log::info(k_log, "configuration: {} (from {})", out.src.shown, out.src.kind);
    fb::CheckOptions co;
    co.bundle = options.bundle;
    out.checked = TRY(fb::check_input(out.src, co, status));
    status.profile_digest = out.checked.profile->digest();
    out.host.name = machine_hostname();
    out.host.address = "local";
    out.host.local = true;
    out.ctx.emplace(ModuleContext{*out.checked.profile, out.host});
    auto steps = bundle::host_steps(out.checked.bundle ? &*out.checked.bundle : nullptr, *out.ctx);
    if (!steps) {
        return make_error(ErrorCode::config, "the profile has errors:\n" + steps.error().message);
    }
    out.steps = std::move(*steps);
    return Ok{};
}

// Phase 5. After a power cut dpkg may be half-way through; apt refuses to work until it is finished.
void repair_dpkg() {
    std::error_code ec;
    if (std::filesystem::is_empty("/var/lib/dpkg/updates", ec) || ec) {
        return;
    }
    log::info(k_log, "dpkg was interrupted: running dpkg --configure -a");
    auto r = run_process({"sh", "-c", std::string(k_script_prologue) + "dpkg --configure -a"}, "",
                         std::chrono::seconds(1800));
    if (!r || r->exit_code != 0) {
        log::warn(k_log, "dpkg --configure -a failed: {}", r ? util::trim(r->err) : r.error().message);
    }
}

// The attempt before this one died while it ran (this run holds the lock, so no process works on
// it any more): killed, or the power was cut. Its record says so, and names the step it was in:
// the first one it had not finished, which may have changed the machine in part.
void mark_interrupted(fb::Attempt& a) {
    if (!a.finished.empty()) {
        return;
    }
    a.error = "interrupted: nodectl ended (killed, or the power was cut) before this attempt finished";
    for (auto& s : a.steps) {
        if (s.result == status_name(StepStatus::not_run)) {
            s.result = "interrupted";
            break;
        }
    }
}

void fill_steps(fb::Attempt& a, const HostReport& r) {
    a.steps.clear();
    for (const auto& s : r.steps) {
        a.steps.push_back({s.id, s.title, std::string(status_name(s.status)), s.seconds, s.error});
    }
    a.resumed_run = r.resumed_run;
    a.seconds = r.seconds;
}

// One attempt: its record in firstboot.json, kept current from phase 3 to the end.
class FirstbootAttempt {
public:
    // Phase 3: a new attempt. Earlier attempts are kept (the report shows the whole story) unless
    // --force starts over; what this attempt finds is its own.
    explicit FirstbootAttempt(bool force) {
        if (auto previous = fb::read_status(); previous && *previous) {
            m_status = **previous;
        }
        m_resuming = m_status.state == "running";
        if (m_resuming && !m_status.attempts.empty()) {
            mark_interrupted(m_status.attempts.back());
        }
        if (m_status.started.empty() || force) {
            m_status = fb::Status{};
            m_status.started = util::utc_now();
        }
        m_status.state = "running";
        m_status.error.clear();
        m_status.finished.clear();
        m_status.source.clear();
        m_status.config.clear();
        m_status.bundle.clear();
        m_status.bundle_digest.clear();
        m_status.profile_digest.clear();
        m_status.signature.clear();
        m_status.signature_required = false;
        m_status.pid = static_cast<long>(getpid());
        fb::Attempt attempt;
        attempt.started = util::utc_now();
        attempt.run_id = new_run_id();
        m_status.attempts.push_back(attempt);
        save();
    }

    fb::Status& status() { return m_status; }
    // The previous attempt died while running (power cut, kill): this one resumes it.
    bool resuming() const { return m_resuming; }

    void save() {
        if (auto w = fb::write_status(m_status); !w) {
            log::error(k_log, "{}", w.error().message);
        }
    }

    // Phase 6: the steps, with firstboot.json rewritten after each.
    HostReport apply(const fb::RunOptions& options, Prepared& p) {
        RunOptions ro;
        ro.mode = RunMode::apply;
        ro.parallel = 1;
        ro.run_timeout = std::chrono::seconds(options.run_timeout);
        // The bundle is part of what is applied: a different bundle must not resume a run.
        ro.profile_digest =
            p.checked.profile->digest() + (p.checked.bundle ? "+" + p.checked.bundle->manifest.digest : "");
        ro.run_id = m_status.attempts.back().run_id;
        ro.operator_name = "firstboot@" + p.host.name;
        ro.on_step = [&](const HostReport& r) {
            fill_steps(m_status.attempts.back(), r);
            save();
        };
        // Every step in the record before the first one runs: a cut attempt shows where it was.
        auto& planned = m_status.attempts.back().steps;
        planned.clear();
        for (const auto& step : p.steps) {
            planned.push_back({step->id(), step->title(), std::string(status_name(StepStatus::not_run)), 0, ""});
        }
        save();
        LocalTarget target(p.host.name);
        log::info(k_log, "applying {} ({} steps, run {})", p.src.shown, p.steps.size(), ro.run_id);
        return run_steps(target, p.steps, ro);
    }

    // Bad input: said in the status and in the report, and nothing on the machine changed.
    FirstbootOutcome refuse(const fb::Source& src, const std::string& why) {
        m_status.state = "failed";
        m_status.error = why;
        end_attempt("refused: " + why);
        return {FirstbootEnd::refused, why, "", write_report(src)};
    }

    // Phase 7: firstboot.done when every step succeeded; the status and the report either way.
    FirstbootOutcome end(const Prepared& p, const HostReport& report) {
        fill_steps(m_status.attempts.back(), report);
        if (report.ok) {
            m_status.state = "done";
            std::string done = "done " + util::utc_now() + " from " + p.src.kind + " " + p.src.shown + " profile " +
                               p.checked.profile->digest().substr(0, 16);
            if (auto w = util::write_file_atomic(fb::k_done_file, done + "\n", 0644); !w) {
                m_status.state = "failed";
                m_status.error = "writing " + std::string(fb::k_done_file) + ": " + w.error();
            }
            end_attempt("");
        } else {
            m_status.state = "failed";
            m_status.error = report.error.empty() ? "a step failed" : report.error;
            end_attempt(m_status.error);
        }
        bool done = m_status.state == "done";
        return {done ? FirstbootEnd::provisioned : FirstbootEnd::failed,
                done ? "" : m_status.error,
                "",
                write_report(p.src),
                report.steps.size(),
                report.seconds};
    }

private:
    void end_attempt(const std::string& error) {
        m_status.finished = util::utc_now();
        auto& a = m_status.attempts.back();
        a.finished = m_status.finished;
        a.seconds = util::seconds_since(m_t0);  // discovery and bundle check included
        if (!error.empty()) {
            a.error = error;
        }
        save();
    }

    // The report, also written back to the stick the configuration came from.
    std::string write_report(const fb::Source& src) {
        auto text = m_status.report_text(machine_hostname());
        if (auto w = fb::write_back_report(src, text, m_status.to_json()); !w) {
            log::warn(k_log, "{}", w.error().message);
        } else if (!src.stick_device.empty()) {
            log::info(k_log, "report written to the stick ({}:{})", src.stick_device, fb::k_stick_report);
        }
        return text;
    }

    fb::Status m_status;
    bool m_resuming = false;
    std::chrono::steady_clock::time_point m_t0 = std::chrono::steady_clock::now();
};

// The bundle unpacks under the cache; a unit has no HOME.
void default_cache_dir() {
    if (!std::getenv("NODECTL_CACHE_DIR") && !std::getenv("HOME")) {
        setenv("NODECTL_CACHE_DIR", "/var/cache/nodectl", 1);
    }
}

}  // namespace

Result<FirstbootOutcome> firstboot(const fb::RunOptions& options) {
    if (geteuid() != 0) {
        return make_error(ErrorCode::usage, "must run as root");
    }
    default_cache_dir();
    [[maybe_unused]] auto lock = TRY(lock_firstboot(options.lock_wait_seconds));
    // Once per machine: a finished machine does not even look for sticks or configs.
    if (auto done = util::read_file(fb::k_done_file); done && !options.force) {
        return FirstbootOutcome{FirstbootEnd::already_provisioned, "", util::trim(*done)};
    }
    if (options.force) {
        ::unlink(fb::k_done_file);
    }
    FirstbootAttempt attempt(options.force);
    Prepared p;
    if (auto ready = prepare(options, attempt.status(), p); !ready) {
        return attempt.refuse(p.src, ready.error().message);
    }
    attempt.save();
    if (attempt.resuming()) {
        repair_dpkg();
    }
    HostReport report = attempt.apply(options, p);
    return attempt.end(p, report);
}

Result<FirstbootPlan> firstboot_plan(const fb::RunOptions& options) {
    default_cache_dir();
    FirstbootPlan out;
    if (auto done = util::read_file(fb::k_done_file)) {
        out.done_line = util::trim(*done);
    }
    fb::Status scratch;
    Prepared p;
    TRY_VOID(prepare(options, scratch, p));
    out.config = p.src.shown;
    out.source = p.src.kind;
    out.signature = scratch.signature;
    out.bundle = scratch.bundle;
    RunOptions ro;
    ro.mode = RunMode::plan;
    LocalTarget target(p.host.name);
    out.plan = run_steps(target, p.steps, ro);
    return out;
}

}  // namespace nodectl::actions

#include "core/runner.hpp"

#include "core/journal.hpp"
#include "util/log.hpp"
#include "target/prefetch_target.hpp"
#include "target/read_only_target.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace nodectl {

std::string_view status_name(StepStatus s) {
    switch (s) {
    case StepStatus::unchanged: return "unchanged";
    case StepStatus::changed: return "changed";
    case StepStatus::would_change: return "would change";
    case StepStatus::done_before: return "done (resumed)";
    case StepStatus::failed: return "failed";
    case StepStatus::not_run: return "not run";
    }
    return "?";
}

size_t HostReport::count(StepStatus s) const {
    size_t n = 0;
    for (const auto& st : steps) {
        n += st.status == s;
    }
    return n;
}

size_t HostReport::count(ControlStatus s) const {
    size_t n = 0;
    for (const auto& st : steps) {
        for (const auto& c : st.controls) {
            n += c.status == s;
        }
    }
    return n;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string summarize(const Plan& plan) {
    std::string out;
    for (const auto& c : plan.changes) {
        out += (out.empty() ? "" : "; ") + c.summary;
    }
    return out;
}

// Probe, and in apply mode make the change and prove it took; `before_change` runs first (and
// stops the step when it fails).
void run_step(Target& target, Step& step, RunMode mode, StepReport& report,
              const std::function<Result<void>()>& before_change) {
    auto t0 = Clock::now();
    if (mode == RunMode::check) {
        auto controls = step.audit(target);
        if (!controls) {
            report.status = StepStatus::failed;
            report.error = "audit: " + controls.error().message;
        } else {
            report.controls = std::move(*controls);
            bool failing = std::any_of(report.controls.begin(), report.controls.end(),
                                       [](const ControlResult& c) { return c.status == ControlStatus::fail; });
            report.status = failing ? StepStatus::would_change : StepStatus::unchanged;
        }
        report.seconds = util::seconds_since(t0);
        return;
    }
    auto probed = step.probe(target);
    if (!probed) {
        report.status = StepStatus::failed;
        report.error = "probe: " + probed.error().message;
    } else if (probed->empty()) {
        report.status = StepStatus::unchanged;
    } else if (mode != RunMode::apply) {
        report.status = StepStatus::would_change;
        report.plan = std::move(*probed);
    } else {
        report.plan = std::move(*probed);
        log::info(target.name(), "{}: {}", step.title(), summarize(report.plan));
        auto applied = before_change();
        if (applied) {
            applied = step.apply(target, report.plan);
        }
        if (!applied) {
            report.status = StepStatus::failed;
            report.error = applied.error().message;
        } else if (auto again = step.probe(target); !again) {
            report.status = StepStatus::failed;
            report.error = "probe after apply: " + again.error().message;
        } else if (!again->empty()) {
            report.status = StepStatus::failed;
            report.error = "applied, but the host still differs: " + summarize(*again);
        } else {
            report.status = StepStatus::changed;
        }
    }
    report.seconds = util::seconds_since(t0);
}

// Fetches every probe of the run ahead (PrefetchTarget): the journal read in apply mode, then each
// step's probe (its audit in check mode). Returns the job number of the first step.
size_t prefetch_probes(PrefetchTarget& target, StepList& steps, RunMode mode) {
    std::vector<ProbeJob> jobs;
    if (mode == RunMode::apply) {
        jobs.push_back([](Target& t) { (void)Journal::read(t); });
    }
    size_t first_step = jobs.size();
    for (auto& s : steps) {
        Step* step = s.get();
        if (mode == RunMode::check) {
            jobs.push_back([step](Target& t) { (void)step->audit(t); });
        } else {
            jobs.push_back([step](Target& t) { (void)step->probe(t); });
        }
    }
    target.prefetch(jobs);
    return first_step;
}

// "title: error" of the last step that failed; empty when none did.
std::string last_failure(const HostReport& report) {
    std::string out;
    for (const auto& s : report.steps) {
        if (s.status == StepStatus::failed) {
            out = s.title + ": " + s.error;
        }
    }
    return out;
}

}  // namespace

HostReport run_steps(Target& real_target, StepList& steps, const RunOptions& options) {
    HostReport report;
    report.host = real_target.name();
    auto t0 = Clock::now();
    auto deadline = t0 + options.run_timeout;
    for (const auto& s : steps) {
        report.steps.push_back({s->id(), s->title()});
    }

    ReadOnlyTarget read_only(real_target);
    // Steps and the journal read go through `target`, which answers probes fetched ahead; the
    // journal is written to `direct`: nodectl's own record is no change a probe could see.
    Target& direct = options.mode == RunMode::apply ? real_target : static_cast<Target&>(read_only);
    PrefetchTarget target(direct);

    std::unique_ptr<HostLock> lock;
    std::optional<RunJournal> journal;  // apply mode
    auto fail = [&](std::string why) {
        report.ok = false;
        report.error = std::move(why);
        report.seconds = util::seconds_since(t0);
        return report;
    };
    if (options.mode == RunMode::apply) {
        auto l = target.lock("run " + options.run_id + " by " + options.operator_name + " started " + util::utc_now());
        if (!l) {
            return fail(l.error().message);
        }
        lock = std::move(*l);
    }
    size_t first_step = prefetch_probes(target, steps, options.mode);
    if (options.mode == RunMode::apply) {
        target.replay(0);
        auto started = RunJournal::start(target, direct, options.run_id, options.profile_digest);
        if (!started) {
            return fail(started.error().message);
        }
        journal = std::move(*started);
        report.resumed_run = journal->resumed_run();
        if (!report.resumed_run.empty()) {
            log::info(target.name(), "resuming interrupted run {} ({} steps already done)", report.resumed_run,
                      journal->done_before_count());
        }
    }
    std::function<Result<void>()> before_change = [&] {
        return journal ? journal->before_change() : Result<void>(Ok{});
    };

    bool failed = false;
    for (size_t i = 0; i < steps.size(); ++i) {
        StepReport& sr = report.steps[i];
        if (failed && options.mode != RunMode::check) {
            continue;  // a check audits every control whatever an earlier one found
        }
        if (Clock::now() > deadline) {
            sr.status = StepStatus::failed;
            sr.error = "whole-run timeout (" + std::to_string(options.run_timeout.count()) + "s) reached";
            failed = true;
            continue;
        }
        if (journal && journal->done_before(sr.id)) {
            sr.status = StepStatus::done_before;
            if (options.on_step) {
                options.on_step(report);
            }
            continue;
        }
        log::debug(target.name(), "{}", sr.title);
        target.replay(first_step + i);
        run_step(target, *steps[i], options.mode, sr, before_change);
        if (sr.status == StepStatus::failed) {
            log::error(target.name(), "{}: {}", sr.title, sr.error);
            failed = true;
        }
        if (journal && (sr.status == StepStatus::changed || failed)) {
            if (auto w = journal->step_ended(sr.id, failed); !w) {
                return fail(w.error().message);
            }
        }
        if (options.on_step && options.mode == RunMode::apply) {
            report.seconds = util::seconds_since(t0);
            options.on_step(report);
        }
    }
    if (journal) {
        if (auto w = journal->finish(failed); !w && !failed) {
            return fail(w.error().message);
        }
    }
    report.ok = !failed;
    report.error = last_failure(report);
    report.seconds = util::seconds_since(t0);
    return report;
}

std::vector<HostReport> run_hosts(std::vector<HostJob>& jobs, const RunOptions& options, const ConnectFn& connect) {
    std::vector<HostReport> reports(jobs.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t i = next++; i < jobs.size(); i = next++) {
            auto& job = jobs[i];
            auto t0 = Clock::now();
            auto target = connect(job.host);
            if (!target) {
                log::error(job.host.name, "{}", target.error().message);
                reports[i].host = job.host.name;
                reports[i].error = target.error().message;
                for (const auto& s : job.steps) {
                    reports[i].steps.push_back({s->id(), s->title()});
                }
                reports[i].seconds = util::seconds_since(t0);
                continue;
            }
            reports[i] = run_steps(**target, job.steps, options);
            reports[i].host = job.host.name;
            reports[i].seconds = util::seconds_since(t0);
        }
    };
    unsigned n = std::max(1u, std::min<unsigned>(options.parallel, static_cast<unsigned>(jobs.size())));
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < n; ++t) {
        threads.emplace_back(worker);
    }
    for (auto& t : threads) {
        t.join();
    }
    return reports;
}

std::string new_run_id() {
    return util::random_hex(4);
}

}  // namespace nodectl

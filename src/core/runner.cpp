#include "core/runner.hpp"

#include "core/journal.hpp"
#include "core/log.hpp"
#include "target/read_only_target.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
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

// Probe, and in apply mode make the change and prove it took.
void run_step(Target& target, Step& step, RunMode mode, StepReport& report) {
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
        auto applied = step.apply(target, report.plan);
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

} // namespace

HostReport run_steps(Target& real_target, StepList& steps, const RunOptions& options) {
    HostReport report;
    report.host = real_target.name();
    auto t0 = Clock::now();
    auto deadline = t0 + options.run_timeout;
    for (const auto& s : steps) {
        report.steps.push_back({s->id(), s->title()});
    }

    ReadOnlyTarget read_only(real_target);
    Target& target = options.mode == RunMode::apply ? real_target : static_cast<Target&>(read_only);

    std::unique_ptr<HostLock> lock;
    Journal journal;
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
        auto previous = Journal::read(target);
        if (!previous) {
            return fail("reading the journal: " + previous.error().message);
        }
        // We hold the lock, so a journal still saying "running" belongs to a run that died.
        if (previous->state == "running" && previous->profile_digest == options.profile_digest) {
            report.resumed_run = previous->run_id;
            journal.steps = previous->steps;
            log::info(target.name(), "resuming interrupted run {} ({} steps already done)", previous->run_id,
                      previous->steps.size());
        }
        journal.run_id = options.run_id;
        journal.profile_digest = options.profile_digest;
        journal.state = "running";
        journal.started = util::utc_now();
        if (auto w = journal.write(target); !w) {
            return fail("writing the journal: " + w.error().message);
        }
    }

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
        if (!report.resumed_run.empty() && journal.steps.count(sr.id) && journal.steps[sr.id] == "done") {
            sr.status = StepStatus::done_before;
            if (options.on_step) {
                options.on_step(report);
            }
            continue;
        }
        log::debug(target.name(), "{}", sr.title);
        run_step(target, *steps[i], options.mode, sr);
        if (sr.status == StepStatus::failed) {
            log::error(target.name(), "{}: {}", sr.title, sr.error);
            failed = true;
        }
        if (options.mode == RunMode::apply && (sr.status == StepStatus::changed || failed)) {
            journal.steps[sr.id] = failed ? "failed" : "done";
            if (auto w = journal.write(target); !w) {
                return fail("writing the journal: " + w.error().message);
            }
        }
        if (options.on_step && options.mode == RunMode::apply) {
            report.seconds = util::seconds_since(t0);
            options.on_step(report);
        }
    }
    if (options.mode == RunMode::apply) {
        journal.state = failed ? "failed" : "complete";
        journal.finished = util::utc_now();
        if (auto w = journal.write(target); !w && !failed) {
            return fail("writing the journal: " + w.error().message);
        }
    }
    report.ok = !failed;
    if (failed) {
        for (const auto& s : report.steps) {
            if (s.status == StepStatus::failed) {
                report.error = s.title + ": " + s.error;
            }
        }
    }
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

} // namespace nodectl

// The runner: hosts in parallel (up to --parallel), steps in order on each host. It owns the host
// lock, the journal on the host, timing, the per-host log prefix and the per-host report.
#pragma once

#include "nodectl/module.hpp"
#include "nodectl/target.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace nodectl {

enum class RunMode { plan, apply, check };

enum class StepStatus {
    unchanged,  // probe found the host already right
    changed,  // apply ran and the re-probe found it right
    would_change,  // plan/check: probe found differences
    done_before,  // resumed run: the interrupted run had finished this step
    failed,
    not_run,  // an earlier step failed
};
std::string_view status_name(StepStatus s);

struct StepReport {
    std::string id;
    std::string title;
    StepStatus status = StepStatus::not_run;
    Plan plan;
    std::vector<ControlResult> controls;  // check mode
    std::string error;
    double seconds = 0;
};

struct HostReport {
    std::string host;
    bool ok = false;
    std::string error;  // set when !ok
    std::string resumed_run;  // id of the interrupted run this one resumed, if any
    std::vector<StepReport> steps;
    double seconds = 0;

    size_t count(StepStatus s) const;
    size_t count(ControlStatus s) const;
};

struct HostJob {
    HostSpec host;
    StepList steps;
};

using ConnectFn = std::function<Result<std::unique_ptr<Target>>(const HostSpec&)>;

struct RunOptions {
    RunMode mode = RunMode::apply;
    unsigned parallel = 8;
    std::chrono::seconds run_timeout{3600};
    std::string profile_digest;
    std::string run_id;  // new_run_id()
    std::string operator_name;  // "user@machine" of whoever runs nodectl, shown to a run that finds the lock held
    // Called after each step has its outcome (apply mode, including steps done before a resume),
    // with the report so far: firstboot keeps its status file current with it. May be empty.
    std::function<void(const HostReport&)> on_step;
};

std::vector<HostReport> run_hosts(std::vector<HostJob>& jobs, const RunOptions& options, const ConnectFn& connect);

// Runs one host's steps on an already connected target (the per-host part of run_hosts).
HostReport run_steps(Target& target, StepList& steps, const RunOptions& options);

// A fresh id for a run (8 hex digits): the journal and the reports name the run by it.
std::string new_run_id();

}  // namespace nodectl

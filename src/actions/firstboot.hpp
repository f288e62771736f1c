// `nodectl firstboot` as an action: its phases in order, each returning what it found, and
// nothing printed (src/cli/firstboot_cmd.cpp prints and chooses the exit code). The phases:
//   1. lock          one first boot at a time (a second one waits, then finds the machine done);
//   2. once          firstboot.done exists and no --force: stop, nothing looked at;
//   3. attempt       a new attempt in firstboot.json (earlier ones kept for the report);
//   4. prepare       discovery, the checks (signature, profile, pinned files, bundle) and the
//                    steps, before anything changes: a failure here is a refusal;
//   5. repair        after a power cut, `dpkg --configure -a`;
//   6. apply         the steps through the runner and journal, firstboot.json after every step;
//   7. end           firstboot.done, the status, the report written back to a stick.
#pragma once

#include "core/runner.hpp"
#include "modules/firstboot/firstboot.hpp"

#include <string>

namespace nodectl::actions {

enum class FirstbootEnd {
    provisioned,  // every step succeeded: firstboot.done written
    already_provisioned,  // firstboot.done exists (no --force): nothing looked at
    refused,  // bad input (no config, signature, profile, bundle): nothing changed
    failed,  // a step failed, or the end could not be recorded
};

struct FirstbootOutcome {
    FirstbootEnd end = FirstbootEnd::failed;
    std::string why;  // refused, failed: the reason
    std::string done_line;  // already_provisioned: firstboot.done's content
    std::string report;  // refused, provisioned, failed: the report (also written back to a stick)
    size_t steps = 0;
    double seconds = 0;
};

// Runs first boot on this machine. An error (not root; another first boot held the lock too
// long) means nothing was looked at.
Result<FirstbootOutcome> firstboot(const firstboot::RunOptions& options);

// --dry-run: the same discovery and checks, then the plan; writes nothing (no status, no
// journal, no report), and a stick is only read.
struct FirstbootPlan {
    std::string done_line;  // set when the machine was provisioned already (--force would run this)
    std::string config, source, signature, bundle;
    HostReport plan;
};
Result<FirstbootPlan> firstboot_plan(const firstboot::RunOptions& options);

}  // namespace nodectl::actions

// Helpers for tests of steps against a FakeTarget: apply as the runner does, run through the
// runner, check that a second run changes nothing.
#pragma once

#include "fake_target.hpp"
#include "test_support.hpp"

#include "core/runner.hpp"
#include "nodectl/config.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nodectl::testing::steps {

using StepFactory = std::function<std::unique_ptr<Step>()>;

inline bool mentions(const std::vector<std::string>& lines, const std::string& part) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

// Applies as the runner does (apply, then re-probe) and returns the plan that was applied.
inline Plan apply_and_reprobe(Step& step, FakeTarget& target) {
    Plan plan = probe_ok(step, target);
    REQUIRE_FALSE(plan.empty());
    size_t before = target.host().host_mutations();
    auto applied = step.apply(target, plan);
    REQUIRE_MESSAGE(applied.ok(), (applied.ok() ? "" : applied.error().message));
    CHECK(target.host().host_mutations() > before);
    Plan again = probe_ok(step, target);
    CHECK_MESSAGE(again.empty(), "still differs: " << util::join(summaries(again), "; "));
    return plan;
}

inline RunOptions apply_options() {
    RunOptions o;
    o.mode = RunMode::apply;
    o.run_id = "test-run";
    o.profile_digest = "digest";
    return o;
}

inline StepStatus run_through_runner(const StepFactory& make, FakeTarget& target) {
    StepList steps;
    steps.push_back(make());
    auto report = run_steps(target, steps, apply_options());
    REQUIRE(report.steps.size() == 1);
    CHECK_MESSAGE(report.ok, report.error);
    return report.steps[0].status;
}

// First run changes the host; the second finds nothing to do and makes no changing call.
inline void check_second_run_changes_nothing(const StepFactory& make, FakeTarget& target) {
    QuietLogs quiet;
    REQUIRE(run_through_runner(make, target) == StepStatus::changed);
    size_t mutations = target.host().host_mutations();
    REQUIRE(mutations > 0);

    auto step = make();
    CHECK(probe_ok(*step, target).empty());
    CHECK(run_through_runner(make, target) == StepStatus::unchanged);
    CHECK(target.host().host_mutations() == mutations);
    CHECK(target.host().unknown.empty());
}

// A host called `name`, at the address `name`.
inline HostSpec host_named(const std::string& name) {
    HostSpec host;
    host.name = host.address = name;
    return host;
}

}  // namespace nodectl::testing::steps

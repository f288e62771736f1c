// The journal: its JSON form, reading it from a host, and what the runner does with a damaged one.
#include "fake_target.hpp"
#include "test_support.hpp"

#include "core/journal.hpp"
#include "core/runner.hpp"
#include "modules/base/steps.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::FakeTarget;
using nodectl::testing::QuietLogs;

TEST_CASE("journal: JSON round trip, and junk reads as no journal") {
    Journal j;
    j.run_id = "r";
    j.profile_digest = "d";
    j.state = "running";
    j.started = "2024-01-01T00:00:00Z";
    j.steps["a"] = "done";
    j.steps["b"] = "failed";
    Journal back = Journal::from_json(j.to_json());
    CHECK(back.run_id == "r");
    CHECK(back.profile_digest == "d");
    CHECK(back.state == "running");
    CHECK(back.started == "2024-01-01T00:00:00Z");
    CHECK(back.steps == j.steps);

    Journal junk = Journal::from_json("{not json");
    CHECK(junk.state.empty());
    CHECK(junk.steps.empty());
    Journal not_object = Journal::from_json("[1, 2]");
    CHECK(not_object.run_id.empty());
}

TEST_CASE("journal: a field of the wrong type reads as no journal instead of throwing") {
    // A hand-edited or damaged journal must not take the run (and its worker thread) down.
    Journal wrong;
    CHECK_NOTHROW(wrong = Journal::from_json(R"({"run_id": "r", "state": 3, "steps": {"a": "done"}})"));
    CHECK(wrong.run_id.empty());
    CHECK(wrong.state.empty());
    CHECK(wrong.steps.empty());

    // Steps of the wrong type are skipped one by one.
    Journal partly = Journal::from_json(R"({"run_id": "r", "state": "running", "steps": {"a": 1, "b": "done"}})");
    CHECK(partly.state == "running");
    CHECK(partly.steps == std::map<std::string, std::string>{{"b", "done"}});
}

TEST_CASE("runner: a damaged journal on the host does not stop the run") {
    QuietLogs quiet;
    FakeTarget t;
    t.host().put(Journal::k_path, R"({"run_id": ["x"], "state": "running"})", 0600);
    StepList steps;
    steps.push_back(std::make_unique<base::SetHostname>("web1"));
    RunOptions o;
    o.run_id = "run-3";
    o.profile_digest = "d";
    HostReport r = run_steps(t, steps, o);
    CHECK_MESSAGE(r.ok, r.error);
    CHECK(r.resumed_run.empty());
    CHECK(Journal::from_json(t.host().content(Journal::k_path)).state == "complete");
}

TEST_CASE("journal: read returns an empty journal when the host has none") {
    FakeTarget t;
    auto j = Journal::read(t);
    REQUIRE(j.ok());
    CHECK(j->state.empty());
    CHECK(j->run_id.empty());
}

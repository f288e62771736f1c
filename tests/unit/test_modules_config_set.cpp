// ApplyConfigSet (the config sets the harden module is made of) for real, on a LocalTarget running
// /bin/sh, against files in a temporary directory: apply, activation, validation failures and their
// restore, revert, drift and audit. The guarded sets (rollback timer, fresh login) are in
// test_modules_config_set_guard.cpp.
//
// ApplyConfigSet keeps its state under /var/lib/nodectl (originals, rollback, applied). Every
// test here uses its own random id and temp directory (SetFixture), and its StateGuard removes
// exactly the entries the test created there, plus the directories that did not exist before it.
#include "config_set_fixture.hpp"
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "target/local_target.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include <sys/stat.h>

using namespace nodectl;
// The test helpers' names unqualified in this file only (unity build).
namespace config_set_test {
using namespace nodectl::testing;
namespace fs = std::filesystem;

// =============================================================================================
// ApplyConfigSet on this machine

TEST_CASE("harden config set: a fresh apply writes the files with their modes, activates once, then probes clean") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("etc/a.conf");
    auto b = fx.dir.write("etc/sub/b.conf", "old b\n", 0644);
    auto spec = fx.spec({{a, "alpha\n", nullptr, 0640}, {b, "beta\n", nullptr, 0600}});
    spec.activate = fx.logs("activated");
    ApplyConfigSet step(spec);
    CHECK(step.id() == fx.id);
    CHECK(step.title() == "unit test set");

    auto plan = probe_ok(step, t);
    // Neither file is world-readable: the plan does not show their content.
    REQUIRE(summaries(plan) ==
            std::vector<std::string>{"create " + a + " (content hidden)", "update " + b + " (content hidden)"});
    CHECK(plan.changes[0].diff.empty());
    CHECK(plan.changes[1].diff.empty());
    CHECK_FALSE(fs::exists(fx.log()));  // probing changes nothing

    apply_ok(step, t, plan);
    CHECK(read_text(a) == "alpha\n");
    CHECK(mode_of(a) == 0640);
    CHECK(read_text(b) == "beta\n");
    CHECK(mode_of(b) == 0600);
    CHECK(fx.log_text() == "activated\n");
    // What nodectl found is remembered for a revert; the backup of this run is gone; the stamp says it is live.
    CHECK(read_text(original_path(b)) == "old b\n");
    CHECK(fs::exists(original_path(a) + ".absent"));
    CHECK_FALSE(fs::exists(fx.state.rollback_dir()));
    CHECK(fs::exists(fx.state.stamp()));

    CHECK(probe_ok(step, t).empty());
    CHECK(fx.log_text() == "activated\n");

    // A mode changed behind nodectl's back is a change of its own, and only that.
    REQUIRE(::chmod(a.c_str(), 0666) == 0);
    auto mode_plan = probe_ok(step, t);
    CHECK(summaries(mode_plan) == std::vector<std::string>{a + ": mode/owner -> 0640 root:root"});
    apply_ok(step, t, mode_plan);
    CHECK(mode_of(a) == 0640);
    CHECK(read_text(a) == "alpha\n");
    CHECK(probe_ok(step, t).empty());
    // The first original is kept: nodectl's own content is never taken for the original.
    CHECK(read_text(original_path(b)) == "old b\n");
}

TEST_CASE("harden config set: files written but never activated (the stamp is missing or stale) are activated later") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto spec = fx.spec({{a, "alpha\n", nullptr, 0644}});
    spec.activate = fx.logs("v1");
    ApplyConfigSet step(spec);
    apply_ok(step, t, probe_ok(step, t));
    REQUIRE(fx.log_text() == "v1\n");

    // A run that died between writing and activating leaves no stamp.
    fs::remove(fx.state.stamp());
    auto plan = probe_ok(step, t);
    REQUIRE(plan.changes.size() == 1);
    CHECK(plan.changes[0].summary.starts_with("activate unit test set"));
    apply_ok(step, t, plan);
    CHECK(fx.log_text() == "v1\nv1\n");
    CHECK(probe_ok(step, t).empty());

    // A different activation is a different digest: it runs once.
    auto spec2 = spec;
    spec2.activate = fx.logs("v2");
    ApplyConfigSet step2(spec2);
    auto plan2 = probe_ok(step2, t);
    REQUIRE(plan2.changes.size() == 1);
    CHECK(plan2.changes[0].summary.starts_with("activate "));
    apply_ok(step2, t, plan2);
    CHECK(fx.log_text() == "v1\nv1\nv2\n");
    CHECK(probe_ok(step2, t).empty());
}

TEST_CASE("harden config set: an edited file is derived from what the host has, and must exist") {
    SetFixture fx;
    LocalTarget t;
    auto c = fx.dir.write("c.conf", "keep=1\nkey=1\nother=2\n");
    auto spec = fx.spec();
    auto edit = [](const std::string& cur) {
        std::string out;
        for (const auto& l : util::split_lines(cur)) {
            out += (l.starts_with("key=") ? "key=2" : l) + "\n";
        }
        return out;
    };
    spec.files = {{c, "", edit, 0644}};
    ApplyConfigSet step(spec);
    auto plan = probe_ok(step, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"update " + c});
    CHECK(contains(plan.changes[0].diff, "-key=1"));
    CHECK(contains(plan.changes[0].diff, "+key=2"));
    apply_ok(step, t, plan);
    CHECK(read_text(c) == "keep=1\nkey=2\nother=2\n");
    CHECK(probe_ok(step, t).empty());

    // A line the edit does not touch, changed on the host, stays as the host has it.
    fx.dir.write("c.conf", "keep=9\nkey=5\n");
    auto plan2 = probe_ok(step, t);
    apply_ok(step, t, plan2);
    CHECK(read_text(c) == "keep=9\nkey=2\n");

    auto missing = fx.spec({{fx.dir.file("nope.conf"), "", edit, 0644}});
    ApplyConfigSet step2(missing);
    // Planned (its package may be installed by an earlier step), but apply refuses while it is missing.
    auto r = step2.probe(t);
    REQUIRE(r.ok());
    REQUIRE(r->changes.size() == 1);
    CHECK(contains(r->changes[0].summary, "edit " + fx.dir.file("nope.conf") + " once it exists"));
    check_error(step2.apply(t, *r), {fx.dir.file("nope.conf") + " does not exist on the host, so it cannot be edited"});
}

TEST_CASE("harden config set: failing validation puts the previous files back byte for byte and activates them again") {
    SetFixture fx;
    LocalTarget t;
    const char raw[] = "line one\n\ttabbed  \r\n\0nul \x01\x7f no newline at the end";
    const std::string previous(raw, sizeof raw - 1);
    auto b = fx.dir.write("b.conf", previous, 0600);
    auto created = fx.dir.file("new/created.conf");
    auto spec = fx.spec({{b, "new b\n", nullptr, 0644}, {created, "created\n", nullptr, 0644}});
    spec.validate = "exit 3";
    spec.activate = fx.logs("activated");
    spec.restore_activate = fx.logs("restored");
    ApplyConfigSet step(spec);

    auto plan = probe_ok(step, t);
    REQUIRE(plan.changes.size() == 2);
    check_error(step.apply(t, plan), ErrorCode::command,
                {"the new unit test set is invalid", "exit 3", "the previous files are back in place and active"});

    CHECK(read_text(b) == previous);
    CHECK(mode_of(b) == 0600);
    CHECK_FALSE(fs::exists(created));
    CHECK(fx.log_text() == "restored\n");  // never activated
    CHECK_FALSE(fs::exists(fx.state.stamp()));
    // Nothing converged: the same changes are still planned.
    CHECK(summaries(probe_ok(step, t)) == summaries(plan));
}

TEST_CASE("harden config set: a failing post_write or activation is restored too, with the files post_write changed") {
    SetFixture fx;
    LocalTarget t;
    auto b = fx.dir.write("b.conf", "previous\n", 0644);
    auto key_a = fx.dir.write("keys/key_a", "key A\n", 0600);
    auto key_b = fx.dir.file("keys/key_b");
    auto spec = fx.spec({{b, "new\n", nullptr, 0644}});
    spec.also_back_up = {fx.dir.file("keys/key_*")};
    // Like sshd's host keys: post_write replaces them.
    spec.post_write = "rm -f " + shell_quote(key_a) + "; echo 'key B' > " + shell_quote(key_b);
    spec.restore_activate = fx.logs("restored");

    SUBCASE("activation fails") {
        spec.activate = fx.logs("activating") + "; exit 4";
        ApplyConfigSet step(spec);
        check_error(step.apply(t, probe_ok(step, t)), {"activating unit test set failed (exit 4)"});
        CHECK(fx.log_text() == "activating\nrestored\n");
    }
    SUBCASE("post_write fails after changing the files") {
        spec.post_write += "; exit 5";
        spec.activate = fx.logs("activated");
        ApplyConfigSet step(spec);
        check_error(step.apply(t, probe_ok(step, t)), {"exit 5"});
        CHECK(fx.log_text() == "restored\n");
    }
    CHECK(read_text(b) == "previous\n");
    CHECK(read_text(key_a) == "key A\n");
    CHECK(mode_of(key_a) == 0600);
    CHECK_FALSE(fs::exists(key_b));
    CHECK_FALSE(fs::exists(fx.state.stamp()));
}

// Audit: the revert diff printed the content of a 0600 file (the node's copy of the profile,
// with the backup group turned off): a file others may not read is never shown in a plan.
TEST_CASE("config set: plans and revert diffs hide the content of files that are sensitive or not world-readable") {
    SetFixture fx;
    LocalTarget t;
    auto secret = fx.dir.write("secret.conf", "password=as-found\n", 0600);
    auto found_private = fx.dir.write("found-private.conf", "token=from-the-host\n", 0600);
    auto open_file = fx.dir.write("open.conf", "public as found\n", 0644);
    auto on = fx.spec({{secret, "password=managed\n", nullptr, 0600},
                       {found_private, "now public\n", nullptr, 0644},
                       {open_file, "public managed\n", nullptr, 0644}});
    ApplyConfigSet step_on(on);
    auto plan_on = probe_ok(step_on, t);
    REQUIRE(summaries(plan_on) == std::vector<std::string>{"update " + secret + " (content hidden)",
                                                           "update " + found_private + " (content hidden)",
                                                           "update " + open_file});
    CHECK(plan_on.changes[0].diff.empty());
    CHECK(plan_on.changes[1].diff.empty());
    CHECK(contains(plan_on.changes[2].diff, "+public managed"));
    apply_ok(step_on, t, plan_on);

    auto off = on;
    off.enabled = false;
    ApplyConfigSet step_off(off);
    auto plan_off = probe_ok(step_off, t);
    REQUIRE(summaries(plan_off) ==
            std::vector<std::string>{"restore " + secret + " as nodectl found it (content hidden)",
                                     "restore " + found_private + " as nodectl found it (content hidden)",
                                     "restore " + open_file + " as nodectl found it"});
    for (const auto& c : plan_off.changes) {
        CHECK_FALSE(contains(c.diff, "password"));
        CHECK_FALSE(contains(c.diff, "token"));
    }
    CHECK(contains(plan_off.changes[2].diff, "+public as found"));
    apply_ok(step_off, t, plan_off);
    CHECK(read_text(secret) == "password=as-found\n");
}

TEST_CASE(
    "harden config set: turned off, it puts back what nodectl found, removes what it created, leaves the rest alone") {
    SetFixture fx;
    LocalTarget t;
    auto found = fx.dir.write("found.conf", "as found\n", 0644);
    auto created = fx.dir.file("created.conf");
    auto untouched = fx.dir.write("untouched.conf", "mine\n", 0644);
    auto same = fx.dir.write("same.conf", "already right\n", 0644);

    auto on = fx.spec({{found, "managed\n", nullptr, 0644},
                       {created, "managed too\n", nullptr, 0644},
                       {same, "already right\n", nullptr, 0644}});
    on.activate = fx.logs("activated");
    on.deactivate = fx.logs("deactivated");
    ApplyConfigSet step_on(on);
    apply_ok(step_on, t, probe_ok(step_on, t));
    REQUIRE(read_text(found) == "managed\n");
    REQUIRE(read_text(created) == "managed too\n");
    // A file that was already right was not changed, so nothing of it is kept as an original.
    CHECK_FALSE(fs::exists(original_path(same)));
    CHECK_FALSE(fs::exists(original_path(same) + ".absent"));

    auto off = on;
    off.enabled = false;
    off.files.push_back({untouched, "would be managed\n", nullptr, 0644});
    off.drift = "echo 'live difference that does not count when off'";
    ApplyConfigSet step_off(off);
    auto plan = probe_ok(step_off, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"restore " + found + " as nodectl found it",
                                                        "remove " + created + " (nodectl created it)"});
    CHECK(contains(plan.changes[0].diff, "+as found"));
    CHECK(contains(plan.changes[0].diff, "-managed"));

    apply_ok(step_off, t, plan);
    CHECK(read_text(found) == "as found\n");
    CHECK_FALSE(fs::exists(created));
    CHECK(read_text(untouched) == "mine\n");
    CHECK(read_text(same) == "already right\n");
    CHECK(fx.log_text() == "activated\ndeactivated\n");
    // nodectl forgets what it kept, and the stamp.
    CHECK_FALSE(fs::exists(original_path(found)));
    CHECK_FALSE(fs::exists(original_path(created) + ".absent"));
    CHECK_FALSE(fs::exists(fx.state.stamp()));
    CHECK_FALSE(fs::exists(fx.state.rollback_dir()));  // a revert keeps no backup of its own
    CHECK(probe_ok(step_off, t).empty());

    // Audit says it is off and reverted.
    auto audit = step_off.audit(t);
    REQUIRE(audit.ok());
    REQUIRE(audit->size() == 1);
    CHECK(audit->front().status == ControlStatus::pass);
    CHECK(audit->front().title == "unit test set: off in the profile, nodectl's changes reverted");

    // Switched on again, it finds the original afresh.
    apply_ok(step_on, t, probe_ok(step_on, t));
    CHECK(read_text(original_path(found)) == "as found\n");
}

TEST_CASE("harden config set: drift lines are plan changes, and activation runs when only drift is left") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto marker = fx.dir.file("live-state");
    auto spec = fx.spec({{a, "alpha\n", nullptr, 0644}});
    spec.drift = "[ -e " + shell_quote(marker) + " ] || { echo 'live: thing one'; echo; echo 'live: thing two'; }";
    spec.activate = fx.logs("activated") + "; touch " + shell_quote(marker);
    ApplyConfigSet step(spec);

    auto first = probe_ok(step, t);
    CHECK(summaries(first) == std::vector<std::string>{"create " + a, "live: thing one", "live: thing two"});
    apply_ok(step, t, first);
    CHECK(probe_ok(step, t).empty());
    CHECK(fx.log_text() == "activated\n");

    // The live state drifts, the files do not.
    fs::remove(marker);
    auto plan = probe_ok(step, t);
    REQUIRE(summaries(plan) == std::vector<std::string>{"live: thing one", "live: thing two"});
    CHECK(plan.changes[0].diff.empty());
    apply_ok(step, t, plan);
    CHECK(fx.log_text() == "activated\nactivated\n");
    CHECK(fs::exists(marker));
    CHECK(read_text(a) == "alpha\n");
    CHECK(probe_ok(step, t).empty());

    // A failing drift script is an error, not an empty plan.
    auto broken = fx.spec();
    broken.drift = "echo 'cannot read the live state' >&2; exit 2";
    ApplyConfigSet step2(broken);
    check_error(step2.probe(t), {"cannot read the live state"});
}

TEST_CASE(
    "harden config set: audit reports the files first (failing before, passing after apply), then the set's controls") {
    SetFixture fx;
    LocalTarget t;
    auto a = fx.dir.file("a.conf");
    auto spec = fx.spec({{a, "alpha\n", nullptr, 0644}});
    spec.controls_prelude = "F=" + shell_quote(a);
    spec.controls = {
        {"unit.content", "a.conf says alpha", "cat \"$F\"", host::equals("alpha"), ""},
        {"unit.na", "not here", "echo x", host::equals("x"), "echo 'not on this host'"},
    };
    ApplyConfigSet step(spec);

    auto before = step.audit(t);
    REQUIRE(before.ok());
    REQUIRE(before->size() == 3);
    CHECK((*before)[0].id == fx.id);
    CHECK((*before)[0].title == "unit test set: files and live state as the profile says");
    CHECK((*before)[0].status == ControlStatus::fail);
    CHECK(contains((*before)[0].observed, "create " + a));
    CHECK((*before)[1].id == "unit.content");
    CHECK((*before)[1].status == ControlStatus::fail);
    CHECK_FALSE(fs::exists(a));  // auditing changes nothing

    apply_ok(step, t, probe_ok(step, t));
    auto after = step.audit(t);
    REQUIRE(after.ok());
    REQUIRE(after->size() == 3);
    CHECK((*after)[0].id == fx.id);
    CHECK((*after)[0].status == ControlStatus::pass);
    CHECK((*after)[1].id == "unit.content");
    CHECK((*after)[1].status == ControlStatus::pass);
    CHECK((*after)[1].observed == "alpha");
    CHECK((*after)[2].id == "unit.na");
    CHECK((*after)[2].status == ControlStatus::not_applicable);
    CHECK((*after)[2].reason == "not on this host");
}

// =============================================================================================
// Regressions: each case failed against an earlier version of these sources.

TEST_CASE("harden regression: turning a set off puts back the original file's mode, not the set's") {
    // The original is kept with `cp -a`, but the revert writes it with ConfigSetFile::mode.
    SetFixture fx;
    LocalTarget t;
    auto f = fx.dir.write("f.conf", "original\n", 0600);
    auto spec = fx.spec({{f, "managed\n", nullptr, 0644}});
    ApplyConfigSet on(spec);
    apply_ok(on, t, probe_ok(on, t));
    REQUIRE(mode_of(f) == 0644);
    spec.enabled = false;
    ApplyConfigSet off(spec);
    apply_ok(off, t, probe_ok(off, t));
    REQUIRE(read_text(f) == "original\n");
    CHECK(mode_of(f) == 0600);
}

}  // namespace config_set_test

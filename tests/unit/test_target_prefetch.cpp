// Probes fetched ahead: run_batch (several commands in one run(), each answered as run() answers
// it), PrefetchTarget (rounds, replay, what it never answers from its record), and the runner
// with it: a no-change run reaches the host once per round, and reports what a run without it
// reports. Everything runs for real through /bin/sh (LocalTarget), in a temporary directory.
#include "test_support.hpp"

#include "core/journal.hpp"
#include "core/runner.hpp"
#include "modules/base/steps.hpp"
#include "target/batch.hpp"
#include "target/local_target.hpp"
#include "target/prefetch_target.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::QuietLogs;
using nodectl::testing::TempDir;

namespace {

Command probe_command(std::string script) {
    Command c;
    c.script = std::move(script);
    c.mutates = false;
    return c;
}

// A LocalTarget that says its commands cost a round trip, and counts them. The lock is its own,
// and the runner's journal is kept in `journal` instead of /var/lib/nodectl.
class RoundTripTarget final : public Target {
public:
    explicit RoundTripTarget(std::string journal = "") : m_journal(std::move(journal)) {}
    const std::string& name() const override { return m_inner.name(); }
    bool batches_probes() const override { return !plain; }
    Result<CommandResult> run(const Command& cmd) override {
        scripts.push_back(cmd.script);
        Command c = cmd;
        for (size_t at; (at = c.script.find(Journal::k_path)) != std::string::npos;) {
            c.script.replace(at, std::string_view(Journal::k_path).size(), m_journal);
        }
        return m_inner.run(c);
    }
    Result<void> write_file(const FileSpec& file) override {
        scripts.push_back("write " + file.path);
        FileSpec f = file;
        f.path = f.path == Journal::k_path ? m_journal : f.path;
        return m_inner.write_file(f);
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string&) override { return std::make_unique<HostLock>(); }

    bool plain = false;  // behave like a target whose commands are cheap
    std::vector<std::string> scripts;

private:
    LocalTarget m_inner{"round-trip"};
    std::string m_journal;
};

// A job that runs `depth` commands, each built from the previous one's output (so none can be
// asked for before the previous answer), and keeps the last output.
ProbeJob chain_job(int depth, std::string tag, std::string* last) {
    return [depth, tag, last](Target& t) {
        std::string prev = "0";
        for (int i = 0; i < depth; ++i) {
            auto r = t.run(probe_command("echo " + tag + "-$((" + prev + " + 1))"));
            if (!r) {
                return;
            }
            prev = util::split(util::trim(r->out), '-').back();
        }
        *last = prev;
    };
}

}  // namespace

TEST_CASE("run_batch: every command's exit status, stdout and stderr as run() gives them, byte for byte") {
    LocalTarget local;
    std::vector<Command> cmds = {
        probe_command("printf 'a\\000b'"),  // a NUL, no newline at the end
        probe_command("echo out; echo err >&2; exit 3"),
        probe_command("printf '\\n\\n'"),  // only newlines
        probe_command("echo 'it'\\''s'; exec cat /dev/null"),  // quotes; exec replaces the shell
        probe_command("true"),
        probe_command("printf '%s' \"$LC_ALL\"; [ -t 0 ] || cat"),  // the prologue; stdin is empty
    };
    auto batch = run_batch(local, cmds);
    REQUIRE(batch.ok());
    REQUIRE(batch->size() == cmds.size());
    for (size_t i = 0; i < cmds.size(); ++i) {
        auto alone = local.run(cmds[i]);
        REQUIRE(alone.ok());
        REQUIRE((*batch)[i].ok());
        CHECK((*batch)[i]->exit_code == alone->exit_code);
        CHECK((*batch)[i]->out == alone->out);
        CHECK((*batch)[i]->err == alone->err);
    }
    CHECK((*batch)[0]->out == std::string("a\0b", 3));
    CHECK((*batch)[1]->exit_code == 3);
    CHECK((*batch)[5]->out == "C");
}

TEST_CASE("run_batch: a command past its own time limit is a timeout error, and the next one still runs") {
    LocalTarget local;
    Command slow = probe_command("sleep 5");
    slow.timeout = std::chrono::seconds(1);
    auto batch = run_batch(local, {slow, probe_command("echo after")});
    REQUIRE(batch.ok());
    REQUIRE(!(*batch)[0].ok());
    CHECK((*batch)[0].error().code == ErrorCode::timeout);
    REQUIRE((*batch)[1].ok());
    CHECK((*batch)[1]->out == "after\n");
}

TEST_CASE("run_batch: the commands run side by side (the first waits for a file only the second makes)") {
    TempDir dir;
    auto flag = shell_quote(dir.file("flag"));
    Command waits = probe_command("i=0; while [ ! -e " + flag +
                                  " ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; [ -e " + flag + " ]");
    LocalTarget local;
    auto batch = run_batch(local, {waits, probe_command(": > " + flag)});
    REQUIRE(batch.ok());
    REQUIRE((*batch)[0].ok());
    CHECK((*batch)[0]->exit_code == 0);
}

TEST_CASE("parse_batch_output: output cut short or not framed is an error, never a wrong answer") {
    std::vector<Command> two = {probe_command("a"), probe_command("b")};
    auto good = parse_batch_output(two, "@@nodectl-batch\n 0 1\n3\n0\n0\n2\nhi\ne\n");
    REQUIRE(good.ok());
    CHECK((*good)[0]->out == "hi\n");
    CHECK((*good)[1]->exit_code == 1);
    CHECK((*good)[1]->err == "e\n");
    CHECK(!parse_batch_output(two, "@@nodectl-batch\n 0\n3\n0\nhi\n").ok());  // the second is missing
    CHECK(!parse_batch_output(two, "@@nodectl-batch\n 0 0\n30\n0\n0\n0\nhi\n").ok());  // longer than what came
    CHECK(!parse_batch_output(two, "@@nodectl-batch\n 0 0\n1\n0\n0\n0\nhi\n").ok());  // bytes left over
    CHECK(!parse_batch_output(two, "junk\n@@nodectl-batch\n 0 0\n0\n0\n0\n0\n").ok());
    CHECK(!parse_batch_output(two, "@@nodectl-batch\n 0 x\n0\n0\n0\n0\n").ok());
    CHECK(!parse_batch_output(two, "@@nodectl-batch\n 0 0\n0\n0\nx\n0\n").ok());
}

TEST_CASE(
    "PrefetchTarget: dependent commands take one round trip per level, and replay answers them without the host") {
    QuietLogs quiet;
    RoundTripTarget host;
    PrefetchTarget t(host);
    std::string a, b, c;
    std::vector<ProbeJob> jobs = {chain_job(3, "a", &a), chain_job(1, "b", &b), chain_job(2, "c", &c)};
    t.prefetch(jobs);
    CHECK(t.rounds() == 3);
    CHECK(t.prefetched() == 6);
    CHECK(host.scripts.size() == 3);  // one batch per round
    host.scripts.clear();
    for (size_t j = 0; j < jobs.size(); ++j) {
        t.replay(j);
        jobs[j](t);
    }
    CHECK(host.scripts.empty());
    CHECK(a == "3");
    CHECK(b == "1");
    CHECK(c == "2");
}

TEST_CASE("PrefetchTarget: an answer is given once per replay; a change to the host drops every answer") {
    QuietLogs quiet;
    RoundTripTarget host;
    PrefetchTarget t(host);
    std::string last;
    std::vector<ProbeJob> jobs = {chain_job(1, "x", &last), chain_job(1, "y", &last)};
    t.prefetch(jobs);
    host.scripts.clear();

    t.replay(0);
    REQUIRE(t.run(probe_command("echo x-$((0 + 1))")).ok());
    CHECK(host.scripts.empty());
    REQUIRE(t.run(probe_command("echo x-$((0 + 1))")).ok());  // asked again (a wait loop): live
    CHECK(host.scripts.size() == 1);
    REQUIRE(t.run(probe_command("echo y-$((0 + 1))")).ok());  // job 1's answer is not job 0's
    CHECK(host.scripts.size() == 2);

    Command change = probe_command("true");
    change.mutates = true;
    REQUIRE(t.run(change).ok());
    t.replay(1);
    REQUIRE(t.run(probe_command("echo y-$((0 + 1))")).ok());
    CHECK(host.scripts.size() == 4);  // the change, then y live
}

TEST_CASE(
    "PrefetchTarget: a job is fetched no further than a command with input or a change, nor past the round limit") {
    QuietLogs quiet;
    RoundTripTarget host;
    PrefetchTarget t(host);
    int runs = 0;
    ProbeJob with_input = [](Target& tt) {
        if (!tt.run(probe_command("echo first")).ok()) {
            return;
        }
        Command c = probe_command("cat");
        c.input = "data";
        (void)tt.run(c);
    };
    ProbeJob changing = [](Target& tt) {
        Command c = probe_command("touch /nonexistent-dir/x");
        c.mutates = true;
        (void)tt.run(c);
    };
    ProbeJob never_the_same = [&runs](Target& tt) { (void)tt.run(probe_command("echo " + std::to_string(++runs))); };
    t.prefetch({with_input, changing, never_the_same}, 4);
    CHECK(t.rounds() == 4);
    CHECK(t.prefetched() == 5);  // "echo first", and the 4 never-the-same commands
    for (const auto& s : host.scripts) {
        CHECK(!nodectl::testing::contains(s, "touch"));
        CHECK(!nodectl::testing::contains(
            s,
            "b 300 'export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive; cat'"));
    }
}

TEST_CASE("PrefetchTarget: on a target whose commands are cheap, nothing is fetched and every call goes through") {
    QuietLogs quiet;
    RoundTripTarget host;
    host.plain = true;
    PrefetchTarget t(host);
    std::string last;
    t.prefetch({chain_job(2, "p", &last)});
    CHECK(t.rounds() == 0);
    CHECK(host.scripts.empty());
    t.replay(0);
    REQUIRE(t.run(probe_command("echo p-$((0 + 1))")).ok());
    CHECK(host.scripts.size() == 1);
}

TEST_CASE(
    "runner with prefetching: the same reports as without it, and a no-change run reaches the host once per round") {
    QuietLogs quiet;
    TempDir dir;
    auto steps = [&] {
        StepList s;
        for (std::string name : {"a.conf", "b.conf", "c.conf"}) {
            base::ManagedFile f;
            f.spec.path = dir.file(name);
            f.spec.content = name + " content\n";
            f.spec.owner = f.spec.group = "root";
            s.push_back(std::make_unique<base::WriteFile>("test/file:" + name, f));
        }
        return s;
    };
    dir.write("a.conf", "old\n");
    RunOptions o;
    o.profile_digest = "d1";
    o.run_id = "r1";

    auto run = [&](RunMode mode, bool plain) {
        RoundTripTarget host(dir.file("journal.json"));
        host.plain = plain;
        auto list = steps();
        o.mode = mode;
        auto report = run_steps(host, list, o);
        return std::make_pair(report, host.scripts);
    };
    auto [planned, plan_scripts] = run(RunMode::plan, false);
    auto [planned_plain, plain_scripts] = run(RunMode::plan, true);
    REQUIRE(planned.ok);
    REQUIRE(planned.steps.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(planned.steps[i].status == planned_plain.steps[i].status);
        CHECK(planned.steps[i].plan.changes.size() == planned_plain.steps[i].plan.changes.size());
    }
    CHECK(planned.steps[0].plan.changes.at(0).diff == planned_plain.steps[0].plan.changes.at(0).diff);
    CHECK(plan_scripts.size() < plain_scripts.size());

    auto [applied, apply_scripts] = run(RunMode::apply, false);
    REQUIRE(applied.ok);
    CHECK(applied.count(StepStatus::changed) == 3);
    CHECK(nodectl::testing::read_text(dir.file("a.conf")) == "a.conf content\n");

    auto [again, again_scripts] = run(RunMode::apply, false);
    REQUIRE(again.ok);
    CHECK(again.count(StepStatus::unchanged) == 3);
    // One batch (the journal and the three probes); the journal already says complete.
    CHECK(again_scripts.size() == 1);
    CHECK(nodectl::testing::contains(nodectl::testing::read_text(dir.file("journal.json")), "\"complete\""));
}

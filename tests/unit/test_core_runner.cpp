// The runner against FakeTargets: apply and re-run, plan, failures, connect errors, steps that do
// not converge, the journal and resuming an interrupted run, and the host lock.
#include "fake_target.hpp"
#include "test_support.hpp"

#include "core/journal.hpp"
#include "core/runner.hpp"
#include "modules/base/steps.hpp"
#include "target/read_only_target.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

using namespace nodectl;
using nodectl::testing::FakeHost;
using nodectl::testing::FakeTarget;
using nodectl::testing::QuietLogs;

namespace {

constexpr const char* k_digest = "3f1c0ffee";

// The steps of a small profile: host name, time zone, /etc/hosts block, packages, a file, units.
StepList profile_steps() {
    StepList s;
    s.push_back(std::make_unique<base::SetHostname>("web1"));
    s.push_back(std::make_unique<base::SetTimezone>("Europe/Berlin"));
    s.push_back(std::make_unique<base::ManageHostsBlock>(std::vector<std::string>{"198.18.99.5 db"}));
    s.push_back(std::make_unique<base::EnsurePackages>("base/packages", std::vector<std::string>{"nginx", "curl"},
                                                       std::vector<std::string>{"cron"}));
    base::ManagedFile f;
    f.spec.path = "/etc/motd";
    f.spec.content = "web1\n";
    s.push_back(std::make_unique<base::WriteFile>("base/file:/etc/motd", f));
    s.push_back(std::make_unique<base::EnsureUnits>(std::vector<std::string>{"apache2.service"},
                                                    std::vector<std::string>{"rsync.service"}));
    return s;
}

RunOptions options(RunMode mode, std::string run_id = "run-2") {
    RunOptions o;
    o.mode = mode;
    o.parallel = 4;
    o.profile_digest = k_digest;
    o.run_id = std::move(run_id);
    return o;
}

std::vector<StepStatus> statuses(const HostReport& r) {
    std::vector<StepStatus> out;
    for (const auto& s : r.steps) {
        out.push_back(s.status);
    }
    return out;
}

const StepReport& step_report(const HostReport& r, const std::string& id) {
    for (const auto& s : r.steps) {
        if (s.id == id) {
            return s;
        }
    }
    FAIL("no step " << id);
    throw 0;  // not reached
}

nlohmann::json journal_on(FakeHost& host) {
    REQUIRE(host.file_exists(Journal::k_path));
    auto j = nlohmann::json::parse(host.content(Journal::k_path), nullptr, false);
    REQUIRE(j.is_object());
    return j;
}

// Converges when `converges`; otherwise apply() "succeeds" but the host never changes.
class ProbeOnlyStep final : public Step {
public:
    explicit ProbeOnlyStep(bool converges) : m_converges(converges) {}
    std::string id() const override { return "test/never-converging"; }
    std::string title() const override { return "never-converging step"; }
    Result<Plan> probe(Target&) override {
        Plan p;
        if (!m_applied || !m_converges) {
            p.changes.push_back({"frobnicate the widget", ""});
        }
        return p;
    }
    Result<void> apply(Target&, const Plan&) override {
        m_applied = true;
        return Ok{};
    }

private:
    bool m_converges;
    bool m_applied = false;
};

// Hands out FakeTargets over the hosts of a map, or a connect error for hosts not in it.
struct FakeNetwork {
    std::map<std::string, std::shared_ptr<FakeHost>> hosts;
    std::mutex mutex;

    ConnectFn connect() {
        return [this](const HostSpec& spec) -> Result<std::unique_ptr<Target>> {
            std::lock_guard<std::mutex> guard(mutex);
            auto it = hosts.find(spec.address);
            if (it == hosts.end()) {
                return make_error(ErrorCode::connect,
                                  "ssh: connect to host " + spec.address + " port 22: Connection refused");
            }
            return std::unique_ptr<Target>(new FakeTarget(spec.name, it->second));
        };
    }
};

HostJob job(const std::string& name, StepList steps) {
    HostJob j;
    j.host.name = name;
    j.host.address = name + ".example.org";
    j.steps = std::move(steps);
    return j;
}

}  // namespace

TEST_CASE("runner: apply changes a fresh host; a second run reports every step unchanged and changes nothing") {
    QuietLogs quiet;
    FakeTarget t("web1");
    StepList steps = profile_steps();
    HostReport first = run_steps(t, steps, options(RunMode::apply, "run-1"));
    CHECK_MESSAGE(first.ok, first.error);
    CHECK(first.host == "web1");
    CHECK(first.count(StepStatus::changed) == 6);
    for (const auto& s : first.steps) {
        CHECK_MESSAGE(s.status == StepStatus::changed, s.id << ": " << status_name(s.status) << " " << s.error);
        CHECK_FALSE(s.plan.empty());
    }
    CHECK(t.host().hostname == "web1");
    CHECK(t.host().packages.count("nginx") == 1);
    size_t changes = t.host().host_mutations();
    REQUIRE(changes > 0);

    StepList again = profile_steps();
    HostReport second = run_steps(t, again, options(RunMode::apply, "run-2"));
    CHECK_MESSAGE(second.ok, second.error);
    CHECK(second.count(StepStatus::unchanged) == 6);
    CHECK(t.host().host_mutations() == changes);
    CHECK(t.host().unknown.empty());
    CHECK_FALSE(t.host().lock_holder.has_value());  // released at the end of each run
}

TEST_CASE("runner: plan only probes; nothing on the host changes, not even the journal") {
    FakeTarget t("web1");
    StepList steps = profile_steps();
    HostReport r = run_steps(t, steps, options(RunMode::plan));
    CHECK(r.ok);
    CHECK(r.count(StepStatus::would_change) == 6);
    CHECK(step_report(r, "base/hostname").plan.changes.size() == 3);
    CHECK(t.host().mutations.empty());
    CHECK_FALSE(t.host().file_exists(Journal::k_path));
    CHECK(t.host().hostname == "debian");
    CHECK_FALSE(t.host().commands.empty());  // it did look
    CHECK(t.host().unknown.empty());

    // check mode is a plan too
    StepList steps2 = profile_steps();
    HostReport c = run_steps(t, steps2, options(RunMode::check));
    CHECK(c.count(StepStatus::would_change) == 6);
    CHECK(t.host().mutations.empty());
}

TEST_CASE("ReadOnlyTarget refuses every change and passes probes through") {
    FakeTarget t;
    ReadOnlyTarget ro(t);
    CHECK(ro.read_only());
    CHECK(ro.name() == t.name());

    auto w = ro.write_file({"/etc/motd", "x", 0644, "root", "root"});
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().message.find("dry run: refused to write /etc/motd") != std::string::npos);
    auto u = ro.upload("/etc/hostname", {"/etc/motd", "", 0644, "root", "root"});
    CHECK_FALSE(u.ok());
    auto l = ro.lock("x");
    CHECK_FALSE(l.ok());
    Command change;
    change.script = "hostname 'evil'";
    auto r = ro.run(change);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("refused") != std::string::npos);
    CHECK(t.host().commands.empty());  // the refused command never reached the host
    CHECK(t.host().mutations.empty());
    CHECK_FALSE(t.host().file_exists("/etc/motd"));
    CHECK(t.host().hostname == "debian");

    auto read = ro.read_file("/etc/hostname");
    REQUIRE(read.ok());
    CHECK(read->value() == "debian\n");
    Command probe;
    probe.script = "cat /etc/hostname 2>/dev/null; echo '|'; hostname";
    probe.mutates = false;
    auto out = ro.run(probe);
    REQUIRE(out.ok());
    CHECK(out->out == "debian\n|\ndebian\n");
}

TEST_CASE("runner: a failing step stops the later steps on its host; another host still succeeds") {
    QuietLogs quiet;
    FakeNetwork net;
    auto broken = nodectl::testing::fresh_debian_host();
    broken->unavailable_packages.insert("nginx");
    net.hosts["bad.example.org"] = broken;
    net.hosts["good.example.org"] = nodectl::testing::fresh_debian_host();

    std::vector<HostJob> jobs;
    jobs.push_back(job("bad", profile_steps()));
    jobs.push_back(job("good", profile_steps()));
    auto reports = run_hosts(jobs, options(RunMode::apply), net.connect());
    REQUIRE(reports.size() == 2);

    const HostReport& bad = reports[0];
    CHECK(bad.host == "bad");
    CHECK_FALSE(bad.ok);
    CHECK(statuses(bad) == std::vector<StepStatus>{StepStatus::changed, StepStatus::changed, StepStatus::changed,
                                                   StepStatus::failed, StepStatus::not_run, StepStatus::not_run});
    CHECK(step_report(bad, "base/packages").error.find("Unable to locate package nginx") != std::string::npos);
    CHECK(bad.error.find("packages: ") == 0);
    CHECK_FALSE(broken->file_exists("/etc/motd"));  // a later step: never run
    CHECK(broken->units.at("apache2.service").enabled == false);  // ditto
    auto j = journal_on(*broken);
    CHECK(j["state"] == "failed");
    CHECK(j["steps"]["base/packages"] == "failed");
    CHECK(j["steps"]["base/hostname"] == "done");
    CHECK_FALSE(j["steps"].contains("base/units"));

    const HostReport& good = reports[1];
    CHECK(good.host == "good");
    CHECK_MESSAGE(good.ok, good.error);
    CHECK(good.count(StepStatus::changed) == 6);
    CHECK(net.hosts["good.example.org"]->content("/etc/motd") == "web1\n");
}

TEST_CASE("runner: a host that cannot be reached is reported on its own; the others run") {
    QuietLogs quiet;
    FakeNetwork net;
    net.hosts["up.example.org"] = nodectl::testing::fresh_debian_host();
    std::vector<HostJob> jobs;
    jobs.push_back(job("down", profile_steps()));
    jobs.push_back(job("up", profile_steps()));
    auto reports = run_hosts(jobs, options(RunMode::apply), net.connect());
    REQUIRE(reports.size() == 2);

    CHECK(reports[0].host == "down");
    CHECK_FALSE(reports[0].ok);
    CHECK(reports[0].error.find("Connection refused") != std::string::npos);
    CHECK(reports[0].steps.size() == 6);
    CHECK(reports[0].count(StepStatus::not_run) == 6);

    CHECK(reports[1].host == "up");
    CHECK(reports[1].ok);
    CHECK(reports[1].count(StepStatus::changed) == 6);
}

TEST_CASE("runner: many hosts in parallel each get their own report, in job order") {
    QuietLogs quiet;
    FakeNetwork net;
    std::vector<HostJob> jobs;
    for (int i = 0; i < 7; ++i) {
        std::string name = "n" + std::to_string(i);
        net.hosts[name + ".example.org"] = nodectl::testing::fresh_debian_host();
        StepList s;
        s.push_back(std::make_unique<base::SetHostname>(name));
        jobs.push_back(job(name, std::move(s)));
    }
    RunOptions o = options(RunMode::apply);
    o.parallel = 3;
    auto reports = run_hosts(jobs, o, net.connect());
    REQUIRE(reports.size() == 7);
    for (int i = 0; i < 7; ++i) {
        std::string name = "n" + std::to_string(i);
        CHECK(reports[i].host == name);
        CHECK(reports[i].ok);
        CHECK(net.hosts[name + ".example.org"]->hostname == name);
    }
}

TEST_CASE("runner: a step whose apply succeeds but leaves the host different is failed") {
    QuietLogs quiet;
    FakeTarget t;
    StepList steps;
    steps.push_back(std::make_unique<ProbeOnlyStep>(false));
    steps.push_back(std::make_unique<base::SetHostname>("web1"));
    HostReport r = run_steps(t, steps, options(RunMode::apply));
    CHECK_FALSE(r.ok);
    CHECK(r.steps[0].status == StepStatus::failed);
    CHECK(r.steps[0].error == "applied, but the host still differs: frobnicate the widget");
    CHECK(r.steps[1].status == StepStatus::not_run);
    CHECK(t.host().hostname == "debian");

    // The same step, converging, is "changed".
    FakeTarget t2;
    StepList ok_steps;
    ok_steps.push_back(std::make_unique<ProbeOnlyStep>(true));
    HostReport r2 = run_steps(t2, ok_steps, options(RunMode::apply));
    CHECK(r2.ok);
    CHECK(r2.steps[0].status == StepStatus::changed);
}

TEST_CASE("runner: a probe that fails is reported with its reason") {
    QuietLogs quiet;
    FakeTarget t;
    t.host().fail_when_contains.push_back("readlink /etc/localtime");
    StepList steps;
    steps.push_back(std::make_unique<base::SetTimezone>("Etc/UTC"));
    HostReport r = run_steps(t, steps, options(RunMode::apply));
    CHECK_FALSE(r.ok);
    CHECK(r.steps[0].status == StepStatus::failed);
    CHECK(r.steps[0].error.find("probe: reading the time zone failed (exit 1): injected failure") == 0);
}

TEST_CASE("runner: the journal records a complete run with its id, profile and steps") {
    QuietLogs quiet;
    FakeTarget t;
    StepList steps = profile_steps();
    HostReport r = run_steps(t, steps, options(RunMode::apply, "run-77"));
    REQUIRE(r.ok);
    auto j = journal_on(t.host());
    CHECK(j["state"] == "complete");
    CHECK(j["run_id"] == "run-77");
    CHECK(j["profile"] == k_digest);
    CHECK(j["finished"].get<std::string>().size() == 20);  // 2024-01-02T03:04:05Z
    CHECK(j["steps"].size() == 6);
    CHECK(j["steps"]["base/file:/etc/motd"] == "done");
    CHECK(t.host().files.at(Journal::k_path).mode == 0600);
}

// A step that changes nothing on the host but records, when applied, what the journal said then.
class JournalWitnessStep final : public Step {
public:
    std::string id() const override { return "test/journal-witness"; }
    std::string title() const override { return "journal witness"; }
    Result<Plan> probe(Target&) override {
        Plan p;
        if (seen.empty()) {
            p.changes.push_back({"look at the journal", ""});
        }
        return p;
    }
    Result<void> apply(Target& target, const Plan&) override {
        auto text = TRY(target.read_file(Journal::k_path));
        seen = text ? Journal::from_json(*text).state + " " + Journal::from_json(*text).run_id : "none";
        return Ok{};
    }
    std::string seen;
};

TEST_CASE(
    "runner: the journal says running from the first change on; a no-change run on a journal up to date writes nothing") {
    QuietLogs quiet;
    FakeTarget t;
    StepList first = profile_steps();
    auto witness = std::make_unique<JournalWitnessStep>();
    JournalWitnessStep& w = *witness;
    first.push_back(std::move(witness));
    REQUIRE(run_steps(t, first, options(RunMode::apply, "run-1")).ok);
    CHECK(w.seen == "running run-1");  // written before the first change, in place when a later one runs

    t.host().clear_log();
    StepList again = profile_steps();
    HostReport r = run_steps(t, again, options(RunMode::apply, "run-2"));
    REQUIRE(r.ok);
    CHECK(r.count(StepStatus::unchanged) == 6);
    CHECK(t.host().mutations.empty());  // not even the journal
    CHECK(journal_on(t.host())["run_id"] == "run-1");

    SUBCASE("another profile: the journal records it, though nothing changed") {
        RunOptions o = options(RunMode::apply, "run-3");
        o.profile_digest = "another-digest";
        StepList steps = profile_steps();
        REQUIRE(run_steps(t, steps, o).ok);
        CHECK(journal_on(t.host())["run_id"] == "run-3");
        CHECK(journal_on(t.host())["profile"] == "another-digest");
        CHECK(journal_on(t.host())["state"] == "complete");
    }
    SUBCASE("a journal of a failed run: the run that finds nothing to change records it complete") {
        Journal failed = Journal::from_json(t.host().content(Journal::k_path));
        failed.state = "failed";
        t.host().put(Journal::k_path, failed.to_json(), 0600);
        StepList steps = profile_steps();
        REQUIRE(run_steps(t, steps, options(RunMode::apply, "run-4")).ok);
        CHECK(journal_on(t.host())["run_id"] == "run-4");
        CHECK(journal_on(t.host())["state"] == "complete");
    }
}

TEST_CASE("runner: an interrupted run of the same profile is resumed, skipping the steps it finished") {
    QuietLogs quiet;
    FakeTarget t;
    Journal interrupted;
    interrupted.run_id = "run-1";
    interrupted.profile_digest = k_digest;
    interrupted.state = "running";
    interrupted.steps["base/hostname"] = "done";
    interrupted.steps["base/packages"] = "failed";
    t.host().put(Journal::k_path, interrupted.to_json(), 0600);

    StepList steps = profile_steps();
    HostReport r = run_steps(t, steps, options(RunMode::apply, "run-2"));
    CHECK_MESSAGE(r.ok, r.error);
    CHECK(r.resumed_run == "run-1");
    CHECK(step_report(r, "base/hostname").status == StepStatus::done_before);
    // Skipped: the host name is left as it is, which proves the step did not run.
    CHECK(t.host().hostname == "debian");
    CHECK(step_report(r, "base/packages").status == StepStatus::changed);  // "failed" is not "done"
    CHECK(step_report(r, "base/timezone").status == StepStatus::changed);

    auto j = journal_on(t.host());
    CHECK(j["state"] == "complete");
    CHECK(j["run_id"] == "run-2");
    CHECK(j["steps"]["base/hostname"] == "done");
    CHECK(j["steps"]["base/packages"] == "done");
}

TEST_CASE("runner: a journal of another profile, or of a run that ended, is not resumed") {
    QuietLogs quiet;
    Journal old;
    old.run_id = "run-1";
    old.steps["base/hostname"] = "done";

    SUBCASE("different profile digest") {
        old.profile_digest = "some-other-profile";
        old.state = "running";
    }
    SUBCASE("same profile, but the run completed") {
        old.profile_digest = k_digest;
        old.state = "complete";
    }
    FakeTarget t;
    t.host().put(Journal::k_path, old.to_json(), 0600);
    StepList steps = profile_steps();
    HostReport r = run_steps(t, steps, options(RunMode::apply, "run-2"));
    CHECK(r.ok);
    CHECK(r.resumed_run.empty());
    CHECK(step_report(r, "base/hostname").status == StepStatus::changed);
    CHECK(t.host().hostname == "web1");
    auto j = journal_on(t.host());
    CHECK(j["run_id"] == "run-2");
    CHECK(j["profile"] == k_digest);
}

TEST_CASE("runner: a host whose lock is held fails with the lock error and is not touched") {
    QuietLogs quiet;
    FakeTarget t;
    auto held = t.lock("run other started 2024-01-01T00:00:00Z");
    REQUIRE(held.ok());

    StepList steps = profile_steps();
    HostReport r = run_steps(t, steps, options(RunMode::apply));
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("another nodectl run holds /var/lib/nodectl/lock") != std::string::npos);
    CHECK(r.error.find("run other started") != std::string::npos);
    CHECK(r.count(StepStatus::not_run) == 6);
    CHECK(t.host().mutations.empty());
    CHECK(t.host().commands.empty());

    // Once released, the next run gets it and holds it under its own name while it runs.
    held->reset();
    StepList again = profile_steps();
    HostReport r2 = run_steps(t, again, options(RunMode::apply));
    CHECK(r2.ok);
}

TEST_CASE("fake lock: a second lock on the same host fails with ErrorCode::locked until the first is released") {
    FakeTarget a("a");
    FakeTarget b("b", a.shared_host());  // a second connection to the same machine
    auto first = a.lock("first");
    REQUIRE(first.ok());
    auto second = b.lock("second");
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == ErrorCode::locked);
    CHECK(second.error().message.find("(first)") != std::string::npos);
    first->reset();
    CHECK(b.lock("third").ok());
}

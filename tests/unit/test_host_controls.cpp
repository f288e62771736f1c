// host::evaluate() on a real LocalTarget (real /bin/sh): pass, fail and not applicable with the
// reason, trimmed observations, snippets that exit early, the prelude's variables, and that the
// whole set of controls is one command. Then the Expect predicates on their own.
#include "host/controls.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

using namespace nodectl;
using host::Control;

namespace {

// Forwards to a LocalTarget and records every command it is asked to run.
class CountingTarget final : public Target {
public:
    const std::string& name() const override { return m_inner.name(); }
    Result<CommandResult> run(const Command& cmd) override {
        commands.push_back(cmd);
        return m_inner.run(cmd);
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override { return m_inner.lock(holder); }

    std::vector<Command> commands;

private:
    LocalTarget m_inner{"counting"};
};

std::vector<ControlResult> evaluate_ok(Target& target, const std::string& prelude,
                                       const std::vector<Control>& controls) {
    auto r = host::evaluate(target, prelude, controls);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    REQUIRE(r->size() == controls.size());
    return std::move(r).value();
}

// One control's result as a test expects it: its status, and what was observed and the reason
// where those are given.
struct Expected {
    ControlStatus status;
    std::optional<std::string> observed = std::nullopt;
    std::optional<std::string> reason = std::nullopt;
};

// Each result is as expected, in order.
void check_results(const std::vector<ControlResult>& results, const std::vector<Expected>& expected) {
    REQUIRE(results.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(results[i].id);
        CHECK(results[i].status == expected[i].status);
        if (expected[i].observed) {
            CHECK(results[i].observed == *expected[i].observed);
        }
        if (expected[i].reason) {
            CHECK(results[i].reason == *expected[i].reason);
        }
    }
}

// `e` says it expects `text`, passes each of `passing` and none of `failing`.
void check_expect(const host::Expect& e, const std::string& text, const std::vector<std::string>& passing,
                  const std::vector<std::string>& failing) {
    CHECK(e.text == text);
    for (const auto& observed : passing) {
        CAPTURE(observed);
        CHECK(e.passes(observed));
    }
    for (const auto& observed : failing) {
        CAPTURE(observed);
        CHECK_FALSE(e.passes(observed));
    }
}

}  // namespace

TEST_CASE("controls evaluate: pass, fail and not applicable, each with what was observed and expected") {
    LocalTarget t;
    std::vector<Control> controls = {
        {"c.pass", "passes", "echo yes", host::equals("yes"), ""},
        {"c.fail", "fails", "echo no", host::equals("yes"), ""},
        {"c.na", "not here", "echo yes", host::equals("yes"), "echo 'no sshd on this host'"},
        {"c.na_empty", "applicable: the reason snippet prints nothing", "echo 7", host::at_least(5), "true"},
    };
    auto r = evaluate_ok(t, "", controls);

    CHECK(r[0].id == "c.pass");
    CHECK(r[0].title == "passes");
    CHECK(r[0].status == ControlStatus::pass);
    CHECK(r[0].observed == "yes");
    CHECK(r[0].expected == "yes");
    CHECK(r[0].reason.empty());

    CHECK(r[1].id == "c.fail");
    CHECK(r[1].status == ControlStatus::fail);
    CHECK(r[1].observed == "no");
    CHECK(r[1].expected == "yes");

    // A reason makes the control not applicable even though its observation would pass.
    CHECK(r[2].id == "c.na");
    CHECK(r[2].status == ControlStatus::not_applicable);
    CHECK(r[2].reason == "no sshd on this host");

    CHECK(r[3].status == ControlStatus::pass);
    CHECK(r[3].observed == "7");
    CHECK(r[3].expected == ">= 5");
    CHECK(r[3].reason.empty());
}

TEST_CASE("controls evaluate: the observation is trimmed, stderr dropped, inner lines kept") {
    LocalTarget t;
    std::vector<Control> controls = {
        {"trim", "", "printf '  42 \\t\\n\\n'", host::equals("42"), ""},
        {"stderr", "", "echo noise >&2; echo value; echo more noise >&2", host::equals("value"), ""},
        {"lines", "", "echo a; echo b", host::equals("a\nb"), ""},
        {"reason", "", "echo x", host::equals("x"), "printf '\\n   why not  \\n\\n'; echo hidden >&2"},
    };
    check_results(evaluate_ok(t, "", controls), {{ControlStatus::pass, "42"},
                                                 {ControlStatus::pass, "value"},
                                                 {ControlStatus::pass, "a\nb"},
                                                 {ControlStatus::not_applicable, std::nullopt, "why not"}});
}

TEST_CASE("controls evaluate: a snippet that prints nothing and exits fails, and the controls after it still run") {
    LocalTarget t;
    std::vector<Control> controls = {
        {"exits", "", "exit 3", host::equals("something"), ""},
        {"exits_zero", "", "exit 0", host::at_least(0), ""},
        {"unknown_tool", "", "/nonexistent/nodectl-tool --version", host::one_of({"1", "2"}), ""},
        {"after", "", "echo still-here", host::equals("still-here"), ""},
    };
    // "" is not a number; the unknown tool's complaint went to stderr, which is dropped.
    check_results(evaluate_ok(t, "", controls), {{ControlStatus::fail, ""},
                                                 {ControlStatus::fail, ""},
                                                 {ControlStatus::fail, ""},
                                                 {ControlStatus::pass, "still-here"}});
}

TEST_CASE(
    "controls evaluate: when the host prints nothing for a control it fails with a reason, even an empty_output one") {
    LocalTarget t;
    // The prelude ends the script before any control is reached.
    std::vector<Control> controls = {
        {"empty_ok", "", "true", host::empty_output("nothing to report"), ""},
        {"na", "", "echo x", host::equals("x"), "echo 'would be n/a'"},
    };
    const std::string nothing = "the host printed nothing for this control";
    check_results(evaluate_ok(t, "exit 0", controls),
                  {{ControlStatus::fail, std::nullopt, nothing}, {ControlStatus::fail, std::nullopt, nothing}});
}

TEST_CASE("controls evaluate: the prelude's variables and functions are visible to every snippet") {
    LocalTarget t;
    std::string prelude = "GREETING=hello\nv() { printf '%s-%s\\n' \"$1\" \"$GREETING\"; }";
    std::vector<Control> controls = {
        {"var", "", "echo \"$GREETING\"", host::equals("hello"), ""},
        {"fn", "", "v a", host::equals("a-hello"), ""},
        {"fn_in_reason", "", "echo x", host::equals("x"),
         "[ \"$(v b)\" = b-hello ] && echo 'prelude seen by the reason snippet'"},
    };
    check_results(evaluate_ok(t, prelude, controls),
                  {{ControlStatus::pass, "hello"},
                   {ControlStatus::pass, "a-hello"},
                   {ControlStatus::not_applicable, std::nullopt, "prelude seen by the reason snippet"}});
}

TEST_CASE("controls evaluate: a snippet's variables do not leak into the next one") {
    LocalTarget t;
    std::vector<Control> controls = {
        {"sets", "", "LEAK=1; echo set", host::equals("set"), ""},
        {"reads", "", "echo \"[${LEAK:-}]\"", host::equals("[]"), ""},
    };
    check_results(evaluate_ok(t, "", controls), {{ControlStatus::pass}, {ControlStatus::pass, "[]"}});
}

TEST_CASE("controls evaluate: every control is evaluated in one read-only command") {
    CountingTarget t;
    std::vector<Control> controls;
    for (int i = 0; i < 12; ++i) {
        controls.push_back({"c" + std::to_string(i), "", "echo " + std::to_string(i), host::equals(std::to_string(i)),
                            i % 3 == 0 ? "true" : ""});
    }
    auto r = evaluate_ok(t, "P=1", controls);
    CHECK(t.commands.size() == 1);
    REQUIRE_FALSE(t.commands.empty());
    CHECK_FALSE(t.commands[0].mutates);
    for (size_t i = 0; i < r.size(); ++i) {
        CHECK(r[i].id == "c" + std::to_string(i));
        CHECK(r[i].observed == std::to_string(i));
        CHECK(r[i].status == ControlStatus::pass);
    }
}

TEST_CASE("controls evaluate: no controls gives no results") {
    CountingTarget t;
    auto r = host::evaluate(t, "", {});
    REQUIRE(r.ok());
    CHECK(r->empty());
}

TEST_CASE("controls Expect: equals is exact") {
    check_expect(host::equals("no"), "no", {"no"}, {"No", "no ", ""});
}

TEST_CASE("controls Expect: same_set ignores order, spaces and repeats, but not missing or extra items") {
    check_expect(host::same_set({"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}),
                 "ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
                 {"ssh-ed25519,rsa-sha2-512,rsa-sha2-256", "rsa-sha2-256,ssh-ed25519,rsa-sha2-512",
                  " rsa-sha2-256 , ssh-ed25519,\trsa-sha2-512 ", "rsa-sha2-256,ssh-ed25519,rsa-sha2-512,",
                  "ssh-ed25519,ssh-ed25519,rsa-sha2-512,rsa-sha2-256"},
                 {"ssh-ed25519,rsa-sha2-512", "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
                  "ssh-ed25519 rsa-sha2-512 rsa-sha2-256",  // one item with spaces inside
                  ""});
    CHECK(host::same_set({}).passes(""));
}

TEST_CASE("controls Expect: at_least and at_most compare numbers and reject anything else") {
    check_expect(
        host::at_least(4096), ">= 4096", {"4096", "8192"},
        {"4095", "", "many", "8192 bits", "4096.5", "99999999999999999999999"});  // out of range, not a wrap-around
    check_expect(host::at_most(3), "<= 3", {"3", "0", "-1"}, {"4", "", "three", "3\n3"});
}

TEST_CASE("controls Expect: one_of and empty_output") {
    check_expect(host::one_of({"no", "without-password"}), "one of no, without-password", {"no", "without-password"},
                 {"yes", ""});
    check_expect(host::empty_output("no accounts with empty passwords"), "no accounts with empty passwords", {""},
                 {"guest", " "});
}

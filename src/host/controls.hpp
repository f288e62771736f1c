// Audited controls, evaluated on a Target in one round trip: each control is a shell snippet
// that prints what the host shows, a predicate over that text, and an optional snippet that
// prints why the control cannot be evaluated here (then it is "not applicable", never a pass).
#pragma once

#include "nodectl/step.hpp"
#include "nodectl/target.hpp"

#include <functional>
#include <string>
#include <vector>

namespace nodectl::host {

// What passes, as text for the report and as a predicate over the observed text.
struct Expect {
    std::string text;
    std::function<bool(const std::string&)> passes;
};

Expect equals(std::string value);
// A comma-separated list (as sshd -T prints) equal to `items` as a set.
Expect same_set(std::vector<std::string> items);
Expect at_least(long value);
Expect at_most(long value);
Expect one_of(std::vector<std::string> values);
Expect empty_output(std::string meaning);  // e.g. "no accounts with empty passwords"

struct Control {
    std::string id;
    std::string title;
    std::string observe;  // sh: prints the observed value (trimmed; stderr dropped)
    Expect expect;
    std::string not_applicable;  // sh: prints a reason when the control cannot be evaluated here
};

// `prelude` runs first in the same shell (it may set variables the snippets read).
Result<std::vector<ControlResult>> evaluate(Target& target, const std::string& prelude,
                                            const std::vector<Control>& controls);
// What evaluate's script prints (each control's marker, what it observed, its not-applicable
// marker and reason: `sshd -T` values, stat modes, ...) judged against `controls`.
std::vector<ControlResult> parse_control_output(const std::vector<Control>& controls, const std::string& text);

}  // namespace nodectl::host

#include "nodectl/step.hpp"

namespace nodectl {

std::string_view control_status_name(ControlStatus s) {
    switch (s) {
    case ControlStatus::pass: return "pass";
    case ControlStatus::fail: return "fail";
    case ControlStatus::not_applicable: return "n/a";
    }
    return "?";
}

Result<std::vector<ControlResult>> Step::audit(Target& target) {
    auto plan = TRY(probe(target));
    ControlResult c;
    c.id = id();
    c.title = title();
    c.expected = "as the profile says";
    if (plan.empty()) {
        c.status = ControlStatus::pass;
        c.observed = "as the profile says";
    } else {
        c.status = ControlStatus::fail;
        for (const auto& change : plan.changes) {
            c.observed += (c.observed.empty() ? "" : "; ") + change.summary;
        }
    }
    return std::vector<ControlResult>{c};
}

}  // namespace nodectl

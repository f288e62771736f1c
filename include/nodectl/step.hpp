// Step: one idempotent unit of change. probe() looks (read-only) and says what would change;
// an empty Plan means the host is already right. apply() makes it so. The runner re-probes after
// apply() to prove the step converged.
#pragma once

#include "nodectl/result.hpp"
#include "nodectl/target.hpp"

#include <string>
#include <vector>

namespace nodectl {

struct Change {
    std::string summary;  // one line: "hostname: localhost -> web1"
    std::string diff;  // unified diff for file contents, may be empty
};

struct Plan {
    std::vector<Change> changes;
    bool empty() const { return changes.empty(); }
};

// One audited control of `nodectl check`: what was observed on the host, against what the
// profile wants. A control that cannot be evaluated where the host runs (kernel auditing inside
// a container) is not_applicable with the reason, never a pass.
enum class ControlStatus { pass, fail, not_applicable };
std::string_view control_status_name(ControlStatus s);

struct ControlResult {
    std::string id;  // "ssh.permitrootlogin"
    std::string title;  // "root cannot log in over SSH"
    ControlStatus status = ControlStatus::fail;
    std::string observed;  // the value found on the host
    std::string expected;  // what passes
    std::string reason;  // why not applicable, or an error while evaluating
};

class Step {
public:
    virtual ~Step() = default;
    // Stable identifier, used by the journal: "base/hostname", "base/file:/etc/motd".
    virtual std::string id() const = 0;
    // Human title for plans and logs.
    virtual std::string title() const = 0;
    virtual Result<Plan> probe(Target& target) = 0;
    virtual Result<void> apply(Target& target, const Plan& plan) = 0;
    // `nodectl check`: the controls this step stands for, evaluated on the host (read-only). The
    // default is one control that passes when probe() finds nothing to change.
    virtual Result<std::vector<ControlResult>> audit(Target& target);
};

}  // namespace nodectl

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
    std::string diff;     // unified diff for file contents, may be empty
};

struct Plan {
    std::vector<Change> changes;
    bool empty() const { return changes.empty(); }
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
};

} // namespace nodectl

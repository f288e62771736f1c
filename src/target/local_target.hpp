// LocalTarget: the machine nodectl runs on (first boot, USB stick, `--local`). Commands run under
// /bin/sh as the current user, which must be root to apply anything.
#pragma once

#include "nodectl/target.hpp"

#include <vector>

namespace nodectl {

class LocalTarget final : public Target {
public:
    explicit LocalTarget(std::string name = "local") : m_name(std::move(name)) {}
    const std::string& name() const override { return m_name; }
    Result<CommandResult> run(const Command& cmd) override;
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override;

private:
    std::string m_name;
};

// Runs argv with stdin/stdout/stderr through pipes and a deadline; used by LocalTarget and by
// tools nodectl runs on the operator's machine.
Result<CommandResult> run_process(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::seconds timeout);

// The environment every step script starts with: a known locale and PATH.
extern const char* const k_script_prologue;

} // namespace nodectl

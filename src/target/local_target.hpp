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
    // With file descriptors in this process: the directory opened without following a symbolic
    // link, a new temporary file (O_EXCL, O_NOFOLLOW) written, chown'ed, chmod'ed and synced
    // through its descriptor, then renamed within the directory. A user who owns the directory
    // can rename entries, but can never make root write or chown anything else.
    Result<void> write_file(const FileSpec& file) override;

private:
    std::string m_name;
};

// Runs argv with stdin/stdout/stderr through pipes and a deadline; used by LocalTarget and by
// tools nodectl runs on the operator's machine.
// `on_output` as Command::on_output.
Result<CommandResult> run_process(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::seconds timeout,
                                  const std::function<void(std::string_view)>& on_output = {});

// What a command may print on stdout, and on stderr: more is an error (a host's output is not
// trusted to be of any reasonable size). Both targets enforce it.
constexpr size_t k_max_command_output = 16u << 20;

// The environment every step script starts with: a known locale and PATH.
extern const char* const k_script_prologue;

}  // namespace nodectl

// Several read-only commands in one run(): one round trip to the host instead of one each.
#pragma once

#include "nodectl/target.hpp"

#include <vector>

namespace nodectl {

// Runs `commands` on the host side by side, in one run(), each as run() would run it on its own:
// `sh -c` with the script prologue, under `timeout` with its own time limit, stdin empty. Only
// for probes: every command must have mutates == false, no input and no on_output. The outer
// Result fails when the batch itself could not run (a lost connection); each command has its own
// Result (ErrorCode::timeout when it ran out of time, as run() reports it).
Result<std::vector<Result<CommandResult>>> run_batch(Target& target, const std::vector<Command>& commands);

// The script run_batch sends, and the parser of what it prints (exposed for the unit tests): a
// line "@@nodectl-batch", a line with every command's exit status, two lines per command with
// the byte counts of its stdout and stderr, then all those bytes in the same order.
std::string batch_script(const std::vector<Command>& commands);
Result<std::vector<Result<CommandResult>>> parse_batch_output(const std::vector<Command>& commands,
                                                              const std::string& out);

}  // namespace nodectl

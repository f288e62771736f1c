// Running the build's tools (apt-get, mmdebstrap, the chroot stage) with their progress on stderr.
#pragma once

#include "nodectl/result.hpp"

#include <map>
#include <string>
#include <vector>

namespace nodectl::image {

// Runs argv with stdout and stderr merged. Lines starting with "@@ " and mmdebstrap's "I: " lines
// are progress (logged at info under `label`), every line is logged at debug, and the last lines
// are part of the error when the exit status is not 0. `env` is added to the environment.
Result<void> run_logged(const std::vector<std::string>& argv, const std::string& label,
                        const std::map<std::string, std::string>& env = {});

}  // namespace nodectl::image

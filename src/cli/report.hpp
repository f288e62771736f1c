// Rendering run reports for people (text) and programs (--json).
#pragma once

#include "core/runner.hpp"

#include <string>
#include <vector>

namespace nodectl::cli {

std::string reports_text(const std::vector<HostReport>& reports, RunMode mode);
std::string reports_json(const std::vector<HostReport>& reports, RunMode mode);

}  // namespace nodectl::cli

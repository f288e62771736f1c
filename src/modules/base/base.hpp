#pragma once

#include "nodectl/module.hpp"

namespace nodectl::base {

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::base

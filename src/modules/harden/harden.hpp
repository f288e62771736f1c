#pragma once

#include "nodectl/module.hpp"

namespace nodectl::harden {

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::harden

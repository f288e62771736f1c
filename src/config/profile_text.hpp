// Loading a profile from bytes already read.
#pragma once

#include "nodectl/config.hpp"

#include <string>

namespace nodectl {

// load_profile for bytes already read from `path` (what was checked is what is parsed: a signed
// config is verified and loaded from one read). `extends`/`include`/`source` are relative to path.
Result<Profile> load_profile_text(const std::string& path, const std::string& text);

}  // namespace nodectl

// Shell snippets shared by the targets.
#pragma once

#include "nodectl/target.hpp"

namespace nodectl {

// Script that writes its stdin to file.path atomically: a 0600 temporary file beside the
// destination, owner and mode set, synced, then renamed over the destination.
std::string atomic_write_script(const FileSpec& file);

} // namespace nodectl

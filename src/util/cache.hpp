// nodectl's cache on the operator's machine: downloaded k3s releases, unpacked bundles.
#pragma once

#include <string>

namespace nodectl {

// $NODECTL_CACHE_DIR, else $XDG_CACHE_HOME/nodectl, else ~/.cache/nodectl, else /var/cache/nodectl.
std::string cache_dir();

}  // namespace nodectl

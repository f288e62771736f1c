#include "util/cache.hpp"

#include <cstdlib>

namespace nodectl {

std::string cache_dir() {
    if (const char* c = std::getenv("NODECTL_CACHE_DIR"); c && *c) {
        return c;
    }
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
        return std::string(x) + "/nodectl";
    }
    const char* home = std::getenv("HOME");
    return home && *home ? std::string(home) + "/.cache/nodectl" : "/var/cache/nodectl";
}

}  // namespace nodectl

// Secrets are read from a file (not readable by group or others) or an environment variable,
// only when needed. The value is held in a Secret and handed to commands through stdin.
#include "nodectl/config.hpp"
#include "util/file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nodectl {

Result<Secret> resolve_secret(const SecretRef& ref) {
    if (!ref.env.empty()) {
        const char* v = std::getenv(ref.env.c_str());
        if (!v) {
            return make_error(ErrorCode::config, "secret " + ref.describe() + " is not set");
        }
        return Secret(v);
    }
    struct stat st {};
    if (::stat(ref.file.c_str(), &st) != 0) {
        return make_error(ErrorCode::config, "secret " + ref.describe() + ": " + std::strerror(errno));
    }
    if (st.st_mode & 077) {
        return make_error(ErrorCode::config, "secret " + ref.describe() + " is readable by group or others (mode " +
                                                 std::to_string((st.st_mode >> 6) & 7) +
                                                 std::to_string((st.st_mode >> 3) & 7) +
                                                 std::to_string(st.st_mode & 7) + "); run chmod 600 on it");
    }
    auto content = util::read_file(ref.file);
    if (!content) {
        return make_error(ErrorCode::config, "secret " + ref.describe() + ": " + std::strerror(errno));
    }
    std::string value = std::move(*content);
    // A trailing newline is the editor's, not the secret's.
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
        value.pop_back();
    }
    return Secret(std::move(value));
}

}  // namespace nodectl

#include "nodectl/result.hpp"

#include <cerrno>
#include <cstring>

namespace nodectl {

Error make_error(ErrorCode code, std::string message) {
    Error e;
    e.code = code;
    e.message = std::move(message);
    return e;
}

Error errno_error(const std::string& what) {
    return make_error(ErrorCode::io, what + ": " + std::strerror(errno));
}

}  // namespace nodectl

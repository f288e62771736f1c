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

std::string Error::describe() const {
    std::string out;
    for (const std::string* part : {&host, &step}) {
        if (!part->empty()) {
            out.append(*part).append(": ");
        }
    }
    return out.append(message);
}

}  // namespace nodectl

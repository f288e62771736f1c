#include "nodectl/result.hpp"

namespace nodectl {

Error make_error(ErrorCode code, std::string message) {
    Error e;
    e.code = code;
    e.message = std::move(message);
    return e;
}

std::string Error::describe() const {
    std::string out;
    if (!host.empty()) {
        out += host + ": ";
    }
    if (!step.empty()) {
        out += step + ": ";
    }
    return out + message;
}

} // namespace nodectl

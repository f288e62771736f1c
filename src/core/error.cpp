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
    for (const std::string* part : {&host, &step}) {
        if (!part->empty()) {
            out.append(*part).append(": ");
        }
    }
    return out.append(message);
}

} // namespace nodectl

// JSON text through nlohmann, the one way nodectl turns JSON into text.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace util {

// j.dump(indent), except that a string that is not valid UTF-8 (a file name or output from a host
// may be anything) has its bad bytes replaced by U+FFFD instead of throwing.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace util

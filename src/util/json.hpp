// JSON through nlohmann: the one way nodectl reads JSON text, and the one way it writes it.
#pragma once

#include "util/expected.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace util {

// `text` parsed as JSON, or the parser's reason and place when it is not JSON
// ("[json.exception.parse_error.101] parse error at line 1, column 2: ..."). Never throws,
// whatever the text: it may come from a host, a bundle or a backup target.
inline Expected<nlohmann::json> parse_json(std::string_view text) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        return fail(e.what());
    }
}

// j.dump(indent), except that a string that is not valid UTF-8 (a file name or output from a host
// may be anything) has its bad bytes replaced by U+FFFD instead of throwing.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace util

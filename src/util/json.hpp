// JSON through nlohmann: the one way nodectl reads JSON text, and the one way it writes it.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace util {

// `text` parsed as JSON; nullopt when it is not JSON, with `why` (when given) set to the parser's
// reason and place ("[json.exception.parse_error.101] parse error at line 1, column 2: ...").
// Never throws, whatever the text: it may come from a host, a bundle or a backup target.
[[nodiscard]] inline std::optional<nlohmann::json> parse_json(std::string_view text, std::string* why = nullptr) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        if (why) {
            *why = e.what();
        }
        return std::nullopt;
    }
}

// j.dump(indent), except that a string that is not valid UTF-8 (a file name or output from a host
// may be anything) has its bad bytes replaced by U+FFFD instead of throwing.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace util

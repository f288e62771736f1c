// Helpers of the harden module's unit tests (test_modules_harden*.cpp): profiles written to a temp
// dir, a group's section of them, and the line checks the rendered files are read with.
#pragma once

#include "test_support.hpp"

#include "nodectl/config.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <string>

namespace nodectl::testing {

// The profile `toml`, written to `dir`/`name`; it must load.
inline Profile written_profile(const TempDir& dir, const std::string& toml, const std::string& name = "profile.toml") {
    return load_profile_ok(dir.write(name, toml));
}

// [harden.GROUP] of `p`.
inline ConfigView harden_view(const Profile& p, const char* group) {
    return p.section("harden").section(group);
}

// How often `needle` occurs in `haystack` (not overlapping).
inline size_t count_of(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

// True when `text` has a line that is exactly `line`.
inline bool has_line(const std::string& text, const std::string& line) {
    auto lines = util::split_lines(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace nodectl::testing

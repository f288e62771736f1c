// Unified diffs of text, for plans. Knows nothing of nodectl.
#pragma once

#include <string>
#include <string_view>

namespace util {

// `diff -u`-style output (3 lines of context) between old and new text; empty when equal.
// Binary content (NUL bytes) and very large inputs get a one-line summary instead of hunks.
std::string unified_diff(std::string_view old_text, std::string_view new_text, std::string_view old_label,
                         std::string_view new_label);

}  // namespace util

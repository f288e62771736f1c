// String helpers. Knows nothing of nodectl.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace util {

std::vector<std::string> split(std::string_view s, char sep);
std::vector<std::string> split_lines(std::string_view s);
std::string trim(std::string_view s);
// ASCII letters in lower case (header names, keys); other bytes as they are.
std::string to_lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Edit distance, for "did you mean" suggestions.
size_t levenshtein(std::string_view a, std::string_view b);
// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);
std::string octal(unsigned mode);
// The value of a hex digit (either case), or -1.
int hex_value(char c);

}  // namespace util

// UTC time as text. Knows nothing of nodectl.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace util {

// strftime formats used across nodectl.
inline constexpr const char* k_utc_iso8601 = "%Y-%m-%dT%H:%M:%SZ";  // 2026-12-04T18:53:23Z
inline constexpr const char* k_utc_compact = "%Y%m%dT%H%M%SZ";  // 20261204T185323Z (SigV4, backup ids)

// `unix_seconds` in UTC, written with the strftime `format`; an empty string when the time cannot
// be represented (gmtime fails) or the text would exceed 63 bytes.
std::string format_utc(int64_t unix_seconds, const char* format = k_utc_iso8601);
std::string format_utc(std::chrono::system_clock::time_point time, const char* format = k_utc_iso8601);
// Seconds from `start` to now on the steady clock (durations in logs and reports).
double seconds_since(std::chrono::steady_clock::time_point start);
// The current time, as format_utc.
std::string utc_now(const char* format = k_utc_iso8601);

}  // namespace util

// UTC time formatting: the one helper every timestamp in nodectl goes through.
#include "util/time.hpp"

#include <doctest/doctest.h>

#include <chrono>

TEST_CASE("format_utc: ISO 8601 by default, any strftime format, always UTC") {
    CHECK(util::format_utc(0) == "1970-01-01T00:00:00Z");
    CHECK(util::format_utc(1440938160) == "2015-08-30T12:36:00Z");
    CHECK(util::format_utc(1440938160, util::k_utc_compact) == "20150830T123600Z");
    CHECK(util::format_utc(1440938160, "%Y-%m-%d %H:%M:%SZ") == "2015-08-30 12:36:00Z");
    CHECK(util::format_utc(1735516800, "%G-W%V") == "2025-W01");  // 2024-12-30 is in ISO week 2025-W01
    CHECK(util::format_utc(-1) == "1969-12-31T23:59:59Z");
    const std::chrono::sys_seconds t{std::chrono::seconds(1440938160)};
    CHECK(util::format_utc(t) == "2015-08-30T12:36:00Z");
    CHECK(util::format_utc(t, "%Y-%m") == "2015-08");
}

TEST_CASE("format_utc: empty text, not garbage, when the time or the text does not fit") {
    CHECK(util::format_utc(INT64_MAX).empty());  // gmtime cannot represent the year
    CHECK(util::format_utc(0, "%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y").empty());  // 68 bytes > 63
    CHECK(util::format_utc(0, "").empty());
}

TEST_CASE("utc_now: the current time, to the second") {
    const auto before = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const std::string now = util::utc_now(util::k_utc_compact);
    const auto after = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    CHECK(now.size() == 16);
    CHECK(now >= util::format_utc(before, util::k_utc_compact));
    CHECK(now <= util::format_utc(after, util::k_utc_compact));
}

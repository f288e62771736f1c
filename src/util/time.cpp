#include "util/time.hpp"

#include <ctime>

namespace util {

std::string format_utc(int64_t unix_seconds, const char* format) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
        return {};
    }
    char buf[64];
    const size_t n = std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf, n);
}

std::string format_utc(std::chrono::system_clock::time_point time, const char* format) {
    return format_utc(static_cast<int64_t>(std::chrono::system_clock::to_time_t(time)), format);
}

std::string utc_now(const char* format) {
    return format_utc(std::chrono::system_clock::now(), format);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace util

// Logging: one wrapper over spdlog. Logs go to stderr; per-host lines carry the host name.
// stdout is reserved for command output (plans, reports, --json).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace nodectl::log {

// spdlog stays inside log.cpp: its header-only build costs seconds in every file that logs.
enum class Level { trace, debug, info, warn, error };

// "trace", "debug", "info", "warn", "error", "off"; false when the name is unknown.
bool set_level(std::string_view level);
// Whether a message of this level is written (so callers skip formatting what is dropped).
bool enabled(Level level);
// Writes "HOST: MESSAGE" at `level`.
void write(Level level, std::string_view host, std::string_view message);

template <class... Args>
void at(Level level, std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(level)) {
        write(level, host, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <class... Args>
void trace(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    at(Level::trace, host, f, std::forward<Args>(args)...);
}
template <class... Args>
void debug(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    at(Level::debug, host, f, std::forward<Args>(args)...);
}
template <class... Args>
void info(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    at(Level::info, host, f, std::forward<Args>(args)...);
}
template <class... Args>
void warn(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    at(Level::warn, host, f, std::forward<Args>(args)...);
}
template <class... Args>
void error(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    at(Level::error, host, f, std::forward<Args>(args)...);
}

void init();

}  // namespace nodectl::log

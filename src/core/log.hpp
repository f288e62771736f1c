// Logging: one wrapper over spdlog. Logs go to stderr; per-host lines carry the host name.
// stdout is reserved for command output (plans, reports, --json).
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace nodectl::log {

// "trace", "debug", "info", "warn", "error", "off"; false when the name is unknown.
bool set_level(std::string_view level);

template <class... Args>
void info(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    spdlog::info("{}: {}", host, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void trace(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    spdlog::trace("{}: {}", host, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    spdlog::debug("{}: {}", host, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    spdlog::warn("{}: {}", host, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(std::string_view host, fmt::format_string<Args...> f, Args&&... args) {
    spdlog::error("{}: {}", host, fmt::format(f, std::forward<Args>(args)...));
}

void init();

} // namespace nodectl::log

#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <unistd.h>

namespace nodectl::log {

void init() {
    auto logger = spdlog::stderr_color_mt("nodectl");
    // Under systemd the journal adds its own timestamps.
    logger->set_pattern(getenv("JOURNAL_STREAM") ? "%l %v" : "%H:%M:%S.%e %^%-5l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::info);
}

bool set_level(std::string_view level) {
    auto l = spdlog::level::from_str(std::string(level));
    if (l == spdlog::level::off && level != "off") {
        return false;
    }
    spdlog::set_level(l);
    return true;
}

} // namespace nodectl::log

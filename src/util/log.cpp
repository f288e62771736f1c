#include "util/log.hpp"

#include "util/text.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <unistd.h>

namespace nodectl::log {

namespace {

spdlog::level::level_enum to_spdlog(Level level) {
    switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    }
    return spdlog::level::err;
}

// %* : the message made printable (util::printable); messages often quote what a host sent, which
// must not drive the operator's terminal.
class PrintableMessage final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        auto text = util::printable(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(text.data(), text.data() + text.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PrintableMessage>(); }
};

}  // namespace

void init() {
    auto logger = spdlog::stderr_color_mt("nodectl");
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    // Under systemd the journal adds its own timestamps.
    formatter->add_flag<PrintableMessage>('*').set_pattern(getenv("JOURNAL_STREAM") ? "%l %*"
                                                                                    : "%H:%M:%S.%e %^%-5l%$ %*");
    logger->set_formatter(std::move(formatter));
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

bool enabled(Level level) {
    return spdlog::should_log(to_spdlog(level));
}

void write(Level level, std::string_view host, std::string_view message) {
    spdlog::log(to_spdlog(level), "{}: {}", host, message);
}

}  // namespace nodectl::log

// Debian packages on a Target (dpkg/apt). Other package managers are refused, not guessed.
#pragma once

#include "nodectl/target.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::host {

// The subset of `names` that dpkg reports as installed ("ii").
Result<std::set<std::string>> installed_packages(Target& target, const std::vector<std::string>& names);
// The packages `dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n'` prints as installed ("ii").
std::set<std::string> parse_installed_packages(const std::string& out_text);
// Follows apt-get install's output and says how far it is, at most once per `every`: packages
// counted and named as they are fetched, unpacked and set up, and how long the current one has
// taken, so that a long install (aide-common's postinst alone takes 90 s) is never a silent minute.
class AptProgress {
public:
    using Clock = std::chrono::steady_clock;
    AptProgress(Clock::time_point start, std::chrono::seconds every)
        : m_last_report(start), m_since(start), m_every(every) {}
    // A piece of apt's stdout (may be empty); returns a line to report when one is due.
    std::optional<std::string> feed(std::string_view out, Clock::time_point now);

private:
    void take_line(std::string_view line, Clock::time_point now);
    std::string m_partial;
    size_t m_total = 0, m_fetched = 0, m_unpacked = 0, m_set_up = 0;
    std::string m_doing = "reading the package lists";
    Clock::time_point m_last_report, m_since;
    std::chrono::seconds m_every;
};

// `sources_list`, when not empty, is the only apt source used (an offline bundle's local
// repository): nothing is fetched from the network. `report`, when set, gets AptProgress's lines.
Result<void> install_packages(Target& target, const std::vector<std::string>& names,
                              const std::string& sources_list = "",
                              const std::function<void(const std::string&)>& report = {});
Result<void> remove_packages(Target& target, const std::vector<std::string>& names);

}  // namespace nodectl::host

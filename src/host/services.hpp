// systemd units on a Target.
#pragma once

#include "nodectl/target.hpp"

#include <map>
#include <string>
#include <vector>

namespace nodectl::host {

struct UnitState {
    std::string enabled;  // `systemctl is-enabled`: enabled, disabled, static, masked, ... or "" if unknown
    std::string active;   // `systemctl is-active`: active, inactive, failed, ...
};

// One round trip for all units.
Result<std::map<std::string, UnitState>> unit_states(Target& target, const std::vector<std::string>& units);
// What unit_states reads back: "unit|$(systemctl is-enabled)|$(systemctl is-active)" lines.
std::map<std::string, UnitState> parse_unit_states(const std::string& text);
// `systemctl enable --now` or `systemctl disable --now`.
Result<void> set_unit(Target& target, const std::string& unit, bool enabled);

} // namespace nodectl::host

#include "host/services.hpp"

#include "util/strings.hpp"

namespace nodectl::host {

Result<std::map<std::string, UnitState>> unit_states(Target& target, const std::vector<std::string>& units) {
    std::map<std::string, UnitState> out;
    if (units.empty()) {
        return out;
    }
    Command cmd;
    cmd.script = "command -v systemctl >/dev/null || { echo 'systemctl not found: systemd hosts only' >&2; exit 3; }; "
                 "for u in " + shell_quote_all(units) + "; do printf '%s|%s|%s\\n' \"$u\" \"$(systemctl is-enabled \"$u\" 2>/dev/null)\" "
                 "\"$(systemctl is-active \"$u\" 2>/dev/null)\"; done";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "systemctl is-enabled"));
    return parse_unit_states(r.out);
}

std::map<std::string, UnitState> parse_unit_states(const std::string& text) {
    std::map<std::string, UnitState> out;
    for (const auto& line : util::split_lines(text)) {
        auto f = util::split(line, '|');
        if (f.size() == 3) {
            out[f[0]] = UnitState{f[1], f[2]};
        }
    }
    return out;
}

Result<void> set_unit(Target& target, const std::string& unit, bool enabled) {
    Command cmd;
    cmd.script = std::string("systemctl ") + (enabled ? "enable" : "disable") + " --now " + shell_quote(unit);
    TRY(target.run_checked(cmd, std::string("systemctl ") + (enabled ? "enable" : "disable") + " " + unit));
    return Ok{};
}

} // namespace nodectl::host

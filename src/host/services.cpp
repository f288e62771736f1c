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
                 "for u in " +
                 shell_quote_all(units) +
                 "; do printf '%s|%s|%s\\n' \"$u\" \"$(systemctl is-enabled \"$u\" 2>/dev/null)\" "
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

std::string_view verb_word(UnitVerb verb) {
    switch (verb) {
    case UnitVerb::daemon_reload: return "daemon-reload";
    case UnitVerb::enable: return "enable";
    case UnitVerb::disable: return "disable";
    case UnitVerb::start: return "start";
    case UnitVerb::stop: return "stop";
    case UnitVerb::restart: return "restart";
    case UnitVerb::reload: return "reload";
    case UnitVerb::reset_failed: return "reset-failed";
    }
    return "";
}

std::string UnitOp::script() const {
    std::string out = "systemctl " + std::string(verb_word(verb));
    out += flags.now ? " --now" : "";
    out += flags.quiet ? " --quiet" : "";
    out += flags.no_block ? " --no-block" : "";
    if (!units.empty()) {
        out += " " + shell_quote_all(units);
    }
    return out + (flags.ignore_failure ? " 2>/dev/null || true" : "");
}

Result<void> run_unit_op(Target& target, const UnitOp& op) {
    Command cmd;
    cmd.script = op.script();
    std::string what = "systemctl " + std::string(verb_word(op.verb));
    for (const auto& u : op.units) {
        what += " " + u;
    }
    TRY(target.run_checked(cmd, what));
    return Ok{};
}

Result<void> set_unit(Target& target, const std::string& unit, bool enabled) {
    return run_unit_op(target, enabled ? units::enable({unit}, {.now = true}) : units::disable({unit}, {.now = true}));
}

namespace units {

UnitOp daemon_reload() {
    return {UnitVerb::daemon_reload, {}, {}};
}
UnitOp enable(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::enable, std::move(names), flags};
}
UnitOp disable(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::disable, std::move(names), flags};
}
UnitOp start(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::start, std::move(names), flags};
}
UnitOp stop(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::stop, std::move(names), flags};
}
UnitOp restart(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::restart, std::move(names), flags};
}
UnitOp reload(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::reload, std::move(names), flags};
}
UnitOp reset_failed(std::vector<std::string> names, UnitFlags flags) {
    return {UnitVerb::reset_failed, std::move(names), flags};
}

std::string script(const std::vector<UnitOp>& ops) {
    std::string out;
    for (const auto& op : ops) {
        out += op.script() + "\n";
    }
    return out;
}

std::string is_active(const std::string& unit) {
    return "systemctl is-active --quiet " + shell_quote(unit);
}

std::string journal_tail(const std::string& unit, int lines, const std::string& output) {
    return "journalctl --sync 2>/dev/null; journalctl -u " + shell_quote(unit) + " -n " + std::to_string(lines) +
           " -o " + shell_quote(output) + " --no-pager 2>/dev/null";
}

std::string active_state(const std::string& unit) {
    return "systemctl is-active " + shell_quote(unit);
}

std::string enabled_state(const std::string& unit) {
    return "systemctl is-enabled " + shell_quote(unit) + " 2>/dev/null";
}

std::string property(const std::string& unit, const std::string& name) {
    return "systemctl show -p " + shell_quote(name) + " --value " + shell_quote(unit);
}

std::string state_pair(const std::string& unit) {
    return "echo \"$(" + enabled_state(unit) + "),$(" + active_state(unit) + ")\"";
}

std::string enabled_drift(const std::string& unit, const std::string& line) {
    return "[ \"$(" + enabled_state(unit) + ")\" = enabled ] || echo " +
           shell_quote(line.empty() ? "enable " + unit : line) + "\n";
}

std::string active_drift(const std::string& unit, const std::string& line) {
    return "[ \"$(" + active_state(unit) + ")\" = active ] || echo " +
           shell_quote(line.empty() ? "start " + unit : line) + "\n";
}

}  // namespace units

}  // namespace nodectl::host

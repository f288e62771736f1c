// systemd units on a Target. Modules never write `systemctl` themselves: an operation is a
// UnitOp (a verb, its units, its flags), run alone with run_unit_op or rendered into a larger
// script that must run as one command (a config set's activation, which restore.sh on the host
// also runs without nodectl). Probes are sh fragments for the same reason: a drift check or a
// control reads every unit of its group in the one round trip of its script.
#pragma once

#include "nodectl/target.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::host {

struct UnitState {
    std::string enabled;  // `systemctl is-enabled`: enabled, disabled, static, masked, ... or "" if unknown
    std::string active;  // `systemctl is-active`: active, inactive, failed, ...
};

// One round trip for all units.
Result<std::map<std::string, UnitState>> unit_states(Target& target, const std::vector<std::string>& units);
// What unit_states reads back: "unit|$(systemctl is-enabled)|$(systemctl is-active)" lines.
std::map<std::string, UnitState> parse_unit_states(const std::string& text);

enum class UnitVerb { daemon_reload, enable, disable, start, stop, restart, reload, reset_failed };
// The verb as systemctl spells it: "daemon-reload", "reset-failed", "enable", ...
std::string_view verb_word(UnitVerb verb);

struct UnitFlags {
    bool now = false;  // --now: enable/disable also start/stop
    bool quiet = false;  // --quiet: no "Created symlink" lines
    bool no_block = false;  // --no-block: queue the job, do not wait for it
    bool ignore_failure = false;  // ` 2>/dev/null || true`: a best-effort step of a larger script
};

struct UnitOp {
    UnitVerb verb;
    std::vector<std::string> units;  // none for daemon-reload
    UnitFlags flags;
    // `systemctl VERB [--now] [--quiet] [--no-block] 'UNIT'...`, each unit quoted by shell_quote.
    std::string script() const;
};

// Runs one operation as its own command; the error names the verb and the units.
Result<void> run_unit_op(Target& target, const UnitOp& op);
// `systemctl enable --now` or `systemctl disable --now`.
Result<void> set_unit(Target& target, const std::string& unit, bool enabled);

namespace units {

UnitOp daemon_reload();
UnitOp enable(std::vector<std::string> names, UnitFlags flags = {});
UnitOp disable(std::vector<std::string> names, UnitFlags flags = {});
UnitOp start(std::vector<std::string> names, UnitFlags flags = {});
UnitOp stop(std::vector<std::string> names, UnitFlags flags = {});
UnitOp restart(std::vector<std::string> names, UnitFlags flags = {});
UnitOp reload(std::vector<std::string> names, UnitFlags flags = {});
UnitOp reset_failed(std::vector<std::string> names, UnitFlags flags = {});

// The operations one per line, in order (each line ends with a newline).
std::string script(const std::vector<UnitOp>& ops);

// Probe fragments (sh), for scripts that read several things in one round trip.
// A condition: true while the unit is active.
std::string is_active(const std::string& unit);
// Prints the unit's active state (active, inactive, activating, failed, ...).
std::string active_state(const std::string& unit);
// Prints the unit's enablement (enabled, disabled, static, ...), nothing for an unknown unit.
std::string enabled_state(const std::string& unit);
// Prints one property's value (`systemctl show -p NAME --value`).
std::string property(const std::string& unit, const std::string& name);
// Prints "ENABLEMENT,ACTIVE-STATE" ("enabled,active" for a unit that is as it should be): a control's observation.
std::string state_pair(const std::string& unit);
// Drift lines (a config set's drift script): print `line` ("enable UNIT" / "start UNIT" when
// empty) unless the unit is enabled / active.
std::string enabled_drift(const std::string& unit, const std::string& line = "");
std::string active_drift(const std::string& unit, const std::string& line = "");
// Prints the unit's last `lines` journal lines (journalctl's `output` format), for the report of a
// unit that failed to start. journald reads a service's output asynchronously: the lines a unit
// wrote just before it failed may not be in the journal yet, so journald is asked first to take
// in everything queued (`journalctl --sync`).
std::string journal_tail(const std::string& unit, int lines, const std::string& output = "short");

}  // namespace units

}  // namespace nodectl::host

// The backup module's steps (apply installs the timer) and the units it renders.
#pragma once

#include "modules/backup/backup.hpp"
#include "nodectl/module.hpp"

#include <string>
#include <vector>

namespace nodectl::backup {

inline constexpr const char* k_service_path = "/etc/systemd/system/nodectl-backup.service";
inline constexpr const char* k_timer_path = "/etc/systemd/system/nodectl-backup.timer";

struct UnitSettings {
    std::string binary = "/usr/local/bin/nodectl";
    std::string profile = "/etc/nodectl/profile.toml";
    std::string schedule = "*-*-* 02:00:00";
    std::string randomized_delay = "30min";
    std::vector<std::string> mount_paths;  // RequiresMountsFor=
    std::vector<std::string> write_paths;  // ReadWritePaths=
};

UnitSettings unit_settings(const Settings& settings);
std::string render_service(const UnitSettings& units);
std::string render_timer(const UnitSettings& units);

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::backup

// Modules: one per capability, each in its own folder under src/modules/, each owning one profile
// section. core/modules.cpp lists them in one explicit table (no self-registration: it does not
// survive static linking).
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/step.hpp"

#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace nodectl {

struct ModuleContext {
    const Profile& profile;
    const HostSpec& host;
    // From a verified offline bundle (`--bundle`), unpacked on the operator's machine; empty
    // without one. The k3s release directory, and the apt sources line of the bundle's packages
    // once they are on the node (the step bundle/packages,
    // src/modules/bundle/use.cpp).
    std::string bundle_k3s_dir;
    std::string bundle_k3s_version;
    std::string bundle_apt_sources;
};

using StepList = std::vector<std::unique_ptr<Step>>;

struct Module {
    std::string_view name;  // also the profile section it owns
    std::string_view summary;
    // Builds this host's steps from the profile, in the order they must run. Runs before any host is
    // contacted, so a bad value stops the whole run before anything changes.
    Result<StepList> (*steps)(const ModuleContext& ctx);
};

std::span<const Module> modules();

// Every module's steps for a host, in module-table order; `except` names a module to leave out
// (join: the agent's k3s steps replace the profile's k3s module).
Result<StepList> build_steps(const ModuleContext& ctx, std::string_view except = {});
Result<StepList> build_steps(const Profile& profile, const HostSpec& host);

}  // namespace nodectl

// The k3s steps that are not a configuration file set.
#pragma once

#include "modules/k3s/k3s.hpp"
#include "modules/k3s/release.hpp"

#include <optional>

namespace nodectl::k3s {

class InstallK3sRelease final : public Step {
public:
    explicit InstallK3sRelease(Settings s) : m_settings(std::move(s)) {}
    std::string id() const override { return "k3s/binary"; }
    std::string title() const override { return "k3s binary"; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    struct State {
        std::string arch;
        std::string binary_sha256;
        std::string record;
        std::string images_sha256;
        std::vector<std::string> links_missing;
    };
    Result<State> state(Target& target);
    Result<Release> release(const std::string& arch);
    Settings m_settings;
    std::optional<Release> m_release;
};

// Starts the unit and waits: a server until its node is Ready, an agent until the unit is active
// (the server is asked about the agent's node by `nodectl join`).
class StartK3s final : public Step {
public:
    explicit StartK3s(Settings s) : m_settings(std::move(s)) {}
    std::string id() const override { return "k3s/start"; }
    std::string title() const override { return "k3s running"; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    std::string state_script() const;
    Settings m_settings;
};

// An on-link default route on the node's first interface, for nodes that have none (offline
// sites): k3s picks the node's address from the default route's interface.
ConfigSetSpec default_route_group();
// config.yaml, registries.yaml, the unit and its env file, the server's token file.
Result<ConfigSetSpec> files_group(const Settings& s);

}  // namespace nodectl::k3s

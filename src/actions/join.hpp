// `nodectl join` as an action: its phases in order, each returning Result, nothing printed
// (src/cli/k3s_cmd.cpp runs the jobs through the runner, prints, and chooses the exit code).
//   1. server     the server's k3s version, its secure join token (pins its CA), its API URL;
//   2. settings   the agents' [k3s] settings (labels, taints, registries), held to the server's
//                 version;
//   (the CLI opens --bundle, as it does for apply)
//   3. jobs       each node's steps: the join check, the profile's other modules, the agent;
//   (the CLI runs the jobs: apply, or the plan with --dry-run)
//   4. ready      each node that joined, Ready as the server sees it.
// A failure in 1 to 3 is a refusal: nothing on any node has changed.
#pragma once

#include "core/runner.hpp"
#include "modules/bundle/use.hpp"
#include "modules/k3s/k3s.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::actions {

struct JoinRequest {
    const Profile* profile = nullptr;
    std::string profile_path;  // for messages
    std::vector<HostSpec> nodes;
    HostSpec server;  // reached over SSH like the nodes
    std::string server_shown;  // the server as the operator wrote it, for messages
    std::string server_address;  // the address agents use for the API (empty: the server's SSH address)
    int api_port = 6443;
};

struct JoinPlan {
    std::unique_ptr<Target> server;
    k3s::ServerInfo info;
    k3s::Settings settings;  // the agents'
    std::vector<HostJob> jobs;  // one per node, in the request's order
};

// Phases 1 and 2. `connect` reaches the server (read only: it runs no step that changes it).
Result<JoinPlan> prepare_join(const JoinRequest& request, const ConnectFn& connect);
// Phase 3: plan.jobs, with the steps of `bundle` (--bundle, when given) before the modules'.
Result<void> plan_jobs(JoinPlan& plan, const JoinRequest& request, const bundle::Opened* bundle);

// Phase 4: for each job whose report is ok, whether its node became Ready within the settings'
// ready_timeout; jobs that failed are skipped (nullopt). Index-aligned with plan.jobs.
std::vector<std::optional<Result<void>>> wait_ready(JoinPlan& plan, const std::vector<HostReport>& reports,
                                                    const ConnectFn& connect);

}  // namespace nodectl::actions

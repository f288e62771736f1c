#include "actions/join.hpp"

#include "util/log.hpp"
#include "util/strings.hpp"

namespace nodectl::actions {

namespace {

// 1. The server: its k3s version, its secure join token (pins its CA), its URL.
Result<void> read_server(const JoinRequest& request, const ConnectFn& connect, JoinPlan& plan) {
    auto server = connect(request.server);
    if (!server) {
        return make_error(ErrorCode::connect, "nodectl join: cannot reach the server " + request.server_shown + ": " +
                                                  server.error().message);
    }
    auto info = k3s::read_server_info(
        **server, request.server_address.empty() ? request.server.address : request.server_address, request.api_port);
    if (!info) {
        return make_error(info.error().code, "nodectl join: " + info.error().message + "\nnothing was changed");
    }
    log::info("nodectl", "server {}: k3s {}, API {}", (*server)->name(), info->version, info->url);
    plan.server = std::move(*server);
    plan.info = std::move(*info);
    return Ok{};
}

// 2. The agents' settings: the profile's [k3s] (labels, taints, registries), the server's version.
Result<void> agent_settings(const JoinRequest& request, JoinPlan& plan) {
    auto settings = k3s::settings_from(request.profile->section("k3s"));
    if (!settings) {
        return make_error(ErrorCode::config, settings.error().message + "\nnothing was changed");
    }
    const k3s::ServerInfo& info = plan.info;
    if (!settings->version.empty() && settings->version != info.version) {
        return make_error(ErrorCode::config, "nodectl join: the agents would run k3s " + settings->version +
                                                 " (k3s.version in " + request.profile_path +
                                                 "), but the server runs " + info.version +
                                                 "; agents must match the server\nnothing was changed");
    }
    settings->role = k3s::Role::agent;
    settings->version = info.version;
    settings->server_url = info.url;
    settings->token = info.token;
    plan.settings = std::move(*settings);
    return Ok{};
}

// 4. One node Ready, as the server sees it.
Result<void> node_ready(JoinPlan& plan, const HostSpec& node, const ConnectFn& connect) {
    auto target = TRY(connect(node));
    Command hn;
    hn.mutates = false;
    hn.script = "hostname | tr A-Z a-z";
    auto name = TRY(target->run_checked(hn, "reading the node name"));
    return k3s::wait_node_ready(*plan.server, util::trim(name.out), std::chrono::seconds(plan.settings.ready_timeout));
}

}  // namespace

Result<JoinPlan> prepare_join(const JoinRequest& request, const ConnectFn& connect) {
    JoinPlan plan;
    TRY_VOID(read_server(request, connect, plan));
    TRY_VOID(agent_settings(request, plan));
    return plan;
}

// 3. Each node: the join checks, the profile's other modules (runtime, hardening), the agent.
Result<void> plan_jobs(JoinPlan& plan, const JoinRequest& request, const bundle::Opened* bundle) {
    for (const auto& h : request.nodes) {
        ModuleContext mctx{*request.profile, h};
        StepList steps;
        steps.push_back(k3s::make_join_check_step(plan.info));
        auto host = bundle::host_steps(bundle, mctx, "k3s");
        if (!host) {
            return make_error(ErrorCode::config,
                              host.error().message + "\nnothing was changed: the profile has errors");
        }
        auto agent = k3s::node_steps(plan.settings, mctx);
        if (!agent) {
            return make_error(ErrorCode::config, agent.error().message);
        }
        for (auto* list : {&*host, &*agent}) {
            for (auto& s : *list) {
                steps.push_back(std::move(s));
            }
        }
        plan.jobs.push_back({h, std::move(steps)});
    }
    return Ok{};
}

std::vector<std::optional<Result<void>>> wait_ready(JoinPlan& plan, const std::vector<HostReport>& reports,
                                                    const ConnectFn& connect) {
    std::vector<std::optional<Result<void>>> out(plan.jobs.size());
    for (size_t i = 0; i < reports.size() && i < plan.jobs.size(); ++i) {
        if (reports[i].ok) {
            out[i] = node_ready(plan, plan.jobs[i].host, connect);
        }
    }
    return out;
}

}  // namespace nodectl::actions

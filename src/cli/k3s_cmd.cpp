// join, reset and `runtime config`: the k3s and containerd commands that are not `apply`.
#include "actions/join.hpp"
#include "cli/cli.hpp"
#include "util/log.hpp"
#include "modules/bundle/use.hpp"
#include "modules/k3s/k3s.hpp"
#include "modules/runtime/runtime.hpp"
#include "target/local_target.hpp"
#include "util/strings.hpp"

#include <iostream>
#include <memory>

namespace nodectl::cli {

namespace {

JoinOptions g_join;
bool g_reset_k3s = false;  // reset --k3s

Result<Profile> profile_or_empty(const std::string& path) {
    if (path.empty()) {
        return Profile(toml::table{}, {}, "");
    }
    return load_profile(path);
}

}  // namespace

void configure_join(CLI::App& app, Context& ctx) {
    add_host_options(app, ctx, false);
    app.add_option("--server,-s", g_join.server,
                   "The k3s server, as user@host[:port] (reached over SSH like the nodes)")
        ->required();
    app.add_option("--server-address", g_join.server_address,
                   "Address the agents use for the server's API (default: the server's SSH address)");
    app.add_option("--api-port", g_join.api_port, "Port of the server's API")->capture_default_str();
    app.add_flag("--dry-run,-n", ctx.host.dry_run,
                 "Read the server's token, check the nodes, show the plan; change nothing");
}

int run_join(CLI::App&, Context& ctx) {
    return join_nodes(ctx, g_join);
}

namespace {

// A refusal before anything changed: its message, and the exit code for its kind.
int join_refused(const Error& e) {
    std::cerr << e.message << "\n";
    switch (e.code) {
    case ErrorCode::usage: return k_exit_usage;
    case ErrorCode::config: return k_exit_config;
    default: return k_exit_all_failed;
    }
}

}  // namespace

int join_nodes(Context& ctx, const JoinOptions& join) {
    auto profile = profile_or_empty(ctx.host.profile);
    if (!profile) {
        std::cerr << profile.error().message << "\nnothing was changed: the profile has errors\n";
        return k_exit_config;
    }
    auto nodes = collect_hosts(ctx.host);
    auto server_spec = host_from_arg(join.server, ctx.host);
    if (!nodes || !server_spec) {
        std::cerr << "nodectl join: " << (!nodes ? nodes.error().message : server_spec.error().message) << "\n";
        return k_exit_usage;
    }
    if (auto r = apply_connection_defaults(*server_spec, ctx.host); !r) {
        return join_refused(make_error(ErrorCode::usage, "nodectl join: " + r.error().message));
    }
    actions::JoinRequest request{.profile = &*profile,
                                 .profile_path = ctx.host.profile,
                                 .nodes = std::move(*nodes),
                                 .server = std::move(*server_spec),
                                 .server_shown = join.server,
                                 .server_address = join.server_address,
                                 .api_port = join.api_port};
    const ConnectFn read_only = make_connect(ctx, RunMode::plan);
    auto plan = actions::prepare_join(request, read_only);
    if (!plan) {
        return join_refused(plan.error());
    }
    std::optional<bundle::Opened> opened;
    if (int rc = open_bundle(ctx, opened); rc != k_exit_ok) {
        return rc;
    }
    if (auto jobs = actions::plan_jobs(*plan, request, opened ? &*opened : nullptr); !jobs) {
        return join_refused(jobs.error());
    }
    auto mode = ctx.host.dry_run ? RunMode::plan : RunMode::apply;
    std::vector<HostReport> reports;
    int rc = run_jobs(ctx, plan->jobs, mode, "to join the k3s server " + plan->info.url, profile->digest(), &reports);
    if (mode != RunMode::apply || !plan->settings.start) {
        return rc;
    }
    auto ready = actions::wait_ready(*plan, reports, read_only);
    for (size_t i = 0; i < ready.size(); ++i) {
        if (!ready[i]) {
            continue;  // its steps failed: run_jobs reported it
        }
        if (!*ready[i]) {
            std::cerr << plan->jobs[i].host.name << ": " << ready[i]->error().message << "\n";
            rc = rc == k_exit_ok && reports.size() > 1 ? k_exit_partial : k_exit_all_failed;
        } else {
            std::cout << plan->jobs[i].host.name << ": Ready on " << plan->settings.server_url << "\n";
        }
    }
    return rc;
}

void configure_reset(CLI::App& app, Context& ctx) {
    add_host_options(app, ctx, false);
    app.add_flag("--k3s", g_reset_k3s,
                 "Remove k3s: units, binary and links, /etc/rancher/k3s, /var/lib/rancher/k3s, kubelet data")
        ->required();
    app.add_flag("--dry-run,-n", ctx.host.dry_run, "List what would be removed; change nothing");
}

int run_reset(CLI::App&, Context& ctx) {
    auto hosts = collect_hosts(ctx.host);
    if (!hosts) {
        std::cerr << "nodectl reset: " << hosts.error().message << "\n";
        return k_exit_usage;
    }
    std::vector<HostJob> jobs;
    for (auto& h : *hosts) {
        StepList steps;
        steps.push_back(k3s::make_reset_step());
        jobs.push_back({h, std::move(steps)});
    }
    return run_jobs(ctx, jobs, ctx.host.dry_run ? RunMode::plan : RunMode::apply, "to remove k3s", "reset-k3s");
}

void configure_runtime(CLI::App& app, Context& ctx) {
    auto* config = app.add_subcommand("config", "Print the containerd config.toml a profile gives this machine");
    config->add_option("--profile,-p", ctx.host.profile, "Profile with a [runtime] section")->required();
    app.require_subcommand(1);
}

int run_runtime(CLI::App&, Context& ctx) {
    auto profile = load_profile(ctx.host.profile);
    if (!profile) {
        std::cerr << profile.error().message << "\n";
        return k_exit_config;
    }
    // The same facts apply reads on a node, read here.
    auto spec = runtime::containerd_group(profile->section("runtime"));
    LocalTarget local("local");
    if (auto r = spec.prepare(local, spec); !r) {
        std::cerr << "nodectl runtime config: " << r.error().message << "\n";
        return k_exit_internal;
    }
    std::cout << spec.files.front().content;
    return k_exit_ok;
}

}  // namespace nodectl::cli

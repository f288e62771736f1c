// join, reset and `runtime config`: the k3s and containerd commands that are not `apply`.
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

struct JoinServer {
    std::unique_ptr<Target> target;
    k3s::ServerInfo info;
};

// 1. The server: its k3s version, its secure join token (pins its CA), its URL.
Result<JoinServer> read_server(Context& ctx, const JoinOptions& join, HostSpec& spec) {
    if (auto r = apply_connection_defaults(spec, ctx.host); !r) {
        return make_error(ErrorCode::usage, "nodectl join: " + r.error().message);
    }
    auto server = make_connect(ctx, RunMode::plan)(spec);
    if (!server) {
        return make_error(ErrorCode::connect,
                          "nodectl join: cannot reach the server " + join.server + ": " + server.error().message);
    }
    auto info = k3s::read_server_info(**server, join.server_address.empty() ? spec.address : join.server_address,
                                      join.api_port);
    if (!info) {
        return make_error(info.error().code, "nodectl join: " + info.error().message + "\nnothing was changed");
    }
    log::info("nodectl", "server {}: k3s {}, API {}", (*server)->name(), info->version, info->url);
    return JoinServer{std::move(*server), std::move(*info)};
}

// 2. The agents' settings: the profile's [k3s] (labels, taints, registries), the server's version.
Result<k3s::Settings> agent_settings(const Profile& profile, const std::string& profile_path,
                                     const k3s::ServerInfo& info) {
    auto settings = k3s::settings_from(profile.section("k3s"));
    if (!settings) {
        return make_error(ErrorCode::config, settings.error().message + "\nnothing was changed");
    }
    if (!settings->version.empty() && settings->version != info.version) {
        return make_error(ErrorCode::config, "nodectl join: the agents would run k3s " + settings->version +
                                                 " (k3s.version in " + profile_path + "), but the server runs " +
                                                 info.version + "; agents must match the server\nnothing was changed");
    }
    settings->role = k3s::Role::agent;
    settings->version = info.version;
    settings->server_url = info.url;
    settings->token = info.token;
    return settings;
}

// 3. Each node: the join checks, the profile's other modules (runtime, hardening), the agent.
Result<std::vector<HostJob>> join_jobs(const Profile& profile, const std::vector<HostSpec>& nodes,
                                       const bundle::Opened* opened, const k3s::Settings& settings,
                                       const k3s::ServerInfo& info) {
    std::vector<HostJob> jobs;
    for (const auto& h : nodes) {
        ModuleContext mctx{profile, h};
        StepList steps;
        steps.push_back(k3s::make_join_check_step(info));
        auto host = bundle::host_steps(opened, mctx, "k3s");
        if (!host) {
            return make_error(ErrorCode::config,
                              host.error().message + "\nnothing was changed: the profile has errors");
        }
        auto agent = k3s::node_steps(settings, mctx);
        if (!agent) {
            return make_error(ErrorCode::config, agent.error().message);
        }
        for (auto* list : {&*host, &*agent}) {
            for (auto& s : *list) {
                steps.push_back(std::move(s));
            }
        }
        jobs.push_back({h, std::move(steps)});
    }
    return jobs;
}

// 4. Ready, as the server sees it: the exit code, given the run's.
int wait_ready(Context& ctx, Target& server, const std::vector<HostJob>& jobs, const std::vector<HostReport>& reports,
               const k3s::Settings& settings, int rc) {
    for (size_t i = 0; i < reports.size(); ++i) {
        if (!reports[i].ok) {
            continue;
        }
        auto node = make_connect(ctx, RunMode::plan)(jobs[i].host);
        Command hn;
        hn.mutates = false;
        hn.script = "hostname | tr A-Z a-z";
        auto name = node ? (*node)->run_checked(hn, "reading the node name") : Result<CommandResult>(node.error());
        auto ready =
            name ? k3s::wait_node_ready(server, util::trim(name->out), std::chrono::seconds(settings.ready_timeout))
                 : Result<void>(name.error());
        if (!ready) {
            std::cerr << jobs[i].host.name << ": " << ready.error().message << "\n";
            rc = rc == k_exit_ok && reports.size() > 1 ? k_exit_partial : k_exit_all_failed;
        } else {
            std::cout << jobs[i].host.name << ": Ready on " << settings.server_url << "\n";
        }
    }
    return rc;
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
    auto server = read_server(ctx, join, *server_spec);
    if (!server) {
        return join_refused(server.error());
    }
    auto settings = agent_settings(*profile, ctx.host.profile, server->info);
    if (!settings) {
        return join_refused(settings.error());
    }
    std::optional<bundle::Opened> opened;
    if (int rc = open_bundle(ctx, opened); rc != k_exit_ok) {
        return rc;
    }
    auto jobs = join_jobs(*profile, *nodes, opened ? &*opened : nullptr, *settings, server->info);
    if (!jobs) {
        return join_refused(jobs.error());
    }
    auto mode = ctx.host.dry_run ? RunMode::plan : RunMode::apply;
    std::vector<HostReport> reports;
    int rc = run_jobs(ctx, *jobs, mode, "to join the k3s server " + server->info.url, profile->digest(), &reports);
    if (mode == RunMode::apply && settings->start) {
        rc = wait_ready(ctx, *server->target, *jobs, reports, *settings, rc);
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

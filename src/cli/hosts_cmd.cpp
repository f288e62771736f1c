// apply, plan and check: load the profile and the hosts, build every host's steps (so a profile
// error stops everything before any host is touched), run them, and report.
#include "cli/cli.hpp"
#include "cli/report.hpp"
#include "util/log.hpp"
#include "core/runner.hpp"
#include "modules/bundle/use.hpp"
#include "target/local_target.hpp"
#include "util/text.hpp"

#include <pwd.h>
#include <unistd.h>

#include <iostream>

namespace nodectl::cli {

void add_host_options(CLI::App& app, Context& ctx, bool profile_required) {
    auto& h = ctx.host;
    auto* p = app.add_option("--profile,-p", h.profile, "Profile (TOML) describing the node");
    if (profile_required) {
        p->required();
    }
    app.add_option("--inventory,-i", h.inventory, "Inventory (TOML) listing hosts and how to reach them");
    app.add_option("hosts", h.hosts, "Hosts as user@host[:port] (in addition to the inventory)");
    app.add_flag("--local", h.local, "Work on the machine nodectl runs on (as root), not over SSH");
    add_connection_options(app, ctx);
    app.add_option("--bundle", h.bundle,
                   "Offline bundle (`nodectl bundle create`): verified first and refused when it fails; its packages "
                   "and k3s release are used instead of the network");
    app.add_option("--run-timeout", h.run_timeout, "Seconds one host's whole run may take")->capture_default_str();
}

void add_connection_options(CLI::App& app, Context& ctx) {
    auto& h = ctx.host;
    app.add_option("--known-hosts", h.ssh.known_hosts, "known_hosts file (default ~/.ssh/known_hosts)");
    app.add_flag("--accept-new-host-key", h.ssh.accept_new_host_key,
                 "Trust and record the key of a host seen for the first time (a changed key is never accepted)");
    app.add_option("--ssh-config", h.ssh.ssh_config, "ssh config file (default ~/.ssh/config)");
    app.add_option("--identity", h.identity,
                   "Private key for hosts that do not name one (default: ssh-agent, ~/.ssh/id_*)");
    app.add_option("--sudo", h.sudo, "How hosts given on the command line become root: none, nopasswd or password")
        ->check(CLI::IsMember({"none", "nopasswd", "password"}));
    app.add_option("--sudo-password-file", h.sudo_password_file, "File holding the sudo password (mode 0600)");
    app.add_option("--sudo-password-env", h.sudo_password_env, "Environment variable holding the sudo password");
    app.add_option("--connect-timeout", h.connect_timeout, "Seconds to wait for a host to connect and authenticate")
        ->capture_default_str();
}

Result<HostSpec> host_from_arg(const std::string& arg, const HostOptions& o) {
    auto h = TRY(parse_host_arg(arg));
    if (!o.sudo.empty()) {
        h.sudo = o.sudo == "password" ? SudoMode::password : o.sudo == "nopasswd" ? SudoMode::nopasswd : SudoMode::none;
    }
    return h;
}

Result<void> apply_connection_defaults(HostSpec& h, const HostOptions& o) {
    if (!o.identity.empty() && !h.identity) {
        h.identity = o.identity;
    }
    if (h.sudo == SudoMode::password && !h.sudo_password) {
        if (!o.sudo_password_file.empty()) {
            h.sudo_password = SecretRef{o.sudo_password_file, ""};
        } else if (!o.sudo_password_env.empty()) {
            h.sudo_password = SecretRef{"", o.sudo_password_env};
        } else {
            return make_error(ErrorCode::usage, "host " + h.name +
                                                    " uses sudo with a password: give --sudo-password-file or "
                                                    "--sudo-password-env (never the password itself)");
        }
    }
    return Ok{};
}

namespace {}  // namespace

// Command-line connection settings apply to hosts whose inventory entry does not set them.
Result<std::vector<HostSpec>> collect_hosts(const HostOptions& o) {
    std::vector<HostSpec> hosts;
    if (o.local) {
        HostSpec h;
        char name[256] = "local";
        gethostname(name, sizeof name);
        h.name = name;
        h.address = "local";
        h.local = true;
        hosts.push_back(h);
    }
    if (!o.inventory.empty()) {
        auto inv = TRY(load_inventory(o.inventory));
        hosts.insert(hosts.end(), inv.begin(), inv.end());
    }
    for (const auto& arg : o.hosts) {
        hosts.push_back(TRY(host_from_arg(arg, o)));
    }
    for (auto& h : hosts) {
        TRY_VOID(apply_connection_defaults(h, o));
    }
    if (hosts.empty()) {
        return make_error(ErrorCode::usage, "no hosts: give user@host arguments, --inventory FILE, or --local");
    }
    return hosts;
}

ConnectFn make_connect(const Context& ctx, RunMode mode) {
    SshOptions ssh = ctx.host.ssh;
    ssh.connect_timeout = std::chrono::seconds(ctx.host.connect_timeout);
    return [ssh, mode](const HostSpec& h) -> Result<std::unique_ptr<Target>> {
        if (h.local) {
            if (mode == RunMode::apply && geteuid() != 0) {
                return make_error(ErrorCode::auth, "--local apply must run as root");
            }
            return std::unique_ptr<Target>(new LocalTarget(h.name));
        }
        log::debug(h.name, "connecting to {}", h.address);
        auto t = SshTarget::connect(h, ssh);
        if (!t) {
            return t.error();
        }
        return std::unique_ptr<Target>(std::move(*t));
    };
}

int run_jobs(const Context& ctx, std::vector<HostJob>& jobs, RunMode mode, const std::string& what,
             const std::string& digest, std::vector<HostReport>* reports_out) {
    RunOptions options;
    options.mode = mode;
    options.parallel = ctx.global.parallel;
    options.run_timeout = std::chrono::seconds(ctx.host.run_timeout);
    options.profile_digest = digest;
    options.run_id = new_run_id();
    char machine[256] = "?";
    gethostname(machine, sizeof machine - 1);
    const passwd* pw = getpwuid(geteuid());
    options.operator_name = (pw ? std::string(pw->pw_name) : "uid " + std::to_string(geteuid())) + "@" + machine;
    log::info("nodectl", "{} {} host{} {} (run {})",
              mode == RunMode::apply  ? "applying to"
              : mode == RunMode::plan ? "planning"
                                      : "checking",
              jobs.size(), jobs.size() == 1 ? "" : "s", what, options.run_id);
    auto reports = run_hosts(jobs, options, make_connect(ctx, mode));

    if (ctx.global.json) {
        std::cout << reports_json(reports, mode) << "\n";
    } else {
        std::cout << util::printable(reports_text(reports, mode));  // holds host output
    }
    if (reports_out) {
        *reports_out = reports;
    }
    size_t failed = 0, drifted = 0;
    for (const auto& r : reports) {
        failed += !r.ok;
        drifted += r.count(StepStatus::would_change) > 0;
    }
    if (failed == reports.size()) {
        return k_exit_all_failed;
    }
    if (failed > 0) {
        return k_exit_partial;
    }
    return mode == RunMode::check && drifted > 0 ? k_exit_drift : k_exit_ok;
}

int open_bundle(const Context& ctx, std::optional<bundle::Opened>& opened) {
    if (ctx.host.bundle.empty()) {
        return k_exit_ok;
    }
    auto b = bundle::open(ctx.host.bundle);
    if (!b) {
        std::cerr << "nodectl: the bundle " << ctx.host.bundle << " is refused: " << b.error().message
                  << "\nnothing was changed\n";
        return k_exit_config;
    }
    opened = std::move(*b);
    return k_exit_ok;
}

int run_on_hosts(CLI::App&, Context& ctx, int mode_int) {
    auto mode = static_cast<RunMode>(mode_int);
    auto profile = load_profile(ctx.host.profile);
    if (!profile) {
        std::cerr << profile.error().message << "\nnothing was changed: the profile has errors\n";
        return k_exit_config;
    }
    auto hosts = collect_hosts(ctx.host);
    if (!hosts) {
        std::cerr << "nodectl: " << hosts.error().message << "\n";
        return hosts.error().code == ErrorCode::usage ? k_exit_usage : k_exit_config;
    }
    std::optional<bundle::Opened> opened;
    if (int rc = open_bundle(ctx, opened); rc != k_exit_ok) {
        return rc;
    }
    std::vector<HostJob> jobs;
    for (auto& h : *hosts) {
        ModuleContext mctx{*profile, h};
        auto steps = bundle::host_steps(opened ? &*opened : nullptr, mctx);
        if (!steps) {
            std::cerr << steps.error().message << "\nnothing was changed: the profile has errors\n";
            return k_exit_config;
        }
        jobs.push_back({h, std::move(*steps)});
    }

    return run_jobs(ctx, jobs, mode, "with profile " + ctx.host.profile, profile->digest());
}

}  // namespace nodectl::cli

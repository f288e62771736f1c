// The command line: one table of commands (commands.cpp), one file per command.
#pragma once

#include "core/runner.hpp"
#include "modules/bundle/use.hpp"
#include "target/ssh_target.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace nodectl::cli {

// Documented exit codes (README "Exit codes", `nodectl --help`).
enum Exit : int {
    k_exit_ok = 0,
    k_exit_internal = 1,
    k_exit_usage = 2,
    k_exit_config = 3,
    k_exit_partial = 4,  // some hosts failed
    k_exit_all_failed = 5,  // every host failed
    k_exit_not_ready = 6,  // stack status: a site is not ready
    k_exit_drift = 7,  // check: hosts differ from the profile
    k_exit_damaged = 8,  // a bundle or backup archive that does not match its manifest
    k_exit_unavailable = 69,
};

// The exit code for an error that is not about hosts: 2 usage, 3 config, 1 anything else.
inline int exit_code_for(const Error& e) {
    switch (e.code) {
    case ErrorCode::usage: return k_exit_usage;
    case ErrorCode::config: return k_exit_config;
    case ErrorCode::damaged: return k_exit_damaged;
    case ErrorCode::unavailable: return k_exit_unavailable;
    default: return k_exit_internal;
    }
}

struct GlobalOptions {
    std::string log_level = "info";
    bool json = false;
    unsigned parallel = 8;
};

// Options of the commands that act on hosts (apply, plan, check).
struct HostOptions {
    std::string profile;
    std::string inventory;
    std::vector<std::string> hosts;  // user@host[:port]
    bool local = false;
    bool dry_run = false;
    SshOptions ssh;
    std::string identity;
    std::string sudo;
    std::string sudo_password_file;
    std::string sudo_password_env;
    std::string bundle;  // offline bundle: verified, then used instead of the network
    int run_timeout = 3600;
    int connect_timeout = 15;
};

// Options of `nodectl kubeconfig`.
struct KubeconfigOptions {
    std::string out;
    bool merge = false;
    std::string kubeconfig;
    std::string context;
    std::string server_address;
};

struct Context {
    GlobalOptions global;
    HostOptions host;
    KubeconfigOptions kubeconfig;
    std::vector<std::string> args;  // positional arguments of commands that take some
    std::vector<std::string> extras;
};

struct CommandSpec {
    std::string_view name;
    std::string_view summary;
    std::string_view description;  // shown by `nodectl NAME --help`
    // Both null for a capability that is planned but not built yet: the command then says so and
    // exits 69, whatever its arguments; it never pretends to work.
    void (*configure)(CLI::App& app, Context& ctx);
    int (*run)(CLI::App& app, Context& ctx);
};

std::span<const CommandSpec> commands();

// Shared by the commands that act on hosts.
void add_host_options(CLI::App& app, Context& ctx, bool profile_required = true);
// How to reach and become root on hosts (--known-hosts, --identity, --sudo, ...): part of
// add_host_options, and used alone by commands that work on one host given as an argument.
void add_connection_options(CLI::App& app, Context& ctx);
// A user@host[:port] argument with the command line's --sudo.
Result<HostSpec> host_from_arg(const std::string& arg, const HostOptions& o);
// HOST as a host name of --inventory, else as user@host[:port], with the command line's connection
// defaults (kubeconfig, stack status).
Result<HostSpec> find_host(const Context& ctx, const std::string& arg);
// The command line's SSH options with its --connect-timeout.
SshOptions ssh_options(const Context& ctx);
// The command line's --identity and sudo password source, for a host that does not set its own.
Result<void> apply_connection_defaults(HostSpec& h, const HostOptions& o);
int run_on_hosts(CLI::App& app, Context& ctx, int mode);
Result<std::vector<HostSpec>> collect_hosts(const HostOptions& o);
ConnectFn make_connect(const Context& ctx, RunMode mode);
// Verifies and unpacks --bundle, if given; an exit code other than k_exit_ok when it is refused.
int open_bundle(const Context& ctx, std::optional<bundle::Opened>& opened);
// Runs the jobs, prints the reports, and returns the exit code.
int run_jobs(const Context& ctx, std::vector<HostJob>& jobs, RunMode mode, const std::string& what,
             const std::string& digest, std::vector<HostReport>* reports = nullptr);

// `nodectl join`: the hosts of ctx.host join the k3s server as agents (the profile's other
// sections too); the exit code.
struct JoinOptions {
    std::string server;  // user@host[:port] of the server, for SSH
    std::string server_address;  // address the agents use for the API (default: the server's SSH address)
    int api_port = 6443;
};
int join_nodes(Context& ctx, const JoinOptions& join);
// `nodectl kubeconfig` with ctx.args = {HOST} and ctx.kubeconfig's options; the exit code.
int run_kubeconfig(CLI::App& app, Context& ctx);
// Where kubectl looks first: the first entry of $KUBECONFIG, else ~/.kube/config.
std::string default_kubeconfig();

int main(int argc, char** argv);

}  // namespace nodectl::cli

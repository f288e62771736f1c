// `nodectl local up|down|list|status|ssh|inventory`: throw-away nodes on this machine
// (src/modules/local/).
#include "cli/cli.hpp"
#include "modules/local/local.hpp"
#include "nodectl/config.hpp"
#include "util/json.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <iostream>

namespace nodectl::cli {

namespace {

struct LocalOptions {
    local::UpOptions up;
    std::string profile;
    std::string name;
    std::vector<std::string> words;  // ssh: NAME [NODE] [COMMAND...]
};

LocalOptions& local_options() {
    static LocalOptions o;
    return o;
}

int exit_for(const Error& e) {
    switch (e.code) {
    case ErrorCode::usage: return k_exit_usage;
    case ErrorCode::config: return k_exit_config;
    default: return k_exit_internal;
    }
}

int fail(const Error& e, const std::string& what) {
    std::cerr << "nodectl local " << what << ": " << e.message << "\n";
    return exit_for(e);
}

int run_up(Context& ctx) {
    auto& o = local_options();
    if (!o.profile.empty() && !o.up.dry_run) {
        // The profile is checked before anything is made: an error costs no boot.
        auto profile = load_profile(o.profile);
        if (!profile) {
            std::cerr << profile.error().message << "\nnothing was made: the profile has errors\n";
            return k_exit_config;
        }
    }
    auto env = local::up(o.up, std::cout);
    if (!env) {
        return fail(env.error(), "up");
    }
    if (o.up.dry_run) {
        if (!o.profile.empty()) {
            std::cout << "  profile    " << o.profile << " applied to every node (nodectl apply -i the inventory)\n";
        }
        return k_exit_ok;
    }
    if (!o.profile.empty()) {
        // The same path as `nodectl apply -p P -i INVENTORY`.
        CLI::App unused;
        ctx.host.profile = o.profile;
        ctx.host.inventory = env->inventory();
        int rc = run_on_hosts(unused, ctx, static_cast<int>(RunMode::apply));
        if (rc != k_exit_ok) {
            std::cerr << "nodectl local up: the nodes are up, but applying " << o.profile << " failed (exit " << rc
                      << "); fix it and run `nodectl apply -p " << o.profile << " -i " << env->inventory() << "`\n";
            return rc;
        }
    }
    if (ctx.global.json) {
        nlohmann::json nodes = nlohmann::json::array();
        for (const auto& n : env->nodes) {
            nodes.push_back({{"name", n.name}, {"address", n.address}});
        }
        std::cout << util::json_text({{"name", env->name}, {"subnet", env->subnet}, {"inventory", env->inventory()},
                                      {"nodes", nodes}},
                                     2)
                  << "\n";
    } else {
        std::cout << "environment " << env->name << " is up: " << env->nodes.size() << " node(s) on " << env->subnet << "\n";
        for (const auto& n : env->nodes) {
            std::cout << "  " << n.name << "  " << n.address << "\n";
        }
        for (const auto& p : env->publish) {
            std::cout << "  " << p.address << ":" << p.host_port << " -> " << env->nodes.front().name << ":" << p.node_port << "\n";
        }
        std::cout << "  nodectl local ssh " << env->name << " [NODE]\n"
                  << "  nodectl apply -p PROFILE -i " << env->inventory() << "\n"
                  << "  nodectl local down " << env->name << "\n";
    }
    return k_exit_ok;
}

int run_local_status(Context& ctx) {
    auto env = local::load(local_options().name);
    if (!env) {
        return fail(env.error(), "status");
    }
    auto st = local::status(*env);
    if (!st) {
        return fail(st.error(), "status");
    }
    size_t good = 0;
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& s : *st) {
        good += s.running && s.ssh;
        nodes.push_back({{"name", s.node.name}, {"address", s.node.address}, {"running", s.running}, {"ssh", s.ssh}});
        if (!ctx.global.json) {
            std::cout << s.node.name << "  " << s.node.address << "  " << (s.running ? "running" : "stopped") << "  ssh "
                      << (s.ssh ? "ok" : s.running ? "no (" + s.ssh_error + ")" : "no") << "\n";
        }
    }
    if (ctx.global.json) {
        std::cout << util::json_text({{"name", env->name}, {"subnet", env->subnet}, {"bridge", env->bridge}, {"nodes", nodes}}, 2)
                  << "\n";
    }
    return good == st->size() ? k_exit_ok : good == 0 ? k_exit_all_failed : k_exit_partial;
}

int run_list(Context& ctx) {
    auto envs = local::list();
    if (!envs) {
        return fail(envs.error(), "list");
    }
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : *envs) {
        auto st = local::status(e, false);
        size_t running = 0;
        for (const auto& s : st ? *st : std::vector<local::NodeStatus>{}) {
            running += s.running;
        }
        j.push_back({{"name", e.name}, {"nodes", e.nodes.size()}, {"running", running}, {"subnet", e.subnet}});
        if (!ctx.global.json) {
            std::cout << e.name << "  " << e.nodes.size() << " node(s), " << running << " running  " << e.subnet << "  "
                      << e.dir << "\n";
        }
    }
    if (ctx.global.json) {
        std::cout << util::json_text(j, 2) << "\n";
    }
    return k_exit_ok;
}

int run_ssh() {
    auto& w = local_options().words;
    auto env = local::load(w.at(0));
    if (!env) {
        return fail(env.error(), "ssh");
    }
    // NODE is a node's name or its number; anything else starts the command.
    size_t node = 0, first_cmd = 1;
    if (w.size() > 1) {
        for (size_t i = 0; i < env->nodes.size(); ++i) {
            if (w[1] == env->nodes[i].name || w[1] == std::to_string(i + 1)) {
                node = i;
                first_cmd = 2;
            }
        }
    }
    auto argv = local::ssh_argv(*env, env->nodes[node]);
    if (first_cmd < w.size()) {
        argv.push_back("--");
        argv.insert(argv.end(), w.begin() + static_cast<long>(first_cmd), w.end());
    }
    std::vector<char*> c;
    for (auto& a : argv) {
        c.push_back(a.data());
    }
    c.push_back(nullptr);
    std::cout.flush();
    execvp("ssh", c.data());
    std::cerr << "nodectl local ssh: cannot run ssh (install openssh-client)\n";
    return k_exit_internal;
}

} // namespace

void configure_local(CLI::App& app, Context&) {
    auto& o = local_options();
    app.require_subcommand(1);
    auto* up = app.add_subcommand("up", "Boot (or complete) environment NAME and wait until every node answers SSH");
    up->add_option("name", o.up.name, "Environment name (a-z, 0-9, '-'; nodes are NAME-1, NAME-2, ...)")->required();
    up->add_option("--nodes,-n", o.up.nodes, "Number of nodes")->capture_default_str();
    up->add_option("--suite", o.up.suite, "Debian release of the nodes")
        ->check(CLI::IsMember({"bookworm", "trixie"}))
        ->capture_default_str();
    up->add_option("--subnet", o.up.subnet,
                   "IPv4 network of the bridge, CIDR (/16 to /29): .1 is the host, .2... the nodes "
                   "(default: the first /24 of 10.213.0.0/16 this host does not use)");
    up->add_option("--memory", o.up.memory, "Memory limit per node (MemoryMax), e.g. 512M, 2G (default: none)");
    up->add_option("--cpus", o.up.cpus, "CPU limit per node in CPUs (CPUQuota), e.g. 0.5, 2 (default: none)");
    up->add_option("--rootfs", o.up.rootfs,
                   "Use this root filesystem (read-only, e.g. one mmdebstrap made) instead of the cache; also "
                   "$NODECTL_LOCAL_ROOTFS");
    up->add_option("--publish", o.up.publish,
                   "[ADDRESS:]HOST_PORT:NODE_PORT: forward a port of this machine (ADDRESS default 127.0.0.1) to node 1; "
                   "repeatable");
    up->add_option("--profile,-p", o.profile, "Apply this profile to every node once they are up (as nodectl apply)");
    up->add_option("--boot-timeout", o.up.boot_timeout, "Seconds until every node must answer SSH")->capture_default_str();
    up->add_flag("--dry-run", o.up.dry_run, "Print what would be made, and make nothing");
    auto* down = app.add_subcommand("down", "Stop and remove everything environment NAME has (nodes, bridge, overlays, state)");
    down->add_option("name", o.name, "Environment name")->required();
    app.add_subcommand("list", "List the environments on this machine");
    auto* status = app.add_subcommand("status", "Per node: running or not, address, whether SSH answers (exit 4/5 when not all)");
    status->add_option("name", o.name, "Environment name")->required();
    auto* ssh = app.add_subcommand("ssh", "Log in as root on a node (default the first), or run a command there");
    ssh->add_option("words", o.words, "NAME [NODE] [COMMAND...]; NODE is a node's name or number; quote a command with options as one word")->required();
    auto* inv = app.add_subcommand("inventory", "Print the path of NAME's inventory (for nodectl apply -i)");
    inv->add_option("name", o.name, "Environment name")->required();
}

int run_local(CLI::App& app, Context& ctx) {
    if (app.got_subcommand("up")) {
        return run_up(ctx);
    }
    if (app.got_subcommand("down")) {
        auto r = local::down(local_options().name);
        return r ? k_exit_ok : fail(r.error(), "down");
    }
    if (app.got_subcommand("list")) {
        return run_list(ctx);
    }
    if (app.got_subcommand("status")) {
        return run_local_status(ctx);
    }
    if (app.got_subcommand("ssh")) {
        return run_ssh();
    }
    auto env = local::load(local_options().name);
    if (!env) {
        return fail(env.error(), "inventory");
    }
    std::cout << env->inventory() << "\n";
    return k_exit_ok;
}

} // namespace nodectl::cli

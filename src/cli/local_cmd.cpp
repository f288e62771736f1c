// `nodectl local up|down|load|rootfs|list|status|ssh|inventory`: throw-away nodes on this machine
// (src/modules/local/).
#include "cli/cli.hpp"
#include "util/log.hpp"
#include "modules/k3s/k3s.hpp"
#include "modules/k3s/kubeconfig.hpp"
#include "modules/local/local.hpp"
#include "nodectl/config.hpp"
#include "util/file.hpp"
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
    std::vector<std::string> images;  // up --images, load: OCI archives
};

LocalOptions& local_options() {
    static LocalOptions o;
    return o;
}

int local_fail(const Error& e, const std::string& what) {
    std::cerr << "nodectl local " << what << ": " << e.message << "\n";
    return exit_code_for(e);
}

// Loads the archives into every node of env; prints a line per node.
int load_archives(const local::Environment& env, const std::vector<std::string>& archives, const char* what) {
    auto runtimes = local::load_images(env, archives);
    if (!runtimes) {
        return local_fail(runtimes.error(), what);
    }
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        std::cout << "  " << env.nodes[i].name << ": " << archives.size() << " image archive(s) loaded into "
                  << (*runtimes)[i] << "\n";
    }
    return k_exit_ok;
}

// With a profile whose [k3s] makes a server, `up --profile` makes a cluster: node 1 is the server
// (`nodectl apply`), the other nodes join it as agents (`nodectl join`, which also applies the
// profile's other sections to them), and the server's kubeconfig is merged as context
// nodectl-NAME (`nodectl kubeconfig --merge`), which `local down` removes again. With
// k3s.start = false nothing has written a kubeconfig yet: that is said, not an error.
int up_cluster(Context& ctx, local::Environment& env, const k3s::Settings& k3s) {
    CLI::App unused;
    // Inventories of the server and of the agents, so both get the environment's --var values.
    const std::string servers = env.dir + "/inventory-server.toml", agents = env.dir + "/inventory-agents.toml";
    for (const auto& [path, text] :
         {std::pair{servers, local::inventory_text(env, 0, 1)}, std::pair{agents, local::inventory_text(env, 1)}}) {
        if (auto why = util::write_file_atomic(path, text, 0600); !why) {
            std::cerr << "nodectl local up: " << why.error() << "\n";
            return k_exit_internal;
        }
    }
    ctx.host.identity = env.key();
    ctx.host.ssh.known_hosts = env.known_hosts();
    const std::string server = "root@" + env.nodes.front().address;
    ctx.host.hosts.clear();
    ctx.host.inventory = servers;
    log::info("local", "{}: k3s server (nodectl apply)", env.nodes.front().name);
    if (int rc = run_on_hosts(unused, ctx, static_cast<int>(RunMode::apply)); rc != k_exit_ok) {
        std::cerr << "nodectl local up: the nodes are up, but the k3s server " << env.nodes.front().name
                  << " could not be set up (exit " << rc << ")\n";
        return rc;
    }
    if (env.nodes.size() > 1) {
        ctx.host.inventory = agents;
        log::info("local", "{} node(s) join {} as k3s agents (nodectl join)", env.nodes.size() - 1,
                  env.nodes.front().name);
        if (int rc = join_nodes(ctx, JoinOptions{.server = server, .api_port = k3s.api_port}); rc != k_exit_ok) {
            std::cerr << "nodectl local up: the server is set up, but the agents could not join it (exit " << rc
                      << "); `nodectl local up` again retries\n";
            return rc;
        }
    }
    if (!k3s.start) {
        auto spec = host_from_arg(server, ctx.host);
        auto target = spec ? make_connect(ctx, RunMode::plan)(*spec) : Result<std::unique_ptr<Target>>(spec.error());
        Command probe{.script = std::string("test -e ") + k3s::k_admin_kubeconfig_path, .mutates = false};
        auto found = target ? (*target)->run(probe) : Result<CommandResult>(target.error());
        if (found && found->exit_code != 0) {
            std::cout << "  k3s.start = false: k3s has not run, so there is no kubeconfig to merge yet\n";
            return k_exit_ok;
        }
    }
    ctx.host.inventory.clear();
    ctx.args = {server};
    ctx.kubeconfig.merge = true;
    ctx.kubeconfig.context = env.name;
    ctx.kubeconfig.kubeconfig = default_kubeconfig();
    if (int rc = run_kubeconfig(unused, ctx); rc != k_exit_ok) {
        return rc;
    }
    if (auto r = local::remember_kubeconfig(env, ctx.kubeconfig.kubeconfig); !r) {
        return local_fail(r.error(), "up");
    }
    std::cout << "  kubectl --context nodectl-" << env.name << " (merged into " << ctx.kubeconfig.kubeconfig << ")\n";
    return k_exit_ok;
}

// The [k3s] settings when the profile makes a k3s server, else nullopt.
Result<std::optional<k3s::Settings>> k3s_server(const Profile& profile) {
    if (!profile.table().contains("k3s")) {
        return std::optional<k3s::Settings>();
    }
    auto s = TRY(k3s::settings_from(profile.section("k3s")));
    return s.role == k3s::Role::server ? std::optional(s) : std::nullopt;
}

int run_up(Context& ctx) {
    auto& o = local_options();
    for (const auto& a : o.images) {
        if (auto r = local::check_archive(a); !r) {
            return local_fail(r.error(), "up");  // before anything is made
        }
    }
    std::optional<k3s::Settings> cluster;
    if (!o.profile.empty()) {
        // The profile is checked before anything is made: an error costs no boot.
        auto profile = load_profile(o.profile);
        auto k3s = profile ? k3s_server(*profile) : Result<std::optional<k3s::Settings>>(profile.error());
        if (!k3s) {
            std::cerr << k3s.error().message << "\nnothing was made: the profile has errors\n";
            return k_exit_config;
        }
        cluster = *k3s;
    }
    auto env = local::up(o.up, std::cout);
    if (!env) {
        return local_fail(env.error(), "up");
    }
    if (o.up.dry_run) {
        if (cluster) {
            std::cout << "  k3s        " << env->nodes.front().name << " the server (nodectl apply -p " << o.profile
                      << ")";
            if (env->nodes.size() > 1) {
                std::cout << ", " << env->nodes.size() - 1 << " node(s) join it as agents (nodectl join)";
            }
            std::cout << "; context nodectl-" << env->name << " merged into " << default_kubeconfig() << "\n";
        } else if (!o.profile.empty()) {
            std::cout << "  profile    " << o.profile << " applied to every node (nodectl apply -i the inventory)\n";
        }
        for (const auto& a : o.images) {
            std::cout << "  image      " << a << " loaded into every node's container runtime (over SSH)\n";
        }
        return k_exit_ok;
    }
    ctx.host.profile = o.profile;
    if (cluster) {
        if (int rc = up_cluster(ctx, *env, *cluster); rc != k_exit_ok) {
            return rc;
        }
    } else if (!o.profile.empty()) {
        // The same path as `nodectl apply -p P -i INVENTORY`.
        CLI::App unused;
        ctx.host.inventory = env->inventory();
        int rc = run_on_hosts(unused, ctx, static_cast<int>(RunMode::apply));
        if (rc != k_exit_ok) {
            std::cerr << "nodectl local up: the nodes are up, but applying " << o.profile << " failed (exit " << rc
                      << "); fix it and run `nodectl apply -p " << o.profile << " -i " << env->inventory() << "`\n";
            return rc;
        }
    }
    if (!o.images.empty()) {
        if (int rc = load_archives(*env, o.images, "up --images"); rc != k_exit_ok) {
            return rc;
        }
    }
    if (ctx.global.json) {
        nlohmann::json nodes = nlohmann::json::array();
        for (const auto& n : env->nodes) {
            nodes.push_back({{"name", n.name}, {"address", n.address}});
        }
        std::cout
            << util::json_text(
                   {{"name", env->name}, {"subnet", env->subnet}, {"inventory", env->inventory()}, {"nodes", nodes}}, 2)
            << "\n";
    } else {
        std::cout << "environment " << env->name << " is up: " << env->nodes.size() << " node(s) on " << env->subnet
                  << "\n";
        for (const auto& n : env->nodes) {
            std::cout << "  " << n.name << "  " << n.address << "\n";
        }
        for (const auto& p : env->publish) {
            std::cout << "  " << p.address << ":" << p.host_port << " -> " << env->nodes.front().name << ":"
                      << p.node_port << "\n";
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
        return local_fail(env.error(), "status");
    }
    auto st = local::status(*env);
    if (!st) {
        return local_fail(st.error(), "status");
    }
    size_t good = 0;
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& s : *st) {
        good += s.running && s.ssh;
        nodes.push_back({{"name", s.node.name}, {"address", s.node.address}, {"running", s.running}, {"ssh", s.ssh}});
        if (!ctx.global.json) {
            std::cout << s.node.name << "  " << s.node.address << "  " << (s.running ? "running" : "stopped")
                      << "  ssh "
                      << (s.ssh       ? "ok"
                          : s.running ? "no (" + s.ssh_error + ")"
                                      : "no")
                      << "\n";
        }
    }
    if (ctx.global.json) {
        std::cout << util::json_text(
                         {{"name", env->name}, {"subnet", env->subnet}, {"bridge", env->bridge}, {"nodes", nodes}}, 2)
                  << "\n";
    }
    return good == st->size() ? k_exit_ok : good == 0 ? k_exit_all_failed : k_exit_partial;
}

int run_list(Context& ctx) {
    auto envs = local::list();
    if (!envs) {
        return local_fail(envs.error(), "list");
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
        return local_fail(env.error(), "ssh");
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

}  // namespace

void configure_local(CLI::App& app, Context&) {
    auto& o = local_options();
    app.require_subcommand(1);
    auto* up = app.add_subcommand("up", "Boot (or complete) environment NAME and wait until every node answers SSH");
    up->add_option("name", o.up.name, "Environment name (a-z, 0-9, '-'; nodes are NAME-1, NAME-2, ...)")->required();
    up->add_option("--nodes,-n", o.up.nodes, "Number of nodes")->capture_default_str();
    up->add_option("--suite", o.up.suite, "Debian release of the nodes: bookworm, trixie, bullseye (best effort)")
        ->capture_default_str();
    up->add_option("--subnet", o.up.subnet,
                   "IPv4 network of the bridge, CIDR (/16 to /29): .1 is the host, .2... the nodes "
                   "(default: the first /24 of 10.213.0.0/16 this host does not use)");
    up->add_option("--memory", o.up.memory, "Memory limit per node (MemoryMax), e.g. 512M, 2G (default: none)");
    up->add_option("--cpus", o.up.cpus, "CPU limit per node in CPUs (CPUQuota), e.g. 0.5, 2 (default: none)");
    up->add_option("--rootfs", o.up.rootfs,
                   "Use this root filesystem (read-only, e.g. one mmdebstrap made) instead of the cache; also "
                   "$NODECTL_LOCAL_ROOTFS");
    up->add_option(
        "--publish", o.up.publish,
        "[ADDRESS:]HOST_PORT:NODE_PORT: forward a port of this machine (ADDRESS default 127.0.0.1) to node 1; "
        "repeatable");
    up->add_option("--bind", o.up.binds,
                   "SOURCE[:TARGET]: bind a file, directory or device of this machine into the nodes this call boots "
                   "(systemd-nspawn --bind), e.g. a loop device as a USB stick; repeatable; not kept as a setting");
    up->add_option("--var", o.up.vars,
                   "KEY=VALUE: ${vars.KEY} of every node in the written inventory, e.g. apt_proxy=URL or "
                   "admin_key=\"ssh-ed25519 ...\" for profiles/hardened.toml; repeatable");
    up->add_option("--images", o.images,
                   "OCI archives from `nodectl image build` (NAME.oci.tar) to load into every node's containerd or "
                   "k3s once the nodes are up and the profile applied (as `kind load`); repeatable");
    up->add_option("--profile,-p", o.profile, "Apply this profile to every node once they are up (as nodectl apply)");
    up->add_option("--boot-timeout", o.up.boot_timeout, "Seconds until every node must answer SSH")
        ->capture_default_str();
    up->add_flag("--dry-run", o.up.dry_run, "Print what would be made, and make nothing");
    auto* rootfs = app.add_subcommand("rootfs", "Build the root filesystem nodes start from (once, with mmdebstrap, "
                                                "from this host's Debian mirror) and print its path");
    rootfs->add_option("--suite", o.up.suite, "Debian release: bookworm, trixie, bullseye (best effort)")
        ->capture_default_str();
    auto* ld = app.add_subcommand("load", "Load OCI archives (`nodectl image build` output) into every node's "
                                          "container runtime (containerd k8s.io namespace, or k3s), like `kind load`");
    ld->add_option("name", o.name, "Environment name")->required();
    ld->add_option("archives", o.images, "NAME.oci.tar files")->required()->check(CLI::ExistingFile);
    auto* down =
        app.add_subcommand("down", "Stop and remove everything environment NAME has (nodes, bridge, overlays, state)");
    down->add_option("name", o.name, "Environment name")->required();
    app.add_subcommand("list", "List the environments on this machine");
    auto* status =
        app.add_subcommand("status", "Per node: running or not, address, whether SSH answers (exit 4/5 when not all)");
    status->add_option("name", o.name, "Environment name")->required();
    auto* ssh = app.add_subcommand("ssh", "Log in as root on a node (default the first), or run a command there");
    ssh->add_option(
           "words", o.words,
           "NAME [NODE] [COMMAND...]; NODE is a node's name or number; quote a command with options as one word")
        ->required();
    auto* inv = app.add_subcommand("inventory", "Print the path of NAME's inventory (for nodectl apply -i)");
    inv->add_option("name", o.name, "Environment name")->required();
}

int run_local(CLI::App& app, Context& ctx) {
    if (app.got_subcommand("up")) {
        return run_up(ctx);
    }
    if (app.got_subcommand("down")) {
        auto r = local::down(local_options().name);
        return r ? k_exit_ok : local_fail(r.error(), "down");
    }
    if (app.got_subcommand("list")) {
        return run_list(ctx);
    }
    if (app.got_subcommand("load")) {
        auto env = local::load(local_options().name);
        return env ? load_archives(*env, local_options().images, "load") : local_fail(env.error(), "load");
    }
    if (app.got_subcommand("rootfs")) {
        auto path = local::cached_rootfs(local_options().up.suite);
        if (!path) {
            return local_fail(path.error(), "rootfs");
        }
        std::cout << *path << "\n";
        return k_exit_ok;
    }
    if (app.got_subcommand("status")) {
        return run_local_status(ctx);
    }
    if (app.got_subcommand("ssh")) {
        return run_ssh();
    }
    auto env = local::load(local_options().name);
    if (!env) {
        return local_fail(env.error(), "inventory");
    }
    std::cout << env->inventory() << "\n";
    return k_exit_ok;
}

}  // namespace nodectl::cli

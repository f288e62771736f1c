// `nodectl local`: up, down, list, status of environments of nspawn nodes (see local.hpp).
#include "modules/local/local.hpp"

#include "util/log.hpp"
#include "modules/k3s/kubeconfig.hpp"
#include "modules/local/detail.hpp"
#include "target/ssh_target.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace nodectl::local {

using namespace detail;

namespace {

// Every node's root is an overlayfs on the cached tree: a kernel without it is refused before
// anything is made (after one `modprobe overlay`, for a kernel that has it as a module).
Result<void> need_overlayfs() {
    auto listed = [] { return kernel_has_filesystem(util::read_file("/proc/filesystems").value_or(""), "overlay"); };
    if (!listed()) {
        (void)run("modprobe overlay 2>/dev/null");
    }
    if (!listed()) {
        return make_error(ErrorCode::config, "this kernel has no overlay filesystem (CONFIG_OVERLAY_FS, module "
                                             "'overlay'): every node's root is an overlay on the cached tree");
    }
    return Ok{};
}

Result<Subnet> choose_subnet(const UpOptions& o, const std::vector<Subnet>& used) {
    auto fits = [&](const Subnet& s) {
        return std::none_of(used.begin(), used.end(), [&](const Subnet& u) { return u.overlaps(s); });
    };
    if (!o.subnet.empty()) {
        auto s = TRY(parse_subnet(o.subnet));
        if (static_cast<uint64_t>(o.nodes) + 3 > s.size()) {
            return make_error(ErrorCode::usage,
                              "subnet " + s.text() + " has no room for " + std::to_string(o.nodes) + " nodes");
        }
        for (const auto& u : used) {
            if (u.overlaps(s)) {
                return make_error(ErrorCode::usage, "subnet " + s.text() + " overlaps " + u.text() +
                                                        ", which this host already uses (an address or a route): pass "
                                                        "another --subnet");
            }
        }
        return s;
    }
    Subnet base = *parse_subnet("10.213.0.0/16");
    for (uint32_t k = 0; k < 256; ++k) {
        Subnet s{base.network + (k << 8), 24};
        if (fits(s)) {
            return s;
        }
    }
    return make_error(ErrorCode::usage, "no free /24 in 10.213.0.0/16 on this host: pass --subnet CIDR");
}

}  // namespace

// ---------------------------------------------------------------- commands

std::vector<std::string> ssh_argv(const Environment& env, const Node& node) {
    return {"ssh",
            "-F",
            "/dev/null",
            "-i",
            env.key(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "UserKnownHostsFile=" + env.known_hosts(),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
            "root@" + node.address};
}

Result<Environment> load(const std::string& name) {
    if (!valid_name(name)) {
        return make_error(ErrorCode::usage, "'" + name + "' is not an environment name (a-z, 0-9, '-', at most 20)");
    }
    std::string dir = state_root() + "/" + name;
    if (!fs::exists(dir + "/env.json")) {
        return make_error(ErrorCode::config, "no local environment '" + name + "' (see `nodectl local list`)");
    }
    return from_json(dir);
}

Result<std::vector<Environment>> list() {
    std::vector<Environment> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state_root(), ec)) {
        auto name = e.path().filename().string();
        if (valid_name(name) && fs::exists(e.path() / "env.json")) {
            if (auto env = from_json(e.path().string())) {
                out.push_back(std::move(*env));
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

Result<std::vector<NodeStatus>> status(const Environment& env, bool check_ssh) {
    std::vector<NodeStatus> out;
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        NodeStatus s;
        s.node = env.nodes[i];
        s.running = node_running(env, i);
        if (s.running && check_ssh) {
            auto r = ssh_check(env, s.node, 3s);
            s.ssh = r.ok();
            if (!r) {
                s.ssh_error = r.error().message;
            }
        }
        out.push_back(std::move(s));
    }
    return out;
}

namespace {

// What `up` takes from the command line, checked before anything is looked at or made.
struct Wanted {
    std::vector<Publish> publish;
    std::map<std::string, std::string> vars;
};

Result<Wanted> checked(const UpOptions& o) {
    if (!valid_name(o.name)) {
        return make_error(ErrorCode::usage, "'" + o.name +
                                                "' is not an environment name: a lower-case letter, then "
                                                "letters, digits or '-', at most 20 characters");
    }
    if (o.nodes < 1 || o.nodes > 64) {
        return make_error(ErrorCode::usage, "--nodes must be between 1 and 64");
    }
    TRY_VOID(check_suite(o.suite));
    for (const auto& b : o.binds) {
        TRY_VOID(check_bind(b));
    }
    Wanted w;
    for (const auto& v : o.vars) {
        auto [key, value] = TRY(parse_var(v));
        w.vars[key] = value;
    }
    if (!o.memory.empty() && !parse_memory(o.memory)) {
        return make_error(ErrorCode::usage,
                          "--memory '" + o.memory + "' is not a size of at least 64M (e.g. 512M, 2G)");
    }
    if (!o.cpus.empty() && !parse_cpus(o.cpus)) {
        return make_error(ErrorCode::usage, "--cpus '" + o.cpus + "' is not a number of CPUs (e.g. 1, 0.5, 2.25)");
    }
    for (const auto& text : o.publish) {
        auto p = TRY(parse_publish(text));
        for (const auto& q : w.publish) {
            if (q.host_port == p.host_port || q.node_port == p.node_port) {
                return make_error(ErrorCode::usage,
                                  "--publish " + p.text() + " and " + q.text() +
                                      " share a port: each host port and node port is published once");
            }
        }
        w.publish.push_back(p);
    }
    return w;
}

// The environment `up` works on: the recorded one on a re-run (refused when asked for other
// settings), else a new one on a free (or the given) subnet.
Result<Environment> described(const UpOptions& o, Wanted w, const std::string& rootfs, bool exists) {
    Environment env;
    env.name = o.name;
    env.dir = state_root() + "/" + o.name;
    if (exists) {
        env = TRY(from_json(env.dir));
        if (static_cast<int>(env.nodes.size()) != o.nodes || (!o.subnet.empty() && o.subnet != env.subnet) ||
            env.suite != o.suite || env.memory != o.memory || env.cpus != o.cpus || env.publish != w.publish) {
            return make_error(ErrorCode::usage, "environment '" + o.name + "' exists with other settings (" +
                                                    std::to_string(env.nodes.size()) + " nodes, " + env.subnet + ", " +
                                                    env.suite + "): `nodectl local down " + o.name + "` first");
        }
        if (!w.vars.empty()) {
            env.vars = std::move(w.vars);  // --var on a re-run replaces the inventory's values
        }
        return env;
    }
    auto addrs = TRY(run("ip -4 -o addr show; echo ---; ip -4 route show table all"));
    auto parts = addrs.out.find("---");
    auto used = used_subnets(addrs.out.substr(0, parts), parts == std::string::npos ? "" : addrs.out.substr(parts));
    auto subnet = TRY(choose_subnet(o, used));
    env.subnet = subnet.text();
    env.bridge = bridge_name(o.name);
    env.gateway = subnet.address(1);
    env.suite = o.suite;
    env.rootfs = rootfs;
    env.memory = o.memory;
    env.cpus = o.cpus;
    env.launcher = systemd_runs_host() ? "systemd" : "direct";
    env.publish = std::move(w.publish);
    env.vars = std::move(w.vars);
    for (int i = 1; i <= o.nodes; ++i) {
        env.nodes.push_back({o.name + "-" + std::to_string(i), subnet.address(1 + static_cast<uint32_t>(i))});
    }
    return env;
}

void print_plan(const Environment& env, bool exists, bool build, std::ostream& plan) {
    plan << "environment " << env.name << (exists ? " (exists: up completes it, changes nothing when complete)" : "")
         << "\n"
         << "  state      " << env.dir << " (0700: env.json, id_ed25519, known_hosts, inventory.toml, nodes/)\n"
         << "  rootfs     " << env.rootfs << (build ? " (built now with mmdebstrap, " + env.suite + ")" : " (present)")
         << "\n"
         << "  bridge     " << env.bridge << " " << env.gateway << "/" << util::split(env.subnet, '/').back()
         << " (subnet " << env.subnet << "; nodes get no default route)\n"
         << "  launcher   "
         << (env.launcher == "systemd" ? "transient units nodectl-local-NAME-I.service (systemd-run)"
                                       : "setsid /bin/sh nodes/I/boot.sh (no systemd on this host; limits in cgroups)")
         << "\n"
         << "  limits     memory " << (env.memory.empty() ? "none" : env.memory) << ", cpus "
         << (env.cpus.empty() ? "none" : env.cpus) << " (per node)\n";
    for (const auto& n : env.nodes) {
        plan << "  node       " << n.name << " " << n.address
             << " (overlay on the rootfs, ed25519 host key made by nodectl, systemd-nspawn --boot)\n";
    }
    for (const auto& p : env.publish) {
        plan << "  publish    " << p.address << ":" << p.host_port << " -> " << env.nodes.front().name << ":"
             << p.node_port << " (systemd-socket-proxyd)\n";
    }
    for (const auto& [k, v] : env.vars) {
        plan << "  var        " << k << " = " << v << " (every node's ${vars." << k << "} in the inventory)\n";
    }
    plan << "  inventory  " << env.inventory() << "\n";
}

// Makes what is missing: state directory and env.json (first, so `down` can undo a half-made
// environment), the key pair, the bridge, each node's overlay and files, the inventory; boots the
// nodes that do not run. Called under the environments' lock; waiting for SSH comes after it.
Result<void> make_missing(const Environment& env, const std::vector<std::string>& binds) {
    std::error_code ec;
    fs::create_directories(env.dir + "/nodes", ec);
    ::chmod(env.dir.c_str(), 0700);
    TRY_VOID(save(env));
    if (!fs::exists(env.key())) {
        TRY(sh("rm -f " + shell_quote(env.key()) + " " + shell_quote(env.key() + ".pub") +
                   " && ssh-keygen -q -t ed25519 -N '' -C " + shell_quote("nodectl-local@" + env.name) + " -f " +
                   shell_quote(env.key()),
               "ssh-keygen (the environment's key)"));
    }
    auto prefix = util::split(env.subnet, '/').back();
    TRY(sh("set -e; b=" + env.bridge +
               "\n"
               "ip link show \"$b\" >/dev/null 2>&1 || ip link add \"$b\" type bridge\n"
               "echo 1 >/proc/sys/net/ipv6/conf/$b/disable_ipv6 2>/dev/null || true\n"
               "ip addr replace " +
               env.gateway + "/" + prefix +
               " dev \"$b\"\n"
               "ip link set \"$b\" up\n",
           "making bridge " + env.bridge));
    if (env.launcher == "direct") {
        // systemd-nspawn wants /run/systemd/nspawn on a tmpfs, which only systemd would provide.
        TRY(sh(
            "mkdir -p /run/systemd/nspawn && { [ \"$(findmnt -n -o FSTYPE --mountpoint /run/systemd/nspawn)\" = tmpfs ] "
            "|| mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn; }",
            "mounting /run/systemd/nspawn"));
    }
    ::unlink((env.dir + "/stopping").c_str());
    std::string known_hosts;
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        fs::create_directories(node_dir(env, i), ec);
        TRY_VOID(prepare_node(env, i, binds, known_hosts));
    }
    TRY_VOID(write(env.known_hosts(), known_hosts, 0600));
    TRY_VOID(write(env.inventory(), inventory_text(env), 0600));
    size_t started = 0;
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        started += !node_running(env, i);
        TRY_VOID(start_node(env, i));
    }
    if (started) {
        log::info(k_who, "booting {} node(s)", started);
    }
    return Ok{};
}

}  // namespace

Result<Environment> up(const UpOptions& o, std::ostream& plan) {
    auto wanted = TRY(checked(o));
    if (!o.dry_run) {
        TRY_VOID(need_root());
    }
    TRY_VOID(need_tool("systemd-nspawn", "systemd-container"));
    TRY_VOID(need_tool("ssh-keygen", "openssh-client"));
    if (!o.dry_run) {
        TRY_VOID(need_overlayfs());
    }
    bool build = false;
    std::string rootfs = TRY(rootfs_path(o, build));
    if (build && !o.dry_run && !fs::exists(state_root() + "/" + o.name + "/env.json")) {
        // Minutes of mmdebstrap: before the lock, so other environments are not held up by it
        // (the build has a lock of its own).
        TRY_VOID(build_rootfs(rootfs, o.suite));
        build = false;
    }
    std::optional<util::FileLock> lock;
    if (!o.dry_run) {
        lock.emplace(TRY(lock_state(state_root())));
    }
    bool exists = fs::exists(state_root() + "/" + o.name + "/env.json");
    auto env = TRY(described(o, std::move(wanted), rootfs, exists));
    build = build && env.rootfs == rootfs;  // a re-run keeps the tree it was made from
    if (o.dry_run) {
        print_plan(env, exists, build, plan);
        return env;
    }
    if (exists) {
        log::info(k_who, "environment {} exists: checking it", env.name);
    } else {
        log::info(k_who, "making environment {}: {} node(s) on {} ({})", env.name, env.nodes.size(), env.subnet,
                  env.bridge);
    }
    if (build) {
        TRY_VOID(build_rootfs(env.rootfs, env.suite));
    }
    TRY_VOID(make_missing(env, o.binds));
    lock.reset();  // the subnet is claimed (the bridge holds it): other `up`s may go on while these boot
    TRY_VOID(wait_ssh(env, o.boot_timeout));
    TRY_VOID(start_publishes(env));
    return env;
}

std::string inventory_text(const Environment& env, size_t first, size_t count) {
    toml::array hosts;
    for (size_t i = first; i < env.nodes.size() && i - first < count; ++i) {
        const Node& n = env.nodes[i];
        toml::table h{{"name", n.name}, {"address", n.address}};
        if (!env.vars.empty()) {
            toml::table vars;
            for (const auto& [k, v] : env.vars) {
                vars.insert(k, v);
            }
            h.insert("vars", std::move(vars));
        }
        hosts.push_back(std::move(h));
    }
    toml::table inv{
        {"defaults", toml::table{{"user", "root"}, {"identity", env.key()}, {"known_hosts", env.known_hosts()}}},
        {"hosts", std::move(hosts)}};
    std::ostringstream out;
    out << "# nodectl local environment " << env.name << ":\n#   nodectl apply -p PROFILE -i " << env.inventory()
        << "\n"
        << inv << "\n";
    return out.str();
}

Result<void> remember_kubeconfig(Environment& env, const std::string& kubeconfig_path) {
    env.kubeconfig = fs::absolute(kubeconfig_path).string();
    return save(env);
}

namespace {

// The environment's context (nodectl-NAME) out of the kubeconfig it was merged into, the rest
// kept; the previous file as .bak, as `nodectl kubeconfig --merge` does. A file that is gone or
// no longer a kubeconfig is left alone, with a warning: `down` still removes the nodes.
void forget_kubeconfig(const Environment& env) {
    if (env.kubeconfig.empty() || !fs::exists(env.kubeconfig)) {
        return;
    }
    auto text = util::read_file(env.kubeconfig);
    auto context = k3s::kubeconfig_entry_name(env.name);
    auto edited = text && context ? k3s::remove_kubeconfig_entry(*text, *context)
                                  : Result<std::string>(make_error(ErrorCode::io, "cannot read it"));
    if (!edited) {
        log::warn(k_who, "{}: context of {} not removed: {}", env.kubeconfig, env.name, edited.error().message);
        return;
    }
    if (*edited == *text) {
        return;
    }
    auto written = util::write_file_atomic(env.kubeconfig + ".bak", *text, 0600);
    if (written) {
        written = util::write_file_atomic(env.kubeconfig, *edited, 0600);
    }
    if (!written) {
        log::warn(k_who, "{}: context of {} not removed: {}", env.kubeconfig, env.name, written.error());
        return;
    }
    log::info(k_who, "removed context {} from {}", *context, env.kubeconfig);
}

}  // namespace

Result<void> down(const std::string& name) {
    if (!valid_name(name)) {
        return make_error(ErrorCode::usage, "'" + name + "' is not an environment name");
    }
    TRY_VOID(need_root());
    auto lock = TRY(lock_state(state_root()));
    std::string dir = state_root() + "/" + name;
    if (!fs::exists(dir)) {
        log::info(k_who, "no environment {}: nothing to remove", name);
        return Ok{};
    }
    Environment env;
    if (auto e = from_json(dir)) {
        env = std::move(*e);
    } else {
        // Not even env.json was written: only the directory (and perhaps a key) exists.
        env.name = name;
        env.dir = dir;
        env.bridge = bridge_name(name);
    }
    // The `stopping` mark (empty; the descriptor closes at once): the boot loops end, not boot again.
    util::Fd{::open((dir + "/stopping").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)};
    stop_publishes(env);
    forget_kubeconfig(env);
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        TRY_VOID(stop_node(env, i));
    }
    // Mounts below the state directory (the overlays), deepest first; lazily as a last resort.
    TRY(sh("findmnt -rn -o TARGET | grep -F " + shell_quote(dir + "/") +
               " | sort -r | while read -r m; do umount \"$m\" 2>/dev/null || umount -l \"$m\"; done; true",
           "unmounting the overlays of " + name));
    // veths of the nodes vanish with their network namespaces; stragglers first, then the bridge.
    TRY(sh(
        "b=" + env.bridge +
            "\nif ip link show \"$b\" >/dev/null 2>&1; then\n"
            "  for l in $(ip -o link show master \"$b\" | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del \"$l\" || true; done\n"
            "  ip link del \"$b\"\nfi\n",
        "removing bridge " + env.bridge));
    if (env.launcher == "direct") {
        for (const auto& n : env.nodes) {
            for (const auto& d : cgroup_dirs(n)) {
                ::rmdir(d.c_str());
                ::rmdir(fs::path(d).parent_path().c_str());  // nodectl-local, when it was the last
            }
        }
    }
    auto left = TRY(run("findmnt -rn -o TARGET | grep -F " + shell_quote(dir + "/")));
    if (!util::trim(left.out).empty()) {
        return make_error(ErrorCode::io,
                          "mounts below " + dir + " remain (" + util::trim(left.out) + "): not removing it");
    }
    TRY(sh("rm -rf --one-file-system " + shell_quote(dir), "removing " + dir));
    log::info(k_who, "environment {} removed", name);
    return Ok{};
}

}  // namespace nodectl::local

// `nodectl local`: up, down, list, status of environments of nspawn nodes (see local.hpp).
#include "modules/local/local.hpp"

#include "core/log.hpp"
#include "modules/k3s/kubeconfig.hpp"
#include "modules/local/detail.hpp"
#include "target/ssh_target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace nodectl::local {

using namespace detail;

namespace {

// The processes of a node: its boot script (argv "/bin/sh BOOT") and systemd-nspawn
// (--directory=ROOT). The command line identifies them; a recycled pid does not match.
struct NodeProcs {
    std::vector<std::string> launchers, nspawns;
};

std::string node_dir(const Environment& env, size_t i) {
    return env.dir + "/nodes/" + std::to_string(i + 1);
}

NodeProcs node_procs(const Environment& env, size_t i) {
    NodeProcs p;
    std::string boot = node_dir(env, i) + "/boot.sh";
    std::string root_arg = "--directory=" + node_dir(env, i) + "/root";
    for (const auto& pid : all_pids()) {
        auto argv = cmdline(pid);
        if (argv.size() >= 2 && argv[1] == boot) {
            p.launchers.push_back(pid);
        } else if (!argv.empty() && argv[0].ends_with("systemd-nspawn") &&
                   std::find(argv.begin(), argv.end(), root_arg) != argv.end()) {
            p.nspawns.push_back(pid);
        }
    }
    return p;
}



std::string unit_name(const Node& n) {
    return "nodectl-local-" + n.name + ".service";
}

// cgroup directories holding a node's limits when no systemd runs the host (v1: one per
// controller; v2: one).
std::vector<std::string> cgroup_dirs(const Node& n) {
    if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
        return {"/sys/fs/cgroup/nodectl-local/" + n.name};
    }
    return {"/sys/fs/cgroup/memory/nodectl-local/" + n.name, "/sys/fs/cgroup/cpu/nodectl-local/" + n.name};
}


// ---------------------------------------------------------------- nodes

bool node_running(const Environment& env, size_t i) {
    return !node_procs(env, i).nspawns.empty();
}

std::string boot_script(const Environment& env, size_t i, const std::vector<std::string>& binds) {
    const Node& n = env.nodes[i];
    std::string d = node_dir(env, i);
    std::string s =
        "#!/bin/sh\n"
        "# nodectl local: boots node " + n.name + " of environment " + env.name + " (written by nodectl;\n"
        "# `nodectl local down " + env.name + "` stops it and removes everything).\n"
        "set -u\n";
    if (env.launcher == "direct" && (!env.memory.empty() || !env.cpus.empty())) {
        // No systemd runs this host: the limits go into cgroups of our own, and this script (and so
        // systemd-nspawn and the node) into them. A limit that cannot be set stops the boot.
        uint64_t bytes = env.memory.empty() ? 0 : parse_memory(env.memory).value_or(0);
        unsigned pct = env.cpus.empty() ? 0 : parse_cpus(env.cpus).value_or(0);
        auto dirs = cgroup_dirs(n);
        s += "set -e\n";
        if (dirs.size() == 1) {
            s += "echo '+memory +cpu' >/sys/fs/cgroup/cgroup.subtree_control\n"
                 "mkdir -p /sys/fs/cgroup/nodectl-local " + shell_quote(dirs[0]) + "\n"
                 "echo '+memory +cpu' >/sys/fs/cgroup/nodectl-local/cgroup.subtree_control\n";
            if (bytes) {
                s += "echo " + std::to_string(bytes) + " >" + shell_quote(dirs[0] + "/memory.max") + "\n";
            }
            if (pct) {
                s += "echo '" + std::to_string(pct * 1000) + " 100000' >" + shell_quote(dirs[0] + "/cpu.max") + "\n";
            }
            s += "echo $$ >" + shell_quote(dirs[0] + "/cgroup.procs") + "\n";
        } else {
            if (bytes) {
                s += "mkdir -p " + shell_quote(dirs[0]) + "\n"
                     "echo " + std::to_string(bytes) + " >" + shell_quote(dirs[0] + "/memory.limit_in_bytes") + "\n"
                     "echo $$ >" + shell_quote(dirs[0] + "/cgroup.procs") + "\n";
            }
            if (pct) {
                s += "mkdir -p " + shell_quote(dirs[1]) + "\n"
                     "echo 100000 >" + shell_quote(dirs[1] + "/cpu.cfs_period_us") + "\n"
                     "echo " + std::to_string(pct * 1000) + " >" + shell_quote(dirs[1] + "/cpu.cfs_quota_us") + "\n"
                     "echo $$ >" + shell_quote(dirs[1] + "/cgroup.procs") + "\n";
            }
        }
        s += "set +e\n";
    }
    s += "while :; do\n"
         "  [ -e " + shell_quote(env.dir + "/stopping") + " ] && exit 0\n"
         "  echo \"=== nodectl: booting " + n.name + " ($(date -Is))\"\n"
         "  systemd-nspawn --quiet --boot --directory=" + shell_quote(d + "/root") + " --machine=" + n.name +
         " --register=no --keep-unit --network-bridge=" + env.bridge +
         " --console=read-only --resolv-conf=off --timezone=off --link-journal=no";
    for (const auto& b : binds) {
        s += " --bind=" + shell_quote(b);
    }
    s += " </dev/null\n"
         "  rc=$?\n"
         "  echo \"=== nodectl: " + n.name + " stopped, systemd-nspawn exit status $rc ($(date -Is))\"\n"
         "  [ \"$rc\" -eq 133 ] || exit \"$rc\"   # 133: the node rebooted\n"
         "done\n";
    return s;
}

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

// The inventory `nodectl apply -i` reads: root with the environment's key and known_hosts, and
// each node with the environment's --var values (toml++ writes it, so any value is quoted right).
std::string inventory_text(const Environment& env) {
    toml::array hosts;
    for (const auto& n : env.nodes) {
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
    toml::table inv{{"defaults", toml::table{{"user", "root"}, {"identity", env.key()}, {"known_hosts", env.known_hosts()}}},
                    {"hosts", std::move(hosts)}};
    std::ostringstream out;
    out << "# nodectl local environment " << env.name << ":\n#   nodectl apply -p PROFILE -i " << env.inventory() << "\n"
        << inv << "\n";
    return out.str();
}

std::string hosts_file(const Environment& env) {
    std::string s = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";
    for (const auto& n : env.nodes) {
        s += n.address + "\t" + n.name + "\n";
    }
    return s;
}

bool mounted(const std::string& path) {
    auto r = run("findmnt -rn --mountpoint " + shell_quote(path) + " >/dev/null");
    return r && r->exit_code == 0;
}

// The node's overlay mounted and its per-node files written (host key, address, names, the
// environment's key for root), once: a node booted again (killed, powered off) keeps its files.
Result<void> prepare_node(const Environment& env, size_t i, const std::vector<std::string>& binds,
                          std::string& known_hosts) {
    const Node& n = env.nodes[i];
    std::string d = node_dir(env, i), root = d + "/root";
    std::string key = d + "/ssh_host_ed25519_key";
    if (!fs::exists(key)) {
        TRY(sh("rm -f " + shell_quote(key) + " " + shell_quote(key + ".pub") + " && ssh-keygen -q -t ed25519 -N '' -C " +
                   shell_quote("root@" + n.name) + " -f " + shell_quote(key),
               "ssh-keygen (host key of " + n.name + ")"));
    }
    auto pub = util::read_file(key + ".pub");
    auto words = util::split(util::trim(pub.value_or("")), ' ');
    if (words.size() < 2) {
        return make_error(ErrorCode::io, "cannot read " + key + ".pub");
    }
    known_hosts += n.address + " " + words[0] + " " + words[1] + "\n";
    if (node_running(env, i)) {
        return Ok{};  // a re-run: a running node was prepared before it booted
    }

    if (!mounted(root)) {
        TRY(sh("mkdir -p " + shell_quote(d + "/upper") + " " + shell_quote(d + "/work") + " " + shell_quote(root) +
                   " && mount -t overlay overlay -o " +
                   shell_quote("lowerdir=" + env.rootfs + ",upperdir=" + d + "/upper,workdir=" + d + "/work") + " " +
                   shell_quote(root),
               "mounting the overlay of " + n.name));
    }
    TRY_VOID(write(d + "/boot.sh", boot_script(env, i, binds), 0700));
    if (fs::exists(d + "/prepared")) {
        // Booted before: what runs on the node owns its files now (a profile may have changed
        // /etc/hosts or root's keys); booting it again must not undo that.
        return Ok{};
    }
    // Host keys: only the one nodectl made, so the known_hosts line is exact from the first login.
    TRY(sh("set -e; cd " + shell_quote(root) +
               "; rm -f etc/ssh/ssh_host_*_key etc/ssh/ssh_host_*_key.pub etc/resolv.conf"
               "; mkdir -p etc/ssh/sshd_config.d etc/systemd/network; install -d -m 700 root/.ssh"
               "; install -m 600 " + shell_quote(key) + " etc/ssh/ssh_host_ed25519_key"
               "; install -m 644 " + shell_quote(key + ".pub") + " etc/ssh/ssh_host_ed25519_key.pub"
               "; systemctl --root=. --quiet enable ssh.service systemd-networkd.service 2>/dev/null || "
               "systemctl --root=. enable ssh.service systemd-networkd.service",
           "preparing " + n.name));
    TRY_VOID(write(root + "/etc/ssh/sshd_config.d/nodectl-local.conf",
                   "# nodectl local: the host key nodectl made (its line is in the environment's known_hosts).\n"
                   "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n",
                   0644));
    TRY_VOID(write(root + "/root/.ssh/authorized_keys", util::read_file(env.key() + ".pub").value_or(""), 0600));
    TRY_VOID(write(root + "/etc/systemd/network/10-nodectl-local.network",
                   "# nodectl local: the node's address on bridge " + env.bridge + " (no default route).\n"
                   "[Match]\nName=host0\n\n[Network]\nAddress=" + n.address + "/" +
                       util::split(env.subnet, '/').back() +
                       "\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
                   0644));
    TRY_VOID(write(root + "/etc/hostname", n.name + "\n", 0644));
    TRY_VOID(write(root + "/etc/hosts", hosts_file(env), 0644));
    TRY_VOID(write(root + "/etc/resolv.conf", "# nodectl local: no DNS server in local nodes\n", 0644));
    auto mid = util::read_file(root + "/etc/machine-id").value_or("");
    if (util::trim(mid).size() != 32) {
        TRY_VOID(write(root + "/etc/machine-id", util::random_hex(16) + "\n", 0444));
    }
    TRY_VOID(write(d + "/prepared", "", 0600));
    return Ok{};
}

Result<void> start_node(const Environment& env, size_t i) {
    const Node& n = env.nodes[i];
    std::string d = node_dir(env, i);
    auto procs = node_procs(env, i);
    if (!procs.launchers.empty() || !procs.nspawns.empty()) {
        return Ok{};
    }
    std::string log = shell_quote(d + "/console.log");
    if (env.launcher == "systemd") {
        std::string props;
        if (!env.memory.empty()) {
            props += " --property=MemoryMax=" + std::to_string(*parse_memory(env.memory));
        }
        if (!env.cpus.empty()) {
            props += " --property=CPUQuota=" + std::to_string(*parse_cpus(env.cpus)) + "%";
        }
        TRY(sh("systemctl reset-failed " + unit_name(n) + " 2>/dev/null; systemd-run --quiet --collect --unit=" +
                   unit_name(n) + " --description=" + shell_quote("nodectl local node " + n.name) +
                   " --property=Delegate=yes --property=KillMode=mixed --property=StandardOutput=append:" + d +
                   "/console.log --property=StandardError=append:" + d + "/console.log" + props + " /bin/sh " +
                   shell_quote(d + "/boot.sh"),
               "systemd-run (" + n.name + ")"));
    } else {
        TRY(sh("setsid -f /bin/sh " + shell_quote(d + "/boot.sh") + " </dev/null >>" + log + " 2>&1",
               "starting " + n.name));
    }
    return Ok{};
}

Result<void> stop_node(const Environment& env, size_t i) {
    const Node& n = env.nodes[i];
    // SIGTERM makes systemd-nspawn shut the node down cleanly (the boot script then ends: the
    // `stopping` mark is set); bounded, then SIGKILL for the node's whole process tree.
    auto deadline = std::chrono::steady_clock::now() + 15s;
    for (auto p = node_procs(env, i); !p.launchers.empty() || !p.nspawns.empty(); p = node_procs(env, i)) {
        if (std::chrono::steady_clock::now() > deadline) {
            log::warn(k_who, "{} did not stop within 15 s, killing it", n.name);
            std::vector<std::string> roots = p.launchers;
            roots.insert(roots.end(), p.nspawns.begin(), p.nspawns.end());
            auto all = descendants(roots);
            signal_all(all, SIGKILL);
            std::this_thread::sleep_for(500ms);
            break;
        }
        signal_all(p.nspawns, SIGTERM);
        std::this_thread::sleep_for(200ms);
    }
    if (env.launcher == "systemd") {  // the unit ended with its script; forget a failed one too
        (void)run("systemctl stop " + unit_name(n) + " 2>/dev/null; systemctl reset-failed " + unit_name(n) +
                      " 2>/dev/null; true",
                  60s);
    }
    return Ok{};
}

Result<void> ssh_check(const Environment& env, const Node& n, std::chrono::seconds timeout) {
    TRY(connect_node(env, n, timeout));  // connected, host key exact, root: it answers
    return Ok{};
}

Result<void> wait_ssh(const Environment& env, int timeout_s) {
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + std::chrono::seconds(timeout_s);
    std::vector<bool> up(env.nodes.size(), false);
    while (true) {
        bool all = true;
        for (size_t i = 0; i < env.nodes.size(); ++i) {
            if (up[i]) {
                continue;
            }
            // (a node just started may not show its processes yet: `setsid -f` returns before the exec)
            if (std::chrono::steady_clock::now() - start > 5s && node_procs(env, i).launchers.empty() &&
                !node_running(env, i)) {
                auto log = util::read_file(node_dir(env, i) + "/console.log").value_or("");
                if (log.size() > 3000) {
                    log = "..." + log.substr(log.size() - 3000);
                }
                return make_error(ErrorCode::command, env.nodes[i].name + " stopped while booting; its console (" +
                                                          node_dir(env, i) + "/console.log):\n" + util::printable(log));
            }
            auto r = ssh_check(env, env.nodes[i], 2s);
            if (r) {
                up[i] = true;
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
                log::info(k_who, "{} ({}) answers SSH after {:.1f} s", env.nodes[i].name, env.nodes[i].address,
                          ms.count() / 1000.0);
            } else if (r.error().code == ErrorCode::host_key) {
                return r.error();  // never a wait-and-see: the key is not the one nodectl made
            } else {
                all = false;
            }
        }
        if (all) {
            return Ok{};
        }
        if (std::chrono::steady_clock::now() > deadline) {
            std::string left;
            for (size_t i = 0; i < env.nodes.size(); ++i) {
                left += up[i] ? "" : " " + env.nodes[i].name;
            }
            return make_error(ErrorCode::timeout, "nodes" + left + " do not answer SSH after " + std::to_string(timeout_s) +
                                                      " s (consoles: " + env.dir + "/nodes/*/console.log)");
        }
        std::this_thread::sleep_for(250ms);
    }
}


Result<Subnet> choose_subnet(const UpOptions& o, const std::vector<Subnet>& used) {
    auto fits = [&](const Subnet& s) {
        return std::none_of(used.begin(), used.end(), [&](const Subnet& u) { return u.overlaps(s); });
    };
    if (!o.subnet.empty()) {
        auto s = TRY(parse_subnet(o.subnet));
        if (static_cast<uint64_t>(o.nodes) + 3 > s.size()) {
            return make_error(ErrorCode::usage, "subnet " + s.text() + " has no room for " + std::to_string(o.nodes) + " nodes");
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


} // namespace


// ---------------------------------------------------------------- commands

std::vector<std::string> ssh_argv(const Environment& env, const Node& node) {
    return {"ssh", "-F", "/dev/null", "-i", env.key(), "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=" + env.known_hosts(), "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "root@" + node.address};
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

Result<Environment> up(const UpOptions& o, std::ostream& plan) {
    if (!valid_name(o.name)) {
        return make_error(ErrorCode::usage, "'" + o.name + "' is not an environment name: a lower-case letter, then "
                                                           "letters, digits or '-', at most 20 characters");
    }
    if (o.nodes < 1 || o.nodes > 64) {
        return make_error(ErrorCode::usage, "--nodes must be between 1 and 64");
    }
    TRY_VOID(check_suite(o.suite));
    for (const auto& b : o.binds) {
        TRY_VOID(check_bind(b));
    }
    std::map<std::string, std::string> vars;
    for (const auto& v : o.vars) {
        auto [key, value] = TRY(parse_var(v));
        vars[key] = value;
    }
    if (!o.memory.empty() && !parse_memory(o.memory)) {
        return make_error(ErrorCode::usage, "--memory '" + o.memory + "' is not a size of at least 64M (e.g. 512M, 2G)");
    }
    if (!o.cpus.empty() && !parse_cpus(o.cpus)) {
        return make_error(ErrorCode::usage, "--cpus '" + o.cpus + "' is not a number of CPUs (e.g. 1, 0.5, 2.25)");
    }
    std::vector<Publish> publish;
    for (const auto& text : o.publish) {
        auto p = TRY(parse_publish(text));
        for (const auto& q : publish) {
            if (q.host_port == p.host_port || q.node_port == p.node_port) {
                return make_error(ErrorCode::usage, "--publish " + p.text() + " and " + q.text() +
                                                        " share a port: each host port and node port is published once");
            }
        }
        publish.push_back(p);
    }
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
    std::optional<StateLock> lock;
    if (!o.dry_run) {
        lock.emplace(TRY(StateLock::take(state_root())));
    }

    Environment env;
    env.name = o.name;
    env.dir = state_root() + "/" + o.name;
    bool exists = fs::exists(env.dir + "/env.json");
    if (exists) {
        // A re-run: the same environment, completed where it is not (interrupted `up`, a node stopped).
        env = TRY(from_json(env.dir));
        if (static_cast<int>(env.nodes.size()) != o.nodes || (!o.subnet.empty() && o.subnet != env.subnet) ||
            env.suite != o.suite || env.memory != o.memory || env.cpus != o.cpus || env.publish != publish) {
            return make_error(ErrorCode::usage, "environment '" + o.name + "' exists with other settings (" +
                                                    std::to_string(env.nodes.size()) + " nodes, " + env.subnet + ", " +
                                                    env.suite + "): `nodectl local down " + o.name + "` first");
        }
        build = build && env.rootfs == rootfs;
        if (!vars.empty()) {
            env.vars = vars;  // --var on a re-run replaces the inventory's values
        }
    } else {
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
        env.publish = publish;
        env.vars = vars;
        for (int i = 1; i <= o.nodes; ++i) {
            env.nodes.push_back({o.name + "-" + std::to_string(i), subnet.address(1 + static_cast<uint32_t>(i))});
        }
    }

    if (o.dry_run) {
        plan << "environment " << env.name << (exists ? " (exists: up completes it, changes nothing when complete)" : "") << "\n"
             << "  state      " << env.dir << " (0700: env.json, id_ed25519, known_hosts, inventory.toml, nodes/)\n"
             << "  rootfs     " << env.rootfs << (build ? " (built now with mmdebstrap, " + env.suite + ")" : " (present)") << "\n"
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
            plan << "  publish    " << p.address << ":" << p.host_port << " -> " << env.nodes.front().name << ":" << p.node_port
                 << " (systemd-socket-proxyd)\n";
        }
        plan << "  inventory  " << env.inventory() << "\n";
        return env;
    }

    if (!exists) {
        log::info(k_who, "making environment {}: {} node(s) on {} ({})", env.name, env.nodes.size(), env.subnet, env.bridge);
    } else {
        log::info(k_who, "environment {} exists: checking it", env.name);
    }
    if (build) {
        TRY_VOID(build_rootfs(env.rootfs, env.suite));
    }
    std::error_code ec;
    fs::create_directories(env.dir + "/nodes", ec);
    ::chmod(env.dir.c_str(), 0700);
    // Recorded before anything is made, so `down` removes a half-made environment too.
    TRY_VOID(save(env));
    if (!fs::exists(env.key())) {
        TRY(sh("rm -f " + shell_quote(env.key()) + " " + shell_quote(env.key() + ".pub") + " && ssh-keygen -q -t ed25519 -N '' -C " +
                   shell_quote("nodectl-local@" + env.name) + " -f " + shell_quote(env.key()),
               "ssh-keygen (the environment's key)"));
    }
    auto prefix = util::split(env.subnet, '/').back();
    TRY(sh("set -e; b=" + env.bridge + "\n"
           "ip link show \"$b\" >/dev/null 2>&1 || ip link add \"$b\" type bridge\n"
           "echo 1 >/proc/sys/net/ipv6/conf/$b/disable_ipv6 2>/dev/null || true\n"
           "ip addr replace " + env.gateway + "/" + prefix + " dev \"$b\"\n"
           "ip link set \"$b\" up\n",
           "making bridge " + env.bridge));
    if (env.launcher == "direct") {
        // systemd-nspawn wants /run/systemd/nspawn on a tmpfs, which only systemd would provide.
        TRY(sh("mkdir -p /run/systemd/nspawn && { [ \"$(findmnt -n -o FSTYPE --mountpoint /run/systemd/nspawn)\" = tmpfs ] "
               "|| mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn; }",
               "mounting /run/systemd/nspawn"));
    }
    ::unlink((env.dir + "/stopping").c_str());
    std::string known_hosts;
    for (size_t i = 0; i < env.nodes.size(); ++i) {
        fs::create_directories(node_dir(env, i), ec);
        TRY_VOID(prepare_node(env, i, o.binds, known_hosts));
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
    lock.reset();  // the subnet is claimed (the bridge holds it): other `up`s may go on while these boot
    TRY_VOID(wait_ssh(env, o.boot_timeout));
    TRY_VOID(start_publishes(env));
    return env;
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
    auto why = util::write_file_atomic(env.kubeconfig + ".bak", *text, 0600);
    if (why.empty()) {
        why = util::write_file_atomic(env.kubeconfig, *edited, 0600);
    }
    if (!why.empty()) {
        log::warn(k_who, "{}: context of {} not removed: {}", env.kubeconfig, env.name, why);
        return;
    }
    log::info(k_who, "removed context {} from {}", *context, env.kubeconfig);
}

} // namespace

Result<void> down(const std::string& name) {
    if (!valid_name(name)) {
        return make_error(ErrorCode::usage, "'" + name + "' is not an environment name");
    }
    TRY_VOID(need_root());
    auto lock = TRY(StateLock::take(state_root()));
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
    ::close(::open((dir + "/stopping").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
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
    TRY(sh("b=" + env.bridge + "\nif ip link show \"$b\" >/dev/null 2>&1; then\n"
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
        return make_error(ErrorCode::io, "mounts below " + dir + " remain (" + util::trim(left.out) + "): not removing it");
    }
    TRY(sh("rm -rf --one-file-system " + shell_quote(dir), "removing " + dir));
    log::info(k_who, "environment {} removed", name);
    return Ok{};
}

} // namespace nodectl::local
namespace nodectl::local::detail {

Result<std::unique_ptr<SshTarget>> connect_node(const Environment& env, const Node& n, std::chrono::seconds timeout) {
    HostSpec h;
    h.name = n.name;
    h.address = n.address;
    h.user = "root";
    h.identity = env.key();
    SshOptions o;
    o.known_hosts = env.known_hosts();
    o.ssh_config = "/dev/null";
    o.connect_timeout = timeout;
    return SshTarget::connect(h, o);
}

} // namespace nodectl::local::detail

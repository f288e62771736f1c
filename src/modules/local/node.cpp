// `nodectl local`: one node of an environment: its processes, its boot script, its overlay and
// per-node files, starting and stopping it, and waiting until it answers SSH.
#include "modules/local/detail.hpp"

#include "util/log.hpp"
#include "host/services.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace nodectl::local::detail {

namespace {

// The processes of a node: its boot script (argv "/bin/sh BOOT") and systemd-nspawn
// (--directory=ROOT). The command line identifies them; a recycled pid does not match.
struct NodeProcs {
    std::vector<std::string> launchers, nspawns;
};

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

std::string boot_script(const Environment& env, size_t i, const std::vector<std::string>& binds) {
    const Node& n = env.nodes[i];
    std::string d = node_dir(env, i);
    std::string s = "#!/bin/sh\n"
                    "# nodectl local: boots node " +
                    n.name + " of environment " + env.name +
                    " (written by nodectl;\n"
                    "# `nodectl local down " +
                    env.name +
                    "` stops it and removes everything).\n"
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
                 "mkdir -p /sys/fs/cgroup/nodectl-local " +
                 shell_quote(dirs[0]) +
                 "\n"
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
                s += "mkdir -p " + shell_quote(dirs[0]) +
                     "\n"
                     "echo " +
                     std::to_string(bytes) + " >" + shell_quote(dirs[0] + "/memory.limit_in_bytes") +
                     "\n"
                     "echo $$ >" +
                     shell_quote(dirs[0] + "/cgroup.procs") + "\n";
            }
            if (pct) {
                s += "mkdir -p " + shell_quote(dirs[1]) +
                     "\n"
                     "echo 100000 >" +
                     shell_quote(dirs[1] + "/cpu.cfs_period_us") +
                     "\n"
                     "echo " +
                     std::to_string(pct * 1000) + " >" + shell_quote(dirs[1] + "/cpu.cfs_quota_us") +
                     "\n"
                     "echo $$ >" +
                     shell_quote(dirs[1] + "/cgroup.procs") + "\n";
            }
        }
        s += "set +e\n";
    }
    s += "while :; do\n"
         "  [ -e " +
         shell_quote(env.dir + "/stopping") +
         " ] && exit 0\n"
         "  echo \"=== nodectl: booting " +
         n.name +
         " ($(date -Is))\"\n"
         "  systemd-nspawn --quiet --boot --directory=" +
         shell_quote(d + "/root") + " --machine=" + n.name +
         " --register=no --keep-unit --network-bridge=" + env.bridge +
         " --console=read-only --resolv-conf=off --timezone=off --link-journal=no";
    for (const auto& b : binds) {
        s += " --bind=" + shell_quote(b);
    }
    s += " </dev/null\n"
         "  rc=$?\n"
         "  echo \"=== nodectl: " +
         n.name +
         " stopped, systemd-nspawn exit status $rc ($(date -Is))\"\n"
         "  [ \"$rc\" -eq 133 ] || exit \"$rc\"   # 133: the node rebooted\n"
         "done\n";
    return s;
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

}  // namespace

bool node_running(const Environment& env, size_t i) {
    return !node_procs(env, i).nspawns.empty();
}

std::string node_dir(const Environment& env, size_t i) {
    return env.dir + "/nodes/" + std::to_string(i + 1);
}

std::vector<std::string> cgroup_dirs(const Node& n) {
    if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
        return {"/sys/fs/cgroup/nodectl-local/" + n.name};
    }
    return {"/sys/fs/cgroup/memory/nodectl-local/" + n.name, "/sys/fs/cgroup/cpu/nodectl-local/" + n.name};
}

Result<void> prepare_node(const Environment& env, size_t i, const std::vector<std::string>& binds,
                          std::string& known_hosts) {
    const Node& n = env.nodes[i];
    std::string d = node_dir(env, i), root = d + "/root";
    std::string key = d + "/ssh_host_ed25519_key";
    if (!fs::exists(key)) {
        TRY(sh("rm -f " + shell_quote(key) + " " + shell_quote(key + ".pub") +
                   " && ssh-keygen -q -t ed25519 -N '' -C " + shell_quote("root@" + n.name) + " -f " + shell_quote(key),
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
               "; install -m 600 " +
               shell_quote(key) +
               " etc/ssh/ssh_host_ed25519_key"
               "; install -m 644 " +
               shell_quote(key + ".pub") +
               " etc/ssh/ssh_host_ed25519_key.pub"
               "; systemctl --root=. --quiet enable ssh.service systemd-networkd.service 2>/dev/null || "
               "systemctl --root=. enable ssh.service systemd-networkd.service",
           "preparing " + n.name));
    TRY_VOID(
        write(root + "/etc/ssh/sshd_config.d/nodectl-local.conf",
              "# nodectl local: the host key nodectl made (its line is in the environment's known_hosts).\n"
              "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n",
              0644));
    TRY_VOID(write(root + "/root/.ssh/authorized_keys", util::read_file(env.key() + ".pub").value_or(""), 0600));
    TRY_VOID(write(root + "/etc/systemd/network/10-nodectl-local.network",
                   "# nodectl local: the node's address on bridge " + env.bridge +
                       " (no default route).\n"
                       "[Match]\nName=host0\n\n[Network]\nAddress=" +
                       n.address + "/" + util::split(env.subnet, '/').back() +
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
        TRY(sh(host::units::reset_failed({unit_name(n)}, {.ignore_failure = true}).script() +
                   "; systemd-run --quiet --collect --unit=" + unit_name(n) +
                   " --description=" + shell_quote("nodectl local node " + n.name) +
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
        (void)run(host::units::script({host::units::stop({unit_name(n)}, {.ignore_failure = true}),
                                       host::units::reset_failed({unit_name(n)}, {.ignore_failure = true})}),
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
                auto ms =
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
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
            return make_error(ErrorCode::timeout, "nodes" + left + " do not answer SSH after " +
                                                      std::to_string(timeout_s) + " s (consoles: " + env.dir +
                                                      "/nodes/*/console.log)");
        }
        std::this_thread::sleep_for(250ms);
    }
}

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

}  // namespace nodectl::local::detail

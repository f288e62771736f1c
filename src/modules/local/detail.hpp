// What the files of `nodectl local` share, and nothing outside src/modules/local uses: commands
// and processes on this machine, the environment's state file and lock, the root filesystem.
#pragma once

#include "modules/local/local.hpp"
#include "nodectl/target.hpp"
#include "target/ssh_target.hpp"
#include "util/fd.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::local::detail {

inline constexpr const char* k_who = "local";

// ---- this machine (machine.cpp)
// Runs a shell script as this process (root); fails with `what` in the message unless it exits 0.
Result<CommandResult> sh(const std::string& script, const std::string& what,
                         std::chrono::seconds timeout = std::chrono::seconds(120));
// Runs a script whose exit code the caller reads.
Result<CommandResult> run(const std::string& script, std::chrono::seconds timeout = std::chrono::seconds(10));
// Writes a file atomically (no links followed) with `mode`.
Result<void> write(const std::string& path, const std::string& content, uint32_t mode);
bool systemd_runs_host();
Result<void> need_root();
// Refuses with the Debian package to install when `tool` is not on PATH.
Result<void> need_tool(const char* tool, const char* package);
// Processes, as /proc names them: their pids, a command line split at NULs, every descendant.
std::vector<std::string> all_pids();
std::vector<std::string> cmdline(const std::string& pid);
std::vector<std::string> descendants(const std::vector<std::string>& roots);
void signal_all(const std::vector<std::string>& pids, int sig);

// ---- one node (node.cpp); i counts from 0
std::string node_dir(const Environment& env, size_t i);  // STATE/nodes/I+1
// Whether node i's systemd-nspawn runs.
bool node_running(const Environment& env, size_t i);
// cgroup directories holding a node's limits when no systemd runs the host (v1: one per
// controller; v2: one).
std::vector<std::string> cgroup_dirs(const Node& n);
// The node's overlay mounted and its boot script written with `binds`; its per-node files (host
// key, address, names, the environment's key for root) written once, before its first boot. Adds
// its known_hosts line to `known_hosts`.
Result<void> prepare_node(const Environment& env, size_t i, const std::vector<std::string>& binds,
                          std::string& known_hosts);
// Boots node i unless it runs (a transient unit, or a detached boot script where no systemd runs).
Result<void> start_node(const Environment& env, size_t i);
// A clean shutdown (SIGTERM to systemd-nspawn), after 15 s SIGKILL for its whole process tree.
Result<void> stop_node(const Environment& env, size_t i);
// A root login on node n with the environment's key, host key checked against its known_hosts.
Result<std::unique_ptr<SshTarget>> connect_node(const Environment& env, const Node& n, std::chrono::seconds timeout);
Result<void> ssh_check(const Environment& env, const Node& n, std::chrono::seconds timeout);
// Until every node answers SSH (bounded); fails at once when a node stops while booting or
// serves a host key that is not the one nodectl made.
Result<void> wait_ssh(const Environment& env, int timeout_s);

// ---- state (state.cpp)
// env.json, written atomically (0600) before anything it names is made.
Result<void> save(const Environment& e);
Result<Environment> from_json(const std::string& dir);

// One `up` or `down` at a time on this machine: choosing a free subnet and claiming it (the
// bridge address) must be one step. Waits for ROOT/.lock, held until the FileLock goes (or the
// process dies: flock).
Result<util::FileLock> lock_state(const std::string& root);

// ---- root filesystem (rootfs.cpp)
// The root filesystem every node of `suite` starts from: --rootfs / $NODECTL_LOCAL_ROOTFS when
// given, else the cache's; needs_build says whether it must be made first.
Result<std::string> rootfs_path(const UpOptions& o, bool& needs_build);
// The Debian archive of this host's apt sources: the first URI of a deb822 `URIs:` field or a
// one-line `deb` entry that is not the security archive, in the order of `sources_files`;
// http://deb.debian.org/debian when there is none. Node root filesystems come from it.
std::string debian_mirror(const std::vector<std::string>& sources_files);
// Builds it once with mmdebstrap from debian_mirror(), in a temporary directory renamed into place.
Result<void> build_rootfs(const std::string& path, const std::string& suite);

// ---- published ports (publish.cpp)
// Starts a proxy for each of env.publish that is not running; fails when one cannot listen.
Result<void> start_publishes(const Environment& env);
void stop_publishes(const Environment& env);

}  // namespace nodectl::local::detail

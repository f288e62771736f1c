// `nodectl local`: throw-away Debian nodes on this machine, booted as systemd-nspawn containers
// (systemd as PID 1) on a bridge of their own, reachable over SSH with exact host keys.
//
// Everything an environment is lives in its state directory (/var/lib/nodectl/local/NAME, 0700):
// env.json (what was asked and what was made, recorded *before* it is made, so `down` can undo a
// half-made environment), the environment's SSH key pair, known_hosts, inventory.toml, and per
// node its host key, its overlay (upper/work/root) and its boot script and log. The root
// filesystem is made once with mmdebstrap and cached read-only under /var/cache/nodectl/local; a
// node's copy is an overlayfs on it (copy-on-write), so `up` copies nothing.
#pragma once

#include "nodectl/result.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::local {

// An IPv4 network in CIDR form ("198.18.50.0/24"); host bits must be zero.
struct Subnet {
    uint32_t network = 0;  // host byte order
    int prefix = 24;

    std::string text() const;  // "198.18.50.0/24"
    // The i-th address of the network (1 = the bridge, 2.. = the nodes), dotted quad.
    std::string address(uint32_t i) const;
    uint32_t size() const { return prefix == 32 ? 1u : 1u << (32 - prefix); }
    bool overlaps(const Subnet& other) const;
};

Result<Subnet> parse_subnet(std::string_view cidr);
// The IPv4 networks the host already uses: its interface addresses and its routes (lines of
// `ip -4 -o addr show` and `ip -4 route show table all`); "default" and unparsable lines are skipped.
std::vector<Subnet> used_subnets(std::string_view ip_addr_out, std::string_view ip_route_out);
// Memory limit "512M", "2G", "1073741824" -> bytes; nullopt when not a size of at least 64 MiB.
std::optional<uint64_t> parse_memory(std::string_view s);
// "1", "0.5", "2.25" -> percent of one CPU (100, 50, 225); nullopt unless 0.01 to 1024 CPUs.
std::optional<unsigned> parse_cpus(std::string_view s);
// Environment names: a lower-case letter, then letters, digits or '-', at most 20 characters (they
// become host names "NAME-1", unit names and directory names).
bool valid_name(std::string_view name);
// The bridge of environment NAME: "nlbr-" and 10 hex digits of sha256(NAME) (IFNAMSIZ allows 15).
std::string bridge_name(std::string_view name);
// The cache key of a root filesystem: suite and package set.
std::string rootfs_key(const std::string& suite, const std::vector<std::string>& packages);

// The Debian releases nodes can run: bookworm (the default), trixie, and bullseye (best effort).
Result<void> check_suite(const std::string& suite);
// --bind SOURCE[:TARGET]: absolute paths of letters, digits and . _ / + @ -, SOURCE existing on
// this machine (a file, directory or device).
Result<void> check_bind(const std::string& bind);
// --var KEY=VALUE: KEY a letter or '_' then letters, digits or '_' (as ${vars.KEY} names it),
// VALUE one line.
Result<std::pair<std::string, std::string>> parse_var(const std::string& text);
// Whether /proc/filesystems' text lists filesystem `fs` ("nodev\toverlay" lists "overlay").
bool kernel_has_filesystem(std::string_view proc_filesystems, std::string_view fs);
// The packages every node's root filesystem holds.
const std::vector<std::string>& rootfs_packages();

// A port of this machine forwarded to node 1: --publish [ADDRESS:]HOST_PORT:NODE_PORT. The host
// listens on ADDRESS (default 127.0.0.1; 0.0.0.0 for every address) through a proxy process
// (systemd-socket-proxyd) that `down` stops.
struct Publish {
    std::string address = "127.0.0.1";
    uint16_t host_port = 0;
    uint16_t node_port = 0;

    std::string text() const;  // "127.0.0.1:8080:80"
    bool operator==(const Publish&) const = default;
};
Result<Publish> parse_publish(std::string_view text);

struct UpOptions {
    std::string name;
    int nodes = 1;
    std::string suite = "bookworm";
    std::string subnet;  // empty: the first free /24 of 10.213.0.0/16
    std::string memory;  // empty: no limit
    std::string cpus;  // empty: no limit
    std::string rootfs;  // a ready root filesystem to use instead of the cache
    std::vector<std::string> publish;  // [ADDRESS:]HOST_PORT:NODE_PORT, each to node 1
    // SOURCE[:TARGET] bound into the nodes this `up` boots (systemd-nspawn --bind); not part of
    // the environment's settings: a node keeps it across its own reboots until booted again.
    std::vector<std::string> binds;
    // KEY=VALUE: ${vars.KEY} of every node in the written inventory (e.g. apt_proxy, admin_key for
    // profiles/hardened.toml); a re-run with --var replaces them.
    std::vector<std::string> vars;
    bool dry_run = false;
    int boot_timeout = 120;  // seconds until every node answers SSH
};

struct Node {
    std::string name;  // "NAME-1": host name and machine name
    std::string address;  // on the environment's bridge
};

struct Environment {
    std::string name;
    std::string dir;  // state directory
    std::string subnet;  // CIDR
    std::string bridge;
    std::string gateway;  // the bridge's address
    std::string suite;
    std::string rootfs;  // the lower layer of every node
    std::string memory;
    std::string cpus;
    std::string launcher;  // "systemd" (transient units) or "direct" (no systemd on this host)
    std::vector<Node> nodes;
    std::vector<Publish> publish;
    std::map<std::string, std::string> vars;  // every node's vars in the inventory
    // The kubeconfig file the cluster's context (nodectl-NAME) was merged into, once it was: `down`
    // removes that context from it.
    std::string kubeconfig;

    std::string key() const { return dir + "/id_ed25519"; }
    std::string known_hosts() const { return dir + "/known_hosts"; }
    std::string inventory() const { return dir + "/inventory.toml"; }
};

struct NodeStatus {
    Node node;
    bool running = false;
    bool ssh = false;
    std::string ssh_error;
};

// Where environments and the root filesystem cache live ($NODECTL_LOCAL_STATE_DIR and
// $NODECTL_LOCAL_CACHE_DIR override them).
std::string state_root();
std::string cache_root();

// The cached root filesystem of `suite` ($NODECTL_LOCAL_ROOTFS when set), built first with
// mmdebstrap when it is not there yet: `nodectl local rootfs`, to fill the cache ahead of `up`.
Result<std::string> cached_rootfs(const std::string& suite);
// Makes (or completes, or finds complete) environment o.name; with o.dry_run prints the plan to
// `plan` and changes nothing. Progress goes to the log.
Result<Environment> up(const UpOptions& o, std::ostream& plan);
// OCI archives (`nodectl image build`'s NAME.oci.tar) loaded into every node's container runtime,
// over SSH: containerd's k8s.io namespace (unpacked with the CRI's snapshotter), or k3s's images
// directory (and its containerd when k3s runs). A node without either fails with what to apply.
// Returns each node's runtime ("containerd" or "k3s").
Result<std::vector<std::string>> load_images(const Environment& env, const std::vector<std::string>& archives);
// A file ending in .tar (checked before any node is contacted).
Result<void> check_archive(const std::string& path);
// The inventory `nodectl apply -i` reads: root with the environment's key and known_hosts, and
// nodes first .. first+count-1 (from 0) with the environment's --var values (written with toml++,
// so any value is quoted right). `up` writes all nodes' to env.inventory().
std::string inventory_text(const Environment& env, size_t first = 0, size_t count = SIZE_MAX);
// Records that env's cluster context "nodectl-NAME" was merged into `kubeconfig_path` (env.json).
Result<void> remember_kubeconfig(Environment& env, const std::string& kubeconfig_path);
// Removes everything `up` made for NAME, also when it was interrupted half-way. A name with no
// state is not an error (there is nothing to remove).
Result<void> down(const std::string& name);
Result<Environment> load(const std::string& name);
Result<std::vector<Environment>> list();
Result<std::vector<NodeStatus>> status(const Environment& env, bool check_ssh = true);
// `ssh` argv that logs in as root on `node` of env with the environment's key and known_hosts.
std::vector<std::string> ssh_argv(const Environment& env, const Node& node);

}  // namespace nodectl::local

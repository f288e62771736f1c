// `nodectl local load` and `up --images`: OCI archives that `nodectl image build` wrote, loaded into
// the container runtime of every node, as `kind load image-archive` does. Over SSH (SFTP), never
// through the node's root directory on this machine: a path inside a node is resolved by the node,
// so a link a node's user planted cannot send a write to this machine's own files.
#include "modules/local/detail.hpp"

#include "util/log.hpp"
#include "host/services.hpp"
#include "target/ssh_target.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace nodectl::local {

namespace {

// What a node runs: "k3s" (its images directory, and its containerd when k3s runs), "containerd
// SNAPSHOTTER" (the CRI's snapshotter from config.toml, so the image is unpacked where the kubelet
// looks), or "none".
constexpr const char* k_detect =
    "if command -v k3s >/dev/null 2>&1; then echo k3s; "
    "elif command -v ctr >/dev/null 2>&1 && [ -S /run/containerd/containerd.sock ]; then "
    "s=$(sed -n 's/^[[:space:]]*snapshotter[[:space:]]*=[[:space:]]*\"\\([a-z0-9_-]*\\)\".*/\\1/p' "
    "/etc/containerd/config.toml 2>/dev/null | head -n 1); echo \"containerd ${s:-overlayfs}\"; "
    "else echo none; fi";

Result<std::string> load_into(const Environment& env, const Node& n, const std::vector<std::string>& archives) {
    auto t = TRY(detail::connect_node(env, n, 10s));
    auto detect = TRY(t->run_checked(Command{.script = k_detect}, "detecting the container runtime of " + n.name));
    auto words = util::split(util::trim(detect.out), ' ');
    std::string runtime = words.empty() ? "none" : words[0];
    if (runtime == "none") {
        return make_error(ErrorCode::config, n.name +
                                                 " runs no container runtime (no k3s, no containerd socket): apply a "
                                                 "profile with [runtime] or [k3s] first (up --profile P does)");
    }
    std::string snapshotter = words.size() > 1 ? words[1] : "overlayfs";
    std::string dir = runtime == "k3s" ? "/var/lib/rancher/k3s/agent/images" : "/var/lib/nodectl/images";
    TRY(t->run_checked(Command{.script = "install -d -m 0700 " + shell_quote(dir)}, "making " + dir + " on " + n.name));
    for (const auto& a : archives) {
        std::string dest = dir + "/" + fs::path(a).filename().string();
        TRY_VOID(t->upload(a, FileSpec{.path = dest, .mode = 0600}));
        std::string import;
        if (runtime == "k3s") {
            // k3s imports its images directory when it starts; a running k3s gets it at once.
            import = "if " + host::units::is_active("k3s.service") + " || " +
                     host::units::is_active("k3s-agent.service") + "; then k3s ctr --namespace k8s.io images import " +
                     shell_quote(dest) + "; fi";
        } else {
            import = "ctr --namespace k8s.io images import --snapshotter " + shell_quote(snapshotter) + " " +
                     shell_quote(dest) + " && rm -f " + shell_quote(dest);
        }
        auto r = TRY(t->run_checked(Command{.script = import, .timeout = 600s},
                                    "importing " + fs::path(a).filename().string() + " on " + n.name));
        log::info(detail::k_who, "{}: {} loaded ({}{})", n.name, fs::path(a).filename().string(), runtime,
                  runtime == "k3s" ? ", " + dir : ", snapshotter " + snapshotter);
        (void)r;
    }
    return runtime;
}

}  // namespace

Result<void> check_archive(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return make_error(ErrorCode::usage, "--images " + path +
                                                ": not a file (an OCI archive from `nodectl image build`, "
                                                "e.g. build/images/redis.oci.tar)");
    }
    if (!path.ends_with(".tar")) {
        return make_error(ErrorCode::usage, "--images " + path +
                                                ": expected an OCI archive ending in .tar "
                                                "(`nodectl image build` writes NAME.oci.tar)");
    }
    return Ok{};
}

Result<std::vector<std::string>> load_images(const Environment& env, const std::vector<std::string>& archives) {
    for (const auto& a : archives) {
        TRY_VOID(check_archive(a));
    }
    std::vector<std::string> runtimes;
    for (const auto& n : env.nodes) {
        runtimes.push_back(TRY(load_into(env, n, archives)));
    }
    return runtimes;
}

}  // namespace nodectl::local

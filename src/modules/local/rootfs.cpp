// The root filesystem nodes start from: given, or made once with mmdebstrap and cached (a killed
// build never leaves half a tree: it is made in a temporary directory renamed into place).
#include "modules/local/detail.hpp"

#include "core/log.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <cstdlib>
#include <filesystem>
#include <regex>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace nodectl::local::detail {

Result<std::string> rootfs_path(const UpOptions& o, bool& needs_build) {
    std::string given = o.rootfs;
    if (given.empty()) {
        const char* e = std::getenv("NODECTL_LOCAL_ROOTFS");
        given = e ? e : "";
    }
    if (!given.empty()) {
        std::error_code ec;
        auto abs = fs::weakly_canonical(given, ec);
        if (ec || !fs::is_directory(abs / "etc") || !fs::exists(abs / "usr/bin/systemctl") ||
            !fs::exists(abs / "usr/sbin/sshd")) {
            return make_error(ErrorCode::usage, "--rootfs " + given + " is not a Debian root filesystem with systemd and openssh-server");
        }
        // It becomes an overlayfs option: no ',' ':' or '\\' (and nothing a shell would care about).
        static const std::regex k_safe("^/[A-Za-z0-9._/+@-]*$");
        if (!std::regex_match(abs.string(), k_safe)) {
            return make_error(ErrorCode::usage, "--rootfs " + abs.string() + ": the path may hold only letters, digits and . _ / + @ -");
        }
        needs_build = false;
        return abs.string();
    }
    std::string path = cache_root() + "/rootfs-" + rootfs_key(o.suite, rootfs_packages());
    needs_build = !fs::is_directory(path);
    return path;
}

Result<void> build_rootfs(const std::string& path, const std::string& suite) {
    TRY_VOID(need_tool("mmdebstrap", "mmdebstrap"));
    std::string script =
        "set -e\n"
        "mkdir -p " + shell_quote(cache_root()) + "\n"
        "exec 7>" + shell_quote(path + ".lock") + "\n"
        "flock 7\n"
        "[ -d " + shell_quote(path) + " ] && exit 0\n"
        "for old in " + shell_quote(path) + ".tmp.*; do [ -d \"$old\" ] && rm -rf --one-file-system \"$old\"; done\n"
        "tmp=$(mktemp -d " + shell_quote(path + ".tmp.XXXXXX") + ")\n"
        "mmdebstrap --variant=minbase --include=" + shell_quote(util::join(rootfs_packages(), ",")) + " " +
        shell_quote(suite) + " \"$tmp\" >&2\n"
        // Nothing per node in the shared tree: host keys and machine-id are written per node.
        "rm -f \"$tmp\"/etc/ssh/ssh_host_*\n"
        ": >\"$tmp/etc/machine-id\"\n"
        "mv -T \"$tmp\" " + shell_quote(path) + "\n";
    log::info(k_who, "building the {} root filesystem with mmdebstrap (once; cached in {})", suite, path);
    TRY(sh(script, "mmdebstrap " + suite, 1800s));
    return Ok{};
}


} // namespace nodectl::local::detail

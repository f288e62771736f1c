// The root filesystem nodes start from: given, or made once with mmdebstrap and cached (a killed
// build never leaves half a tree: it is made in a temporary directory renamed into place).
#include "modules/local/detail.hpp"

#include "util/log.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <regex>
#include <sstream>

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
            return make_error(ErrorCode::usage,
                              "--rootfs " + given + " is not a Debian root filesystem with systemd and openssh-server");
        }
        // It becomes an overlayfs option: no ',' ':' or '\\' (and nothing a shell would care about).
        static const std::regex k_safe("^/[A-Za-z0-9._/+@-]*$");
        if (!std::regex_match(abs.string(), k_safe)) {
            return make_error(ErrorCode::usage,
                              "--rootfs " + abs.string() + ": the path may hold only letters, digits and . _ / + @ -");
        }
        needs_build = false;
        return abs.string();
    }
    std::string path = cache_root() + "/rootfs-" + rootfs_key(o.suite, rootfs_packages());
    needs_build = !fs::is_directory(path);
    return path;
}

std::string debian_mirror(const std::vector<std::string>& sources_files) {
    for (const auto& f : sources_files) {
        auto text = util::read_file(f);
        if (!text) {
            continue;
        }
        bool deb822 = f.ends_with(".sources");
        for (const auto& line : util::split_lines(*text)) {
            std::istringstream in(line);
            std::vector<std::string> words{std::istream_iterator<std::string>(in),
                                           std::istream_iterator<std::string>()};
            // deb822: "URIs: A [B...]"; one-line: "deb [options] URI suite ...", the URI the first http(s) word.
            if (words.empty() || (deb822 ? words[0] != "URIs:" : words[0] != "deb")) {
                continue;
            }
            for (size_t i = 1; i < words.size(); ++i) {
                bool http = words[i].starts_with("http://") || words[i].starts_with("https://");
                if (http && words[i].find("security") == std::string::npos) {
                    return words[i];
                }
                if (http && !deb822) {
                    break;  // the line's URI is the security archive's
                }
            }
        }
    }
    return "http://deb.debian.org/debian";
}

Result<void> build_rootfs(const std::string& path, const std::string& suite) {
    TRY_VOID(need_tool("mmdebstrap", "mmdebstrap"));
    // The Debian archive this host's apt uses (a mirror or proxy that works on this network).
    std::vector<std::string> sources;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/etc/apt/sources.list.d", ec)) {
        if (e.path().extension() == ".sources" || e.path().extension() == ".list") {
            sources.push_back(e.path().string());
        }
    }
    std::sort(sources.begin(), sources.end());
    sources.insert(sources.begin(), "/etc/apt/sources.list");
    std::string mirror = debian_mirror(sources);
    std::string script = "set -e\n"
                         "mkdir -p " +
                         shell_quote(cache_root()) +
                         "\n"
                         "exec 7>" +
                         shell_quote(path + ".lock") +
                         "\n"
                         "flock 7\n"
                         "[ -d " +
                         shell_quote(path) +
                         " ] && exit 0\n"
                         "for old in " +
                         shell_quote(path) +
                         ".tmp.*; do [ -d \"$old\" ] && rm -rf --one-file-system \"$old\"; done\n"
                         "tmp=$(mktemp -d " +
                         shell_quote(path + ".tmp.XXXXXX") +
                         ")\n"
                         "mmdebstrap --variant=minbase --include=" +
                         shell_quote(util::join(rootfs_packages(), ",")) + " " + shell_quote(suite) + " \"$tmp\" " +
                         shell_quote(mirror) + " >&2\n";
    if (suite == "trixie") {
        // Debian 13 installs keep their apt sources in deb822 form, as a real trixie host has them.
        script += "if [ -s \"$tmp/etc/apt/sources.list\" ]; then\n"
                  "  printf 'Types: deb\\nURIs: %s\\nSuites: %s\\nComponents: main\\n"
                  "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\\n' " +
                  shell_quote(mirror) + " " + shell_quote(suite) +
                  " >\"$tmp/etc/apt/sources.list.d/debian.sources\"\n"
                  "  rm -f \"$tmp/etc/apt/sources.list\"\n"
                  "fi\n";
    }
    // Nothing per node in the shared tree: host keys, machine-id, host names and resolv.conf are
    // written per node.
    script += "rm -f \"$tmp\"/etc/ssh/ssh_host_* \"$tmp/etc/resolv.conf\"\n"
              ": >\"$tmp/etc/machine-id\"\n"
              "printf '127.0.0.1\\tlocalhost\\n::1\\t\\tlocalhost ip6-localhost ip6-loopback\\n' >\"$tmp/etc/hosts\"\n"
              "mv -T \"$tmp\" " +
              shell_quote(path) + "\n";
    log::info(k_who, "building the {} root filesystem with mmdebstrap from {} (once; cached in {})", suite, mirror,
              path);
    TRY(sh(script, "mmdebstrap " + suite, 1800s));
    return Ok{};
}

}  // namespace nodectl::local::detail

namespace nodectl::local {

Result<std::string> cached_rootfs(const std::string& suite) {
    TRY_VOID(detail::need_root());
    TRY_VOID(check_suite(suite));
    UpOptions o;
    o.suite = suite;
    bool build = false;
    auto path = TRY(detail::rootfs_path(o, build));
    if (build) {
        TRY_VOID(detail::build_rootfs(path, suite));
    }
    return path;
}

}  // namespace nodectl::local

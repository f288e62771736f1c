#include "modules/image/stage.hpp"

#include "modules/image/common.hpp"
#include "modules/image/process.hpp"
#include "nodectl/target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <filesystem>

namespace nodectl::image::detail {

namespace fs = std::filesystem;

namespace {

std::string q(const std::string& s) {
    return shell_quote(s);
}

// A shell expression for a numeric id, or the id of a user/group name inside the image.
std::string id_expr(const std::string& who, bool group) {
    if (!who.empty() && std::all_of(who.begin(), who.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return who;
    }
    if (group) {
        return "$(chroot \"$R\" getent group " + q(who) + " | cut -d: -f3)";
    }
    return "$(chroot \"$R\" id -u " + q(who) + ")";
}

// Creates user `u`, or checks that the image's user of that name has its uid and gid.
std::string user_script(const Recipe& r, const RecipeUser& u) {
    std::string sh;
    std::string uid = std::to_string(u.uid), gid = std::to_string(u.gid);
    std::string sys = u.system ? " --system" : "";
    std::string shell = u.system ? "/usr/sbin/nologin" : "/bin/sh";
    sh += "echo " + q("@@ " + r.name + ": user " + u.name + " (" + uid + ":" + gid + ")") + "\n";
    sh += "if chroot \"$R\" getent passwd " + q(u.name) + " >/dev/null; then\n";
    sh += "  [ \"$(chroot \"$R\" id -u " + q(u.name) + ")\" = " + uid + " ] && [ \"$(chroot \"$R\" id -g " + q(u.name) +
          ")\" = " + gid + " ] || { echo " +
          q(u.where + ": user " + u.name + " exists in the image with another uid/gid:") + " \"$(chroot \"$R\" id " +
          q(u.name) + ")\"; exit 1; }\n";
    sh += "else\n";
    sh += "  chroot \"$R\" getent group " + gid + " >/dev/null || chroot \"$R\" groupadd" + sys + " -g " + gid + " " +
          q(u.name) + "\n";
    sh += "  chroot \"$R\" useradd" + sys + " -u " + uid + " -g " + gid + " -d " + q(u.home) + " -M -s " + shell + " " +
          q(u.name) + "\n";
    if (u.home != "/nonexistent") {
        sh += "  mkdir -p \"$R\"" + q(u.home) + " && chown " + uid + ":" + gid + " \"$R\"" + q(u.home) + "\n";
    }
    sh += "fi\n";
    return sh;
}

// Copies [[files]] entry `f` into the tree with its owner, group and mode, dated `epoch`.
Result<std::string> file_script(const Recipe& r, const RecipeFile& f, const Inputs& in, int64_t epoch) {
    std::string sh;
    auto src = TRY(file_source(r, f, in));
    std::string dest = "\"$R\"" + q(f.dest);
    std::string owner = id_expr(f.owner, false), group = id_expr(f.group, true);
    sh += "echo " + q("@@ " + r.name + ": file " + f.dest) + "\n";
    sh += "U=" + owner + "; G=" + group + "\n";
    sh += "[ -n \"$U\" ] && [ -n \"$G\" ] || { echo " +
          q(f.where + ": owner '" + f.owner + "' or group '" + f.group + "' does not exist in the image") +
          "; exit 1; }\n";
    if (fs::is_directory(src)) {
        sh += "mkdir -p " + dest + "\n";
        sh += "cp -a --no-preserve=ownership " + q(src.string() + "/.") + " " + dest + "/\n";
        sh += "chown -R \"$U:$G\" " + dest + "\n";
    } else {
        sh += "mkdir -p \"$(dirname " + dest + ")\"\n";
        sh += "rm -f " + dest + "\n";
        sh += "cp " + q(src.string()) + " " + dest + "\n";
        sh += "chown \"$U:$G\" " + dest + "\n";
        sh += "chmod " + util::octal(f.mode) + " " + dest + "\n";
    }
    // The checkout's timestamps are not an input: every copied file gets the epoch.
    sh += "find " + dest + " -exec touch -h -d @" + std::to_string(epoch) + " {} +\n";
    return sh;
}

}  // namespace

Result<std::string> stage_script(const Recipe& r, const Inputs& in, const Stage& s, int64_t epoch) {
    std::string sh;
    sh += "set -eu\n";
    sh += "export LC_ALL=C PATH=" + std::string(k_default_path) +
          " DEBIAN_FRONTEND=noninteractive SOURCE_DATE_EPOCH=" + std::to_string(epoch) + "\n";
    sh += "R=" + q(s.root) + "\n";
    if (!s.lower.empty()) {
        sh += "mount -t overlay overlay -o " +
              q("lowerdir=" + s.lower + ",upperdir=" + s.upper + ",workdir=" + s.work +
                ",index=off,metacopy=off,redirect_dir=off") +
              " \"$R\"\n";
    }
    sh += "mount -t proc proc \"$R/proc\"\n"
          "mount --bind /dev \"$R/dev\"\n"
          "mount -t sysfs -o ro sysfs \"$R/sys\"\n"
          "mount -t tmpfs -o mode=0755 tmpfs \"$R/run\"\n"
          "mkdir -p \"$R/run/lock\"\n"
          "mount -t tmpfs -o mode=1777 tmpfs \"$R/tmp\"\n"
          "[ -e \"$R/etc/resolv.conf\" ] || : > \"$R/etc/resolv.conf\"\n"
          "[ ! -e /etc/resolv.conf ] || mount --bind /etc/resolv.conf \"$R/etc/resolv.conf\"\n"
          "printf '#!/bin/sh\\nexit 101\\n' > \"$R/usr/sbin/policy-rc.d\"\n"
          "chmod 0755 \"$R/usr/sbin/policy-rc.d\"\n";
    if (!s.packages.empty()) {
        sh += "echo " + q("@@ " + r.name + ": installing " + util::join(s.packages, " ")) + "\n";
        sh += "mount --bind " + q(s.apt->lists().string()) + " \"$R/var/lib/apt/lists\"\n";
        sh += "mkdir -p \"$R/var/cache/apt/archives\"\n";
        sh += "mount --bind " + q(s.apt->debs().string()) + " \"$R/var/cache/apt/archives\"\n";
        sh += "chroot \"$R\" apt-get install -y -q --no-install-recommends -o Acquire::Languages=none -o "
              "Dpkg::Use-Pty=0 -- " +
              shell_quote_all(s.packages) + "\n";
        sh += "umount \"$R/var/cache/apt/archives\" \"$R/var/lib/apt/lists\"\n";
    }
    for (const auto& u : r.users) {
        sh += user_script(r, u);
    }
    for (const auto& f : r.files) {
        sh += TRY(file_script(r, f, in, epoch));
    }
    int n = 0;
    for (const auto& run : r.runs) {
        ++n;
        if (!run.when.empty() && in.args.at(run.when.substr(5)).empty()) {
            sh += "echo " + q("@@ " + r.name + ": run " + std::to_string(n) + " skipped (" + run.when + " is empty)") +
                  "\n";
            continue;
        }
        std::string err;
        std::string cmd = substitute_args(run.command, in.args, run.where, err);
        if (!err.empty()) {
            return make_error(ErrorCode::config, err);
        }
        auto first = util::split_lines(cmd);
        sh +=
            "echo " + q("@@ " + r.name + ": run " + std::to_string(n) + ": " + (first.empty() ? "" : first[0])) + "\n";
        bool with_secrets = false;
        for (const auto& name : run.secrets) {
            auto it = in.secrets.find(name);
            if (it == in.secrets.end()) {
                continue;  // optional and not given: the command sees no file
            }
            if (!with_secrets) {
                sh += "mkdir -p \"$R/run/secrets\"\n"
                      "mount -t tmpfs -o mode=0700,size=16m tmpfs \"$R/run/secrets\"\n";
                with_secrets = true;
            }
            sh += "install -m 0400 " + q(it->second) + " \"$R/run/secrets/\"" + q(name) + "\n";
        }
        sh += "chroot \"$R\" /bin/sh -c " + q(cmd) + " || { echo " +
              q(run.where + ": run " + std::to_string(n) + " failed") + "; exit 1; }\n";
        if (with_secrets) {
            sh += "umount \"$R/run/secrets\"\n";
        }
    }
    sh += "rm -f \"$R/usr/sbin/policy-rc.d\"\n";
    return sh;
}

Result<void> run_stage(const std::string& script, const std::string& dir, const std::string& label) {
    std::string file = (fs::path(dir) / "stage.sh").string();
    TRY_VOID(as_result(util::write_file_atomic(file, script, 0700), ErrorCode::io));
    // A private mount namespace: every mount of the stage disappears with it, even on failure.
    auto r = run_logged({"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", file}, label);
    std::error_code ec;
    fs::remove(file, ec);
    return r;
}

}  // namespace nodectl::image::detail

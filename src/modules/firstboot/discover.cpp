// Where first boot finds its configuration: --config, the kernel command line, a stick labelled
// NODECTL (mounted read-only), the profile cloud-init wrote. The first that exists wins.
#include "core/log.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "target/local_target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace nodectl::firstboot {

namespace fs = std::filesystem;

namespace {

Result<CommandResult> tool(const std::vector<std::string>& argv, int timeout = 60) {
    return run_process(argv, "", std::chrono::seconds(timeout));
}

bool is_mountpoint(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        auto f = util::split(line, ' ');
        if (f.size() > 4 && f[4] == dir) {
            return true;
        }
    }
    return false;
}

bool regular_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The stick's bundle: the one *.bundle file in bundle/ (several are an error: which one?).
Result<std::string> stick_bundle(const std::string& mount) {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(mount + "/bundle", ec)) {
        if (e.is_regular_file() && e.path().filename().string().ends_with(".bundle")) {
            found.push_back(e.path().string());
        }
    }
    if (found.size() > 1) {
        return make_error(ErrorCode::config, "the stick holds " + std::to_string(found.size()) +
                                                 " bundles in bundle/; keep exactly one");
    }
    return found.empty() ? std::string() : found.front();
}

bool have_tool(const char* name) {
    auto r = run_process({"sh", "-c", std::string("command -v ") + name + " >/dev/null"}, "", std::chrono::seconds(10));
    return r && r->exit_code == 0;
}

std::vector<std::string> mtools(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"env", "MTOOLS_SKIP_CHECK=1"});
    return argv;
}

// Mounts `device` read-only at k_stick_mount (reusing a mount left by a killed run). A kernel that
// cannot mount the filesystem (no vfat driver) still gets the stick's files when mtools is
// installed: they are copied, read-only, from the device itself into k_stick_copy.
Result<std::string> mount_stick(const std::string& device) {
    std::error_code ec;
    fs::create_directories(k_stick_mount, ec);
    if (is_mountpoint(k_stick_mount)) {
        return std::string("mount");
    }
    auto r = TRY(tool({"mount", "-o", "ro,nosuid,nodev,noexec", device, k_stick_mount}));
    if (r.exit_code == 0) {
        return std::string("mount");
    }
    std::string why = util::trim(r.err);
    if (!have_tool("mcopy")) {
        return make_error(ErrorCode::io, "mounting " + device + " read-only: " + why);
    }
    log::info("firstboot", "cannot mount {} ({}); reading it with mtools", device, why);
    fs::remove_all(k_stick_copy, ec);
    fs::create_directories(k_stick_copy, ec);
    ::chmod(k_stick_copy, 0700);
    for (const char* f : {"nodectl.toml", "nodectl.toml.sig", "bundle"}) {
        auto c = TRY(tool(mtools({"mcopy", "-i", device, "-s", "-n", "-Q", std::string("::/") + f, std::string(k_stick_copy) + "/"}), 600));
        if (c.exit_code != 0 && std::string(f) == "nodectl.toml") {
            log::debug("firstboot", "mcopy {}: {}", f, util::trim(c.err));
        }
    }
    return std::string("mtools");
}

} // namespace

std::string stick_dir(const Source& source) {
    return source.stick_mode == "mtools" ? k_stick_copy : k_stick_mount;
}

std::string cmdline_config(const std::string& cmdline) {
    // Words are separated by spaces; double quotes may hold spaces (as the kernel parses them).
    std::string word, value;
    bool quoted = false;
    auto take = [&] {
        if (util::starts_with(word, "nodectl.config=")) {
            value = word.substr(15);
        }
        word.clear();
    };
    for (char c : cmdline) {
        if (c == '"') {
            quoted = !quoted;
        } else if ((c == ' ' || c == '\n' || c == '\t') && !quoted) {
            take();
        } else {
            word += c;
        }
    }
    take();
    return value;  // the last one wins, as for the kernel's own parameters
}

std::string find_labelled_device(const std::string& label) {
    auto r = tool({"blkid", "-L", label}, 30);
    if (r && r->exit_code == 0) {
        auto dev = util::trim(r->out);
        if (auto nl = dev.find('\n'); nl != std::string::npos) {
            dev = dev.substr(0, nl);
        }
        // blkid's cache may remember an image file it was once asked about: only devices count.
        struct stat st {};
        return ::stat(dev.c_str(), &st) == 0 && S_ISBLK(st.st_mode) ? dev : "";
    }
    return "";
}

Result<Source> discover(const DiscoverOptions& o) {
    Source s;
    std::vector<std::string> looked;
    if (!o.config.empty()) {
        if (!regular_file(o.config)) {
            return make_error(ErrorCode::config, "--config " + o.config + ": no such file");
        }
        s.kind = "--config";
        s.config = s.shown = o.config;
        return s;
    }
    if (auto text = util::read_file(o.cmdline_file)) {
        auto path = cmdline_config(*text);
        if (!path.empty()) {
            // Named explicitly: a missing file is an error, not a reason to try the next place.
            if (!regular_file(path)) {
                return make_error(ErrorCode::config, "the kernel command line names nodectl.config=" + path +
                                                         ", which is not a file on this machine");
            }
            s.kind = "kernel command line";
            s.config = s.shown = path;
            return s;
        }
    }
    looked.push_back("no nodectl.config= on the kernel command line (" + o.cmdline_file + ")");
    if (o.look_for_stick) {
        auto dev = find_labelled_device(k_stick_label);
        if (dev.empty()) {
            looked.push_back("no filesystem labelled " + std::string(k_stick_label));
        } else {
            s.stick_mode = TRY(mount_stick(dev));
            std::string dir = stick_dir(s);
            std::string cfg = dir + "/" + k_stick_config;
            if (regular_file(cfg)) {
                s.kind = "USB stick";
                s.stick_device = dev;
                s.config = cfg;
                s.shown = "LABEL=" + std::string(k_stick_label) + " (" + dev + "):" + k_stick_config;
                auto b = stick_bundle(dir);
                if (!b) {
                    release_stick(s);
                    return b.error();
                }
                s.bundle = *b;
                return s;
            }
            looked.push_back(dev + " (LABEL=" + k_stick_label + ") holds no " + k_stick_config);
            s.stick_device = dev;
            release_stick(s);
            s.stick_device.clear();
            s.stick_mode.clear();
        }
    }
    if (regular_file(o.cloud_init_profile)) {
        s.kind = "cloud-init";
        s.config = s.shown = o.cloud_init_profile;
        return s;
    }
    looked.push_back("no " + o.cloud_init_profile + " (cloud-init user-data)");
    std::string why = "no configuration found: ";
    for (size_t i = 0; i < looked.size(); ++i) {
        why += (i ? "; " : "") + looked[i];
    }
    return make_error(ErrorCode::config, why);
}

Result<void> write_back_report(const Source& source, const std::string& text, const std::string& json) {
    if (source.stick_device.empty()) {
        return Ok{};
    }
    if (source.stick_mode == "mtools") {
        std::string dir = std::string(k_stick_copy) + "/.report";
        std::error_code ec;
        fs::create_directories(dir, ec);
        std::string why = util::write_file_atomic(dir + "/" + k_stick_report, text, 0644);
        if (why.empty()) {
            why = util::write_file_atomic(dir + "/firstboot.json", json, 0644);
        }
        if (!why.empty()) {
            return make_error(ErrorCode::io, "preparing the report: " + why);
        }
        auto r = TRY(tool(mtools({"mcopy", "-i", source.stick_device, "-o", "-Q", dir + "/" + k_stick_report,
                                  dir + "/firstboot.json", "::/"})));
        ::sync();
        if (r.exit_code != 0) {
            return make_error(ErrorCode::io, "the stick is not writable (" + util::trim(r.err) + "): no report on it");
        }
        return Ok{};
    }
    auto rw = TRY(tool({"mount", "-o", "remount,rw", k_stick_mount}));
    if (rw.exit_code != 0) {
        return make_error(ErrorCode::io, "the stick is not writable (" + util::trim(rw.err) + "): no report on it");
    }
    std::string why = util::write_file_atomic(std::string(k_stick_mount) + "/" + k_stick_report, text, 0644);
    if (why.empty()) {
        why = util::write_file_atomic(std::string(k_stick_mount) + "/firstboot.json", json, 0644);
    }
    ::sync();
    auto ro = tool({"mount", "-o", "remount,ro", k_stick_mount});
    (void)ro;
    if (!why.empty()) {
        return make_error(ErrorCode::io, "writing the report to the stick: " + why);
    }
    return Ok{};
}

void release_stick(const Source& source) {
    if (source.stick_mode == "mtools") {
        std::error_code ec;
        fs::remove_all(k_stick_copy, ec);
        return;
    }
    if (source.stick_device.empty() || !is_mountpoint(k_stick_mount)) {
        return;
    }
    ::sync();
    auto r = tool({"umount", k_stick_mount});
    if (!r || r->exit_code != 0) {
        log::warn("firstboot", "could not unmount {} ({})", k_stick_mount, r ? util::trim(r->err) : r.error().message);
    }
}

} // namespace nodectl::firstboot

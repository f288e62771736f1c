// Where first boot finds its configuration: --config, the kernel command line, a stick labelled
// NODECTL (mounted read-only), the profile cloud-init wrote. The first that exists wins.
#include "util/log.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "target/local_target.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/file_at.hpp"
#include "util/strings.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <utility>

namespace nodectl::firstboot {

namespace fs = std::filesystem;

namespace {

Result<CommandResult> run_tool(const std::vector<std::string>& argv, int timeout = 60) {
    return run_process(argv, "", std::chrono::seconds(timeout));
}

// The filesystem type of the mount at `dir` ("" when nothing is mounted there).
std::string mounted_fstype(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        auto f = util::split(line, ' ');
        if (f.size() > 4 && f[4] == dir) {
            // "... optional fields - FSTYPE SOURCE OPTIONS"
            for (size_t i = 5; i + 1 < f.size(); ++i) {
                if (f[i] == "-") {
                    return f[i + 1];
                }
            }
            return "?";
        }
    }
    return "";
}

bool is_mountpoint(const std::string& dir) {
    return !mounted_fstype(dir).empty();
}

bool regular_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

constexpr size_t k_max_config = 4 << 20;
constexpr size_t k_max_signature = 4096;

bool have_tool(const char* name) {
    auto r = run_process({"sh", "-c", std::string("command -v ") + name + " >/dev/null"}, "", std::chrono::seconds(10));
    return r && r->exit_code == 0;
}

std::vector<std::string> mtools(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"env", "MTOOLS_SKIP_CHECK=1"});
    return argv;
}

// Mounts `device` read-only at k_stick_mount (reusing a mount left by a killed run). Only FAT:
// a stick is untrusted, and the kernel's other filesystem drivers (and their symbolic links,
// device nodes, owners) are no surface it gets to reach. A kernel that cannot mount FAT (no vfat
// driver) still gets the stick's files when mtools is installed: they are copied, read-only,
// from the device itself into k_stick_copy.
Result<std::string> mount_stick(const std::string& device) {
    auto type = run_tool({"blkid", "-p", "-o", "value", "-s", "TYPE", device}, 30);
    std::string fstype = type && type->exit_code == 0 ? util::trim(type->out) : "";
    if (fstype != "vfat") {
        return make_error(
            ErrorCode::config,
            device + " (LABEL=" + std::string(k_stick_label) + ") holds " +
                (fstype.empty() ? std::string("no filesystem blkid knows") : "a filesystem of type " + fstype) +
                "; only FAT (vfat) sticks are read, as `nodectl usb prepare` makes them");
    }
    std::error_code ec;
    fs::create_directories(k_stick_mount, ec);
    if (auto t = mounted_fstype(k_stick_mount); !t.empty()) {
        if (t != "vfat") {
            return make_error(ErrorCode::config,
                              std::string(k_stick_mount) + " holds a " + t + " mount; refused (only vfat)");
        }
        return std::string("mount");
    }
    auto r = TRY(run_tool({"mount", "-t", "vfat", "-o", "ro,nosuid,nodev,noexec", device, k_stick_mount}));
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
        auto c = TRY(run_tool(
            mtools({"mcopy", "-i", device, "-s", "-n", "-Q", std::string("::/") + f, std::string(k_stick_copy) + "/"}),
            600));
        if (c.exit_code != 0 && std::string(f) == "nodectl.toml") {
            log::debug("firstboot", "mcopy {}: {}", f, util::trim(c.err));
        }
    }
    return std::string("mtools");
}

}  // namespace

std::string stick_dir(const Source& source) {
    if (!source.stick_root.empty()) {
        return source.stick_root;
    }
    return source.stick_mode == "mtools" ? k_stick_copy : k_stick_mount;
}

Result<std::shared_ptr<int>> open_stick_bundle(const std::string& dir, std::string& name) {
    name.clear();
    auto top = TRY(as_result(util::open_dir_nofollow(dir), ErrorCode::io));
    util::Fd bdir(::openat(top.get(), "bundle", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (bdir.get() < 0) {
        if (errno == ENOENT) {
            return std::shared_ptr<int>();
        }
        return make_error(ErrorCode::config,
                          "the stick's bundle/ is not a directory (" + std::string(std::strerror(errno)) + ")");
    }
    util::Fd listed(::dup(bdir.get()));
    DIR* d = listed ? ::fdopendir(listed.get()) : nullptr;
    if (!d) {
        return make_error(ErrorCode::io, "reading the stick's bundle/: " + std::string(std::strerror(errno)));
    }
    (void)listed.release();  // d's now: closedir closes it
    std::vector<std::string> found;
    while (auto* e = ::readdir(d)) {
        std::string n = e->d_name;
        struct stat st {};
        if (n.ends_with(".bundle") && ::fstatat(bdir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
            found.push_back(n);
        }
    }
    ::closedir(d);
    if (found.size() > 1) {
        return make_error(ErrorCode::config,
                          "the stick holds " + std::to_string(found.size()) + " bundles in bundle/; keep exactly one");
    }
    if (found.empty()) {
        return std::shared_ptr<int>();
    }
    util::Fd fd(::openat(bdir.get(), found.front().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return make_error(ErrorCode::config,
                          "the stick's bundle/" + found.front() + " is not a regular file (refused)");
    }
    name = found.front();
    // Source::bundle_fd: closed by its last holder, or earlier by release_stick.
    return std::shared_ptr<int>(new int(fd.release()), [](int* p) {
        util::Fd closing(*p);  // closes it (a no-op after release_stick)
        delete p;
    });
}

Result<ConfigBytes> read_config(const Source& source) {
    ConfigBytes out;
    if (source.stick_device.empty() && source.stick_root.empty()) {
        out.config = TRY(as_result(util::read_file(source.config), ErrorCode::config));
        out.signature = TRY(as_result(util::read_file_if_exists(source.config + ".sig"), ErrorCode::config));
        return out;
    }
    std::string dir = stick_dir(source);
    auto dfd = TRY(as_result(util::open_dir_nofollow(dir), ErrorCode::io));
    auto text = util::read_file_at(dfd.get(), k_stick_config, k_max_config);
    if (!text) {
        return make_error(ErrorCode::config, "the stick's " + text.error());
    }
    out.config = std::move(*text);
    auto signature = util::read_file_at(dfd.get(), std::string(k_stick_config) + ".sig", k_max_signature);
    if (signature) {
        out.signature = std::move(*signature);
    } else if (errno != ENOENT) {
        return make_error(ErrorCode::config, "the stick's " + signature.error());
    }
    return out;
}

Result<void> write_report_files(const std::string& dir, const std::string& text, const std::string& json) {
    auto dfd = TRY(as_result(util::open_dir_nofollow(dir), ErrorCode::io));
    TRY_VOID(as_result(util::write_file_atomic_at(dfd.get(), k_stick_report, text, 0644), ErrorCode::io));
    TRY_VOID(as_result(util::write_file_atomic_at(dfd.get(), "firstboot.json", json, 0644), ErrorCode::io));
    return Ok{};
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
    auto r = run_tool({"blkid", "-L", label}, 30);
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
            s.stick_device = dev;
            std::string dir = stick_dir(s);
            struct stat st {};
            bool present = false;
            {
                auto dfd = util::open_dir_nofollow(dir);  // closed before any unmount
                present = dfd && ::fstatat(dfd->get(), k_stick_config, &st, AT_SYMLINK_NOFOLLOW) == 0;
            }
            if (present) {
                if (!S_ISREG(st.st_mode)) {
                    release_stick(s);
                    return make_error(ErrorCode::config, "the stick's " + std::string(k_stick_config) +
                                                             " is not a regular file (refused)");
                }
                s.kind = "USB stick";
                s.config = dir + "/" + k_stick_config;
                s.shown = "LABEL=" + std::string(k_stick_label) + " (" + dev + "):" + k_stick_config;
                std::string name;
                auto b = open_stick_bundle(dir, name);
                if (!b) {
                    release_stick(s);
                    return b.error();
                }
                if (*b) {
                    s.bundle_fd = *b;
                    s.bundle = "/proc/self/fd/" + std::to_string(*s.bundle_fd);
                    s.bundle_shown = "LABEL=" + std::string(k_stick_label) + " (" + dev + "):bundle/" + name;
                }
                return s;
            }
            looked.push_back(dev + " (LABEL=" + k_stick_label + ") holds no " + k_stick_config);
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
        ::mkdir(dir.c_str(), 0700);
        if (auto w = write_report_files(dir, text, json); !w) {
            return make_error(ErrorCode::io, "preparing the report: " + w.error().message);
        }
        auto r = TRY(run_tool(mtools({"mcopy", "-i", source.stick_device, "-o", "-Q", dir + "/" + k_stick_report,
                                      dir + "/firstboot.json", "::/"})));
        ::sync();
        if (r.exit_code != 0) {
            return make_error(ErrorCode::io, "the stick is not writable (" + util::trim(r.err) + "): no report on it");
        }
        return Ok{};
    }
    auto rw = TRY(run_tool({"mount", "-o", "remount,rw", k_stick_mount}));
    if (rw.exit_code != 0) {
        return make_error(ErrorCode::io, "the stick is not writable (" + util::trim(rw.err) + "): no report on it");
    }
    auto w = write_report_files(k_stick_mount, text, json);
    ::sync();
    auto ro = run_tool({"mount", "-o", "remount,ro", k_stick_mount});
    (void)ro;
    if (!w) {
        return make_error(ErrorCode::io, "writing the report to the stick: " + w.error().message);
    }
    return Ok{};
}

void release_stick(const Source& source) {
    // The bundle opened on the stick would keep it busy.
    if (source.bundle_fd) {
        util::Fd closing(std::exchange(*source.bundle_fd, -1));  // closed here, at once
    }
    if (source.stick_mode == "mtools") {
        std::error_code ec;
        fs::remove_all(k_stick_copy, ec);
        return;
    }
    if (source.stick_device.empty() || !is_mountpoint(k_stick_mount)) {
        return;
    }
    ::sync();
    auto r = run_tool({"umount", k_stick_mount});
    if (!r || r->exit_code != 0) {
        log::warn("firstboot", "could not unmount {} ({})", k_stick_mount, r ? util::trim(r->err) : r.error().message);
    }
}

}  // namespace nodectl::firstboot

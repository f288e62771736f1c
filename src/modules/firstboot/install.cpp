// `nodectl firstboot install`: the unit and the binary into a running system or an image's rootfs.
#include "modules/firstboot/firstboot.hpp"
#include "host/services.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace nodectl::firstboot {

namespace fs = std::filesystem;

// The same text as systemd/nodectl-firstboot.service (a unit test compares them).
const char* const k_unit_text =
    R"UNIT(# Installed by `nodectl firstboot install`. Provisions this machine once, at first boot, from the
# configuration nodectl finds (see `nodectl firstboot --help`); never again once
# /var/lib/nodectl/firstboot.done exists. Progress: `nodectl status`, journalctl -u nodectl-firstboot.
[Unit]
Description=nodectl first boot: provision this machine from its configuration
Wants=network-online.target
After=network-online.target cloud-init.service
ConditionPathExists=!/var/lib/nodectl/firstboot.done

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/bin/nodectl firstboot
Environment=NODECTL_CACHE_DIR=/var/cache/nodectl
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=2h

[Install]
WantedBy=multi-user.target
)UNIT";

std::string self_exe() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : p.string();
}

Result<std::vector<std::string>> install(const InstallOptions& o) {
    std::vector<std::string> did;
    const std::string root = o.root == "/" ? "" : o.root;
    if (!root.empty() && !fs::is_directory(root + "/etc")) {
        return make_error(ErrorCode::usage, "--root " + root + " does not look like a root filesystem (no etc/)");
    }
    std::string trust;
    if (!o.trust_key.empty()) {
        auto key = util::read_file(o.trust_key);
        if (!key) {
            return make_error(ErrorCode::config, o.trust_key + ": " + std::strerror(errno));
        }
        if (auto c = check_public_key(*key); !c) {
            return make_error(ErrorCode::config, o.trust_key + ": " + c.error().message);
        }
        trust = *key;
    }
    const std::string bin = o.binary.empty() ? self_exe() : o.binary;
    auto content = util::read_file(bin);
    if (!content) {
        return errno_error("reading the binary " + bin);
    }
    std::error_code ec;
    auto ensure_dir = [&](const std::string& d) -> Result<void> {
        fs::create_directories(d, ec);
        if (ec) {
            return make_error(ErrorCode::io, "creating " + d + ": " + ec.message());
        }
        return Ok{};
    };
    auto write = [&](const std::string& path, const std::string& text, unsigned mode) -> Result<void> {
        if (auto old = util::read_file(path); old && *old == text) {
            struct stat st {};
            if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 07777) == mode) {
                did.push_back("unchanged " + path);
                return Ok{};
            }
        }
        TRY_VOID(ensure_dir(fs::path(path).parent_path().string()));
        if (auto why = util::write_file_atomic(path, text, mode); !why) {
            return make_error(ErrorCode::io, "writing " + path + ": " + why.error());
        }
        did.push_back("wrote " + path);
        return Ok{};
    };
    const std::string dest_bin = root + k_binary;
    if (fs::exists(dest_bin) && fs::equivalent(bin, dest_bin, ec)) {
        did.push_back("unchanged " + dest_bin + " (this binary)");
    } else {
        TRY_VOID(write(dest_bin, *content, 0755));
    }
    const std::string unit = root + "/etc/systemd/system/" + k_unit_name;
    TRY_VOID(write(unit, k_unit_text, 0644));
    if (!trust.empty()) {
        TRY_VOID(write(root + k_trust_key, trust, 0644));
    }
    TRY_VOID(ensure_dir(root + k_state_dir));
    ::chmod((root + k_state_dir).c_str(), 0700);
    if (!o.no_enable) {
        // What `systemctl enable` does for WantedBy=multi-user.target, without needing systemd
        // to run (an image's rootfs).
        const std::string wants = root + "/etc/systemd/system/multi-user.target.wants";
        TRY_VOID(ensure_dir(wants));
        const std::string link = wants + "/" + k_unit_name;
        const std::string target = std::string("/etc/systemd/system/") + k_unit_name;
        auto current = fs::read_symlink(link, ec);
        if (!ec && current == target) {
            did.push_back("unchanged " + link);
        } else {
            fs::remove(link, ec);
            fs::create_symlink(target, link, ec);
            if (ec) {
                return make_error(ErrorCode::io, "linking " + link + ": " + ec.message());
            }
            did.push_back("enabled " + std::string(k_unit_name) + " (" + link + ")");
        }
    }
    if (root.empty() && fs::is_directory("/run/systemd/system")) {
        LocalTarget local;
        auto reload = host::units::daemon_reload();
        TRY_VOID(host::run_unit_op(local, reload));
        did.push_back(reload.script());
    }
    return did;
}

}  // namespace nodectl::firstboot

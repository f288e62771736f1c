// `nodectl usb prepare`: a FAT filesystem labelled NODECTL, on an image file or a device, with the
// binary, nodectl.toml, the bundle and a README. mkfs.vfat makes the filesystem and mtools fills
// it, so nothing is mounted on the operator's machine. A device is refused when it is mounted
// (itself or a partition), in use by a device mapper, or holds the running system.
#include "modules/bundle/bundle.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "modules/firstboot/node_profile.hpp"
#include "nodectl/target.hpp"
#include "target/local_target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <elf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <tuple>

namespace nodectl::firstboot {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t k_fat_max_file = 4294967295ULL;

std::string devnum(dev_t d) {
    return std::to_string(major(d)) + ":" + std::to_string(minor(d));
}

std::string sys_read(const std::string& path) {
    auto t = util::read_file(path);
    return t ? util::trim(*t) : "";
}

// /sys/class/block/NAME of a major:minor ("" when unknown).
std::string sysfs_name(const std::string& mm) {
    std::error_code ec;
    auto p = fs::canonical("/sys/dev/block/" + mm, ec);
    return ec ? "" : p.filename().string();
}

// The whole disk a block device belongs to (itself when it is not a partition).
std::string disk_of(const std::string& name) {
    std::error_code ec;
    if (fs::exists("/sys/class/block/" + name + "/partition", ec)) {
        auto p = fs::canonical("/sys/class/block/" + name, ec);
        return ec ? name : p.parent_path().filename().string();
    }
    return name;
}

// The disks below a block device through device-mapper/md slaves (for / on LVM or RAID).
void underlying_disks(const std::string& name, std::set<std::string>& out, int depth = 0) {
    std::error_code ec;
    bool any = false;
    if (depth < 8) {
        for (const auto& s : fs::directory_iterator("/sys/class/block/" + name + "/slaves", ec)) {
            any = true;
            underlying_disks(s.path().filename().string(), out, depth + 1);
        }
    }
    if (!any) {
        out.insert(disk_of(name));
    }
}

// The disk and its partitions, as major:minor and names.
std::vector<std::pair<std::string, std::string>> disk_members(const std::string& disk) {
    std::vector<std::pair<std::string, std::string>> out;
    out.emplace_back(disk, sys_read("/sys/class/block/" + disk + "/dev"));
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/class/block/" + disk, ec)) {
        auto n = e.path().filename().string();
        if (fs::exists(e.path() / "partition", ec)) {
            out.emplace_back(n, sys_read(e.path().string() + "/dev"));
        }
    }
    return out;
}

bool is_static_elf(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    Elf64_Ehdr eh{};
    if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64) {
        return false;
    }
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        in.seekg(static_cast<std::streamoff>(eh.e_phoff + i * eh.e_phentsize));
        if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) {
            return false;
        }
        if (ph.p_type == PT_INTERP) {
            return false;
        }
    }
    return true;
}

Result<CommandResult> run_tool_checked(const std::vector<std::string>& argv) {
    auto r = TRY(run_process(argv, "", std::chrono::seconds(1800)));
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, argv[0] + " failed (exit " + std::to_string(r.exit_code) +
                                                  "): " + util::trim(r.err.empty() ? r.out : r.err));
    }
    return r;
}

std::string readme(const UsbOptions& o, const std::string& bundle_name) {
    std::string t = "NODECTL provisioning stick\n"
                    "==========================\n\n"
                    "Made by `nodectl usb prepare` from the profile " +
                    o.profile +
                    ".\n\n"
                    "Files\n"
                    "  nodectl          the nodectl program (static: runs on any x86_64 Debian machine)\n"
                    "  nodectl.toml     what the machine becomes (the profile)\n";
    if (!bundle_name.empty()) {
        t += "  bundle/" + bundle_name + "  packages and releases, so no network is needed\n";
    }
    t += "\n"
         "Machines with nodectl-firstboot.service installed (a golden image)\n"
         "  1. Plug the stick in, switch the machine on. Nothing else to do.\n"
         "  2. It finds this stick by its label NODECTL, reads it read-only, and provisions itself.\n"
         "  3. When it has finished it writes nodectl-report.txt (and firstboot.json) onto this stick.\n"
         "     Pull the stick and read the report: \"state: done\" means success; otherwise the error\n"
         "     line says what is wrong and which step failed.\n"
         "  A machine that was provisioned before ignores this stick entirely.\n"
         "  A power cut or reboot part-way through is fine: it continues where it stopped.\n\n"
         "Machines without it (run by hand, as root)\n"
         "  mount -o ro LABEL=NODECTL /mnt && /mnt/nodectl firstboot install && systemctl start nodectl-firstboot\n"
         "  (or /mnt/nodectl firstboot --config /mnt/nodectl.toml)\n\n"
         "Progress and result on the machine: `nodectl status` (exit 0 done, 10 running, 11 failed,\n"
         "12 not started) and `journalctl -u nodectl-firstboot`.\n";
    return t;
}

}  // namespace

Result<uint64_t> parse_size(const std::string& text) {
    if (text.empty()) {
        return make_error(ErrorCode::usage, "empty size");
    }
    const size_t digits = std::min(text.find_first_not_of("0123456789"), text.size());
    const std::string unit = text.substr(digits);
    uint64_t mult = 1;
    if (unit == "K" || unit == "k" || unit == "KiB") {
        mult = 1024;
    } else if (unit == "M" || unit == "MiB") {
        mult = 1024ULL * 1024;
    } else if (unit == "G" || unit == "GiB") {
        mult = 1024ULL * 1024 * 1024;
    } else if (!unit.empty()) {
        return make_error(ErrorCode::usage, "size '" + text + "': unknown unit '" + unit + "' (K, M or G)");
    }
    auto n = util::parse_uint(std::string_view(text).substr(0, digits), {.max = UINT64_MAX / mult});
    if (!n) {
        return make_error(ErrorCode::usage,
                          "size '" + text + "' is not a number of bytes (below 16 EiB) with an optional K, M or G");
    }
    return *n * mult;
}

std::string refuse_device(const std::string& device) {
    struct stat st {};
    if (::stat(device.c_str(), &st) != 0) {
        return device + ": " + std::strerror(errno);
    }
    if (!S_ISBLK(st.st_mode)) {
        return device + " is not a block device (for an image file use --image)";
    }
    std::string name = sysfs_name(devnum(st.st_rdev));
    if (name.empty()) {
        return device + ": not found in /sys/dev/block";
    }
    std::string disk = disk_of(name);

    // The disks holding the running system: /, /usr, /boot, /var and swap.
    std::set<std::string> system;
    for (const char* p : {"/", "/usr", "/boot", "/var", "/boot/efi"}) {
        struct stat ps {};
        if (::stat(p, &ps) == 0) {
            std::string n = sysfs_name(devnum(ps.st_dev));
            if (!n.empty()) {
                underlying_disks(n, system);
            }
        }
    }
    if (system.count(disk)) {
        return device + " is (on) the disk holding the running system (" + disk + "): refused";
    }
    // Mounted: the device or any partition of its disk, anywhere in this mount namespace.
    std::set<std::string> mounted;
    {
        std::ifstream in("/proc/self/mountinfo");
        std::string line;
        while (std::getline(in, line)) {
            auto f = util::split(line, ' ');
            if (f.size() > 4) {
                mounted.insert(f[2]);
            }
        }
    }
    std::set<std::string> swaps;
    {
        std::ifstream in("/proc/swaps");
        std::string line;
        while (std::getline(in, line)) {
            auto f = util::split(line, ' ');
            if (!f.empty() && util::starts_with(f[0], "/dev/")) {
                std::error_code ec;
                auto p = fs::canonical(f[0], ec);
                swaps.insert(ec ? f[0] : p.filename().string());
            }
        }
    }
    for (const auto& [n, mm] : disk_members(disk)) {
        if (!mm.empty() && mounted.count(mm)) {
            return device + " is mounted (" + n + "): unmount it first";
        }
        if (swaps.count(n)) {
            return device + " is in use as swap (" + n + ")";
        }
        std::error_code ec;
        if (!fs::is_empty("/sys/class/block/" + n + "/holders", ec) && !ec) {
            return device + " is in use by a device mapper or RAID (" + n + "/holders)";
        }
    }
    return "";
}

namespace {

// What goes onto the stick, checked before anything is written.
struct StickInputs {
    NodeProfile np;
    std::optional<std::string> sig;  // the profile's signature, if it has one
    std::string bin;  // the nodectl binary to copy
    std::string bundle_name;  // on the stick, under bundle/
    uint64_t total = 0;  // bytes the files need
    std::vector<std::string> did;  // verified and warned so far
};

Result<StickInputs> check_stick_inputs(const UsbOptions& o) {
    StickInputs in;
    auto profile = load_profile(o.profile);
    if (!profile) {
        return make_error(ErrorCode::config, profile.error().message);
    }
    in.np = TRY(node_profile(*profile, o.profile, o.inline_secrets));
    std::string sig_path = o.signature.empty() ? o.profile + ".sig" : o.signature;
    in.sig = TRY(as_result(util::read_file_if_exists(sig_path), ErrorCode::config));
    if (in.sig && !in.np.verbatim) {
        return make_error(ErrorCode::config, sig_path + " signs " + o.profile +
                                                 ", but the stick gets a rewritten profile (includes merged or source "
                                                 "files inlined), which the signature does not match");
    }
    if (!in.sig && !o.signature.empty()) {
        return make_error(ErrorCode::config, o.signature + ": " + std::strerror(ENOENT));
    }
    in.bin = o.binary.empty() ? self_exe() : o.binary;
    if (!fs::is_regular_file(in.bin)) {
        return make_error(ErrorCode::usage, "the binary " + in.bin + " does not exist");
    }
    if (!is_static_elf(in.bin)) {
        in.did.push_back("warning: " + in.bin +
                         " is not a static binary; machines without its libraries cannot run "
                         "it (use the static build, scripts/build.sh static)");
    }
    std::string bundle_digest;
    std::error_code ec;
    in.total = fs::file_size(in.bin, ec) + in.np.text.size() + 65536;
    if (!o.bundle.empty()) {
        auto m = bundle::verify(o.bundle);
        if (!m) {
            return make_error(ErrorCode::config, "the bundle " + o.bundle + " is refused: " + m.error().message);
        }
        auto bsize = fs::file_size(o.bundle, ec);
        if (bsize > k_fat_max_file) {
            return make_error(ErrorCode::usage, "the bundle is larger than 4 GiB, more than a FAT file can hold");
        }
        in.total += bsize;
        in.bundle_name = fs::path(o.bundle).filename().string();
        if (!in.bundle_name.ends_with(".bundle")) {
            in.bundle_name += ".bundle";
        }
        bundle_digest = m->digest;
        in.did.push_back("bundle " + o.bundle + " verified (manifest " + m->digest.substr(0, 16) + ")");
    }
    // A signed profile binds its bundle (firstboot.bundle_sha256): a machine with a trust key
    // refuses any other, so a stick that would be refused is not made.
    std::string pin = profile->section("firstboot").str("bundle_sha256");
    if (in.sig && !o.bundle.empty() && bundle_digest != pin) {
        return make_error(ErrorCode::config,
                          o.profile + " is signed and " +
                              (pin.empty() ? std::string("pins no bundle") : "pins the bundle " + pin) + ", not " +
                              o.bundle + " (manifest sha256 " + bundle_digest +
                              "); sign it with `nodectl firstboot sign --bundle " + o.bundle + "`");
    }
    if (!pin.empty() && o.bundle.empty()) {
        return make_error(ErrorCode::config, o.profile + " pins the bundle " + pin + "; give it with --bundle");
    }
    return in;
}

// A temporary directory laid out as the stick will be, and a half-made image: both removed
// unless the image was renamed into place.
struct Staging {
    std::string dir;
    std::string part;
    ~Staging() {
        std::error_code e;
        fs::remove_all(dir, e);
        if (!part.empty()) {
            fs::remove(part, e);
        }
    }
};

// Copies the files into the staging directory; the paths mcopy puts on the stick.
Result<std::vector<std::string>> stage_files(const UsbOptions& o, const StickInputs& in, const std::string& stage) {
    std::error_code ec;
    fs::copy_file(in.bin, stage + "/nodectl", ec);
    if (ec) {
        return make_error(ErrorCode::io, "copying " + in.bin + ": " + ec.message());
    }
    ::chmod((stage + "/nodectl").c_str(), 0755);
    const std::string sig_name = std::string(k_stick_config) + ".sig";
    for (const auto& [name, content, mode] :
         std::vector<std::tuple<std::string, std::string, unsigned>>{{k_stick_config, in.np.text, 0600},
                                                                     {sig_name, in.sig.value_or(""), 0644},
                                                                     {"README.txt", readme(o, in.bundle_name), 0644}}) {
        if (!in.sig && name == sig_name) {
            continue;
        }
        if (auto why = util::write_file_atomic(stage + "/" + name, content, mode); !why) {
            return make_error(ErrorCode::io, "staging " + name + " for the stick: " + why.error());
        }
    }
    std::vector<std::string> items = {stage + "/nodectl", stage + "/" + k_stick_config, stage + "/README.txt"};
    if (in.sig) {
        items.push_back(stage + "/" + sig_name);
    }
    if (!o.bundle.empty()) {
        fs::create_directories(stage + "/bundle", ec);
        // A hard link when possible: a bundle may be gigabytes.
        fs::create_hard_link(o.bundle, stage + "/bundle/" + in.bundle_name, ec);
        if (ec) {
            fs::copy_file(o.bundle, stage + "/bundle/" + in.bundle_name, ec);
            if (ec) {
                return make_error(ErrorCode::io, "copying the bundle: " + ec.message());
            }
        }
        items.push_back(stage + "/bundle");
    }
    return items;
}

// The FAT filesystem: a new image file (STAGING.part until complete) or the whole device, erased
// only once `confirm` agrees. What mcopy writes to.
Result<std::string> make_filesystem(const UsbOptions& o, uint64_t total, Staging& staging) {
    if (!o.image.empty()) {
        auto size = TRY(parse_size(o.size));
        if (size < total + total / 20 + 2 * 1024 * 1024) {
            return make_error(ErrorCode::usage, "--size " + o.size + " is too small: the files need " +
                                                    std::to_string(total / (1024 * 1024) + 1) +
                                                    " MiB plus room for FAT");
        }
        std::error_code ec;
        staging.part = o.image + ".part";
        fs::remove(staging.part, ec);
        TRY(run_tool_checked({"mkfs.vfat", "-C", "-n", k_stick_label, staging.part, std::to_string(size / 1024)}));
        return staging.part;
    }
    if (auto why = refuse_device(o.device); !why.empty()) {
        return make_error(ErrorCode::usage, why);
    }
    if (!o.yes) {
        if (!o.confirm) {
            return make_error(ErrorCode::usage, "erasing " + o.device + " needs confirmation: pass --yes");
        }
        TRY_VOID(o.confirm("Erase " + o.device + " and write a NODECTL stick on it?"));
    }
    TRY(run_tool_checked({"mkfs.vfat", "-I", "-n", k_stick_label, o.device}));
    return o.device;
}

}  // namespace

Result<std::vector<std::string>> usb_prepare(const UsbOptions& o) {
    auto in = TRY(check_stick_inputs(o));
    char tmpl[] = "/tmp/nodectl-usb.XXXXXX";
    if (!mkdtemp(tmpl)) {
        return errno_error("mkdtemp");
    }
    Staging staging{tmpl, ""};
    auto items = TRY(stage_files(o, in, staging.dir));
    std::string target = TRY(make_filesystem(o, in.total, staging));
    std::string script = "MTOOLS_SKIP_CHECK=1 mcopy -i " + shell_quote(target) + " -s -o -Q";
    for (const auto& i : items) {
        script += " " + shell_quote(i);
    }
    script += " ::/";
    TRY(run_tool_checked({"sh", "-c", script}));
    TRY(run_tool_checked({"sync"}));
    if (!staging.part.empty()) {
        std::error_code ec;
        fs::rename(staging.part, o.image, ec);
        if (ec) {
            return make_error(ErrorCode::io, "renaming " + staging.part + ": " + ec.message());
        }
        staging.part.clear();
    }
    auto& did = in.did;
    did.push_back("wrote a FAT filesystem labelled " + std::string(k_stick_label) + " on " +
                  (o.image.empty() ? o.device : o.image));
    did.push_back("  nodectl, " + std::string(k_stick_config) + (in.sig ? ", nodectl.toml.sig" : "") + ", README.txt" +
                  (in.bundle_name.empty() ? "" : ", bundle/" + in.bundle_name));
    for (const auto& r : in.np.references) {
        did.push_back("  not on the stick (secret, by reference): " + r);
    }
    for (const auto& [path, content] : in.np.secret_files) {
        did.push_back("  not on the stick (secret file the profile references; provide it on the machine): " + path);
    }
    return did;
}

}  // namespace nodectl::firstboot

// The bundle's .debs: apt on the operator's machine downloads the whole dependency closure as
// if nothing were installed (an empty dpkg status, a private archives dir), so the node needs no
// network at all. The flat-repository index is written here from each .deb's own control file,
// read with libarchive, so a node installs with `deb [trusted=yes] file:/DIR ./` and nothing
// else: no dpkg-scanpackages or apt-ftparchive on either side.
#include "modules/bundle/bundle.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include <unistd.h>

namespace nodectl::bundle {

namespace fs = std::filesystem;

namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

// A control.tar is a few kB; anything far larger is not a .deb this code should trust.
constexpr la_int64_t k_max_control_tar = 64 << 20;

// libarchive's message, or a word when it has none (archive_error_string returns NULL then), and
// an entry's path ("" when it has none): a damaged .deb must not become a NULL dereference.
std::string deb_archive_error(archive* a) {
    const char* msg = archive_error_string(a);
    return msg ? msg : "damaged archive";
}
std::string_view deb_entry_name(archive_entry* e) {
    const char* name = archive_entry_pathname(e);
    return name ? name : "";
}

Result<std::string> read_member(archive* a, const std::string& what) {
    std::string data;
    char buf[65536];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n < 0) {
            return make_error(ErrorCode::io, what + ": " + deb_archive_error(a));
        }
        if (n == 0) {
            return data;
        }
        data.append(buf, static_cast<size_t>(n));
        if (static_cast<la_int64_t>(data.size()) > k_max_control_tar) {
            return make_error(ErrorCode::io, what + ": too large for a control archive");
        }
    }
}

Result<std::string> control_from_tar(const std::string& tar, const std::string& what) {
    ArchivePtr a(archive_read_new(), &archive_read_free);
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_memory(a.get(), tar.data(), tar.size()) != ARCHIVE_OK) {
        return make_error(ErrorCode::io, what + ": " + deb_archive_error(a.get()));
    }
    archive_entry* e = nullptr;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        std::string_view name = deb_entry_name(e);
        if (name == "./control" || name == "control") {
            return read_member(a.get(), what);
        }
    }
    if (r != ARCHIVE_EOF) {
        return make_error(ErrorCode::io, what + ": " + deb_archive_error(a.get()));
    }
    return make_error(ErrorCode::io, what + ": the control archive has no ./control file");
}

// The value of a field of a control paragraph ("Package", "Version", ...), or "".
std::string field(const std::string& control, std::string_view name) {
    size_t pos = 0;
    while (pos < control.size()) {
        size_t end = control.find('\n', pos);
        if (end == std::string::npos) {
            end = control.size();
        }
        std::string_view line(control.data() + pos, end - pos);
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':') {
            auto value = line.substr(name.size() + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
                value.remove_prefix(1);
            }
            while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) {
                value.remove_suffix(1);
            }
            return std::string(value);
        }
        pos = end + 1;
    }
    return {};
}

}  // namespace

Result<void> download_debs(const std::vector<std::string>& packages, const std::string& dir,
                           const std::string& apt_get) {
    std::error_code ec;
    fs::create_directories(fs::path(dir) / "partial", ec);
    if (ec) {
        return make_error(ErrorCode::io, "cannot create " + dir + ": " + ec.message());
    }
    // apt drops to the _apt user for downloads when it runs as root; it must be able to enter.
    fs::permissions(dir,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                        fs::perms::others_exec,
                    ec);
    // An empty dpkg status makes apt resolve as on a bare system: the closure, not the
    // difference to what this machine happens to have installed.
    std::string status = (fs::path(dir) / ".empty-status").string();
    std::ofstream(status).close();
    std::vector<std::string> argv = {apt_get, "install", "--download-only", "-y", "--no-install-recommends", "-o",
                                     "Dir::State::status=" + status, "-o", "Dir::Cache::archives=" + dir,
                                     // The download touches no shared state, so it needs no lock
                                     // and may run while apt works elsewhere on this machine.
                                     "-o", "Debug::NoLocking=1", "-o", "Dir::Cache::pkgcache=", "-o",
                                     "Dir::Cache::srcpkgcache=", "--"};
    argv.insert(argv.end(), packages.begin(), packages.end());
    auto r = run_process(argv, "", std::chrono::seconds(3600));
    fs::remove(status, ec);
    fs::remove_all(fs::path(dir) / "partial", ec);
    fs::remove(fs::path(dir) / "lock", ec);
    if (!r) {
        return std::move(r).error();
    }
    if (r->exit_code != 0) {
        std::string err = r->err.empty() ? r->out : r->err;
        return make_error(ErrorCode::command, "apt-get could not download the packages (exit " +
                                                  std::to_string(r->exit_code) + "): " + err +
                                                  "(is the package list current? `apt-get update`)");
    }
    return Ok{};
}

Result<DebInfo> read_deb(const std::string& path) {
    ArchivePtr a(archive_read_new(), &archive_read_free);
    archive_read_support_format_ar(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), 65536) != ARCHIVE_OK) {
        return make_error(ErrorCode::io, path + ": " + deb_archive_error(a.get()));
    }
    DebInfo info;
    info.path = path;
    archive_entry* e = nullptr;
    int r;
    while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        std::string_view name = deb_entry_name(e);
        if (name.starts_with("control.tar")) {
            auto tar = TRY(read_member(a.get(), path + ": " + std::string(name)));
            info.control = TRY(control_from_tar(tar, path + ": " + std::string(name)));
            break;
        }
    }
    if (info.control.empty()) {
        return make_error(ErrorCode::io, path + ": not a Debian package (no control.tar member)");
    }
    while (!info.control.empty() && (info.control.back() == '\n' || info.control.back() == '\r')) {
        info.control.pop_back();
    }
    info.package = field(info.control, "Package");
    info.version = field(info.control, "Version");
    info.architecture = field(info.control, "Architecture");
    if (info.package.empty() || info.version.empty() || info.architecture.empty()) {
        return make_error(ErrorCode::io, path + ": the control file lacks Package, Version or Architecture");
    }
    // The epoch's ':' would be read as part of a URL by apt; pool file names drop it as well.
    auto colon = info.version.find(':');
    info.name = info.package + "_" + (colon == std::string::npos ? info.version : info.version.substr(colon + 1)) +
                "_" + info.architecture + ".deb";
    std::error_code ec;
    info.size = fs::file_size(path, ec);
    info.sha256 = util::sha256_file_hex(path);
    if (ec || info.sha256.empty()) {
        return make_error(ErrorCode::io, path + ": cannot read");
    }
    return info;
}

std::string packages_index(std::vector<DebInfo> debs) {
    std::sort(debs.begin(), debs.end(), [](const DebInfo& a, const DebInfo& b) { return a.name < b.name; });
    std::string out;
    for (const auto& d : debs) {
        out += d.control;
        out += "\nFilename: ./" + d.name;
        out += "\nSize: " + std::to_string(d.size);
        out += "\nSHA256: " + d.sha256 + "\n\n";
    }
    return out;
}

}  // namespace nodectl::bundle

// Reading a bundle: `verify` and `extract` are one streaming pass. manifest.json must come
// first; every later entry must be a regular file the manifest lists, and its size and sha256 are
// computed while its bytes go by (and, when extracting, onto disk). Any difference names the
// entry. `extract` writes into a temporary dir beside the destination and renames it into place
// only after the last entry matched, so a failed extract leaves nothing a node could mistake for
// a bundle's content.
#include "modules/bundle/bundle.hpp"
#include "modules/bundle/detail.hpp"
#include "util/digest.hpp"
#include "nodectl/target.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace nodectl::bundle {

namespace fs = std::filesystem;

namespace {

using ReadPtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

// libarchive's message, or a word when it has none (archive_error_string returns NULL then).
std::string bundle_archive_error(archive* a) {
    const char* msg = archive_error_string(a);
    return msg ? msg : "damaged archive";
}

constexpr size_t k_max_bundle_manifest = 16 << 20;

// An error about the bundle's content (ErrorCode::damaged), not about reading it.
Error damaged(const std::string& file, const std::string& why) {
    return make_error(ErrorCode::damaged, file + ": " + why);
}

std::string entry_type(mode_t type) {
    switch (type) {
    case AE_IFDIR: return "directory";
    case AE_IFLNK: return "symbolic link";
    default: return "special file";
    }
}

Result<void> write_all(int fd, const char* data, size_t n, const std::string& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return errno_error("cannot write " + path);
        }
        data += w;
        n -= static_cast<size_t>(w);
    }
    return Ok{};
}

// Creates `rel`'s parent dirs under `root`; the path was checked to be safe_relative_path.
Result<std::string> prepare_path(const std::string& root, const std::string& rel) {
    fs::path p = fs::path(root) / rel;
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) {
        return make_error(ErrorCode::io, "cannot create " + p.parent_path().string() + ": " + ec.message());
    }
    return p.string();
}

struct Opened {
    util::Fd fd;  // declared first: closed after the archive that reads it is freed
    ReadPtr a{nullptr, &archive_read_free};
    Manifest manifest;
    std::string manifest_text;
};

// Opens the bundle and reads its first entry, which must be manifest.json.
Result<Opened> open_bundle(const std::string& file) {
    Opened o;
    // Opened here, so that a file that cannot be read is told apart from one that is no bundle.
    o.fd.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!o.fd) {
        return errno_error("cannot read " + file);
    }
    o.a.reset(archive_read_new());
    archive_read_support_format_tar(o.a.get());
    // A bundle is written uncompressed, but one compressed for transport is still read.
    archive_read_support_filter_all(o.a.get());
    if (archive_read_open_fd(o.a.get(), o.fd.get(), 1 << 20) != ARCHIVE_OK) {
        return damaged(file, std::string("not a bundle (") + bundle_archive_error(o.a.get()) + ")");
    }
    archive_entry* e = nullptr;
    int r = archive_read_next_header(o.a.get(), &e);
    if (r == ARCHIVE_EOF) {
        return damaged(file, "empty archive, no manifest.json");
    }
    if (r < ARCHIVE_WARN) {
        return damaged(file, std::string("not a bundle (") + bundle_archive_error(o.a.get()) + ")");
    }
    std::string first = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (first != k_manifest_name) {
        return damaged(file, "the first entry is '" + first + "', not manifest.json (not a nodectl bundle)");
    }
    if (archive_entry_filetype(e) != AE_IFREG ||
        archive_entry_size(e) > static_cast<la_int64_t>(k_max_bundle_manifest)) {
        return damaged(file, "manifest.json is not a regular file of sensible size");
    }
    char buf[65536];
    for (;;) {
        la_ssize_t n = archive_read_data(o.a.get(), buf, sizeof buf);
        if (n < 0) {
            return damaged(file, std::string("manifest.json: ") + bundle_archive_error(o.a.get()));
        }
        if (n == 0) {
            break;
        }
        if (o.manifest_text.size() + static_cast<size_t>(n) > k_max_bundle_manifest) {
            return damaged(file, "manifest.json is larger than " + std::to_string(k_max_bundle_manifest) + " bytes");
        }
        o.manifest_text.append(buf, static_cast<size_t>(n));
    }
    auto parsed = detail::parse_manifest(o.manifest_text);
    if (!parsed) {
        return damaged(file, parsed.error().message);
    }
    o.manifest = std::move(parsed).value();
    o.manifest.digest = util::sha256_hex(o.manifest_text);
    return o;
}

// Before an extract writes a byte: what the manifest declares must fit under `root`, or nothing is
// written (each entry is then held to its declared size while it streams, in read_piece); then
// the manifest itself is written there.
Result<void> begin_extract(const Opened& o, const std::string& file, const std::string& root) {
    uint64_t declared = o.manifest_text.size();
    for (const auto& p : o.manifest.pieces) {
        if (p.size > UINT64_MAX - declared) {
            return damaged(file, "the manifest declares more bytes than can exist");
        }
        declared += p.size;
    }
    struct statvfs vfs {};
    if (::statvfs(root.c_str(), &vfs) == 0 && declared / vfs.f_frsize + 1 > static_cast<uint64_t>(vfs.f_bavail)) {
        uint64_t need_mib = declared / (1024 * 1024) + 1;
        uint64_t free_mib = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize / (1024 * 1024);
        return make_error(ErrorCode::io, file + ": the bundle needs " + std::to_string(need_mib) + " MiB; " + root +
                                             " has " + std::to_string(free_mib) + " MiB free");
    }
    auto path = TRY(prepare_path(root, std::string(k_manifest_name)));
    util::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        return errno_error("cannot write " + path);
    }
    return write_all(fd.get(), o.manifest_text.data(), o.manifest_text.size(), path);
}

// One entry's data, the entry `name` that the manifest lists as `piece`: held to the declared
// size and sha256, and with `root` set also written under it (synced).
Result<void> read_piece(archive* a, archive_entry* e, const std::string& file, const std::string& name,
                        const Piece& piece, const std::string& root, std::vector<char>& buf) {
    // The header's size is the tar's own claim; refuse a disagreement before reading a byte.
    if (archive_entry_size_is_set(e) && static_cast<uint64_t>(archive_entry_size(e)) != piece.size) {
        return damaged(file, "entry " + shell_quote(name) + " has " + std::to_string(archive_entry_size(e)) +
                                 " bytes; the manifest says " + std::to_string(piece.size));
    }
    std::string out_path;
    if (!root.empty()) {
        out_path = TRY(prepare_path(root, name));
    }
    // Only the execute bits are taken from the archive: nothing setuid, nothing writable by others.
    mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
    util::Fd out(root.empty() ? -1
                              : ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!root.empty() && !out) {
        return errno_error("cannot write " + out_path);
    }
    util::Sha256 sha;
    uint64_t size = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
        if (n < 0) {
            return damaged(file, "entry " + shell_quote(name) + " cannot be read: " + bundle_archive_error(a));
        }
        if (n == 0) {
            break;
        }
        // Checked before the bytes go anywhere: a small compressed bundle whose entry inflates
        // without end stops here, not when the disk is full.
        if (static_cast<uint64_t>(n) > piece.size - size) {
            return damaged(file, "entry " + shell_quote(name) + " has more than the " + std::to_string(piece.size) +
                                     " bytes the manifest says");
        }
        sha.update(buf.data(), static_cast<size_t>(n));
        size += static_cast<uint64_t>(n);
        if (out) {
            TRY_VOID(write_all(out.get(), buf.data(), static_cast<size_t>(n), out_path));
        }
    }
    if (size != piece.size) {
        return damaged(file, "entry " + shell_quote(name) + " has " + std::to_string(size) +
                                 " bytes; the manifest says " + std::to_string(piece.size));
    }
    if (auto digest = sha.final_hex(); digest != piece.sha256) {
        return damaged(file, "entry " + shell_quote(name) + " does not match its sha256 in the manifest (content " +
                                 digest.substr(0, 12) + "…, manifest " + piece.sha256.substr(0, 12) + "…)");
    }
    if (out && ::fsync(out.get()) != 0) {
        return errno_error("cannot sync " + out_path);
    }
    return Ok{};
}

// The pass over the pieces. With `root` set, each piece is also written under it.
Result<Manifest> scan(const std::string& file, const std::string& root) {
    auto o = TRY(open_bundle(file));
    archive* a = o.a.get();
    if (!root.empty()) {
        TRY_VOID(begin_extract(o, file, root));
    }
    std::map<std::string, const Piece*> pending;
    for (const auto& p : o.manifest.pieces) {
        pending.emplace(p.path, &p);
    }
    std::set<std::string> seen;
    std::vector<char> buf(1 << 20);
    for (;;) {
        archive_entry* e = nullptr;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r < ARCHIVE_WARN) {
            return damaged(file, std::string("damaged after the last good entry: ") + bundle_archive_error(a));
        }
        std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        if (seen.contains(name) || name == k_manifest_name) {
            return damaged(file, "entry " + shell_quote(name) + " appears twice");
        }
        auto it = pending.find(name);
        if (it == pending.end()) {
            return damaged(file, "entry " + shell_quote(name) + " is not listed in the manifest");
        }
        if (archive_entry_filetype(e) != AE_IFREG) {
            return damaged(file, "entry " + shell_quote(name) + " is a " + entry_type(archive_entry_filetype(e)) +
                                     "; a bundle holds only regular files");
        }
        const Piece& piece = *it->second;
        seen.insert(name);
        pending.erase(it);
        TRY_VOID(read_piece(a, e, file, name, piece, root, buf));
    }
    if (!pending.empty()) {
        std::string more = pending.size() > 1 ? " (and " + std::to_string(pending.size() - 1) + " more)" : "";
        return damaged(file, "entry " + shell_quote(pending.begin()->first) +
                                 " is listed in the manifest but absent from the bundle" + more);
    }
    return std::move(o.manifest);
}

// True when `dir` already holds the bundle whose manifest is `m`: the same manifest.json and
// every piece with its size. Contents were hashed when that extract was made.
bool holds(const std::string& dir, const Manifest& m) {
    auto text = util::read_file((fs::path(dir) / k_manifest_name).string());
    if (!text || util::sha256_hex(*text) != m.digest) {
        return false;
    }
    for (const auto& p : m.pieces) {
        std::error_code ec;
        auto path = fs::path(dir) / p.path;
        if (!fs::is_regular_file(fs::symlink_status(path, ec)) || fs::file_size(path, ec) != p.size || ec) {
            return false;
        }
    }
    return true;
}

void sync_dir(const fs::path& dir) {
    if (util::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); fd) {
        ::fsync(fd.get());
    }
}

}  // namespace

Result<Manifest> verify(const std::string& file) {
    return scan(file, "");
}

Result<Manifest> extract(const std::string& file, const std::string& dest_dir) {
    fs::path dest = fs::absolute(dest_dir).lexically_normal();
    if (dest.filename().empty()) {
        dest = dest.parent_path();
    }
    std::error_code ec;
    auto st = fs::symlink_status(dest, ec);
    bool exists = fs::exists(st);
    if (exists && !fs::is_directory(st)) {
        return make_error(ErrorCode::io, dest.string() + " exists and is not a directory");
    }
    if (exists) {
        auto o = TRY(open_bundle(file));
        if (holds(dest.string(), o.manifest)) {
            return std::move(o.manifest);
        }
    }
    fs::create_directories(dest.parent_path(), ec);
    if (ec) {
        return make_error(ErrorCode::io, "cannot create " + dest.parent_path().string() + ": " + ec.message());
    }
    std::string tmp = (dest.parent_path() / ("." + dest.filename().string() + ".partial.XXXXXX")).string();
    if (!::mkdtemp(tmp.data())) {
        return make_error(ErrorCode::io,
                          "cannot create a temporary dir beside " + dest.string() + ": " + std::strerror(errno));
    }
    auto remove_tmp = [&] { fs::remove_all(tmp, ec); };
    auto m = scan(file, tmp);
    if (!m) {
        remove_tmp();
        return m;
    }
    ::chmod(tmp.c_str(), 0755);
    // Every file was synced as it was written; the directories are synced by syncing the file system.
    if (util::Fd tfd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); tfd) {
        ::syncfs(tfd.get());
    }
    if (exists) {
        // Swap in one step, so dest_dir is at every moment either the old or the new content.
        if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) != 0) {
            auto e = errno_error("cannot replace " + dest.string());
            remove_tmp();
            return e;
        }
        remove_tmp();  // now the old content
    } else if (::rename(tmp.c_str(), dest.c_str()) != 0) {
        auto e = errno_error("cannot rename into " + dest.string());
        remove_tmp();
        return e;
    }
    sync_dir(dest.parent_path());
    return m;
}

}  // namespace nodectl::bundle

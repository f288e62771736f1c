// Layer writing. The tree is walked depth first with names in byte order (parents before
// children, the same order on every machine), every entry gets numeric owners from the tree,
// an mtime clamped to the build's epoch, and no atime/ctime; only security.capability is kept of
// the xattrs (ping and friends need it; overlayfs's trusted.* bookkeeping must not leak). In an
// overlayfs upper directory a 0/0 character device is a removed file and becomes `.wh.NAME`, and
// an opaque directory gets `DIR/.wh..wh..opq`, as the OCI layer spec says.
#include "modules/image/layer.hpp"

#include "util/digest.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace nodectl::image {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> sorted_names(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        return names;
    }
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            names.push_back(std::move(n));
        }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

std::string get_xattr(const std::string& path, const char* name) {
    char buf[4096];
    ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

struct Walker {
    TreeKind kind;
    int64_t epoch;
    std::vector<util::TarEntry>& out;
    std::vector<std::string>* sources;
    std::string lower;
    std::map<std::pair<dev_t, ino_t>, std::string> links;

    void push(util::TarEntry e, const std::string& source) {
        out.push_back(std::move(e));
        if (sources) {
            sources->push_back(source);
        }
    }

    void walk(const std::string& abs, const std::string& rel, bool keep_children) {
        for (const auto& name : sorted_names(abs)) {
            std::string path = abs + "/" + name;
            std::string entry_path = rel.empty() ? name : rel + "/" + name;
            struct stat st {};
            if (::lstat(path.c_str(), &st) != 0) {
                continue;
            }
            util::TarEntry e;
            e.path = entry_path;
            e.mode = st.st_mode & 07777;
            e.uid = st.st_uid;
            e.gid = st.st_gid;
            e.mtime = std::min<int64_t>(st.st_mtime, epoch);
            if (kind == TreeKind::upper && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
                util::TarEntry wh;
                wh.path = (rel.empty() ? "" : rel + "/") + ".wh." + name;
                wh.mode = 0;
                wh.mtime = e.mtime;
                push(std::move(wh), "");
                continue;
            }
            if (S_ISDIR(st.st_mode)) {
                e.type = util::TarEntry::Type::dir;
                push(e, "");
                bool opaque = kind == TreeKind::upper && (get_xattr(path, "trusted.overlay.opaque") == "y" ||
                                                          get_xattr(path, "user.overlay.opaque") == "y");
                if (opaque && !lower.empty()) {
                    struct stat below {};
                    opaque = ::lstat((lower + "/" + entry_path).c_str(), &below) == 0 && S_ISDIR(below.st_mode);
                }
                if (opaque) {
                    util::TarEntry wh;
                    wh.path = entry_path + "/.wh..wh..opq";
                    wh.mode = 0;
                    wh.mtime = e.mtime;
                    push(std::move(wh), "");
                }
                bool empty_here = kind == TreeKind::rootfs && rel.empty() &&
                                  (name == "dev" || name == "proc" || name == "sys" || name == "run" || name == "tmp");
                if (!empty_here) {
                    walk(path, entry_path, true);
                }
                continue;
            }
            (void)keep_children;
            if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = ::readlink(path.c_str(), target, sizeof target);
                if (n < 0) {
                    continue;
                }
                e.type = util::TarEntry::Type::symlink;
                e.link.assign(target, static_cast<size_t>(n));
                e.mode = 0777;
                push(std::move(e), "");
                continue;
            }
            if (S_ISREG(st.st_mode)) {
                if (st.st_nlink > 1) {
                    auto [it, fresh] = links.emplace(std::make_pair(st.st_dev, st.st_ino), entry_path);
                    if (!fresh) {
                        e.type = util::TarEntry::Type::hardlink;
                        e.link = it->second;
                        push(std::move(e), "");
                        continue;
                    }
                }
                e.type = util::TarEntry::Type::file;
                e.size = static_cast<uint64_t>(st.st_size);
                if (auto cap = get_xattr(path, "security.capability"); !cap.empty()) {
                    e.xattrs.emplace_back("security.capability", cap);
                }
                push(std::move(e), path);
                continue;
            }
            if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                e.type = S_ISCHR(st.st_mode) ? util::TarEntry::Type::chardev : util::TarEntry::Type::blockdev;
                e.dev_major = major(st.st_rdev);
                e.dev_minor = minor(st.st_rdev);
                push(std::move(e), "");
                continue;
            }
            if (S_ISFIFO(st.st_mode)) {
                e.type = util::TarEntry::Type::fifo;
                push(std::move(e), "");
            }
            // sockets are never part of an image
        }
    }
};

void remove_children(const fs::path& dir, bool (*keep)(const std::string&) = nullptr) {
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) {
        return;
    }
    for (const auto& name : sorted_names(dir.string())) {
        if (keep && keep(name)) {
            continue;
        }
        fs::remove_all(dir / name, ec);
    }
}

void remove_matching(const fs::path& dir, const std::string& suffix) {
    for (const auto& name : sorted_names(dir.string())) {
        if (name.size() > suffix.size() && name.ends_with(suffix)) {
            std::error_code ec;
            fs::remove(dir / name, ec);
        }
    }
}

util::Compression sink_compression(Compression c) {
    return c == Compression::zstd ? util::Compression::zstd : util::Compression::gzip;
}

// The blob a finished sink wrote: its digest, the digest of the tar inside (the diff id), size and type.
LayerBlob finished_blob(const util::CompressedSink& out, util::Sha256& diff, Compression c) {
    LayerBlob b;
    b.digest = "sha256:" + out.sha256();
    b.diff_id = "sha256:" + diff.final_hex();
    b.size = out.size();
    b.media_type = c == Compression::zstd ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                          : "application/vnd.oci.image.layer.v1.tar+gzip";
    return b;
}

}  // namespace

std::vector<util::TarEntry> tree_entries(const std::string& dir, TreeKind kind, int64_t epoch,
                                         std::vector<std::string>* sources, const std::string& lower) {
    std::vector<util::TarEntry> out;
    Walker w{kind, epoch, out, sources, lower, {}};
    w.walk(dir, "", true);
    return out;
}

void clean_tree(const std::string& dir) {
    fs::path root = dir;
    std::error_code ec;
    remove_children(root / "var/lib/apt/lists");
    remove_children(root / "var/cache/apt", [](const std::string& n) { return n == "archives"; });
    remove_children(root / "var/cache/apt/archives");
    remove_children(root / "var/log");
    fs::remove(root / "var/cache/ldconfig/aux-cache", ec);
    remove_matching(root / "var/cache/debconf", "-old");
    remove_matching(root / "var/lib/dpkg", "-old");
    fs::remove(root / "usr/sbin/policy-rc.d", ec);
    fs::remove(root / "etc/resolv.conf", ec);
    remove_children(root / "tmp");
}

Result<LayerBlob> write_layer(const std::string& dir, TreeKind kind, int64_t epoch, Compression compression,
                              const std::string& path, const std::string& lower) {
    std::vector<std::string> sources;
    auto entries = tree_entries(dir, kind, epoch, &sources, lower);
    std::string part = path + ".part";
    util::CompressedSink out;
    TRY_VOID(as_result(out.open(part, sink_compression(compression)), ErrorCode::io));
    util::Sha256 diff;
    util::TarWriter tar;
    // Every step of the layer, checked in order; the first failure removes the partial file.
    auto step = [&](util::Expected<void> done) -> Result<void> {
        if (!done) {
            ::unlink(part.c_str());
            return make_error(ErrorCode::io, "layer " + path + ": " + done.error());
        }
        return Ok{};
    };
    TRY_VOID(step(tar.open([&](const void* data, size_t n) {
        diff.update(data, n);
        return out.write(data, n);
    })));
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        TRY_VOID(step(e.type == util::TarEntry::Type::file && !sources[i].empty() ? tar.add_file(e, sources[i])
                                                                                  : tar.add(e)));
    }
    TRY_VOID(step(tar.close()));
    TRY_VOID(step(out.close()));
    if (::rename(part.c_str(), path.c_str()) != 0) {
        TRY_VOID(step(util::fail(std::string("cannot rename: ") + std::strerror(errno))));
    }
    LayerBlob b = finished_blob(out, diff, compression);
    b.entries = entries.size();
    return b;
}

Result<LayerBlob> recompress(const std::string& from, const std::string& to, Compression compression) {
    std::unique_ptr<archive, decltype(&archive_read_free)> in(archive_read_new(), &archive_read_free);
    archive_read_support_filter_all(in.get());
    archive_read_support_format_raw(in.get());
    archive_entry* e = nullptr;
    if (archive_read_open_filename(in.get(), from.c_str(), 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(in.get(), &e) != ARCHIVE_OK) {
        return make_error(ErrorCode::io, from + ": " + archive_error_string(in.get()));
    }
    std::string part = to + ".part";
    util::CompressedSink out;
    TRY_VOID(as_result(out.open(part, sink_compression(compression)), ErrorCode::io));
    util::Sha256 diff;
    std::vector<char> buf(1 << 20);
    for (;;) {
        la_ssize_t n = archive_read_data(in.get(), buf.data(), buf.size());
        if (n < 0) {
            ::unlink(part.c_str());
            return make_error(ErrorCode::io, from + ": " + archive_error_string(in.get()));
        }
        if (n == 0) {
            break;
        }
        diff.update(buf.data(), static_cast<size_t>(n));
        if (auto written = out.write(buf.data(), static_cast<size_t>(n)); !written) {
            ::unlink(part.c_str());
            return make_error(ErrorCode::io, to + ": " + written.error());
        }
    }
    auto closed = out.close();
    if (!closed || ::rename(part.c_str(), to.c_str()) != 0) {
        std::string why = closed ? std::strerror(errno) : closed.error();
        ::unlink(part.c_str());
        return make_error(ErrorCode::io, to + ": " + why);
    }
    return finished_blob(out, diff, compression);
}

}  // namespace nodectl::image

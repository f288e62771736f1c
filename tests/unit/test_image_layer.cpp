// The layer writer: entry order, clamped mtimes, numeric owners, whiteouts of an overlayfs upper
// directory, hard links, and that the same tree gives the same bytes.
#include "test_support.hpp"

#include "modules/image/layer.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace nodectl;
using nodectl::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void set_mtime(const std::string& p, int64_t t) {
    timeval tv[2] = {{static_cast<time_t>(t), 0}, {static_cast<time_t>(t), 0}};
    ::lutimes(p.c_str(), tv);
}

struct Read {
    std::string path;
    int type;
    int64_t mtime, uid, gid;
    std::string link;
    bool has_atime, has_ctime;
};

std::vector<Read> read_layer(const std::string& file) {
    std::vector<Read> out;
    archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    REQUIRE(archive_read_open_filename(a, file.c_str(), 10240) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char* hl = archive_entry_hardlink(e);
        out.push_back({archive_entry_pathname(e), static_cast<int>(archive_entry_filetype(e)), archive_entry_mtime(e),
                       archive_entry_uid(e), archive_entry_gid(e), hl ? hl : "", archive_entry_atime_is_set(e) != 0,
                       archive_entry_ctime_is_set(e) != 0});
    }
    archive_read_free(a);
    return out;
}

}  // namespace

TEST_CASE("image layer: sorted, clamped, numeric owners, no atime/ctime, hard links, same bytes twice") {
    TempDir t;
    auto root = t.path() / "tree";
    t.write("tree/b/z.txt", "z");
    t.write("tree/b/a.txt", "a");
    t.write("tree/a-file", "x");
    t.write("tree/B", "upper case sorts first");
    fs::create_hard_link(root / "b/a.txt", root / "b/link");
    fs::create_symlink("b/a.txt", root / "sym");
    REQUIRE(::lchown((root / "b/z.txt").c_str(), 999, 998) == 0);
    set_mtime((root / "a-file").string(), 100);  // older than the epoch: kept
    set_mtime((root / "b/z.txt").string(), 4000000000);  // newer: clamped

    auto blob = image::write_layer(root.string(), image::TreeKind::rootfs, 1000, image::Compression::gzip,
                                   t.file("layer.tar.gz"));
    REQUIRE_MESSAGE(blob.ok(), (blob.ok() ? "" : blob.error().message));
    CHECK(blob->media_type == "application/vnd.oci.image.layer.v1.tar+gzip");
    auto entries = read_layer(t.file("layer.tar.gz"));
    std::vector<std::string> paths;
    for (const auto& e : entries) {
        paths.push_back(e.path);
        CHECK(e.mtime <= 1000);
        CHECK_FALSE(e.has_atime);
        CHECK_FALSE(e.has_ctime);
    }
    const std::vector<std::string> want = {"B",      "a-file",  "b/", "b/a.txt",
                                           "b/link", "b/z.txt", "sym"};  // directories read back with a "/"
    CHECK_MESSAGE(paths == want, util::join(paths, " "));
    CHECK(entries[1].mtime == 100);
    CHECK(entries[5].mtime == 1000);
    CHECK(entries[5].uid == 999);
    CHECK(entries[5].gid == 998);
    CHECK(entries[0].uid == ::geteuid());
    CHECK(entries[4].link == "b/a.txt");  // the second name of the file is a hard link to the first

    // The gzip header carries no timestamp: the same tree, written later, is the same blob.
    ::sleep(1);
    auto again = image::write_layer(root.string(), image::TreeKind::rootfs, 1000, image::Compression::gzip,
                                    t.file("again.tar.gz"));
    REQUIRE(again.ok());
    CHECK(again->digest == blob->digest);
    CHECK(again->diff_id == blob->diff_id);
    auto head = util::read_file(t.file("layer.tar.gz")).value_or("");
    REQUIRE(head.size() > 10);
    CHECK(head[4] == 0);  // MTIME bytes 4..7 of the gzip header are zero
    CHECK(head[5] == 0);
    CHECK(head[6] == 0);
    CHECK(head[7] == 0);

    auto zst = image::write_layer(root.string(), image::TreeKind::rootfs, 1000, image::Compression::zstd,
                                  t.file("layer.tar.zst"));
    REQUIRE(zst.ok());
    CHECK(zst->diff_id == blob->diff_id);  // same tar, other compression
    CHECK(zst->media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
}

TEST_CASE("image layer: a rootfs keeps /dev, /proc, /run, /tmp empty") {
    TempDir t;
    t.write("tree/dev/null-ish", "");
    t.write("tree/run/pid", "1");
    t.write("tree/etc/x", "1");
    auto entries = image::tree_entries(t.file("tree"), image::TreeKind::rootfs, 1000);
    std::vector<std::string> paths;
    for (const auto& e : entries) {
        paths.push_back(e.path);
    }
    CHECK(paths == std::vector<std::string>{"dev", "etc", "etc/x", "run"});
}

TEST_CASE("image layer: overlayfs whiteouts become OCI whiteouts") {
    if (::geteuid() != 0) {
        return;  // mknod of a whiteout needs root
    }
    TempDir t;
    auto root = t.path() / "upper";
    fs::create_directories(root / "etc");
    REQUIRE(::mknod((root / "etc/issue.net").c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0);
    fs::create_directories(root / "var/opaque");
    t.write("upper/var/opaque/new", "n");
    bool opaque = ::setxattr((root / "var/opaque").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0;
    auto entries = image::tree_entries(root.string(), image::TreeKind::upper, 1000);
    std::vector<std::string> paths;
    for (const auto& e : entries) {
        paths.push_back(e.path);
        CHECK(e.xattrs.empty());  // overlayfs's trusted.* bookkeeping never reaches a layer
    }
    std::vector<std::string> want = {"etc", "etc/.wh.issue.net", "var", "var/opaque"};
    if (opaque) {
        want.push_back("var/opaque/.wh..wh..opq");
    }
    want.push_back("var/opaque/new");
    CHECK(paths == want);
    CHECK(entries[1].type == util::TarEntry::Type::file);
    CHECK(entries[1].size == 0);
}

TEST_CASE("image layer: clean_tree removes caches and logs") {
    TempDir t;
    t.write("r/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease", "x");
    t.write("r/var/cache/apt/pkgcache.bin", "x");
    t.write("r/var/cache/apt/archives/a.deb", "x");
    t.write("r/var/log/apt/history.log", "x");
    t.write("r/var/cache/ldconfig/aux-cache", "x");
    t.write("r/var/cache/debconf/config.dat-old", "x");
    t.write("r/var/cache/debconf/config.dat", "kept");
    t.write("r/var/lib/dpkg/status-old", "x");
    t.write("r/usr/sbin/policy-rc.d", "x");
    image::clean_tree(t.file("r"));
    auto entries = image::tree_entries(t.file("r"), image::TreeKind::upper, 1000);
    std::vector<std::string> files;
    for (const auto& e : entries) {
        if (e.type == util::TarEntry::Type::file) {
            files.push_back(e.path);
        }
    }
    CHECK(files == std::vector<std::string>{"var/cache/debconf/config.dat"});
    CHECK(fs::is_directory(t.file("r/var/cache/apt/archives")));
    CHECK(fs::is_directory(t.file("r/var/log")));
}

TEST_CASE("image layer: UTF-8 names and link targets are stored as bytes, whatever the locale") {
    TempDir t;
    t.write("tree/NetLock_Arany_=Class_Gold=_F\xc5\x91tan\xc3\xbas\xc3\xadtv\xc3\xa1ny.pem", "pem");
    std::filesystem::create_symlink("NetLock_Arany_=Class_Gold=_F\xc5\x91tan\xc3\xbas\xc3\xadtv\xc3\xa1ny.pem",
                                    t.path() / "tree/988a38cb.0");
    auto blob = image::write_layer(t.file("tree"), image::TreeKind::rootfs, 1000, image::Compression::gzip,
                                   t.file("layer.tar.gz"));
    REQUIRE_MESSAGE(blob.ok(), (blob.ok() ? "" : blob.error().message));
    auto text = util::read_file(t.file("layer.tar.gz"));
    REQUIRE(text);
    auto entries = image::tree_entries(t.file("tree"), image::TreeKind::rootfs, 1000);
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].link == "NetLock_Arany_=Class_Gold=_F\xc5\x91tan\xc3\xbas\xc3\xadtv\xc3\xa1ny.pem");
}

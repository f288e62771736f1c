// The offline bundle: small bundles made from temporary files (no apt), verified and extracted,
// then damaged in every way verify must notice; and the flat apt index built from a real .deb.
#include "modules/bundle/bundle.hpp"
#include "target/local_target.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>

namespace fs = std::filesystem;
using nodectl::testing::contains;
using nodectl::testing::TempDir;
namespace bundle = nodectl::bundle;

namespace {

const std::string k_k3s_bytes = "#!/bin/sh\necho fake k3s binary\n";
const std::string k_image_bytes = "an OCI image archive, for the test only: 0123456789abcdef";

// Inputs of a bundle: a profile with an include, a k3s release dir, an image.
struct Inputs {
    TempDir dir;
    std::string profile;
    std::string k3s_dir;
    std::string image;

    Inputs() {
        dir.write("profiles/inc/common.toml", "[base]\ntimezone = \"Etc/UTC\"\n");
        profile = dir.write("profiles/main.toml", "include = [\"inc/common.toml\"]\n[base]\nhostname = \"h\"\n");
        k3s_dir = dir.file("release");
        dir.write("release/k3s", k_k3s_bytes, 0755);
        dir.write("release/sha256sum-amd64.txt", util::sha256_hex(k_k3s_bytes) + "  k3s\n");
        dir.write("release/version", "v1.30.2+k3s1\n");
        image = dir.write("images/app.tar", k_image_bytes);
    }

    bundle::CreateOptions options(const std::string& out) const {
        bundle::CreateOptions o;
        o.out = out;
        o.profile = profile;
        o.k3s_dir = k3s_dir;
        o.images = {image};
        o.packages = std::vector<std::string>{};  // no apt in unit tests
        return o;
    }
};

struct Entry {
    std::string name;
    std::string data;
    int mode = 0644;
};

// Every entry of a tar, in order.
std::vector<Entry> read_entries(const std::string& file) {
    std::vector<Entry> out;
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    REQUIRE(archive_read_open_filename(a, file.c_str(), 65536) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        Entry entry{archive_entry_pathname(e), "", static_cast<int>(archive_entry_perm(e))};
        CHECK(archive_entry_uid(e) == 0);
        CHECK(archive_entry_gid(e) == 0);
        char buf[4096];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
            entry.data.append(buf, static_cast<size_t>(n));
        }
        out.push_back(std::move(entry));
    }
    archive_read_free(a);
    return out;
}

void write_entries(const std::string& file, const std::vector<Entry>& entries, bool gzip = false) {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip) {
        archive_write_add_filter_gzip(a);
    }
    REQUIRE(archive_write_open_filename(a, file.c_str()) == ARCHIVE_OK);
    for (const auto& en : entries) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, en.name.c_str());
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, static_cast<mode_t>(en.mode));
        archive_entry_set_size(e, static_cast<la_int64_t>(en.data.size()));
        REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
        REQUIRE(archive_write_data(a, en.data.data(), en.data.size()) == static_cast<la_ssize_t>(en.data.size()));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

// A file's bytes; the file must be readable.
std::string read_file_ok(const std::string& path) {
    auto text = util::read_file(path);
    REQUIRE_MESSAGE(text, (text ? "" : text.error()));
    return *text;
}

// Files and dirs directly in `dir`.
std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// A bundle of `in`, made as `out`/`name`; its path.
std::string made_bundle(const Inputs& in, const TempDir& out, const std::string& name = "b.tar") {
    std::string file = out.file(name);
    REQUIRE(bundle::create(in.options(file)).ok());
    return file;
}

// The entry called `name` (there must be one).
Entry& entry_named(std::vector<Entry>& entries, const std::string& name) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; });
    REQUIRE(it != entries.end());
    return *it;
}

// The bundle `file` with its entries changed by `change`, written again.
void rewrite_entries(const std::string& file, const std::function<void(std::vector<Entry>&)>& change) {
    auto entries = read_entries(file);
    change(entries);
    write_entries(file, entries);
}

// The bundle `file` with one byte of the image's bytes in it XORed with `mask`, in place.
void flip_image_byte(const std::string& file, size_t offset, char mask) {
    std::string bytes = read_file_ok(file);
    auto pos = bytes.find(k_image_bytes);
    REQUIRE(pos != std::string::npos);
    bytes[pos + offset] ^= mask;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

// A bundle whose verify must fail naming `entry`; extract must then leave no `dest`.
void expect_refused(const std::string& file, const std::string& entry, const std::string& why) {
    auto v = bundle::verify(file);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == nodectl::ErrorCode::damaged);
    CHECK(contains(v.error().message, "'" + entry + "'"));
    CHECK(contains(v.error().message, why));
    TempDir out;
    auto x = bundle::extract(file, out.file("dest"));
    REQUIRE_FALSE(x.ok());
    CHECK(contains(x.error().message, "'" + entry + "'"));
    CHECK(listing(out.path()).empty());  // neither dest nor a temporary dir beside it
}

}  // namespace

TEST_CASE("bundle: create, verify and extract round trip") {
    Inputs in;
    TempDir out;
    std::string file = out.file("b.tar");
    auto made = bundle::create(in.options(file));
    REQUIRE_MESSAGE(made.ok(), made.error().message);
    CHECK(listing(out.path()) == std::vector<std::string>{"b.tar"});  // no .part left

    auto entries = read_entries(file);
    REQUIRE(entries.size() == 7);
    CHECK(entries[0].name == "manifest.json");
    std::vector<std::string> names;
    for (size_t i = 1; i < entries.size(); ++i) {
        names.push_back(entries[i].name);
    }
    CHECK(names == std::vector<std::string>{"images/app.tar", "k3s/k3s", "k3s/sha256sum-amd64.txt", "k3s/version",
                                            "profile/inc/common.toml", "profile/main.toml"});
    CHECK(entries[2].mode == 0755);  // k3s keeps its execute bit
    CHECK(entries[1].mode == 0644);

    auto v = bundle::verify(file);
    REQUIRE_MESSAGE(v.ok(), v.error().message);
    const auto& m = *v;
    CHECK(m.digest == made->digest);
    CHECK(m.digest == util::sha256_hex(entries[0].data));
    CHECK(m.format == bundle::k_format_version);
    CHECK(m.nodectl_version == NODECTL_VERSION);
    CHECK(m.k3s_version == "v1.30.2+k3s1");
    CHECK(m.k3s_arch == "amd64");
    CHECK(m.k3s_binary() == std::optional<std::string>("k3s/k3s"));
    CHECK_FALSE(m.k3s_airgap_images().has_value());
    CHECK_FALSE(m.has_debs());
    CHECK(m.image_paths() == std::vector<std::string>{"images/app.tar"});
    CHECK(m.profile == "profile/main.toml");
    REQUIRE(m.find("images/app.tar"));
    CHECK(m.find("images/app.tar")->size == k_image_bytes.size());
    CHECK(m.find("images/app.tar")->sha256 == util::sha256_hex(k_image_bytes));
    CHECK(m.find("k3s/k3s")->kind == bundle::PieceKind::k3s);
    CHECK(m.find("profile/inc/common.toml")->kind == bundle::PieceKind::profile);
    CHECK(m.pieces.size() == 6);

    std::string dest = out.file("x/dest");
    auto x = bundle::extract(file, dest);
    REQUIRE_MESSAGE(x.ok(), x.error().message);
    CHECK(x->digest == m.digest);
    CHECK(read_file_ok(dest + "/images/app.tar") == k_image_bytes);
    CHECK(read_file_ok(dest + "/k3s/k3s") == k_k3s_bytes);
    CHECK(read_file_ok(dest + "/manifest.json") == entries[0].data);
    CHECK(read_file_ok(dest + "/profile/main.toml") == read_file_ok(in.profile));
    CHECK((fs::status(dest + "/k3s/k3s").permissions() & fs::perms::owner_exec) != fs::perms::none);
    CHECK(listing(out.file("x")) == std::vector<std::string>{"dest"});
    // The extracted profile loads, include and all.
    auto p = nodectl::load_profile(dest + "/" + m.profile);
    CHECK_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
}

TEST_CASE("bundle: the same inputs and SOURCE_DATE_EPOCH give the same bytes, dated that epoch") {
    Inputs in;
    TempDir out;
    ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    auto a = bundle::create(in.options(out.file("a.tar")));
    auto b = bundle::create(in.options(out.file("b.tar")));
    ::unsetenv("SOURCE_DATE_EPOCH");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->created == "2023-11-14T22:13:20Z");
    CHECK(read_file_ok(out.file("a.tar")) == read_file_ok(out.file("b.tar")));

    archive* ar = archive_read_new();
    archive_read_support_format_tar(ar);
    REQUIRE(archive_read_open_filename(ar, out.file("a.tar").c_str(), 65536) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    int n = 0;
    while (archive_read_next_header(ar, &e) == ARCHIVE_OK) {
        CHECK(archive_entry_mtime(e) == 1700000000);
        ++n;
    }
    archive_read_free(ar);
    CHECK(n == 7);
}

TEST_CASE("bundle: a changed byte in a piece is refused, naming the piece; extract leaves nothing") {
    Inputs in;
    TempDir out;
    std::string file = made_bundle(in, out);
    flip_image_byte(file, 10, 0x01);
    expect_refused(file, "images/app.tar", "does not match its sha256");
}

TEST_CASE("bundle: entries added, missing, of another size or out of order are refused, naming the entry") {
    struct Damage {
        const char* what;
        std::function<void(std::vector<Entry>&)> change;
        std::string entry, why;
    };
    const std::vector<Damage> damages = {
        {"an entry the manifest does not list",
         [](auto& entries) {
             entries.push_back({"images/smuggled.tar", "not in the manifest"});
         },
         "images/smuggled.tar", "not listed in the manifest"},
        {"an entry the manifest lists but the bundle lacks",
         [](auto& entries) { std::erase_if(entries, [](const Entry& e) { return e.name == "k3s/version"; }); },
         "k3s/version", "absent from the bundle"},
        {"a piece of another size", [](auto& entries) { entry_named(entries, "images/app.tar").data += "x"; },
         "images/app.tar", "the manifest says"},
        {"manifest.json not the first entry",
         [](auto& entries) {
             std::rotate(entries.begin(), entries.begin() + 1, entries.end());
             REQUIRE(entries.back().name == "manifest.json");
         },
         "images/app.tar", "not manifest.json"},
    };
    for (const auto& d : damages) {
        CAPTURE(d.what);
        Inputs in;
        TempDir out;
        std::string file = made_bundle(in, out);
        rewrite_entries(file, d.change);
        expect_refused(file, d.entry, d.why);
    }
}

TEST_CASE("bundle: a file that is not a tar is a damaged bundle; a file that cannot be read is not") {
    TempDir out;
    std::string file = out.write("b.tar", "not a tar at all");
    auto v = bundle::verify(file);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == nodectl::ErrorCode::damaged);

    auto missing = bundle::verify(out.file("nope.tar"));
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code != nodectl::ErrorCode::damaged);  // an unreadable file is not a damaged bundle
}

TEST_CASE("bundle: a manifest path that would escape the destination is refused") {
    Inputs in;
    TempDir out;
    std::string file = made_bundle(in, out);
    rewrite_entries(file, [](std::vector<Entry>& entries) {
        auto& manifest = entries[0].data;
        auto pos = manifest.find("\"images/app.tar\"");
        REQUIRE(pos != std::string::npos);
        manifest.replace(pos, 16, "\"../escaped.tar\"");
        entries[1].name = "../escaped.tar";
    });
    auto x = bundle::extract(file, out.file("dest"));
    REQUIRE_FALSE(x.ok());
    CHECK(contains(x.error().message, "unsafe or reserved path '../escaped.tar'"));
    CHECK_FALSE(fs::exists(out.file("escaped.tar")));
    CHECK_FALSE(fs::exists(out.file("dest")));
}

TEST_CASE("bundle: an existing extract of the same bundle is reused; another bundle replaces it") {
    Inputs in;
    TempDir out;
    std::string file = made_bundle(in, out);
    std::string dest = out.file("dest");
    REQUIRE(bundle::extract(file, dest).ok());
    std::string marker = dest + "/marker-left-by-the-test";
    std::ofstream(marker).close();

    auto again = bundle::extract(file, dest);
    REQUIRE(again.ok());
    CHECK(fs::exists(marker));  // not extracted a second time

    // A piece gone from the extract: the extract is made afresh.
    fs::remove(dest + "/k3s/version");
    REQUIRE(bundle::extract(file, dest).ok());
    CHECK_FALSE(fs::exists(marker));
    CHECK(read_file_ok(dest + "/k3s/version") == "v1.30.2+k3s1\n");
    std::ofstream(marker).close();

    // A different bundle replaces the old extract as a whole.
    in.dir.write("images/app.tar", "a newer image");
    std::string file2 = made_bundle(in, out, "b2.tar");
    auto replaced = bundle::extract(file2, dest);
    REQUIRE_MESSAGE(replaced.ok(), replaced.error().message);
    CHECK_FALSE(fs::exists(marker));
    CHECK(read_file_ok(dest + "/images/app.tar") == "a newer image");

    // A damaged bundle leaves the existing extract as it was.
    flip_image_byte(file, 3, 0x20);
    REQUIRE_FALSE(bundle::extract(file, dest).ok());
    CHECK(read_file_ok(dest + "/images/app.tar") == "a newer image");
    CHECK(listing(out.path()) == std::vector<std::string>{"b.tar", "b2.tar", "dest"});
}

TEST_CASE("bundle: a k3s dir whose checksum file disagrees, or without its binary, is refused") {
    Inputs in;
    TempDir out;
    in.dir.write("release/k3s", "a corrupted download", 0755);
    auto r = bundle::create(in.options(out.file("b.tar")));
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "but sha256sum-amd64.txt says"));
    fs::remove(in.dir.file("release/k3s"));
    r = bundle::create(in.options(out.file("b.tar")));
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "has no k3s"));
    CHECK(listing(out.path()).empty());
}

TEST_CASE("bundle: packages_for_profile follows the profile's sections, each package once") {
    auto profile = [](const char* text) { return nodectl::Profile(toml::parse(text), {}, ""); };
    CHECK(bundle::packages_for_profile(profile("")).empty());
    CHECK(bundle::packages_for_profile(profile("[base]\npackages = [\"curl\", \"sudo\"]\n")) ==
          std::vector<std::string>{"curl", "sudo"});
    auto hardened = bundle::packages_for_profile(profile("[base]\npackages = [\"curl\", \"sudo\"]\n[harden]\n"));
    CHECK(hardened == std::vector<std::string>{"curl", "sudo", "libpam-pwquality", "nftables", "auditd", "fail2ban",
                                               "python3-systemd", "unattended-upgrades", "systemd-timesyncd",
                                               "apparmor", "apparmor-utils", "aide", "aide-common",
                                               // harden.services.extra_packages' default
                                               "libpam-tmpdir", "apt-listchanges", "apt-show-versions", "debsums",
                                               "sysstat"});
    auto k3s = bundle::packages_for_profile(profile("[k3s]\n"));
    CHECK(k3s == std::vector<std::string>{"containerd", "runc", "containernetworking-plugins"});
    CHECK(bundle::packages_for_profile(profile("[runtime]\n")) == k3s);
}

namespace {

// Builds a real .deb with dpkg-deb; returns its path.
std::string build_deb(const TempDir& dir, const std::string& package, const std::string& version,
                      const std::string& compression) {
    std::string root = dir.file("src-" + package);
    dir.write("src-" + package + "/DEBIAN/control",
              "Package: " + package + "\nVersion: " + version +
                  "\nArchitecture: all\nMaintainer: nodectl tests <root@localhost>\n"
                  "Description: a package made by nodectl's unit tests\n");
    dir.write("src-" + package + "/usr/share/doc/" + package + "/README", "hello\n");
    std::string deb = dir.file("debs/" + package + ".deb");
    fs::create_directories(dir.file("debs"));
    auto r = nodectl::run_process({"dpkg-deb", "--root-owner-group", "-Z" + compression, "--build", root, deb}, "",
                                  std::chrono::seconds(60));
    REQUIRE(r.ok());
    REQUIRE_MESSAGE(r->exit_code == 0, r->err);
    return deb;
}

}  // namespace

TEST_CASE("bundle: read_deb reads the control file of .debs compressed with xz, gzip and zstd") {
    TempDir dir;
    for (std::string z : {"xz", "gzip", "zstd"}) {
        CAPTURE(z);
        std::string deb = build_deb(dir, "nodectl-test-" + z, "1:2.0-1", z);
        auto d = bundle::read_deb(deb);
        REQUIRE_MESSAGE(d.ok(), d.error().message);
        CHECK(d->package == "nodectl-test-" + z);
        CHECK(d->version == "1:2.0-1");
        CHECK(d->architecture == "all");
        CHECK(d->name == "nodectl-test-" + z + "_2.0-1_all.deb");  // no ':' in a file name
        CHECK(d->control.starts_with("Package: nodectl-test-" + z + "\n"));
        CHECK(d->control.ends_with("Description: a package made by nodectl's unit tests"));
        CHECK(d->size == fs::file_size(deb));
        CHECK(d->sha256 == util::sha256_file_hex(deb));
    }
    auto not_deb = bundle::read_deb(dir.write("x.deb", "!<arch>\nnothing here"));
    CHECK_FALSE(not_deb.ok());
}

TEST_CASE(
    "bundle: read_deb of a .deb whose control.tar libarchive rejects without a message is an error, not a crash") {
    // Found by fuzz_bundle: archive_error_string() was NULL and was appended to a std::string.
    auto deb = bundle::read_deb(NODECTL_SOURCE_DIR "/tests/fuzz/corpus/bundle/crash-null-archive-error.deb");
    REQUIRE_FALSE(deb.ok());
    CHECK(deb.error().message.find("control.tar.gz") != std::string::npos);
}

TEST_CASE("bundle: packages_index adds Filename, Size and SHA256, and apt reads it from a file: source") {
    TempDir dir;
    std::string deb = build_deb(dir, "nodectl-test-hello", "1.0-1", "xz");
    auto d = bundle::read_deb(deb);
    REQUIRE(d.ok());
    std::string index = bundle::packages_index({*d});
    CHECK(index == d->control + "\nFilename: ./nodectl-test-hello_1.0-1_all.deb\nSize: " + std::to_string(d->size) +
                       "\nSHA256: " + d->sha256 + "\n\n");

    // The repository as a bundle lays it out, read by apt without touching this machine's apt.
    std::string repo = dir.file("repo");
    fs::create_directories(repo);
    fs::copy_file(deb, repo + "/" + d->name);
    dir.write("repo/Packages", index);
    if (!nodectl::run_process({"apt-get", "--version"}, "", std::chrono::seconds(10)).ok()) {
        MESSAGE("apt-get not found: the apt half of this test is skipped");
        return;
    }
    dir.write("sources.list", "deb [trusted=yes] file:" + repo + " ./\n");
    dir.write("status", "");
    fs::create_directories(dir.file("lists/partial"));
    fs::create_directories(dir.file("archives/partial"));
    std::vector<std::string> apt = {"-o", "Dir::Etc::SourceList=" + dir.file("sources.list"),
                                    "-o", "Dir::Etc::SourceParts=/nonexistent",
                                    "-o", "Dir::State::Lists=" + dir.file("lists"),
                                    "-o", "Dir::State::status=" + dir.file("status"),
                                    "-o", "Dir::Cache::archives=" + dir.file("archives"),
                                    "-o", "Dir::Cache::pkgcache=",
                                    "-o", "Dir::Cache::srcpkgcache=",
                                    "-o", "Debug::NoLocking=1"};
    auto run = [&](std::vector<std::string> head) {
        head.insert(head.begin() + 1, apt.begin(), apt.end());
        auto r = nodectl::run_process(head, "", std::chrono::seconds(120));
        REQUIRE(r.ok());
        return *r;
    };
    auto update = run({"apt-get", "update"});
    REQUIRE_MESSAGE(update.exit_code == 0, (update.out + update.err));
    auto sim = run({"apt-get", "install", "--simulate", "-y", "nodectl-test-hello"});
    CHECK_MESSAGE(sim.exit_code == 0, (sim.out + sim.err));
    CHECK(contains(sim.out, "Inst nodectl-test-hello (1.0-1"));
    // A download goes through the index's Filename and checks Size and SHA256.
    auto get = run({"apt-get", "install", "--download-only", "-y", "nodectl-test-hello"});
    CHECK_MESSAGE(get.exit_code == 0, (get.out + get.err));

    // A wrong SHA256 in the index makes apt refuse the file: the index is what apt trusts.
    std::string wrong = index;
    wrong.replace(wrong.find(d->sha256), 4, "0000");
    dir.write("repo/Packages", wrong);
    fs::remove_all(dir.file("archives"));
    fs::create_directories(dir.file("archives/partial"));
    REQUIRE(run({"apt-get", "update"}).exit_code == 0);
    auto bad = run({"apt-get", "install", "--download-only", "-y", "nodectl-test-hello"});
    CHECK(bad.exit_code != 0);
    CHECK(contains(bad.err + bad.out, "Hash Sum mismatch"));
}

TEST_CASE("bundle: .debs from a dir become debs/NAME with an index the manifest lists") {
    TempDir dir;
    build_deb(dir, "nodectl-test-a", "1:1.0-1", "xz");
    build_deb(dir, "nodectl-test-b", "2.0", "gzip");
    bundle::CreateOptions o;
    o.out = dir.file("b.tar");
    o.deb_dir = dir.file("debs");
    o.packages = std::vector<std::string>{};
    auto made = bundle::create(o);
    REQUIRE_MESSAGE(made.ok(), made.error().message);
    auto v = bundle::verify(o.out);
    REQUIRE(v.ok());
    CHECK(v->has_debs());
    CHECK(v->deb_arch == "all");
    CHECK_FALSE(v->has_k3s());
    REQUIRE(v->find("debs/nodectl-test-a_1.0-1_all.deb"));
    CHECK(v->find("debs/nodectl-test-a_1.0-1_all.deb")->kind == bundle::PieceKind::deb);
    REQUIRE(v->find("debs/Packages"));
    CHECK(v->find("debs/Packages")->kind == bundle::PieceKind::index);
    TempDir x;
    REQUIRE(bundle::extract(o.out, x.file("d")).ok());
    std::string index = read_file_ok(x.file("d/debs/Packages"));
    CHECK(contains(index, "Filename: ./nodectl-test-a_1.0-1_all.deb\n"));
    CHECK(contains(index, "Filename: ./nodectl-test-b_2.0_all.deb\n"));
    CHECK(index.find("nodectl-test-a") < index.find("nodectl-test-b"));
}

TEST_CASE(
    "bundle: an entry larger than the manifest says stops before it is written (a small gzip bundle cannot fill the disk)") {
    Inputs in;
    TempDir out;
    std::string file = out.file("b.tar.gz");
    auto entries = read_entries(made_bundle(in, out));
    entry_named(entries, "images/app.tar").data.assign(64u << 20, '\0');  // 64 MiB of zeros: a few KiB compressed
    write_entries(file, entries, true);
    CHECK(fs::file_size(file) < (1u << 20));
    // A file system with 8 MiB left, as far as this process can tell: writing the entry in
    // full before checking its size fails with EFBIG instead of refusing the bundle.
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 8u << 20;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto x = bundle::extract(file, out.file("dest"));
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    REQUIRE_FALSE(x.ok());
    CHECK(x.error().code == nodectl::ErrorCode::damaged);
    CHECK(contains(x.error().message, "'images/app.tar'"));
    CHECK(contains(x.error().message, "the manifest says"));
    CHECK_FALSE(fs::exists(out.file("dest")));
}

TEST_CASE("bundle: a manifest declaring more than the disk holds is refused before anything is written") {
    Inputs in;
    TempDir out;
    std::string file = made_bundle(in, out);
    rewrite_entries(file, [](std::vector<Entry>& entries) {
        auto& manifest = entries[0].data;
        auto pos = manifest.find("\"size\": " + std::to_string(k_image_bytes.size()));
        REQUIRE(pos != std::string::npos);
        manifest.replace(pos, 8 + std::to_string(k_image_bytes.size()).size(), "\"size\": 1000000000000000");
    });
    auto x = bundle::extract(file, out.file("dest"));
    REQUIRE_FALSE(x.ok());
    CHECK(contains(x.error().message, "MiB free"));
    CHECK(listing(out.path()) == std::vector<std::string>{"b.tar"});
}

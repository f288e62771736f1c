// First boot's untrusted inputs: the stick (its config, signature, bundle and report are read
// and written only as regular files, never through links), what a signature binds (the bundle
// it pins, the source files it pins, the trust key it is checked with), and a stick that cannot
// be written.
#include "firstboot_support.hpp"
#include "test_support.hpp"

#include "modules/bundle/bundle.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <tuple>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::ed25519_pem;
using nodectl::testing::TempDir;

// ---------------------------------------------------------------- the stick is untrusted

namespace {

std::string slurp_file(const std::string& path) {
    auto t = util::read_file(path);
    return t ? *t : std::string("<unreadable>");
}

// A stick's files in a plain directory, as the mount point would show them.
firstboot::Source stick_source(const std::string& dir) {
    firstboot::Source s;
    s.kind = "USB stick";
    s.stick_root = dir;
    s.config = dir + "/nodectl.toml";
    s.shown = "LABEL=NODECTL (test):nodectl.toml";
    return s;
}

}  // namespace

TEST_CASE("firstboot: the report on the stick replaces links there, never writes through them") {
    TempDir d;
    auto victim = d.write("shadow", "root:$6$hash:19000::::::\n", 0600);
    auto victim2 = d.write("passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
    std::filesystem::create_directories(d.file("stick"));
    std::filesystem::create_symlink(victim, d.file("stick/nodectl-report.txt"));
    std::filesystem::create_symlink(victim2, d.file("stick/firstboot.json"));
    auto w = firstboot::write_report_files(d.file("stick"), "state: failed\n", "{}\n");
    REQUIRE_MESSAGE(w, (w ? "" : w.error().message));
    CHECK(slurp_file(victim) == "root:$6$hash:19000::::::\n");
    CHECK(slurp_file(victim2) == "root:x:0:0::/root:/bin/sh\n");
    CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(d.file("stick/nodectl-report.txt"))));
    CHECK(slurp_file(d.file("stick/nodectl-report.txt")) == "state: failed\n");
    CHECK(slurp_file(d.file("stick/firstboot.json")) == "{}\n");
    // A directory where the report goes is not replaced either.
    std::filesystem::remove(d.file("stick/nodectl-report.txt"));
    std::filesystem::create_directories(d.file("stick/nodectl-report.txt"));
    CHECK_FALSE(firstboot::write_report_files(d.file("stick"), "x", "{}"));
}

TEST_CASE("firstboot: the stick's config, signature and bundle are read only as regular files, never through links") {
    TempDir d;
    auto elsewhere = d.write("elsewhere.toml", "[base]\ntimezone = \"Etc/UTC\"\n");
    std::filesystem::create_directories(d.file("stick/bundle"));
    auto src = stick_source(d.file("stick"));

    std::filesystem::create_symlink(elsewhere, d.file("stick/nodectl.toml"));
    auto linked = firstboot::read_config(src);
    REQUIRE_FALSE(linked);
    CHECK(linked.error().message.find("symbolic link") != std::string::npos);

    std::filesystem::remove(d.file("stick/nodectl.toml"));
    d.write("stick/nodectl.toml", "[base]\ntimezone = \"Europe/Paris\"\n");
    auto plain = firstboot::read_config(src);
    REQUIRE_MESSAGE(plain, (plain ? "" : plain.error().message));
    CHECK(plain->config == "[base]\ntimezone = \"Europe/Paris\"\n");
    CHECK_FALSE(plain->signature);

    // A FIFO as the signature neither hangs nor is read.
    REQUIRE(::mkfifo(d.file("stick/nodectl.toml.sig").c_str(), 0644) == 0);
    auto fifo = firstboot::read_config(src);
    REQUIRE_FALSE(fifo);
    CHECK(fifo.error().message.find("not a regular file") != std::string::npos);
    std::filesystem::remove(d.file("stick/nodectl.toml.sig"));
    std::filesystem::create_symlink("/dev/zero", d.file("stick/nodectl.toml.sig"));
    CHECK_FALSE(firstboot::read_config(src));
    std::filesystem::remove(d.file("stick/nodectl.toml.sig"));

    // Bundles: a link is not a bundle; the one regular file is opened; two are an error.
    std::string name;
    std::filesystem::create_symlink("/dev/zero", d.file("stick/bundle/zero.bundle"));
    auto none = firstboot::open_stick_bundle(d.file("stick"), name);
    REQUIRE(none);
    CHECK_FALSE(*none);
    d.write("stick/bundle/site.bundle", "not really a bundle");
    auto one = firstboot::open_stick_bundle(d.file("stick"), name);
    REQUIRE(one);
    REQUIRE(*one);
    CHECK(name == "site.bundle");
    CHECK(slurp_file("/proc/self/fd/" + std::to_string(**one)) == "not really a bundle");
    d.write("stick/bundle/other.bundle", "x");
    CHECK_FALSE(firstboot::open_stick_bundle(d.file("stick"), name));
    // bundle/ itself a link: refused.
    std::filesystem::remove_all(d.file("stick/bundle"));
    std::filesystem::create_directories(d.file("real-bundles"));
    d.write("real-bundles/site.bundle", "x");
    std::filesystem::create_symlink(d.file("real-bundles"), d.file("stick/bundle"));
    CHECK_FALSE(firstboot::open_stick_bundle(d.file("stick"), name));
}

// ---------------------------------------------------------------- what a signature binds

namespace {

struct SignedStick {
    TempDir d;
    std::string priv, pub, trust;
    firstboot::Source src;

    SignedStick() {
        std::tie(priv, pub) = ed25519_pem();
        trust = d.write("trust.pub", pub);
        std::filesystem::create_directories(d.file("stick/bundle"));
        std::filesystem::create_directories(d.file("private"));
        src = stick_source(d.file("stick"));
        ::setenv("NODECTL_CACHE_DIR", d.file("cache").c_str(), 1);
    }
    ~SignedStick() { ::unsetenv("NODECTL_CACHE_DIR"); }

    void config(const std::string& text, bool sign = true) {
        d.write("stick/nodectl.toml", text);
        std::filesystem::remove(d.file("stick/nodectl.toml.sig"));
        if (sign) {
            auto sig = firstboot::sign(priv, text);
            REQUIRE(sig);
            d.write("stick/nodectl.toml.sig", *sig);
        }
    }
    // A bundle made from `profile_text`; returns its path and manifest sha256.
    std::pair<std::string, std::string> bundle(const std::string& name, const std::string& profile_text) {
        bundle::CreateOptions o;
        o.out = d.file(name);
        o.profile = d.write(name + ".toml", profile_text);
        o.packages = std::vector<std::string>{};
        auto m = bundle::create(o);
        REQUIRE_MESSAGE(m, (m ? "" : m.error().message));
        return {o.out, m->digest};
    }
    void put_on_stick(const std::string& bundle_file) {
        std::filesystem::remove_all(d.file("stick/bundle"));
        std::filesystem::create_directories(d.file("stick/bundle"));
        std::filesystem::copy_file(bundle_file, d.file("stick/bundle/site.bundle"));
        std::string name;
        auto fd = firstboot::open_stick_bundle(d.file("stick"), name);
        REQUIRE(fd);
        REQUIRE(*fd);
        src.bundle_fd = *fd;
        src.bundle = "/proc/self/fd/" + std::to_string(**fd);
        src.bundle_shown = "bundle/" + name;
    }
    Result<firstboot::Checked> check(firstboot::Status& st, bool with_key = true) {
        firstboot::CheckOptions o;
        o.trust_key = with_key ? trust : d.file("no-such-key.pub");
        o.private_parent = d.file("private");
        return firstboot::check_input(src, o, st);
    }
};

}  // namespace

TEST_CASE("firstboot: a signed config uses only the bundle it pins; an unpinned or other bundle is refused") {
    SignedStick s;
    auto [good, good_digest] = s.bundle("good.bundle", "[base]\ntimezone = \"Etc/UTC\"\n");
    auto [evil, evil_digest] = s.bundle("evil.bundle", "[base]\npackages = [\"backdoor\"]\n");
    REQUIRE(good_digest != evil_digest);

    // A reusable signed config that says nothing about bundles, and a crafted bundle beside it.
    s.config("[base]\ntimezone = \"Etc/UTC\"\n");
    s.put_on_stick(evil);
    firstboot::Status st;
    auto r = s.check(st);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "pins no bundle"));
    CHECK(st.signature_required);

    // The config pins the good bundle: the crafted one is refused before it is unpacked.
    s.config("[base]\ntimezone = \"Etc/UTC\"\n[firstboot]\nbundle_sha256 = \"" + good_digest + "\"\n");
    firstboot::Status st2;
    auto other = s.check(st2);
    REQUIRE_FALSE(other);
    CHECK(contains(other.error().message, "the config pins " + good_digest));
    CHECK_FALSE(std::filesystem::exists(s.d.file("cache/bundles/" + evil_digest.substr(0, 16))));

    s.put_on_stick(good);
    firstboot::Status st3;
    auto ok = s.check(st3);
    REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message));
    REQUIRE(ok->bundle);
    CHECK(ok->bundle->manifest.digest == good_digest);
    CHECK(st3.bundle_digest == good_digest);
    CHECK(st3.signature == "verified with " + s.trust);

    // Pinned but absent: refused (the machine would otherwise fetch from the network).
    std::filesystem::remove_all(s.d.file("stick/bundle"));
    s.src.bundle.clear();
    s.src.bundle_fd.reset();
    firstboot::Status st4;
    auto absent = s.check(st4);
    REQUIRE_FALSE(absent);
    CHECK(contains(absent.error().message, "pins the bundle"));

    // Without a trust key nothing is required (the stick is the operator's word).
    s.config("[base]\ntimezone = \"Etc/UTC\"\n", false);
    s.put_on_stick(evil);
    firstboot::Status st5;
    auto unsigned_ok = s.check(st5, false);
    REQUIRE_MESSAGE(unsigned_ok, (unsigned_ok ? "" : unsigned_ok.error().message));
    CHECK(st5.signature == "not required");
}

TEST_CASE("firstboot: a signed config's source files are pinned by sha256 and used from the checked bytes") {
    SignedStick s;
    s.d.write("stick/motd.txt", "welcome\n");
    std::string file_entry = "[[base.files]]\npath = \"/etc/motd\"\nsource = \"motd.txt\"\n";
    s.config(file_entry);
    firstboot::Status st;
    auto unpinned = s.check(st);
    REQUIRE_FALSE(unpinned);
    CHECK(contains(unpinned.error().message, "no sha256 pin"));

    std::string sum = util::sha256_hex("welcome\n");
    s.config(file_entry + "sha256 = \"" + sum + "\"\n");
    std::string dir;
    {
        firstboot::Status st2;
        auto ok = s.check(st2);
        REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message));
        auto used = ok->profile->table().at_path("base.files[0].source").value<std::string>();
        REQUIRE(used);
        CHECK(util::starts_with(*used, s.d.file("private") + "/"));
        CHECK(slurp_file(*used) == "welcome\n");
        // The stick changing afterwards changes nothing that is used.
        s.d.write("stick/motd.txt", "pwned\n");
        CHECK(slurp_file(*used) == "welcome\n");
        dir = std::filesystem::path(*used).parent_path().string();
        CHECK((std::filesystem::status(dir).permissions() & std::filesystem::perms::all) ==
              std::filesystem::perms::owner_all);
    }
    CHECK_FALSE(std::filesystem::exists(dir));  // the private copy goes with the check's result

    // A file that does not match its pin is refused.
    firstboot::Status st3;
    auto tampered = s.check(st3);
    REQUIRE_FALSE(tampered);
    CHECK(contains(tampered.error().message, "not the pinned " + sum));
}

TEST_CASE("firstboot: sign pins the bundle into the config and requires source pins") {
    TempDir d;
    ::setenv("NODECTL_CACHE_DIR", d.file("cache").c_str(), 1);
    bundle::CreateOptions o;
    o.out = d.file("b.bundle");
    o.profile = d.write("b.toml", "[base]\ntimezone = \"Etc/UTC\"\n");
    o.packages = std::vector<std::string>{};
    auto m = bundle::create(o);
    REQUIRE(m);
    auto cfg = d.write("site.toml", "# site\n[base]\ntimezone = \"Etc/UTC\"\n");
    auto pinned = firstboot::pin_for_signing(cfg, o.out);
    REQUIRE_MESSAGE(pinned, (pinned ? "" : pinned.error().message));
    CHECK(contains(*pinned, "# site\n[base]\n"));
    CHECK(slurp_file(cfg) == *pinned);
    auto p = load_profile(cfg);
    REQUIRE(p);
    CHECK(p->section("firstboot").str("bundle_sha256") == m->digest);
    auto again = firstboot::pin_for_signing(cfg, o.out);
    REQUIRE(again);
    CHECK(*again == *pinned);  // already pinned: unchanged

    d.write("motd.txt", "hi\n");
    auto with_source = d.write("src.toml", "[[base.files]]\npath = \"/etc/motd\"\nsource = \"motd.txt\"\n");
    auto refused = firstboot::pin_for_signing(with_source, "");
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.error().message, "sha256 = \"" + util::sha256_hex("hi\n") + "\""));
    auto wrong = d.write("wrong.toml", "[[base.files]]\npath = \"/etc/motd\"\nsource = \"motd.txt\"\nsha256 = \"" +
                                           std::string(64, 'a') + "\"\n");
    auto bad = load_profile(wrong);
    REQUIRE_FALSE(bad);
    CHECK(contains(bad.error().message, "not the pinned"));
    ::unsetenv("NODECTL_CACHE_DIR");
}

TEST_CASE("firstboot: usb prepare stops when a stick file cannot be written") {
    TempDir d;
    auto bin = d.write("nodectl", "#!/bin/sh\n", 0755);
    auto profile =
        d.write("site.toml", "[[base.files]]\npath = \"/etc/motd\"\ncontent = \"" + std::string(6000, 'm') + "\"\n");
    firstboot::UsbOptions o;
    o.image = d.file("stick.img");
    o.size = "40M";
    o.profile = profile;
    o.binary = bin;
    // Files larger than 4 KiB cannot be written by this process: nodectl.toml (6 KiB) fails.
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto r = firstboot::usb_prepare(o);
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "staging nodectl.toml for the stick"));
    CHECK_FALSE(std::filesystem::exists(o.image));
}

TEST_CASE("firstboot: a trust key that is there but cannot be read is an error, never 'no signature required'") {
    SignedStick s;
    s.config("[base]\ntimezone = \"Etc/UTC\"\n", false);  // unsigned
    firstboot::CheckOptions o;
    o.private_parent = s.d.file("private");

    // No trust key installed: an unsigned config is accepted, and the status says so.
    o.trust_key = s.d.file("no-such-key.pub");
    firstboot::Status none;
    auto accepted = firstboot::check_input(s.src, o, none);
    REQUIRE_MESSAGE(accepted, (accepted ? "" : accepted.error().message));
    CHECK_FALSE(none.signature_required);
    CHECK(none.signature == "not required");

    // A trust key that exists but cannot be read (here a directory: root reads any file) refuses,
    // before the unsigned config is looked at.
    std::filesystem::create_directories(s.d.file("key-dir.pub"));
    o.trust_key = s.d.file("key-dir.pub");
    firstboot::Status unreadable;
    auto refused = firstboot::check_input(s.src, o, unreadable);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::config);
    CHECK(contains(refused.error().message, "cannot read " + o.trust_key));
    CHECK(contains(refused.error().message, "Is a directory"));
    CHECK(unreadable.signature != "not required");
}

// First boot pieces that need no machine: the kernel command line, the status file, Ed25519
// signatures (against OpenSSL-made keys), the unit text, sizes, the node profile's secret rules,
// cloud-init rendering and device refusals.
#include "test_support.hpp"

#include "modules/bundle/bundle.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "modules/firstboot/node_profile.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <tuple>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::TempDir;

namespace {

std::pair<std::string, std::string> ed25519_pem() {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    REQUIRE(k);
    BIO* priv = BIO_new(BIO_s_mem());
    BIO* pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_bio_PUBKEY(pub, k);
    char* p = nullptr;
    long n = BIO_get_mem_data(priv, &p);
    std::string a(p, static_cast<size_t>(n));
    n = BIO_get_mem_data(pub, &p);
    std::string b(p, static_cast<size_t>(n));
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(k);
    return {a, b};
}

}  // namespace

TEST_CASE("firstboot: nodectl.config= on the kernel command line") {
    using firstboot::cmdline_config;
    CHECK(cmdline_config("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n") == "");
    CHECK(cmdline_config("root=/dev/sda1 nodectl.config=/boot/site.toml quiet\n") == "/boot/site.toml");
    CHECK(cmdline_config("nodectl.config=\"/boot/my site.toml\" ro") == "/boot/my site.toml");
    CHECK(cmdline_config("nodectl.config=/a nodectl.config=/b") == "/b");
    CHECK(cmdline_config("xnodectl.config=/a") == "");
}

TEST_CASE("firstboot: the status file round-trips and the report names the failing step") {
    firstboot::Status s;
    s.state = "failed";
    s.source = "USB stick";
    s.config = "LABEL=NODECTL (/dev/sdb):nodectl.toml";
    s.error = "base/packages: apt-get failed";
    s.started = "2026-12-01T08:00:00Z";
    firstboot::Attempt a;
    a.started = s.started;
    a.resumed_run = "abcd1234";
    a.steps.push_back({"base/hostname", "hostname", "done (resumed)", 0.0, ""});
    a.steps.push_back({"base/packages", "packages", "failed", 2.5, "apt-get failed"});
    s.attempts.push_back(a);
    auto back = firstboot::Status::from_json(s.to_json());
    CHECK(back.state == "failed");
    CHECK(back.source == "USB stick");
    REQUIRE(back.attempts.size() == 1);
    CHECK(back.attempts[0].resumed_run == "abcd1234");
    REQUIRE(back.attempts[0].steps.size() == 2);
    CHECK(back.attempts[0].steps[1].error == "apt-get failed");
    CHECK(back.attempts[0].steps[1].seconds == doctest::Approx(2.5));
    auto text = back.report_text("node1");
    CHECK(text.find("state:     failed") != std::string::npos);
    CHECK(text.find("FAIL") != std::string::npos);
    CHECK(text.find("resumed run abcd1234") != std::string::npos);
    CHECK(firstboot::Status::from_json("not json").state.empty());
    CHECK(firstboot::Status::from_json("{\"state\": 3, \"attempts\": 7}").state.empty());
    // Found by fuzz_firstboot: a field of the wrong type threw out of from_json, a huge pid was
    // undefined behaviour to convert. Both are read as absent.
    firstboot::Status odd;
    CHECK_NOTHROW(
        odd = firstboot::Status::from_json("{\"state\": \"x\", \"signature_required\": \"yes\", \"pid\": 1e300}"));
    CHECK(odd.state == "x");
    CHECK_FALSE(odd.signature_required);
    CHECK(odd.pid == 0);
}

TEST_CASE("firstboot: status of a state directory (not started, running, done)") {
    TempDir d;
    CHECK(firstboot::observe(d.path().string()).state == firstboot::State::not_started);
    firstboot::Status s;
    s.state = "running";
    REQUIRE(firstboot::write_status(s, d.path().string()));
    // Nobody holds the lock: the writer died, the run is interrupted (it resumes at next start).
    CHECK(firstboot::observe(d.path().string()).state == firstboot::State::interrupted);
    s.state = "failed";
    REQUIRE(firstboot::write_status(s, d.path().string()));
    CHECK(firstboot::observe(d.path().string()).state == firstboot::State::failed);
    d.write("var/lib/nodectl/firstboot.done", "done 2026-12-01\n");
    auto seen = firstboot::observe(d.path().string());
    CHECK(seen.state == firstboot::State::done);
    CHECK(seen.done_line == "done 2026-12-01");
}

TEST_CASE("firstboot: Ed25519 signatures, raw and base64; tampering and the wrong key fail") {
    auto [priv, pub] = ed25519_pem();
    auto [priv2, pub2] = ed25519_pem();
    std::string config = "[base]\ntimezone = \"Etc/UTC\"\n";
    auto sig = firstboot::sign(priv, config);
    REQUIRE(sig);
    CHECK(sig->size() == 64);
    CHECK(firstboot::verify_signature(pub, config, *sig));
    CHECK_FALSE(firstboot::verify_signature(pub, config + " ", *sig));
    CHECK_FALSE(firstboot::verify_signature(pub2, config, *sig));
    std::string flipped = *sig;
    flipped[10] ^= 1;
    CHECK_FALSE(firstboot::verify_signature(pub, config, flipped));
    // base64 of the same 64 bytes (what user-data or a text editor may carry)
    unsigned char b64[100];
    int n = EVP_EncodeBlock(b64, reinterpret_cast<const unsigned char*>(sig->data()), 64);
    CHECK(firstboot::verify_signature(pub, config,
                                      std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n)) + "\n"));
    CHECK_FALSE(firstboot::verify_signature(pub, config, "short"));
    CHECK(firstboot::check_public_key(pub));
    CHECK_FALSE(firstboot::check_public_key(priv));
    CHECK_FALSE(firstboot::check_public_key("junk"));
    CHECK_FALSE(firstboot::sign(pub, config));
}

TEST_CASE("firstboot: the unit in systemd/ is the one install writes") {
    auto file = util::read_file(std::string(NODECTL_SOURCE_DIR) + "/systemd/nodectl-firstboot.service");
    REQUIRE(file);
    CHECK(*file == firstboot::k_unit_text);
    CHECK(file->find("ConditionPathExists=!/var/lib/nodectl/firstboot.done") != std::string::npos);
    CHECK(file->find("Type=oneshot") != std::string::npos);
    CHECK(file->find("After=network-online.target") != std::string::npos);
}

TEST_CASE("firstboot: install into an image root") {
    TempDir d;
    d.write("root/etc/hostname", "x\n");
    d.write("bin/nodectl", "#!/bin/sh\necho fake\n", 0755);
    auto [priv, pub] = ed25519_pem();
    auto key = d.write("fleet.pub", pub);
    firstboot::InstallOptions o;
    o.root = d.file("root");
    o.binary = d.file("bin/nodectl");
    o.trust_key = key;
    auto did = firstboot::install(o);
    REQUIRE_MESSAGE(did, (did ? "" : did.error().message));
    CHECK(util::read_file(d.file("root/usr/local/bin/nodectl")) == util::read_file(d.file("bin/nodectl")));
    CHECK(util::read_file(d.file("root/etc/nodectl/firstboot-trust.pub")) == pub);
    CHECK(std::filesystem::read_symlink(
              d.file("root/etc/systemd/system/multi-user.target.wants/nodectl-firstboot.service")) ==
          "/etc/systemd/system/nodectl-firstboot.service");
    auto again = firstboot::install(o);
    REQUIRE(again);
    for (const auto& line : *again) {
        CHECK(line.rfind("unchanged", 0) == 0);
    }
    o.trust_key = d.write("bad.pub", priv);
    CHECK_FALSE(firstboot::install(o));
    o.trust_key.clear();
    o.root = d.file("nothing-here");
    CHECK_FALSE(firstboot::install(o));
}

TEST_CASE("firstboot: sizes") {
    CHECK(firstboot::parse_size("2G").value() == 2ULL << 30);
    CHECK(firstboot::parse_size("512M").value() == 512ULL << 20);
    CHECK(firstboot::parse_size("1500K").value() == 1500ULL * 1024);
    CHECK(firstboot::parse_size("4096").value() == 4096);
    CHECK_FALSE(firstboot::parse_size("2T"));
    CHECK_FALSE(firstboot::parse_size("big"));
    CHECK_FALSE(firstboot::parse_size(""));
    // Before parse_uint: std::stoull took "-1" as 16 EiB and let a count times its unit wrap around.
    CHECK_FALSE(firstboot::parse_size("-1"));
    CHECK_FALSE(firstboot::parse_size(" 1G"));
    CHECK_FALSE(firstboot::parse_size("17179869184G"));  // 2^34 GiB = 2^64 bytes: wrapped to 0
    CHECK_FALSE(firstboot::parse_size("99999999999999999999"));
    CHECK_FALSE(firstboot::parse_size("G"));
    CHECK(firstboot::parse_size("17179869183G").value() == 17179869183ULL << 30);
}

TEST_CASE("firstboot: node profile keeps secrets as references unless asked") {
    TempDir d;
    d.write("token", "K10abc::server:secret\n", 0600);
    d.write("motd.txt", "hello\n");
    d.write("key.txt", "private\n", 0600);
    d.write("common.toml", "[base]\ntimezone = \"Etc/UTC\"\n");
    auto path = d.write("site.toml",
                        "include = [\"common.toml\"]\n"
                        "[[base.files]]\npath = \"/etc/motd\"\nsource = \"motd.txt\"\n"
                        "[[base.files]]\npath = \"/etc/key\"\nsource = \"key.txt\"\nsensitive = true\nmode = \"0600\"\n"
                        "[k3s]\nrole = \"agent\"\nserver_url = \"https://198.18.0.2:6443\"\ntoken = { file = \"" +
                            d.file("token") + "\" }\n");
    auto p = load_profile(path);
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    auto np = firstboot::node_profile(*p, path, false);
    REQUIRE_MESSAGE(np, (np ? "" : np.error().message));
    CHECK_FALSE(np->verbatim);
    CHECK(np->text.find("hello") != std::string::npos);  // not secret: inlined
    CHECK(np->text.find("private") == std::string::npos);  // secret: by reference
    CHECK(np->text.find("K10abc") == std::string::npos);
    CHECK(np->secret_files.empty());
    CHECK(np->references.size() == 2);
    auto inl = firstboot::node_profile(*p, path, true);
    REQUIRE(inl);
    CHECK(inl->text.find("private") != std::string::npos);
    REQUIRE(inl->secret_files.size() == 1);
    CHECK(inl->secret_files[0].second == "K10abc::server:secret\n");

    auto inline_secret =
        d.write("inline.toml", "[[base.files]]\npath = \"/etc/x\"\ncontent = \"s3cr3t\"\nsensitive = true\n");
    auto q = load_profile(inline_secret);
    REQUIRE(q);
    auto refused = firstboot::node_profile(*q, inline_secret, false);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("inline.toml:3:") != std::string::npos);
    CHECK(refused.error().message.find("s3cr3t") == std::string::npos);

    auto single = d.write("single.toml", "# comment kept\n[base]\ntimezone = \"Etc/UTC\"\n");
    auto r = load_profile(single);
    REQUIRE(r);
    auto v = firstboot::node_profile(*r, single, false);
    REQUIRE(v);
    CHECK(v->verbatim);
    CHECK(v->text == "# comment kept\n[base]\ntimezone = \"Etc/UTC\"\n");
}

TEST_CASE("firstboot: cloud-init render") {
    TempDir d;
    auto path = d.write("site.toml", "[base]\ntimezone = \"Etc/UTC\"\n");
    firstboot::RenderOptions o;
    o.profile = path;
    o.binary_url = "http://198.18.80.1:8080/nodectl";
    o.binary_sha256 = std::string(64, 'a');
    auto y = firstboot::render_cloud_init(o);
    REQUIRE_MESSAGE(y, (y ? "" : y.error().message));
    CHECK(y->rfind("#cloud-config\n", 0) == 0);
    CHECK(y->find("/etc/nodectl/profile.toml") != std::string::npos);
    CHECK(y->find("timezone = \"Etc/UTC\"") != std::string::npos);
    CHECK(y->find("sha256sum -c") != std::string::npos);
    CHECK(y->find("[/usr/local/bin/nodectl, firstboot]") != std::string::npos);
    o.binary_sha256 = "abc";
    CHECK_FALSE(firstboot::render_cloud_init(o));
    o.binary_sha256 = std::string(64, 'a');
    o.binary_url = "ftp://x";
    CHECK_FALSE(firstboot::render_cloud_init(o));
    o.binary_url.clear();
    o.binary_preinstalled = true;
    auto pre = firstboot::render_cloud_init(o);
    REQUIRE(pre);
    CHECK(pre->find("sha256sum") == std::string::npos);
}

TEST_CASE("firstboot: devices that must not be erased") {
    CHECK(firstboot::refuse_device("/dev/null").find("not a block device") != std::string::npos);
    CHECK_FALSE(firstboot::refuse_device("/nonexistent/dev").empty());
    // The disk holding / (when / is on a block device here) is always refused.
    struct stat st {};
    REQUIRE(::stat("/", &st) == 0);
    std::string dev = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::error_code ec;
    auto sys = std::filesystem::canonical(dev, ec);
    if (!ec) {
        auto why = firstboot::refuse_device("/dev/" + sys.filename().string());
        CHECK(why.find("running system") != std::string::npos);
    }
}

TEST_CASE("firstboot: a bundle for a hardening profile carries the hardening services' extra packages") {
    auto p = nodectl::testing::profile_from("[harden]\nrole = \"standalone\"\n");
    auto pkgs = bundle::packages_for_profile(p);
    for (const char* want : {"nftables", "auditd", "libpam-tmpdir", "debsums", "sysstat"}) {
        CHECK_MESSAGE(std::find(pkgs.begin(), pkgs.end(), want) != pkgs.end(), want);
    }
}

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

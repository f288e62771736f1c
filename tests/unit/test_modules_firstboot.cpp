// First boot pieces that need no machine: the kernel command line, the status file, Ed25519
// signatures (against OpenSSL-made keys), the unit text, sizes, the node profile's secret rules,
// cloud-init rendering and device refusals.
#include "firstboot_support.hpp"
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
using nodectl::testing::ed25519_pem;
using nodectl::testing::TempDir;

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

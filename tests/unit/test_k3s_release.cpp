// k3s releases fetched from release_server.py on 127.0.0.1 into a cache, verified with sha256.
#include "release_server.hpp"
#include "result_checks.hpp"
#include "test_support.hpp"

#include "modules/k3s/release.hpp"
#include "modules/k3s/steps.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

using nodectl::ErrorCode;
using nodectl::testing::check_error;
using nodectl::testing::fast_http;
using nodectl::testing::k_release_version;
using nodectl::testing::pattern_bytes;
using nodectl::testing::ReleaseServer;
using nodectl::testing::TempDir;
using nodectl::testing::value_ok;
namespace fs = std::filesystem;
namespace k3s = nodectl::k3s;

namespace {

const std::string k_base = "/releases/download/v1.31.4%2Bk3s1/";

// A release on the server side (srv/<version>/) and an empty cache.
struct Fixture {
    TempDir tmp;
    std::string binary = pattern_bytes(150000, 2463534242u);
    std::string images = pattern_bytes(90000, 88675123u);
    std::string binary_sha = util::sha256_hex(binary);
    std::string images_sha = util::sha256_hex(images);
    std::string cache = tmp.file("cache");
    std::string cache_dir = tmp.file("cache/" + k_release_version + "/amd64");

    Fixture() {
        std::string dir = "srv/" + k_release_version + "/";
        tmp.write(dir + "k3s", binary, 0755);
        tmp.write(dir + "k3s-airgap-images-amd64.tar.zst", images);
        tmp.write(dir + "sha256sum-amd64.txt", binary_sha + "  k3s\n" + images_sha +
                                                   "  k3s-airgap-images-amd64.tar.zst\n" +
                                                   util::sha256_hex("images list") + "  k3s-images.txt\n");
    }
    std::vector<std::string> args(std::vector<std::string> extra = {}) const {
        std::vector<std::string> a = {"--root", tmp.file("srv"), "--channel", "stable=" + k_release_version};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    k3s::ReleaseRequest request(const ReleaseServer& server, int attempts = 4) const {
        k3s::ReleaseRequest r;
        r.version = k_release_version;
        r.arch = "amd64";
        r.release_url = server.url("/releases/download");
        r.channel_url = server.url("/channels");
        r.cache_dir = cache;
        r.allow_insecure_http = true;  // the server is plain http on loopback
        r.http = fast_http(attempts);
        return r;
    }
    std::vector<std::string> cached_files() const {
        std::vector<std::string> names;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
            names.push_back(e.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        return names;
    }
};

}  // namespace

TEST_CASE("fetch_release: a good checksum installs the binary in the cache") {
    Fixture f;
    ReleaseServer server(f.args());
    auto r = value_ok(k3s::fetch_release(f.request(server)));
    CHECK(r.version == k_release_version);
    CHECK(r.arch == "amd64");
    CHECK(r.binary_path == f.cache_dir + "/k3s");
    CHECK(r.binary_sha256 == f.binary_sha);
    CHECK(r.sha256_file_path == f.cache_dir + "/sha256sum-amd64.txt");
    CHECK(util::read_file(r.binary_path) == f.binary);
    CHECK(r.airgap_images_path.empty());
    CHECK(r.airgap_images_sha256.empty());
    CHECK(f.cached_files() == std::vector<std::string>{"k3s", "sha256sum-amd64.txt", "sha256sum-amd64.txt.origin"});
    CHECK((fs::status(r.binary_path).permissions() & fs::perms::owner_exec) != fs::perms::none);
    // The version goes into the URL percent-encoded: '+' is %2B.
    CHECK(server.requests(k_base + "k3s") == 1);
    CHECK(server.requests(k_base + "sha256sum-amd64.txt") == 1);
    CHECK(server.total_requests() == 2);
}

TEST_CASE("fetch_release: airgap images on request") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.airgap_images = true;
    auto r = value_ok(k3s::fetch_release(req));
    CHECK(r.airgap_images_path == f.cache_dir + "/k3s-airgap-images-amd64.tar.zst");
    CHECK(r.airgap_images_sha256 == f.images_sha);
    CHECK(util::read_file(r.airgap_images_path) == f.images);
    CHECK(util::read_file(r.binary_path) == f.binary);
}

TEST_CASE("fetch_release: a bad checksum names both hashes and leaves nothing in the cache") {
    Fixture f;
    ReleaseServer server(f.args({"--corrupt", "k3s"}));
    std::string served = f.binary;
    served[0] = static_cast<char>(served[0] ^ 0xff);
    check_error(k3s::fetch_release(f.request(server)), ErrorCode::io,
                {f.binary_sha, util::sha256_hex(served), server.url(k_base + "k3s"), "refusing to install"});
    CHECK_FALSE(fs::exists(f.cache_dir + "/k3s"));
    CHECK_FALSE(fs::exists(f.cache_dir + "/k3s.part"));
    CHECK(f.cached_files() == std::vector<std::string>{"sha256sum-amd64.txt", "sha256sum-amd64.txt.origin"});
}

TEST_CASE("fetch_release: a download truncated once is retried and succeeds") {
    Fixture f;
    ReleaseServer server(f.args({"--truncate-first", "1"}));
    auto r = value_ok(k3s::fetch_release(f.request(server)));
    CHECK(server.requests(k_base + "k3s") == 2);
    CHECK(util::read_file(r.binary_path) == f.binary);
    CHECK(f.cached_files() == std::vector<std::string>{"k3s", "sha256sum-amd64.txt", "sha256sum-amd64.txt.origin"});
}

TEST_CASE("fetch_release: a download truncated on every try fails cleanly") {
    Fixture f;
    ReleaseServer server(f.args({"--truncate-first", "100"}));
    check_error(k3s::fetch_release(f.request(server, 3)), ErrorCode::io, {"truncated", server.url(k_base + "k3s")});
    CHECK(server.requests(k_base + "k3s") == 3);
    CHECK(f.cached_files() == std::vector<std::string>{"sha256sum-amd64.txt", "sha256sum-amd64.txt.origin"});
}

TEST_CASE("resolve_version: a channel resolves through its redirect") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.version.clear();
    req.channel = "stable";
    auto v = value_ok(k3s::resolve_version(req));
    CHECK(v == k_release_version);
    CHECK(server.requests("/channels/stable") == 1);

    auto r = value_ok(k3s::fetch_release(req));
    CHECK(r.version == k_release_version);
    CHECK(util::read_file(f.cache_dir + "/k3s") == f.binary);
}

TEST_CASE("resolve_version: errors") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);

    req.version = "v1.30.0+k3s1";  // a version wins over a channel, and costs no request
    req.channel = "stable";
    auto given = value_ok(k3s::resolve_version(req));
    CHECK(given == "v1.30.0+k3s1");
    CHECK(server.total_requests() == 0);

    req.channel.clear();
    for (std::string bad : {"1.31.4", "v1.31/../../etc", "latest", "v1.31.4 k3s1"}) {
        req.version = bad;
        check_error(k3s::resolve_version(req), ErrorCode::config, {bad});
    }

    req.version.clear();
    check_error(k3s::resolve_version(req), ErrorCode::config);

    req.channel = "../stable";
    check_error(k3s::resolve_version(req), ErrorCode::config);

    req.channel = "nope";
    check_error(k3s::resolve_version(req), ErrorCode::io, {"HTTP 404", "nope"});
    CHECK(server.total_requests() == 1);  // a 404 is not retried
}

TEST_CASE("fetch_release: a second fetch with the cache present makes no request") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.airgap_images = true;
    auto first = value_ok(k3s::fetch_release(req));
    int after_first = server.total_requests();
    CHECK(after_first == 3);

    auto second = value_ok(k3s::fetch_release(req));
    CHECK(server.total_requests() == after_first);
    CHECK(second.binary_path == first.binary_path);
    CHECK(second.airgap_images_path == first.airgap_images_path);
    CHECK(second.binary_sha256 == f.binary_sha);

    // A damaged cached binary is fetched again (only it), and the cache is whole afterwards.
    f.tmp.write("cache/" + k_release_version + "/amd64/k3s", "damaged");
    auto third = value_ok(k3s::fetch_release(req));
    CHECK(server.total_requests() == after_first + 1);
    CHECK(server.requests(k_base + "k3s") == 2);
    CHECK(util::read_file(third.binary_path) == f.binary);
}

TEST_CASE("fetch_release: request errors are found before any download") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.arch = "riscv64";
    check_error(k3s::fetch_release(req), ErrorCode::config, {"riscv64"});

    req = f.request(server);
    req.cache_dir.clear();
    check_error(k3s::fetch_release(req), ErrorCode::config);
    CHECK(server.total_requests() == 0);

    // arm64 is not published by this fake release: the sha256sum file is a 404.
    req = f.request(server);
    req.arch = "arm64";
    check_error(k3s::fetch_release(req), ErrorCode::io, {"sha256sum-arm64.txt", "HTTP 404"});
}

TEST_CASE("fetch_release: other architectures use their release names") {
    Fixture f;
    std::string arm = pattern_bytes(5000, 42u);
    f.tmp.write("srv/" + k_release_version + "/k3s-armhf", arm);
    f.tmp.write("srv/" + k_release_version + "/sha256sum-arm.txt", util::sha256_hex(arm) + " *k3s-armhf\n");
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.arch = "arm";
    auto r = value_ok(k3s::fetch_release(req));
    CHECK(r.binary_path == f.cache + "/" + k_release_version + "/arm/k3s-armhf");
    CHECK(util::read_file(r.binary_path) == arm);

    // Airgap images this release does not list: a configuration error, nothing downloaded.
    req.airgap_images = true;
    check_error(k3s::fetch_release(req), ErrorCode::config, {"k3s-airgap-images-arm.tar.zst"});
}

TEST_CASE("release_from_dir: a cache directory reads back as a release") {
    Fixture f;
    {
        ReleaseServer server(f.args());
        auto req = f.request(server);
        req.airgap_images = true;
        value_ok(k3s::fetch_release(req));
    }
    auto r = value_ok(k3s::release_from_dir(f.cache_dir, "amd64"));
    CHECK(r.version == k_release_version);
    CHECK(r.arch == "amd64");
    CHECK(r.binary_path == f.cache_dir + "/k3s");
    CHECK(r.binary_sha256 == f.binary_sha);
    CHECK(r.airgap_images_path == f.cache_dir + "/k3s-airgap-images-amd64.tar.zst");
    CHECK(r.airgap_images_sha256 == f.images_sha);
    CHECK(r.sha256_file_path == f.cache_dir + "/sha256sum-amd64.txt");

    // Copied elsewhere (an offline bundle): still a release, without a version in its path.
    fs::create_directories(f.tmp.file("bundle/k3s"));
    fs::copy(f.cache_dir, f.tmp.file("bundle/k3s"), fs::copy_options::recursive);
    auto bundle = value_ok(k3s::release_from_dir(f.tmp.file("bundle/k3s"), "amd64"));
    CHECK(bundle.version.empty());
    CHECK(util::read_file(bundle.binary_path) == f.binary);

    SUBCASE("a tampered binary is refused") {
        f.tmp.write("cache/" + k_release_version + "/amd64/k3s", f.binary + "x");
        check_error(k3s::release_from_dir(f.cache_dir, "amd64"), ErrorCode::io,
                    {"refusing to install", f.binary_sha, util::sha256_hex(f.binary + "x")});
    }
    SUBCASE("tampered airgap images are refused") {
        f.tmp.write("cache/" + k_release_version + "/amd64/k3s-airgap-images-amd64.tar.zst", "zz");
        check_error(k3s::release_from_dir(f.cache_dir, "amd64"), {"k3s-airgap-images-amd64.tar.zst", f.images_sha});
    }
    SUBCASE("absent airgap images are fine, an absent binary is not") {
        fs::remove(f.cache_dir + "/k3s-airgap-images-amd64.tar.zst");
        auto no_images = value_ok(k3s::release_from_dir(f.cache_dir, "amd64"));
        CHECK(no_images.airgap_images_path.empty());
        fs::remove(f.cache_dir + "/k3s");
        check_error(k3s::release_from_dir(f.cache_dir, "amd64"), {"has no k3s"});
    }
    SUBCASE("the sha256sum file of another architecture is not there") {
        check_error(k3s::release_from_dir(f.cache_dir, "arm64"), {"sha256sum-arm64.txt"});
    }
}

TEST_CASE("parse_sha256sums: sha256sum's two forms; anything else is refused") {
    std::string a(64, 'a');
    std::string b(64, 'B');
    auto ok = value_ok(k3s::parse_sha256sums(a + "  k3s\r\n\n" + b + " *k3s-arm64\n"));
    CHECK(ok.size() == 2);
    CHECK(ok.at("k3s") == a);
    CHECK(ok.at("k3s-arm64") == std::string(64, 'b'));

    for (std::string bad :
         {std::string("<html>Not Found</html>\n"), a.substr(1) + "  k3s\n", std::string(64, 'g') + "  k3s\n",
          a + "  ../k3s\n", a + "  dir/k3s\n", a + "  \n", a + "k3s\n"}) {
        auto r = k3s::parse_sha256sums(bad);
        CHECK_FALSE(r.ok());
    }
    CHECK(k3s::parse_sha256sums("").ok());
}

TEST_CASE("arch_from_uname and release names") {
    CHECK(k3s::arch_from_uname("x86_64") == "amd64");
    CHECK(k3s::arch_from_uname("aarch64\n") == "arm64");
    CHECK(k3s::arch_from_uname("armv7l") == "arm");
    CHECK(k3s::arch_from_uname("riscv64").empty());
    CHECK(k3s::arch_from_uname("i686").empty());
    CHECK(k3s::arch_from_uname("").empty());
    CHECK(k3s::binary_name("amd64") == "k3s");
    CHECK(k3s::binary_name("arm64") == "k3s-arm64");
    CHECK(k3s::binary_name("arm") == "k3s-armhf");
    CHECK(k3s::binary_name("x86_64").empty());
    CHECK(k3s::airgap_images_name("arm64") == "k3s-airgap-images-arm64.tar.zst");
    CHECK(k3s::sha256_file_name("arm") == "sha256sum-arm.txt");
    CHECK(k3s::url_encode_segment("v1.31.4+k3s1") == "v1.31.4%2Bk3s1");
    CHECK(k3s::url_encode_segment("a b/c") == "a%20b%2Fc");
}

TEST_CASE("fetch_release: plain http is refused unless allowed, before any request") {
    Fixture f;
    ReleaseServer server(f.args());
    auto req = f.request(server);
    req.allow_insecure_http = false;
    check_error(k3s::fetch_release(req), ErrorCode::config, {"plain http", "k3s.allow_insecure_http"});

    req.version.clear();
    req.channel = "stable";
    req.release_url = "https://198.18.0.1/releases/download";
    check_error(k3s::resolve_version(req), ErrorCode::config, {"channel URL"});
    CHECK(server.total_requests() == 0);

    CHECK(k3s::release_url_problem("https://github.com/k3s-io/k3s/releases/download", false).empty());
    CHECK(k3s::release_url_problem("file:///srv/k3s-mirror", false).empty());
    CHECK_FALSE(k3s::release_url_problem("http://198.18.0.1/k3s", false).empty());
    CHECK(k3s::release_url_problem("http://198.18.0.1/k3s", true).empty());
    CHECK_FALSE(k3s::release_url_problem("ftp://198.18.0.1/k3s", true).empty());
    CHECK_FALSE(k3s::release_url_problem("HTTPS://198.18.0.1/k3s", false).empty());
}

TEST_CASE("fetch_release: a file:// mirror is copied and verified") {
    Fixture f;
    k3s::ReleaseRequest req;
    req.version = k_release_version;
    req.arch = "amd64";
    req.release_url = "file://" + f.tmp.file("srv");
    req.cache_dir = f.cache;
    req.airgap_images = true;
    auto r = value_ok(k3s::fetch_release(req));
    CHECK(util::read_file(r.binary_path) == f.binary);
    CHECK(r.airgap_images_sha256 == f.images_sha);

    f.tmp.write("srv/" + k_release_version + "/k3s", "tampered", 0755);
    fs::remove(r.binary_path);
    check_error(k3s::fetch_release(req), {f.binary_sha});
    CHECK_FALSE(fs::exists(r.binary_path));
}

TEST_CASE("fetch_release: a sha256sum file cached from another URL is not trusted") {
    Fixture f;
    std::string old_binary = f.binary;
    {
        ReleaseServer first(f.args());
        value_ok(k3s::fetch_release(f.request(first)));
        CHECK(util::read_file(f.cache_dir + "/sha256sum-amd64.txt.origin") ==
              first.url(k_base + "sha256sum-amd64.txt") + "\n");
    }
    // The same version from another mirror publishes another binary: its own sums decide.
    std::string new_binary = pattern_bytes(120000, 7u);
    f.tmp.write("srv/" + k_release_version + "/k3s", new_binary, 0755);
    f.tmp.write("srv/" + k_release_version + "/sha256sum-amd64.txt", util::sha256_hex(new_binary) + "  k3s\n");
    ReleaseServer second(f.args());
    auto r = value_ok(k3s::fetch_release(f.request(second)));
    CHECK(second.requests(k_base + "sha256sum-amd64.txt") == 1);
    CHECK(second.requests(k_base + "k3s") == 1);
    CHECK(r.binary_sha256 == util::sha256_hex(new_binary));
    CHECK(util::read_file(r.binary_path) == new_binary);

    // Same URL again: the cache is used, no request.
    int before = second.total_requests();
    REQUIRE(k3s::fetch_release(f.request(second)).ok());
    CHECK(second.total_requests() == before);

    // A cached sums file whose origin is not recorded is fetched again.
    fs::remove(f.cache_dir + "/sha256sum-amd64.txt.origin");
    REQUIRE(k3s::fetch_release(f.request(second)).ok());
    CHECK(second.requests(k_base + "sha256sum-amd64.txt") == 2);
    CHECK(second.requests(k_base + "k3s") == 1);
}

namespace {

// A node that answers every script with `out` and keeps what is uploaded to it.
class RecordingTarget final : public nodectl::Target {
public:
    explicit RecordingTarget(std::string out) : m_out(std::move(out)) {}
    const std::string& name() const override { return m_name; }
    nodectl::Result<nodectl::CommandResult> run(const nodectl::Command&) override {
        return nodectl::CommandResult{0, m_out, ""};
    }
    nodectl::Result<void> upload(const std::string& local_path, const nodectl::FileSpec& dest) override {
        uploads.push_back(dest.path + " " + util::sha256_file_hex(local_path));
        return nodectl::Ok{};
    }
    nodectl::Result<std::unique_ptr<nodectl::HostLock>> lock(const std::string&) override {
        return nodectl::make_error(ErrorCode::internal, "not locked in this test");
    }
    std::vector<std::string> uploads;

private:
    std::string m_name = "node";
    std::string m_out;
};

}  // namespace

TEST_CASE("InstallK3sRelease: the cached binary is hashed again right before it is sent") {
    Fixture f;
    ReleaseServer server(f.args());
    REQUIRE(k3s::fetch_release(f.request(server)).ok());
    k3s::Settings s;
    s.version = k_release_version;
    s.release_dir = f.cache_dir;
    k3s::InstallK3sRelease step(s);
    RecordingTarget node("arch=x86_64\nbinary=\nrecord=\n");
    auto plan = value_ok(step.probe(node));
    REQUIRE_FALSE(plan.changes.empty());

    // Between the plan and the apply, the cache changes under nodectl.
    f.tmp.write("cache/" + k_release_version + "/amd64/k3s", "replaced after it was verified", 0755);
    check_error(step.apply(node, plan), {"refusing to install"});
    CHECK(node.uploads.empty());

    f.tmp.write("cache/" + k_release_version + "/amd64/k3s", f.binary, 0755);
    auto again = step.apply(node, plan);
    REQUIRE_MESSAGE(again.ok(), again.error().message);
    CHECK(node.uploads == std::vector<std::string>{"/usr/local/bin/k3s " + f.binary_sha});
}

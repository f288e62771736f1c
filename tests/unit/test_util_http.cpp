// util::download / fetch_text / effective_url against release_server.py on 127.0.0.1: real
// libcurl, real sockets, injected faults (truncated bodies, HTTP errors, redirect loops, stalls).
#include "release_server.hpp"
#include "test_support.hpp"

#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/http.hpp"
#include "util/http_curl.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

using nodectl::testing::fast_http;
using nodectl::testing::k_release_version;
using nodectl::testing::pattern_bytes;
using nodectl::testing::ReleaseServer;
using nodectl::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string k_asset_path = "/releases/download/v1.31.4%2Bk3s1/k3s";

struct Served {
    TempDir tmp;
    std::string body = pattern_bytes(200000);
    Served() {
        tmp.write("srv/" + k_release_version + "/k3s", body);
        tmp.write("srv/" + k_release_version + "/sha256sum-amd64.txt", util::sha256_hex(body) + "  k3s\n");
    }
    std::vector<std::string> args(std::vector<std::string> extra = {}) const {
        std::vector<std::string> a = {"--root", tmp.file("srv"), "--channel", "stable=" + k_release_version};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

}  // namespace

TEST_CASE("download: the whole body lands at dest, no .part left") {
    Served s;
    ReleaseServer server(s.args());
    std::string dest = s.tmp.file("k3s");
    auto r = util::download(server.url(k_asset_path), dest, fast_http());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->body.empty());  // a download's body is in the file, not in the response
    CHECK(r->status == 200);
    CHECK(r->attempts == 1);
    CHECK(r->bytes == s.body.size());
    CHECK(r->effective_url == server.url(k_asset_path));
    CHECK(util::read_file(dest) == s.body);
    CHECK_FALSE(fs::exists(dest + ".part"));
    CHECK(server.requests(k_asset_path) == 1);
}

TEST_CASE("download: follows a redirect and reports where it ended") {
    Served s;
    ReleaseServer server(s.args());
    std::string dest = s.tmp.file("k3s");
    auto r = util::download(server.url("/redirect" + k_asset_path), dest, fast_http());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->effective_url == server.url(k_asset_path));
    CHECK(util::read_file(dest) == s.body);
    CHECK(server.requests("/redirect" + k_asset_path) == 1);
    CHECK(server.requests(k_asset_path) == 1);
}

TEST_CASE("download: HTTP 404 fails at once with the status, dest untouched, no .part") {
    Served s;
    ReleaseServer server(s.args());
    std::string dest = s.tmp.write("k3s", "old");
    auto r = util::download(server.url("/releases/download/v9.9.9/k3s"), dest, fast_http());
    REQUIRE_FALSE(r);
    CHECK(r.error().status == 404);
    CHECK(r.error().message.find("HTTP 404") != std::string::npos);
    CHECK(r.error().message.find("/releases/download/v9.9.9/k3s") != std::string::npos);
    CHECK(r.error().attempts == 1);
    CHECK(server.requests("/releases/download/v9.9.9/k3s") == 1);
    CHECK(util::read_file(dest) == "old");
    CHECK_FALSE(fs::exists(dest + ".part"));
}

TEST_CASE("download: HTTP 503 is retried, then fails naming the status") {
    Served s;
    ReleaseServer server(s.args());
    std::string dest = s.tmp.file("x");
    auto r = util::download(server.url("/status/503"), dest, fast_http(3));
    REQUIRE_FALSE(r);
    CHECK(r.error().status == 503);
    CHECK(r.error().message.find("HTTP 503") != std::string::npos);
    CHECK(r.error().message.find("after 3 attempts") != std::string::npos);
    CHECK(r.error().attempts == 3);
    CHECK(server.requests("/status/503") == 3);
    CHECK_FALSE(fs::exists(dest));
    CHECK_FALSE(fs::exists(dest + ".part"));
}

TEST_CASE("download: a body truncated once is retried and arrives whole") {
    Served s;
    ReleaseServer server(s.args({"--truncate-first", "1"}));
    std::string dest = s.tmp.file("k3s");
    auto r = util::download(server.url(k_asset_path), dest, fast_http());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->attempts == 2);
    CHECK(server.requests(k_asset_path) == 2);
    CHECK(util::read_file(dest) == s.body);
    CHECK_FALSE(fs::exists(dest + ".part"));
}

TEST_CASE("download: a body truncated on every try fails cleanly, no .part left") {
    Served s;
    ReleaseServer server(s.args({"--truncate-first", "100"}));
    std::string dest = s.tmp.file("k3s");
    auto r = util::download(server.url(k_asset_path), dest, fast_http(3));
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 3);
    CHECK(server.requests(k_asset_path) == 3);
    CHECK(r.error().message.find("truncated") != std::string::npos);
    CHECK(r.error().message.find("after 3 attempts") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
    CHECK_FALSE(fs::exists(dest + ".part"));
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(s.tmp.path())) {
        left.push_back(e.path().filename().string());
    }
    CHECK(left == std::vector<std::string>{"srv"});
}

TEST_CASE("download: a redirect leads to https only, unless the caller allows plain http") {
    Served s;
    ReleaseServer server(s.args());
    util::HttpOptions o = fast_http();
    o.redirect_protocols = util::HttpOptions{}.redirect_protocols;  // the default
    std::string dest = s.tmp.file("k3s");
    auto r = util::download(server.url("/redirect" + k_asset_path), dest, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 1);  // not worth a retry
    CHECK(server.requests(k_asset_path) == 0);
    CHECK_FALSE(fs::exists(dest));
    CHECK_FALSE(fs::exists(dest + ".part"));
    auto channel = util::effective_url(server.url("/channels/stable"), o);
    REQUIRE_FALSE(channel);

    // A URL whose scheme the caller does not allow is refused before any request.
    o.protocols = "https";
    auto plain = util::download(server.url(k_asset_path), dest, o);
    REQUIRE_FALSE(plain);
    CHECK(server.total_requests() == 2);  // the two redirecting requests above

    o.protocols = "http,https";
    o.redirect_protocols = "http,https";
    auto allowed = util::download(server.url("/redirect" + k_asset_path), dest, o);
    REQUIRE_MESSAGE(allowed, (allowed ? "" : allowed.error().message));
    CHECK(util::read_file(dest) == s.body);
}

TEST_CASE("download: a redirect loop is bounded and not retried") {
    Served s;
    ReleaseServer server(s.args());
    util::HttpOptions o = fast_http();
    o.max_redirects = 5;
    auto r = util::download(server.url("/loop"), s.tmp.file("x"), o);
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 1);
    CHECK(server.requests("/loop") == 6);  // the first request and 5 redirects
    CHECK(r.error().message.find("redirect") != std::string::npos);
}

TEST_CASE("download: a stalled transfer is aborted by the low-speed limit") {
    Served s;
    ReleaseServer server(s.args());
    util::HttpOptions o = fast_http(2);
    o.low_speed_limit_bytes = 1000;
    o.low_speed_time_seconds = 1;
    std::string dest = s.tmp.file("x");
    auto start = std::chrono::steady_clock::now();
    auto r = util::download(server.url("/stall/1000"), dest, o);
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 2);  // a stall is worth another try
    CHECK(server.requests("/stall/1000") == 2);
    CHECK(took < std::chrono::seconds(30));  // the server never sends the rest: without the limit, no end
    CHECK(r.error().message.find("too slow") != std::string::npos);
    CHECK_FALSE(fs::exists(dest + ".part"));
}

TEST_CASE("download: nothing listening is retried, then fails") {
    Served s;
    int port = 0;
    {
        ReleaseServer gone(s.args());
        port = gone.port();
    }
    auto r = util::download("http://127.0.0.1:" + std::to_string(port) + "/x", s.tmp.file("x"), fast_http(2));
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 2);
    CHECK(r.error().status == 0);
    CHECK_FALSE(fs::exists(s.tmp.file("x.part")));
}

TEST_CASE("download: a folder that does not exist is an error, not a retry") {
    Served s;
    ReleaseServer server(s.args());
    auto r = util::download(server.url(k_asset_path), s.tmp.file("no/such/dir/k3s"), fast_http());
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 1);
    CHECK(r.error().message.find("cannot create") != std::string::npos);
    CHECK(server.total_requests() == 0);
}

TEST_CASE("download: progress reports the bytes and the total") {
    Served s;
    ReleaseServer server(s.args());
    util::HttpOptions o = fast_http();
    std::uint64_t last_now = 0, last_total = 0;
    int calls = 0;
    o.progress = [&](std::uint64_t now, std::uint64_t total) {
        ++calls;
        last_now = now;
        last_total = total;
    };
    auto r = util::download(server.url(k_asset_path), s.tmp.file("k3s"), o);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(calls > 0);
    CHECK(last_now == s.body.size());
    CHECK(last_total == s.body.size());
}

TEST_CASE("download: parallel threads each get their file") {
    Served s;
    ReleaseServer server(s.args());
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            std::string dest = s.tmp.file("k3s-" + std::to_string(i));
            auto r = util::download(server.url(k_asset_path), dest, fast_http());
            if (r && util::read_file(dest) == s.body) {
                ++good;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(good == 4);
    CHECK(server.requests(k_asset_path) == 4);
}

TEST_CASE("fetch_text: a small body, and a limit on its size") {
    Served s;
    ReleaseServer server(s.args());
    const std::string path = "/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt";
    auto r = util::fetch_text(server.url(path), fast_http());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->body == util::sha256_hex(s.body) + "  k3s\n");
    CHECK(r->bytes == r->body.size());

    util::HttpOptions small = fast_http();
    small.max_text_bytes = 10;
    auto big = util::fetch_text(server.url(path), small);
    REQUIRE_FALSE(big);
    CHECK(big.error().status == 200);  // the server answered; the body was refused for its size
    CHECK(big.error().attempts == 1);
    CHECK(big.error().message.find("larger than 10 bytes") != std::string::npos);

    auto missing = util::fetch_text(server.url("/nothing"), fast_http());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("HTTP 404") != std::string::npos);
}

TEST_CASE("effective_url: follows the channel redirect to the release tag") {
    Served s;
    ReleaseServer server(s.args());
    auto r = util::effective_url(server.url("/channels/stable"), fast_http());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->effective_url == server.url("/releases/tag/" + k_release_version));
    CHECK(r->status == 200);
    CHECK(server.requests("/channels/stable") == 1);

    auto plain = util::effective_url(server.url("/releases/tag/" + k_release_version), fast_http());
    REQUIRE_MESSAGE(plain, (plain ? "" : plain.error().message));
    CHECK(plain->effective_url == server.url("/releases/tag/" + k_release_version));

    auto unknown = util::effective_url(server.url("/channels/nope"), fast_http());
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message.find("HTTP 404") != std::string::npos);
}

// The one retry policy (util/http_curl.hpp) that downloads and S3 share: which statuses and
// libcurl failures are worth another try. A change here changes both.
TEST_CASE("retry policy: transient statuses and libcurl failures, and nothing else") {
    for (long status : {408L, 429L, 500L, 502L, 503L, 504L, 507L, 599L}) {
        CAPTURE(status);
        CHECK(util::http::transient_status(status));
        CHECK(util::http::transient(CURLE_HTTP_RETURNED_ERROR, status));
        CHECK(util::http::transient(CURLE_OK, status));
    }
    for (long status : {0L, 200L, 204L, 206L, 301L, 400L, 401L, 403L, 404L, 409L, 412L, 416L, 501L, 505L, 600L}) {
        CAPTURE(status);
        CHECK_FALSE(util::http::transient_status(status));
        CHECK_FALSE(util::http::transient(CURLE_HTTP_RETURNED_ERROR, status));
    }
    for (CURLcode rc : {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
                        CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                        CURLE_GOT_NOTHING, CURLE_SSL_CONNECT_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM}) {
        CAPTURE(rc);
        CHECK(util::http::transient(rc, 0));
    }
    for (CURLcode rc :
         {CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_TOO_MANY_REDIRECTS, CURLE_WRITE_ERROR,
          CURLE_ABORTED_BY_CALLBACK, CURLE_PEER_FAILED_VERIFICATION, CURLE_FAILED_INIT, CURLE_OUT_OF_MEMORY}) {
        CAPTURE(rc);
        CHECK_FALSE(util::http::transient(rc, 0));
    }
}

TEST_CASE("retry policy: backoff doubles up to its cap, attempts are bounded, a cancel ends the wait") {
    using std::chrono::milliseconds;
    using util::http::TryFailure;
    std::vector<milliseconds> waits;
    int tries = 0;
    auto r = util::http::with_retries(
        {5, milliseconds(1), milliseconds(4)},
        [&](int n) -> util::http::Try {
            tries = n;
            return TryFailure{"try " + std::to_string(n), true};
        },
        [&](const std::string&, milliseconds wait) { waits.push_back(wait); });
    REQUIRE_FALSE(r);
    CHECK(r.error().attempts == 5);
    CHECK(tries == 5);
    CHECK(r.error().reason == "try 5");
    CHECK_FALSE(r.error().cancelled);
    CHECK(waits == std::vector<milliseconds>{milliseconds(1), milliseconds(2), milliseconds(4), milliseconds(4)});

    auto many = util::http::with_retries({1000, milliseconds(0), milliseconds(0)}, [](int) -> util::http::Try {
        return TryFailure{"again", true};
    });
    REQUIRE_FALSE(many);
    CHECK(many.error().attempts == util::http::k_max_attempts);

    auto permanent = util::http::with_retries({5, milliseconds(0), milliseconds(0)}, [](int) -> util::http::Try {
        return TryFailure{"no", false};
    });
    REQUIRE_FALSE(permanent);
    CHECK(permanent.error().attempts == 1);

    int calls = 0;
    auto second = util::http::with_retries({5, milliseconds(0), milliseconds(0)}, [&](int n) -> util::http::Try {
        ++calls;
        return n < 2 ? util::http::Try(TryFailure{"once", true}) : util::http::Try(util::Ok{});
    });
    REQUIRE(second);
    CHECK(*second == 2);  // the tries made
    CHECK(calls == 2);

    std::atomic<bool> cancel{true};
    auto start = std::chrono::steady_clock::now();
    auto cancelled = util::http::with_retries(
        {5, milliseconds(60000), milliseconds(60000)},
        [](int) -> util::http::Try {
            return TryFailure{"x", true};
        },
        {}, &cancel);
    REQUIRE_FALSE(cancelled);
    CHECK(cancelled.error().cancelled);
    CHECK(cancelled.error().attempts == 1);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));  // not the 60 s wait
}

TEST_CASE("download: the retry policy on the wire: 429 and 502 are retried; 403, 501 and 505 are not") {
    Served s;
    ReleaseServer server(s.args());
    for (int status : {429, 502}) {
        CAPTURE(status);
        auto r = util::fetch_text(server.url("/status/" + std::to_string(status)), fast_http(3));
        REQUIRE_FALSE(r);
        CHECK(r.error().attempts == 3);
        CHECK(server.requests("/status/" + std::to_string(status)) == 3);
    }
    for (int status : {403, 501, 505}) {
        CAPTURE(status);
        auto r = util::fetch_text(server.url("/status/" + std::to_string(status)), fast_http(3));
        REQUIRE_FALSE(r);
        CHECK(r.error().attempts == 1);
        CHECK(r.error().message.find("after 1 attempt)") != std::string::npos);
        CHECK(server.requests("/status/" + std::to_string(status)) == 1);
    }
}

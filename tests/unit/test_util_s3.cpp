// util::s3 without a store: the part-size rule (10,000 parts always suffice), key encoding and
// URLs in both addressing styles, S3's XML, credentials files and the environment, and the retry
// policy against release_server.py. The client against a real store is
// tests/integration/test_s3.sh (s3rver + awscli).
#include "util/s3.hpp"

#include "release_server.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <memory>

namespace s3 = util::s3;

TEST_CASE("s3: part sizes grow so that 10,000 parts hold any object up to S3's 5 TiB") {
    const std::uint64_t mib = 1 << 20;
    CHECK(s3::Client::part_size_for(8 * mib, 0, 1) == 8 * mib);
    CHECK(s3::Client::part_size_for(8 * mib, 0, 1000) == 8 * mib);
    CHECK(s3::Client::part_size_for(8 * mib, 0, 1001) == 16 * mib);
    CHECK(s3::Client::part_size_for(1 * mib, 0, 1) == 5 * mib);  // S3's minimum part
    std::uint64_t total = 0;
    for (int n = 1; n <= 10000; ++n) {
        auto size = s3::Client::part_size_for(8 * mib, 0, n);
        CHECK(size <= (5ull << 30));
        total += size;
    }
    CHECK(total > (5ull << 40));  // unknown size: more than 5 TiB fits
    // A size hint: 9,000 parts of the hinted size, rounded to MiB.
    std::uint64_t hint = 1ull << 40;  // 1 TiB
    auto hinted = s3::Client::part_size_for(8 * mib, hint, 1);
    CHECK(hinted * 9000 >= hint);
    CHECK(hinted % mib == 0);
    CHECK(s3::Client::part_size_for(8 * mib, 100 * mib, 1) == 8 * mib);  // small hint: the minimum
}

TEST_CASE("s3: keys are encoded once, '/' kept; URLs in path-style and virtual-host addressing") {
    CHECK(s3::encode_key("a b/c+d&e=é~_.-x") == "a%20b/c%2Bd%26e%3D%C3%A9~_.-x");
    CHECK(s3::encode_key("already%20encoded") == "already%2520encoded");  // a '%' in a key is a character
    s3::Config c;
    c.endpoint = "http://127.0.0.1:4568";
    c.bucket = "backups";
    c.path_style = true;
    c.credentials = {"AK", "SK", ""};
    CHECK(s3::Client(c).url("db/x y.tar") == "http://127.0.0.1:4568/backups/db/x%20y.tar");
    c.path_style = false;
    c.endpoint = "https://s3.eu-central-1.amazonaws.com/";
    CHECK(s3::Client(c).url("k") == "https://backups.s3.eu-central-1.amazonaws.com/k");
    c.endpoint.clear();
    c.region = "eu-west-1";
    CHECK(s3::Client(c).url("k") == "https://backups.s3.eu-west-1.amazonaws.com/k");
}

TEST_CASE("s3: a bad configuration fails every call with a reason, not a request") {
    s3::Config c;
    c.endpoint = "ftp://x";
    c.bucket = "b";
    c.credentials = {"AK", "SECRETVALUE", ""};
    s3::Client client(c);
    auto st = client.put("k", "x");
    REQUIRE_FALSE(st);
    CHECK(st.error().message.find("scheme must be http or https") != std::string::npos);
    CHECK(st.error().message.find("SECRETVALUE") == std::string::npos);
    s3::Config none;
    none.endpoint = "http://127.0.0.1:1";
    none.bucket = "b";
    auto st2 = s3::Client(none).remove("k");
    REQUIRE_FALSE(st2);
    CHECK(st2.error().message.find("no S3 credentials") != std::string::npos);
}

TEST_CASE("s3: S3's XML: entities, empty elements, <Key> not confused with <KeyMarker>") {
    std::string xml = "<ListBucketResult><KeyMarker>zz</KeyMarker><Contents><Key>a&amp;b &lt;c&gt; &#233;&#x263A;</Key>"
                      "<Size>5</Size></Contents><Contents><Key>second</Key><ETag>&quot;e&quot;</ETag></Contents>"
                      "<NextContinuationToken/></ListBucketResult>";
    auto keys = s3::detail::xml_texts(xml, "Key");
    REQUIRE(keys.size() == 2);
    CHECK(keys[0] == "a&b <c> \xC3\xA9\xE2\x98\xBA");
    CHECK(keys[1] == "second");
    CHECK(s3::detail::xml_texts(xml, "ETag")[0] == "\"e\"");
    auto empty = s3::detail::xml_texts(xml, "NextContinuationToken");
    REQUIRE(empty.size() == 1);
    CHECK(empty[0].empty());
}

TEST_CASE("s3: a numeric entity that is no code point stays as written") {
    // strtoul turned &#x110000; and an overflowing &#...; into bytes that are not UTF-8, &#x; into a NUL.
    auto keys = s3::detail::xml_texts("<Key>&#x110000;|&#99999999;|&#x;|&#x10FFFF;</Key>", "Key");
    REQUIRE(keys.size() == 1);
    CHECK(keys[0] == "&#x110000;|&#99999999;|&#x;|\xF4\x8F\xBF\xBF");
}

TEST_CASE("s3: credentials from awscli's file, KEY=VALUE lines, s3fs's format and the environment") {
    nodectl::testing::TempDir dir;
    std::string warning;
    auto aws = dir.write("credentials",
                         "[other]\naws_access_key_id = NO\naws_secret_access_key = NO\n"
                         "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = SKDEF\n"
                         "aws_session_token = TOK\n",
                         0600);
    auto c = s3::credentials_from_file(aws, &warning);
    REQUIRE(c);
    CHECK(c->access_key_id == "AKDEF");
    CHECK(c->secret_access_key == "SKDEF");
    CHECK(c->session_token == "TOK");
    CHECK(warning.empty());
    c = s3::credentials_from_file(aws, nullptr, "other");
    REQUIRE(c);
    CHECK(c->access_key_id == "NO");

    auto env = dir.write("s3.env", "# backups\nexport AWS_ACCESS_KEY_ID=AKENV\nAWS_SECRET_ACCESS_KEY='SK ENV'\n", 0644);
    c = s3::credentials_from_file(env, &warning);
    REQUIRE(c);
    CHECK(c->access_key_id == "AKENV");
    CHECK(c->secret_access_key == "SK ENV");
    CHECK(warning.find("mode 0644") != std::string::npos);
    CHECK(warning.find("SK ENV") == std::string::npos);

    auto s3fs = dir.write("passwd", "AKS3FS:SKS3FS\n", 0600);
    c = s3::credentials_from_file(s3fs);
    REQUIRE(c);
    CHECK(c->access_key_id == "AKS3FS");
    CHECK(c->secret_access_key == "SKS3FS");

    auto bad = dir.write("bad", "aws_access_key_id = AKONLY\n", 0600);
    auto st = s3::credentials_from_file(bad);
    REQUIRE_FALSE(st);
    CHECK(st.error().message.find("no access key id and secret access key") != std::string::npos);
    auto junk = dir.write("junk", "just words\n", 0600);
    auto sj = s3::credentials_from_file(junk);
    REQUIRE_FALSE(sj);
    CHECK(sj.error().message.find(":1:") != std::string::npos);
    CHECK_FALSE(s3::credentials_from_file(dir.file("missing")));

    ::setenv("AWS_ACCESS_KEY_ID", "AKE", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "SKE", 1);
    ::unsetenv("AWS_SESSION_TOKEN");
    auto from_env = s3::credentials_from_environment();
    REQUIRE(from_env);
    CHECK(from_env->access_key_id == "AKE");
    CHECK(from_env->session_token.empty());
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    CHECK_FALSE(s3::credentials_from_environment());
    ::unsetenv("AWS_ACCESS_KEY_ID");
}

// The client on the wire, against release_server.py on 127.0.0.1 (path-style bucket "status" or
// "s3error": GET /status/<code> answers that status, GET /s3error/<code>/<S3 code> adds S3's XML
// error body): S3 requests are retried under the HTTP engine's one policy, like downloads.
TEST_CASE("s3: the retry policy on the wire: 503, 500 and S3's transient codes are retried; 403, 404, 501 are not") {
    nodectl::testing::TempDir dir;
    nodectl::testing::ReleaseServer server({"--root", dir.path().string()});
    std::vector<std::string> lines;
    auto client_for = [&](const std::string& bucket) {
        s3::Config c;
        c.endpoint = server.url("");
        c.bucket = bucket;
        c.path_style = true;
        c.credentials = {"AK", "SK", ""};
        c.attempts = 3;
        c.initial_backoff = std::chrono::milliseconds(10);
        c.max_backoff = std::chrono::milliseconds(20);
        c.log = [&](const std::string& line) { lines.push_back(line); };
        return std::make_unique<s3::Client>(c);
    };
    auto get = [](s3::Client& client, const std::string& key) {
        return client.get(key, [](const char*, std::size_t) { return true; });
    };
    auto status = client_for("status");
    for (const char* code : {"503", "500", "429"}) {
        CAPTURE(code);
        auto st = get(*status, code);
        REQUIRE_FALSE(st);
        CHECK(st.error().message.find("after 3 attempts)") != std::string::npos);
        CHECK(server.requests(std::string("/status/") + code) == 3);
    }
    CHECK(lines.size() == 6);  // two "retrying in" lines per retried request
    for (const char* code : {"403", "404", "501"}) {
        CAPTURE(code);
        auto st = get(*status, code);
        REQUIRE_FALSE(st);
        CHECK(st.error().http_status == std::atoi(code));
        CHECK(st.error().message.find("after 1 attempt)") != std::string::npos);
        CHECK(server.requests(std::string("/status/") + code) == 1);
    }
    // S3 names RequestTimeout under 400 and SlowDown under 503; other codes go by their status.
    auto s3error = client_for("s3error");
    struct Case {
        const char* key;
        int requests;
        const char* says;
    };
    for (const Case& c : {Case{"400/RequestTimeout", 3, "HTTP 400 RequestTimeout: injected (after 3 attempts)"},
                          Case{"503/SlowDown", 3, "HTTP 503 SlowDown: injected (after 3 attempts)"},
                          Case{"400/BadDigest", 1, "HTTP 400 BadDigest: injected (after 1 attempt)"},
                          Case{"403/AccessDenied", 1, "HTTP 403 AccessDenied: injected (after 1 attempt)"}}) {
        CAPTURE(c.key);
        auto st = get(*s3error, c.key);
        REQUIRE_FALSE(st);
        CHECK(st.error().message.find(c.says) != std::string::npos);
        CHECK(server.requests(std::string("/s3error/") + c.key) == c.requests);
    }
}

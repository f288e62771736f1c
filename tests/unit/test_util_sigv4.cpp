// util::sigv4 against AWS's published SigV4 test suite (tests/data/aws-sigv4, provenance in its
// NOTICE.md): for every case the canonical request, the string to sign and the signature must
// match byte for byte. Missing vectors are a failure, not a skip.
#include "test_support.hpp"
#include "util/digest.hpp"
#include "util/sigv4.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using nodectl::testing::read_text;

namespace {

fs::path vectors_dir() {
    return fs::path(NODECTL_SOURCE_DIR) / "tests" / "data" / "aws-sigv4";
}

// request.txt: "METHOD PATH HTTP/1.1", header lines ("Name:value", continuation lines start with
// whitespace), a blank line, the body.
util::sigv4::Request parse_request(const std::string& text, std::string& body) {
    util::sigv4::Request r;
    std::size_t eol = text.find('\n');
    std::string first = text.substr(0, eol);
    std::size_t sp = first.find(' ');
    std::size_t proto = first.rfind(" HTTP/");
    r.method = first.substr(0, sp);
    std::string target = first.substr(sp + 1, proto - sp - 1);
    std::size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? std::string() : target.substr(q + 1);
    std::size_t pos = eol == std::string::npos ? text.size() : eol + 1;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) {
            end = text.size();
        }
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty()) {
            body = pos < text.size() ? text.substr(pos) : std::string();
            break;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
            r.headers.back().second += "\n" + line;
            continue;
        }
        std::size_t colon = line.find(':');
        r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    }
    return r;
}

std::string amz_date_of(const std::string& iso) {  // 2015-08-30T12:36:00Z -> 20150830T123600Z
    std::string out;
    for (char c : iso) {
        if (c != '-' && c != ':') {
            out += c;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("sigv4: every case of AWS's test suite (canonical request, string to sign, signature)") {
    fs::path dir = vectors_dir();
    REQUIRE_MESSAGE((!dir.empty() && fs::is_directory(dir)), "tests/data/aws-sigv4 not found (" << dir.string() << ")");
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.is_directory() && fs::exists(e.path() / "request.txt")) {
            cases.push_back(e.path());
        }
    }
    std::sort(cases.begin(), cases.end());
    REQUIRE(cases.size() >= 30);
    int passed = 0;
    for (const auto& c : cases) {
        CAPTURE(c.filename().string());
        auto ctx = nlohmann::json::parse(read_text(c / "context.json"));
        std::string body;
        util::sigv4::Request request = parse_request(read_text(c / "request.txt"), body);
        request.payload_hash = util::sha256_hex(body);
        util::sigv4::Params params;
        params.access_key_id = ctx["credentials"]["access_key_id"];
        params.secret_access_key = ctx["credentials"]["secret_access_key"];
        params.session_token = ctx["credentials"].value("token", "");
        params.region = ctx["region"];
        params.service = ctx["service"];
        params.amz_date = amz_date_of(ctx["timestamp"]);
        params.normalize_path = ctx.value("normalize", true);
        params.sign_payload_header = ctx.value("sign_body", false);
        params.omit_session_token = ctx.value("omit_session_token", false);
        util::sigv4::Signed s = util::sigv4::sign(request, params);
        bool ok = true;
        ok &= s.canonical_request == read_text(c / "header-canonical-request.txt");
        CHECK(s.canonical_request == read_text(c / "header-canonical-request.txt"));
        ok &= s.string_to_sign == read_text(c / "header-string-to-sign.txt");
        CHECK(s.string_to_sign == read_text(c / "header-string-to-sign.txt"));
        ok &= s.signature == read_text(c / "header-signature.txt");
        CHECK(s.signature == read_text(c / "header-signature.txt"));
        // The signed request carries the same Authorization line.
        CHECK(read_text(c / "header-signed-request.txt").find("Authorization:" + s.authorization + "\n") !=
              std::string::npos);
        passed += ok ? 1 : 0;
    }
    CHECK(passed == static_cast<int>(cases.size()));
    MESSAGE("sigv4 vectors passed: " << passed << " of " << cases.size());
}

TEST_CASE("sigv4: S3 style (path taken as encoded once, x-amz-content-sha256 signed)") {
    util::sigv4::Request r;
    r.method = "PUT";
    r.path = "/bucket/a%20b/%C3%A9t%C3%A9%2Bplus";  // util::s3::encode_key output
    r.headers = {{"Host", "127.0.0.1:4568"}};
    r.payload_hash = "UNSIGNED-PAYLOAD";
    util::sigv4::Params p;
    p.access_key_id = "AK";
    p.secret_access_key = "SECRET";
    p.region = "us-east-1";
    p.service = "s3";
    p.amz_date = util::sigv4::amz_date(0);
    p.normalize_path = false;
    p.encode_path = false;
    p.sign_payload_header = true;
    auto s = util::sigv4::sign(r, p);
    CHECK(p.amz_date == "19700101T000000Z");
    CHECK(s.canonical_request.find("\n/bucket/a%20b/%C3%A9t%C3%A9%2Bplus\n") != std::string::npos);
    CHECK(s.canonical_request.find("x-amz-content-sha256:UNSIGNED-PAYLOAD\n") != std::string::npos);
    CHECK(s.canonical_request.substr(s.canonical_request.size() - 16) == "UNSIGNED-PAYLOAD");
    CHECK(s.authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date,") != std::string::npos);
    CHECK(s.authorization.find("SECRET") == std::string::npos);
}

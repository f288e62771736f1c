// AWS Signature Version 4 (header signing) on OpenSSL's HMAC-SHA256. Knows nothing of nodectl.
//
// Written because libcurl's CURLOPT_AWS_SIGV4 (7.88) fails cases of AWS's published test suite
// and cannot show its canonical request or string to sign (ARCHITECTURE.md, "S3: our own SigV4 signer, libcurl for
// transport"). It passes every case of the suite kept in tests/data/aws-sigv4
// (tests/unit/test_util_sigv4.cpp).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace util::sigv4 {

struct Request {
    std::string method;  // "GET"
    std::string path;  // the path as on the request line, no query
    std::string query;  // after '?', as on the request line; may be empty
    std::vector<std::pair<std::string, std::string>> headers;  // as sent; must include Host
    std::string payload_hash;  // hex sha256 of the body, or "UNSIGNED-PAYLOAD"
};

struct Params {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty: none
    std::string region;  // "us-east-1"
    std::string service;  // "s3"
    std::string amz_date;  // "20150830T123600Z" (UTC)
    // Generic AWS services: remove "." and ".." segments and repeated slashes, then encode the
    // path (a '%' already in it is encoded again). S3: false/false, the path is taken as given,
    // already encoded once (util::s3::encode_key).
    bool normalize_path = true;
    bool encode_path = true;
    bool sign_payload_header = false;  // add and sign x-amz-content-sha256 (S3 requires it)
    bool omit_session_token = false;  // add X-Amz-Security-Token after signing (not signed)
};

struct Signed {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;  // lower-case hex
    std::string authorization;  // the Authorization header's value
    // Headers to add to the request (X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256,
    // Authorization), in that order.
    std::vector<std::pair<std::string, std::string>> add_headers;
};

Signed sign(const Request& request, const Params& params);

// "YYYYMMDDTHHMMSSZ" for a Unix time (UTC).
std::string amz_date(long long unix_seconds);
// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash).
std::string uri_encode(std::string_view s, bool keep_slash);
// Lower-case hex HMAC-SHA256 / raw HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hex(std::string_view bytes);

}  // namespace util::sigv4

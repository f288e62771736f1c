// Inside util::s3 (not for other callers): one signed S3 request over the HTTP engine
// (util/http_curl.hpp), and the state a Client shares with its uploads. The requests are made
// by s3_request.cpp, addressed by s3_client.cpp and used by s3_multipart.cpp.
#pragma once

#include "util/http_curl.hpp"
#include "util/s3.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace util::s3 {

constexpr std::uint64_t k_min_s3_part = 5ull << 20;  // S3's smallest part (but the last)
constexpr std::uint64_t k_max_s3_part = 5ull << 30;  // S3's largest part
constexpr int k_max_parts = 10000;
constexpr std::size_t k_max_error_body = 64 << 10;  // an error answer's body kept for its <Code>
constexpr std::size_t k_max_text_body = 64 << 20;  // an answer collected in memory (LIST, ...)

struct Request {
    std::string method = "GET";
    std::string key;  // empty: the bucket itself
    std::vector<std::pair<std::string, std::string>> query;  // not encoded
    std::vector<std::pair<std::string, std::string>> headers;
    std::string_view body;
    bool has_body = false;
    // Streamed response body (GET); when unset the body is collected into Response::body.
    const std::function<bool(const char*, std::size_t)>* sink = nullptr;
    std::uint64_t resume_from = 0;  // GET: Range start (a resumed download)
    std::string if_match;  // GET resume: the ETag the first bytes came from
    const std::atomic<bool>* cancel = nullptr;
};

struct Response {
    CURLcode code = CURLE_OK;
    long status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string error_body;
    std::uint64_t sink_bytes = 0;
    bool sink_stopped = false;
    bool cancelled = false;
    std::string curl_error;
};

struct Endpoint {
    std::string scheme;  // "http" / "https"
    std::string authority;  // host[:port]
    std::string base_path;  // "" or "/prefix"
};

struct Client::Impl {
    Config config;
    Endpoint endpoint;
    std::string config_error;  // set: every request fails with it, none is sent
    http::HandlePool handles;

    explicit Impl(const Config& c);  // s3_client.cpp

    // Addressing (s3_client.cpp).
    std::string where(const std::string& key) const;  // "s3://bucket/key", for messages
    std::string host() const;
    std::string path(const std::string& key) const;
    void add_storage_class(Request& req) const;
    // One PUT of a whole object (s3_client.cpp).
    Status put_object(const std::string& key, std::string_view body);

    // Requests (s3_request.cpp). Tries under the engine's retry policy until one succeeds or a
    // failure is not transient; `what` ("PUT s3://b/k") starts every message. A GET into a sink
    // resumes with a Range request. The first form uses the caller's handle (a worker's own).
    Status perform(CURL* curl, Request req, Response& resp, const std::string& what);
    Status perform(Request req, Response& resp, const std::string& what);
    // One try, signed afresh (the current time).
    Response perform_once(CURL* curl, const Request& req);
};

}  // namespace util::s3

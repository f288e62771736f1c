// HTTP(S) downloads over libcurl. Knows nothing of nodectl.
//
// Every transfer follows redirects (bounded, to https only unless HttpOptions::redirect_protocols
// says otherwise), treats HTTP >= 400 as a failure, aborts a stalled transfer (low-speed limit),
// and retries transient failures with exponential backoff under the one retry policy of
// util/http_retry.hpp (connection errors, time-outs, truncated bodies, HTTP 408/429 and 5xx but
// 501/505). Other failures (404, too many redirects, a local write error) are not retried. Safe to
// call from several threads at once.
#pragma once

#include "util/http_retry.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace util {

// The engine's retry policy (attempts 4, backoff 1 s doubling to 30 s) and transport (schemes,
// redirects, time limits: util/http_retry.hpp), with a download's defaults: up to 10 redirects,
// a transfer slower than 1 KiB/s for 30 s is aborted. A redirect leads to https only unless the
// caller says otherwise (redirect_protocols): it never downgrades a transfer to plain http.
struct HttpOptions : http::RetryPolicy, http::Transport {
    HttpOptions() {
        max_redirects = 10;
        low_speed_limit_bytes = 1024;
        low_speed_time_seconds = 30;
    }
    std::uint64_t max_text_bytes = 1 << 20;  // fetch_text refuses larger bodies
    // Called during a transfer with the bytes received so far and the expected total (0 when
    // unknown).
    std::function<void(std::uint64_t now, std::uint64_t total)> progress;
};

struct HttpResponse {
    long status = 0;  // HTTP status of the last response
    std::string effective_url;  // the URL after redirects
    std::uint64_t bytes = 0;  // body bytes received by the successful try
    std::string body;  // fetch_text and post only
    int attempts = 0;  // tries made
};

struct HttpFailure {
    std::string message;  // what went wrong, naming the URL
    long status = 0;  // HTTP status of the last response (0 when none arrived)
    int attempts = 0;  // tries made
};

// A response, or why there is none.
using HttpResult = Expected<HttpResponse, HttpFailure>;

// GET `url` into `dest_path + ".part"`, renamed to `dest_path` once the whole body arrived. The
// parent folder must exist. On failure no `.part` file is left behind and `dest_path` is untouched.
HttpResult download(const std::string& url, const std::string& dest_path, const HttpOptions& options = {});

// GET a small body (up to options.max_text_bytes) into HttpResponse::body.
HttpResult fetch_text(const std::string& url, const HttpOptions& options = {});

// POSTs `body` with a Content-Type header; a reply body (up to options.max_text_bytes) is in
// HttpResponse::body. Retried like a GET (the same policy): use it for idempotent
// notifications such as webhooks.
HttpResult post(const std::string& url, const std::string& body, const std::string& content_type,
                const HttpOptions& options = {});

// Follows `url`'s redirects and reports the final URL in HttpResponse::effective_url; the final
// body is not read.
HttpResult effective_url(const std::string& url, const HttpOptions& options = {});

}  // namespace util

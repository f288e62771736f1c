// The retry policy and the try loop of util/http (downloads) and util/s3 (S3): what is worth
// another try, how long to wait, how a transfer is bounded. No libcurl here: a header that includes
// libcurl's is named *_curl.hpp and only those sources include it (cmake/library_sources.cmake).
#pragma once

#include "util/expected.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace util::http {

// ---- The retry policy (the only one: downloads and S3 both use it) ----
//
// Retried (transient):
//   - libcurl failures of the network or of a transfer cut short: could not resolve the host or
//     the proxy, could not connect, timed out (connect time-out or the low-speed limit: a stalled
//     transfer), partial file (a truncated body, also detected by comparing Content-Length with
//     the bytes received), send/receive errors, an empty reply, a failed TLS handshake, HTTP/2
//     framing and stream errors.
//   - HTTP 408 Request Timeout, 429 Too Many Requests, and every 5xx but 501 Not Implemented and
//     505 HTTP Version Not Supported (those two will not change on a retry).
//   - S3 names some of these statuses in its XML error body, also with another status or with
//     200 (CompleteMultipartUpload): RequestTimeout (408), SlowDown (503) and InternalError (500)
//     are judged as the status they stand for (util/s3_request.cpp).
// Not retried: everything else (4xx such as 400/403/404, 3xx after the redirect limit, a
// protocol that is not allowed, a local write error, a receiver that stopped the transfer, a
// cancelled transfer).
// Backoff and bounds: at most `attempts` tries (clamped to 1..k_max_attempts); before try n+1 the
// caller waits initial_backoff * 2^(n-1), at most max_backoff (clamped to k_max_backoff), so the
// waiting adds up to at most (attempts - 1) * max_backoff. Each try is bounded in time by the
// connect time-out, the low-speed limit (a transfer that stalls is aborted) and, when set, a
// whole-transfer time-out (Transport). A cancel flag ends the waiting at once.
struct RetryPolicy {
    int attempts = 4;
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{30000};
};
constexpr int k_max_attempts = 20;
constexpr std::chrono::milliseconds k_max_backoff{5 * 60 * 1000};

// HTTP statuses worth another try (above).
[[nodiscard]] bool transient_status(long status);

// How a try reaches its server: schemes, redirects, time limits.
struct Transport {
    std::string protocols = "http,https";  // schemes the URL may use (libcurl's list)
    long max_redirects = 0;  // redirects followed; 0: none
    std::string redirect_protocols = "https";  // schemes a redirect may lead to
    long connect_timeout_seconds = 20;
    long low_speed_limit_bytes = 1;  // abort when slower than this ...
    long low_speed_time_seconds = 60;  // ... for this long
    long timeout_seconds = 0;  // whole transfer; 0 = none
    std::string user_agent;  // empty: libcurl sends none
    bool path_as_is = false;  // keep "." and ".." path segments (S3 keys)
};

// ---- Tries ----

// A try that failed: why, and whether it is worth another (transient(), or a caller's own judgement).
struct TryFailure {
    std::string reason;
    bool retry = false;
};
using Try = Expected<void, TryFailure>;

// Tries that did not succeed: the last one's reason, how many were made, and whether the cancel
// flag ended the waiting.
struct RetryFailure {
    std::string reason;
    int attempts = 0;
    bool cancelled = false;
};
// The number of tries made when one succeeded.
using Retried = Expected<int, RetryFailure>;

// Runs `attempt(n)` (n from 1) until a try succeeds, fails for good, or the attempts are spent,
// waiting between tries as the policy says. `on_retry(error, wait)` is called before each wait;
// `cancel`, when set during a wait, ends it with Retried::cancelled.
Retried with_retries(const RetryPolicy& policy, const std::function<Try(int)>& attempt,
                     const std::function<void(const std::string&, std::chrono::milliseconds)>& on_retry = {},
                     const std::atomic<bool>* cancel = nullptr);

// " (after 1 attempt)" / " (after 3 attempts)", for messages.
std::string after_attempts(int attempts);

}  // namespace util::http

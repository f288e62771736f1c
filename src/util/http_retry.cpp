#include "util/http_retry.hpp"

#include <algorithm>
#include <thread>

namespace util::http {

bool transient_status(long status) {
    if (status == 408 || status == 429) {
        return true;
    }
    return status >= 500 && status <= 599 && status != 501 && status != 505;
}

Retried with_retries(const RetryPolicy& policy, const std::function<Try(int)>& attempt,
                     const std::function<void(const std::string&, std::chrono::milliseconds)>& on_retry,
                     const std::atomic<bool>* cancel) {
    const int attempts = std::clamp(policy.attempts, 1, k_max_attempts);
    const auto max_backoff = std::clamp(policy.max_backoff, std::chrono::milliseconds(0), k_max_backoff);
    auto backoff = std::clamp(policy.initial_backoff, std::chrono::milliseconds(0), max_backoff);
    for (int i = 1;; ++i) {
        Try t = attempt(i);
        if (t) {
            return i;
        }
        if (!t.error().retry || i >= attempts) {
            return RetryFailure{std::move(t).error().reason, i, false};
        }
        const std::string& reason = t.error().reason;
        if (on_retry) {
            on_retry(reason, backoff);
        }
        // Waits in short steps so that a cancel flag ends the wait at once.
        const auto until = std::chrono::steady_clock::now() + backoff;
        while (std::chrono::steady_clock::now() < until) {
            if (cancel && cancel->load()) {
                return RetryFailure{reason, i, true};
            }
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
        }
        backoff = std::min(backoff * 2, max_backoff);
    }
}

std::string after_attempts(int attempts) {
    return " (after " + std::to_string(attempts) + (attempts == 1 ? " attempt)" : " attempts)");
}

}  // namespace util::http

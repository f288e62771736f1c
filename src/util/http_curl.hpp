// The libcurl side of util/http (downloads) and util/s3 (S3): handle setup, handle reuse, and
// the verdict on a failed try under the retry policy of util/http_retry.hpp. Knows nothing of
// nodectl.
//
// A caller builds one try (its own callbacks, headers and body) on a handle that prepare() has
// reset and configured, judges the result with transient(), and lets with_retries() run the tries.
//
// This header includes libcurl's, so every source that includes it is compiled once per libcurl
// header set (Debian's and the static rebuild's): see cmake/library_sources.cmake.
#pragma once

#include "util/expected.hpp"
#include "util/http_retry.hpp"

#include <curl/curl.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace util::http {

// libcurl failures worth another try (util/http_retry.hpp lists them).
[[nodiscard]] bool transient_curl_code(CURLcode rc);
// The verdict on one finished try: a libcurl failure by its code (CURLE_HTTP_RETURNED_ERROR, from
// CURLOPT_FAILONERROR, by its status), else a status outside 2xx by the status.
[[nodiscard]] bool transient(CURLcode rc, long status);

// ---- Handles ----

// Easy handles kept for reuse, so that the tries of a request and the requests of a client share
// connections. acquire() gives a pooled handle or a new one (nullptr when libcurl cannot make
// one); release() takes it back. Safe to use from several threads at once.
class HandlePool {
public:
    HandlePool() = default;
    ~HandlePool();
    HandlePool(const HandlePool&) = delete;
    HandlePool& operator=(const HandlePool&) = delete;
    [[nodiscard]] CURL* acquire();
    void release(CURL* curl);

private:
    std::mutex m_mutex;
    std::vector<CURL*> m_handles;
};

// Sets options on one handle and remembers the first one libcurl refused.
class Options {
public:
    explicit Options(CURL* curl) : m_curl(curl) {}
    template <class T>
    void set(CURLoption option, T value) {
        CURLcode rc = curl_easy_setopt(m_curl, option, value);
        if (rc != CURLE_OK && m_failed == CURLE_OK) {
            m_failed = rc;
        }
    }
    // Ok when every option was taken, else why not.
    Expected<void> result() const;

private:
    CURL* m_curl;
    CURLcode m_failed = CURLE_OK;
};

// Resets `curl` (a reused handle keeps its connections only) and sets the URL, the error buffer
// (CURL_ERROR_SIZE bytes), no signals, and `transport`; or why it cannot.
Expected<void> prepare(CURL* curl, const std::string& url, const Transport& transport, char* errbuf);

// The response status of the last response on `curl`; 0 when none arrived.
[[nodiscard]] long response_status(CURL* curl);
// "truncated body: X of Y bytes" when the response's Content-Length differs from `received`;
// empty when they agree or no length was announced.
[[nodiscard]] std::string truncation(CURL* curl, std::uint64_t received);
// libcurl's text for `rc` and, when set, the error buffer's detail.
[[nodiscard]] std::string describe(CURLcode rc, const char* errbuf);

}  // namespace util::http

#include "util/http_curl.hpp"

#include <algorithm>
#include <thread>

namespace util::http {

namespace {

// curl_global_init is not thread-safe in every libcurl build; hosts run in parallel threads.
// Its result is kept: when it failed, no handle is made (acquire() gives nullptr).
bool global_init() {
    static std::once_flag once;
    static CURLcode result = CURLE_OK;
    std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
    return result == CURLE_OK;
}

}  // namespace

bool transient_curl_code(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

bool transient(CURLcode rc, long status) {
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        return transient_status(status);
    }
    if (rc != CURLE_OK) {
        return transient_curl_code(rc);
    }
    return (status < 200 || status > 299) && transient_status(status);
}

HandlePool::~HandlePool() {
    for (CURL* c : m_handles) {
        curl_easy_cleanup(c);
    }
}

CURL* HandlePool::acquire() {
    {
        std::lock_guard lock(m_mutex);
        if (!m_handles.empty()) {
            CURL* c = m_handles.back();
            m_handles.pop_back();
            return c;
        }
    }
    return global_init() ? curl_easy_init() : nullptr;
}

void HandlePool::release(CURL* curl) {
    if (!curl) {
        return;
    }
    std::lock_guard lock(m_mutex);
    m_handles.push_back(curl);
}

Expected<void> Options::result() const {
    if (m_failed == CURLE_OK) {
        return Ok{};
    }
    return fail(std::string("libcurl refused an option: ") + curl_easy_strerror(m_failed));
}

Expected<void> prepare(CURL* curl, const std::string& url, const Transport& transport, char* errbuf) {
    curl_easy_reset(curl);
    errbuf[0] = '\0';
    Options o(curl);
    o.set(CURLOPT_URL, url.c_str());
    o.set(CURLOPT_ERRORBUFFER, errbuf);
    o.set(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, transport.protocols.c_str()) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, transport.redirect_protocols.c_str()) != CURLE_OK) {
        return fail("unknown protocol in '" + transport.protocols + "' or '" + transport.redirect_protocols + "'");
    }
#else
#error "libcurl 7.85 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif
    if (transport.max_redirects > 0) {
        o.set(CURLOPT_FOLLOWLOCATION, 1L);
        o.set(CURLOPT_MAXREDIRS, transport.max_redirects);
    }
    o.set(CURLOPT_CONNECTTIMEOUT, transport.connect_timeout_seconds);
    o.set(CURLOPT_LOW_SPEED_LIMIT, transport.low_speed_limit_bytes);
    o.set(CURLOPT_LOW_SPEED_TIME, transport.low_speed_time_seconds);
    o.set(CURLOPT_TIMEOUT, transport.timeout_seconds);
    if (!transport.user_agent.empty()) {
        o.set(CURLOPT_USERAGENT, transport.user_agent.c_str());
    }
    if (transport.path_as_is) {
        o.set(CURLOPT_PATH_AS_IS, 1L);
    }
    return o.result();
}

long response_status(CURL* curl) {
    long status = 0;
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
        return 0;
    }
    return status;
}

std::string truncation(CURL* curl, std::uint64_t received) {
    curl_off_t length = -1;
    if (curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK || length < 0 ||
        received == static_cast<std::uint64_t>(length)) {
        return {};
    }
    return "truncated body: " + std::to_string(received) + " of " + std::to_string(length) + " bytes";
}

std::string describe(CURLcode rc, const char* errbuf) {
    std::string reason = curl_easy_strerror(rc);
    if (errbuf && errbuf[0] != '\0') {
        reason += std::string(": ") + errbuf;
    }
    return reason;
}

}  // namespace util::http

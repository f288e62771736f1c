#include "util/http.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace util {

namespace {

// curl_global_init is not thread-safe in every libcurl build; hosts run in parallel threads.
void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

enum class Sink { file, text, headers_only };

// One try's state, shared with libcurl's callbacks.
struct Transfer {
    Sink sink = Sink::text;
    CURL* curl = nullptr;
    const HttpOptions* options = nullptr;
    std::FILE* file = nullptr;
    std::string* text = nullptr;
    std::uint64_t bytes = 0;
    bool over_limit = false;
    int write_errno = 0;
    bool reached_final = false;
    const std::string* post_body = nullptr;  // post(): the request body
    const std::string* content_type = nullptr;
};

size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * count;
    switch (t->sink) {
    case Sink::headers_only: {
        long code = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300 && code < 400) {
            return len;
        }
        // The final response's headers are in: its body is not wanted, stop here.
        t->reached_final = true;
        return 0;
    }
    case Sink::text:
        if (t->bytes + len > t->options->max_text_bytes) {
            t->over_limit = true;
            return 0;
        }
        t->text->append(data, len);
        break;
    case Sink::file:
        if (std::fwrite(data, 1, len, t->file) != len) {
            t->write_errno = errno;
            return 0;
        }
        break;
    }
    t->bytes += len;
    return len;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    t->options->progress(static_cast<std::uint64_t>(std::max<curl_off_t>(dlnow, 0)),
                         static_cast<std::uint64_t>(std::max<curl_off_t>(dltotal, 0)));
    return 0;
}

struct Attempt {
    bool ok = false;
    bool retry = false;
    std::string error;
};

bool retryable_status(long status) {
    return status == 408 || status == 429 || status >= 500;
}

bool retryable_code(CURLcode rc) {
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
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

Attempt perform_once(const std::string& url, Transfer& t, HttpResponse& response) {
    const HttpOptions& o = *t.options;
    CurlHandle handle(curl_easy_init(), &curl_easy_cleanup);
    if (!handle) {
        return {false, false, "curl_easy_init failed"};
    }
    CURL* curl = handle.get();
    t.curl = curl;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, o.max_redirects);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, o.protocols.c_str()) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, o.redirect_protocols.c_str()) != CURLE_OK) {
        return {false, false, "unknown protocol in '" + o.protocols + "' or '" + o.redirect_protocols + "'"};
    }
#else
#error "libcurl 7.85 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_limit_bytes);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_seconds);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, o.timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    if (!o.user_agent.empty()) {
        curl_easy_setopt(curl, CURLOPT_USERAGENT, o.user_agent.c_str());
    }
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, &curl_slist_free_all);
    if (t.post_body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, t.post_body->data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.post_body->size()));
        headers.reset(curl_slist_append(nullptr, ("Content-Type: " + *t.content_type).c_str()));
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
    }
    if (o.progress) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    }

    CURLcode rc = curl_easy_perform(curl);

    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = status;
    char* effective = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
        response.effective_url = effective;
    }
    std::string where = response.effective_url.empty() || response.effective_url == url
                            ? std::string()
                            : " (redirected to " + response.effective_url + ")";

    if (rc == CURLE_OK) {
        curl_off_t length = -1;
        curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (t.sink != Sink::headers_only && length >= 0 && t.bytes != static_cast<std::uint64_t>(length)) {
            return {false, true,
                    "truncated body: " + std::to_string(t.bytes) + " of " + std::to_string(length) + " bytes" + where};
        }
        return {true, false, {}};
    }
    if (rc == CURLE_WRITE_ERROR && t.sink == Sink::headers_only && t.reached_final) {
        return {true, false, {}};
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        return {false, retryable_status(status), "HTTP " + std::to_string(status) + where};
    }
    if (t.over_limit) {
        return {false, false, "body larger than " + std::to_string(o.max_text_bytes) + " bytes" + where};
    }
    if (t.write_errno != 0) {
        return {false, false, std::string("cannot write the download: ") + std::strerror(t.write_errno)};
    }
    std::string reason = curl_easy_strerror(rc);
    if (errbuf[0] != '\0') {
        reason += std::string(": ") + errbuf;
    }
    if (rc == CURLE_PARTIAL_FILE) {
        reason = "truncated body: " + reason;
    }
    return {false, retryable_code(rc), reason + where};
}

// Runs tries until one succeeds, a failure is not worth retrying, or the attempts are spent.
// `prepare` readies the sink before each try; `discard` cleans up after a failed one.
template <class Prepare, class Discard>
HttpResponse with_retries(const std::string& url, const HttpOptions& options, Sink sink, Prepare prepare,
                          Discard discard) {
    global_init();
    HttpResponse response;
    int attempts = std::max(options.attempts, 1);
    auto backoff = options.initial_backoff;
    for (int i = 1; i <= attempts; ++i) {
        Transfer t;
        t.sink = sink;
        t.options = &options;
        response.attempts = i;
        std::string setup_error = prepare(t);
        if (!setup_error.empty()) {
            response.error = setup_error;
            return response;
        }
        Attempt a = perform_once(url, t, response);
        if (a.ok) {
            response.bytes = t.bytes;
            response.ok = true;
            return response;
        }
        discard(t);
        response.error = std::string(t.post_body ? "POST " : "GET ") + url + ": " + a.error + " (after " + std::to_string(i) +
                         (i == 1 ? " attempt)" : " attempts)");
        if (!a.retry || i == attempts) {
            break;
        }
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, options.max_backoff);
    }
    return response;
}

} // namespace

HttpResponse download(const std::string& url, const std::string& dest_path, const HttpOptions& options) {
    const std::string part = dest_path + ".part";
    std::FILE* file = nullptr;
    auto close_file = [&] {
        if (file) {
            std::fclose(file);
            file = nullptr;
        }
    };
    HttpResponse response = with_retries(
        url, options, Sink::file,
        [&](Transfer& t) -> std::string {
            file = std::fopen(part.c_str(), "wb");
            if (!file) {
                return "cannot create " + part + ": " + std::strerror(errno);
            }
            t.file = file;
            return {};
        },
        [&](Transfer&) {
            close_file();
            std::remove(part.c_str());
        });
    if (!response.ok) {
        close_file();
        std::remove(part.c_str());
        return response;
    }
    // The bytes are on disk before the name says the file is complete.
    bool flushed = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
    int err = errno;
    flushed = (std::fclose(file) == 0) && flushed;
    file = nullptr;
    if (!flushed || std::rename(part.c_str(), dest_path.c_str()) != 0) {
        err = flushed ? errno : err;
        std::remove(part.c_str());
        response.ok = false;
        response.error = "cannot write " + dest_path + ": " + std::strerror(err);
    }
    return response;
}

HttpResponse fetch_text(const std::string& url, const HttpOptions& options) {
    std::string body;
    HttpResponse response = with_retries(
        url, options, Sink::text,
        [&](Transfer& t) -> std::string {
            body.clear();
            t.text = &body;
            return {};
        },
        [&](Transfer&) { body.clear(); });
    if (response.ok) {
        response.body = std::move(body);
    }
    return response;
}

HttpResponse post(const std::string& url, const std::string& body, const std::string& content_type,
                  const HttpOptions& options) {
    std::string reply;
    HttpResponse response = with_retries(
        url, options, Sink::text,
        [&](Transfer& t) -> std::string {
            reply.clear();
            t.text = &reply;
            t.post_body = &body;
            t.content_type = &content_type;
            return {};
        },
        [&](Transfer&) { reply.clear(); });
    if (response.ok) {
        response.body = std::move(reply);
    }
    return response;
}

HttpResponse effective_url(const std::string& url, const HttpOptions& options) {
    return with_retries(
        url, options, Sink::headers_only, [](Transfer&) -> std::string { return {}; }, [](Transfer&) {});
}

} // namespace util

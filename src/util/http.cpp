#include "util/http.hpp"
#include "util/http_curl.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace util {

namespace {

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
        long code = http::response_status(t->curl);
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

// Sets what a try of this file adds to the engine's transport: the sink, a POST body, progress.
std::string set_transfer(CURL* curl, Transfer& t, curl_slist* headers) {
    http::Options o(curl);
    o.set(CURLOPT_FAILONERROR, 1L);
    o.set(CURLOPT_WRITEFUNCTION, &on_write);
    o.set(CURLOPT_WRITEDATA, &t);
    if (t.post_body) {
        o.set(CURLOPT_POSTFIELDS, t.post_body->data());
        o.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.post_body->size()));
        o.set(CURLOPT_HTTPHEADER, headers);
    }
    if (t.options->progress) {
        o.set(CURLOPT_NOPROGRESS, 0L);
        o.set(CURLOPT_XFERINFOFUNCTION, &on_progress);
        o.set(CURLOPT_XFERINFODATA, &t);
    }
    return o.error();
}

using SlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

http::Try perform_once(CURL* curl, const std::string& url, Transfer& t, HttpResponse& response) {
    const HttpOptions& o = *t.options;
    t.curl = curl;
    char errbuf[CURL_ERROR_SIZE] = {};
    SlistPtr headers(nullptr, &curl_slist_free_all);
    if (t.post_body) {
        headers.reset(curl_slist_append(nullptr, ("Content-Type: " + *t.content_type).c_str()));
        if (!headers) {
            return {false, false, "out of memory for a request header"};
        }
    }
    std::string setup = http::prepare(curl, url, o, errbuf);
    if (setup.empty()) {
        setup = set_transfer(curl, t, headers.get());
    }
    if (!setup.empty()) {
        return {false, false, setup};
    }

    CURLcode rc = curl_easy_perform(curl);

    long status = http::response_status(curl);
    response.status = status;
    char* effective = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
        response.effective_url = effective;
    }
    std::string where = response.effective_url.empty() || response.effective_url == url
                            ? std::string()
                            : " (redirected to " + response.effective_url + ")";

    if (rc == CURLE_OK) {
        std::string truncated = t.sink == Sink::headers_only ? std::string() : http::truncation(curl, t.bytes);
        if (!truncated.empty()) {
            return {false, true, truncated + where};
        }
        return {true, false, {}};
    }
    if (rc == CURLE_WRITE_ERROR && t.sink == Sink::headers_only && t.reached_final) {
        return {true, false, {}};
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        return {false, http::transient(rc, status), "HTTP " + std::to_string(status) + where};
    }
    if (t.over_limit) {
        return {false, false, "body larger than " + std::to_string(o.max_text_bytes) + " bytes" + where};
    }
    if (t.write_errno != 0) {
        return {false, false, std::string("cannot write the download: ") + std::strerror(t.write_errno)};
    }
    std::string reason = http::describe(rc, errbuf);
    if (rc == CURLE_PARTIAL_FILE) {
        reason = "truncated body: " + reason;
    }
    return {false, http::transient(rc, status), reason + where};
}

// Runs tries under the engine's retry policy on one handle (reused between tries).
// `prepare` readies the sink before each try (an error ends the call, not retried); `discard`
// cleans up after a failed one.
template <class Prepare, class Discard>
HttpResponse with_retries(const std::string& url, const HttpOptions& options, Sink sink, Prepare prepare,
                          Discard discard) {
    HttpResponse response;
    http::HandlePool pool;
    CURL* curl = pool.acquire();
    if (!curl) {
        response.error = "GET " + url + ": curl_easy_init failed";
        return response;
    }
    std::string setup_error;
    bool is_post = false;
    std::uint64_t bytes = 0;
    http::Retried r = http::with_retries(options, [&](int) -> http::Try {
        Transfer t;
        t.sink = sink;
        t.options = &options;
        setup_error = prepare(t);
        if (!setup_error.empty()) {
            return {false, false, setup_error};
        }
        is_post = t.post_body != nullptr;
        http::Try a = perform_once(curl, url, t, response);
        bytes = t.bytes;
        if (!a.ok) {
            discard(t);
        }
        return a;
    });
    pool.release(curl);
    response.attempts = r.attempts;
    response.ok = r.ok;
    if (r.ok) {
        response.bytes = bytes;
    } else if (!setup_error.empty()) {
        response.error = setup_error;
    } else {
        response.error =
            std::string(is_post ? "POST " : "GET ") + url + ": " + r.error + http::after_attempts(r.attempts);
    }
    return response;
}

}  // namespace

HttpResponse download(const std::string& url, const std::string& dest_path, const HttpOptions& options) {
    const std::string part = dest_path + ".part";
    std::FILE* file = nullptr;
    // After a failed try: the partial file is thrown away, so neither closing it nor removing it
    // can lose anything (a .part that cannot be removed is overwritten by the next try).
    auto drop_part = [&] {
        if (file) {
            (void)std::fclose(file);
            file = nullptr;
        }
        (void)std::remove(part.c_str());
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
        [&](Transfer&) { drop_part(); });
    if (!response.ok) {
        drop_part();
        return response;
    }
    // The bytes are on disk before the name says the file is complete.
    bool flushed = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
    int err = errno;
    flushed = (std::fclose(file) == 0) && flushed;
    file = nullptr;
    if (!flushed || std::rename(part.c_str(), dest_path.c_str()) != 0) {
        err = flushed ? errno : err;
        (void)std::remove(part.c_str());  // the error reported is the write's, not the clean-up's
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

}  // namespace util

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
Expected<void> set_transfer(CURL* curl, Transfer& t, curl_slist* headers) {
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
    return o.result();
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
            return http::TryFailure{"out of memory for a request header", false};
        }
    }
    auto setup = http::prepare(curl, url, o, errbuf);
    if (setup) {
        setup = set_transfer(curl, t, headers.get());
    }
    if (!setup) {
        return http::TryFailure{std::move(setup).error(), false};
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
            return http::TryFailure{truncated + where, true};
        }
        return Ok{};
    }
    if (rc == CURLE_WRITE_ERROR && t.sink == Sink::headers_only && t.reached_final) {
        return Ok{};
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        return http::TryFailure{"HTTP " + std::to_string(status) + where, http::transient(rc, status)};
    }
    if (t.over_limit) {
        return http::TryFailure{"body larger than " + std::to_string(o.max_text_bytes) + " bytes" + where, false};
    }
    if (t.write_errno != 0) {
        return http::TryFailure{std::string("cannot write the download: ") + std::strerror(t.write_errno), false};
    }
    std::string reason = http::describe(rc, errbuf);
    if (rc == CURLE_PARTIAL_FILE) {
        reason = "truncated body: " + reason;
    }
    return http::TryFailure{reason + where, http::transient(rc, status)};
}

// Runs tries under the engine's retry policy on one handle (reused between tries).
// `prepare` readies the sink before each try (an error ends the call, not retried); `discard`
// cleans up after a failed one.
template <class Prepare, class Discard>
HttpResult with_retries(const std::string& url, const HttpOptions& options, Sink sink, Prepare prepare,
                        Discard discard) {
    HttpResponse response;
    http::HandlePool pool;
    CURL* curl = pool.acquire();
    if (!curl) {
        return HttpFailure{"GET " + url + ": curl_easy_init failed"};
    }
    std::string setup_error;  // why a try could not be readied (not retried)
    bool is_post = false;
    std::uint64_t bytes = 0;
    http::Retried r = http::with_retries(options, [&](int) -> http::Try {
        Transfer t;
        t.sink = sink;
        t.options = &options;
        if (auto ready = prepare(t); !ready) {
            setup_error = std::move(ready).error();
            return http::TryFailure{setup_error, false};
        }
        is_post = t.post_body != nullptr;
        http::Try a = perform_once(curl, url, t, response);
        bytes = t.bytes;
        if (!a) {
            discard(t);
        }
        return a;
    });
    pool.release(curl);
    if (!r) {
        const auto& failed = r.error();
        std::string message = !setup_error.empty() ? setup_error
                                                   : std::string(is_post ? "POST " : "GET ") + url + ": " +
                                                         failed.reason + http::after_attempts(failed.attempts);
        return HttpFailure{std::move(message), response.status, failed.attempts};
    }
    response.attempts = *r;
    response.bytes = bytes;
    return response;
}

}  // namespace

HttpResult download(const std::string& url, const std::string& dest_path, const HttpOptions& options) {
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
    HttpResult response = with_retries(
        url, options, Sink::file,
        [&](Transfer& t) -> Expected<void> {
            file = std::fopen(part.c_str(), "wb");
            if (!file) {
                return fail("cannot create " + part + ": " + std::strerror(errno));
            }
            t.file = file;
            return Ok{};
        },
        [&](Transfer&) { drop_part(); });
    if (!response) {
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
        return HttpFailure{"cannot write " + dest_path + ": " + std::strerror(err), response->status,
                           response->attempts};
    }
    return response;
}

HttpResult fetch_text(const std::string& url, const HttpOptions& options) {
    std::string body;
    HttpResult response = with_retries(
        url, options, Sink::text,
        [&](Transfer& t) -> Expected<void> {
            body.clear();
            t.text = &body;
            return Ok{};
        },
        [&](Transfer&) { body.clear(); });
    if (response) {
        response->body = std::move(body);
    }
    return response;
}

HttpResult post(const std::string& url, const std::string& body, const std::string& content_type,
                const HttpOptions& options) {
    std::string reply;
    HttpResult response = with_retries(
        url, options, Sink::text,
        [&](Transfer& t) -> Expected<void> {
            reply.clear();
            t.text = &reply;
            t.post_body = &body;
            t.content_type = &content_type;
            return Ok{};
        },
        [&](Transfer&) { reply.clear(); });
    if (response) {
        response->body = std::move(reply);
    }
    return response;
}

HttpResult effective_url(const std::string& url, const HttpOptions& options) {
    return with_retries(
        url, options, Sink::headers_only, [](Transfer&) -> Expected<void> { return Ok{}; }, [](Transfer&) {});
}

}  // namespace util

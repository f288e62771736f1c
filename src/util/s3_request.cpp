// One signed S3 request over the HTTP engine: SigV4 headers, libcurl callbacks, the verdict on a
// try (S3's error codes judged by the engine's retry policy), and the tries.
#include "util/s3_request_curl.hpp"

#include "util/digest.hpp"
#include "util/s3_xml.hpp"
#include "util/sigv4.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>

namespace util::s3 {

namespace {

struct Exchange {
    CURL* curl = nullptr;
    const Request* request = nullptr;
    Response* response = nullptr;
    std::size_t read_offset = 0;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* x = static_cast<Exchange*>(user);
    std::string_view line(data, size * count);
    if (line.substr(0, 5) == "HTTP/") {
        x->response->headers.clear();
    } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
        x->response->headers[to_lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* x = static_cast<Exchange*>(user);
    size_t len = size * count;
    Response& r = *x->response;
    if (http::response_status(x->curl) >= 300) {
        if (r.error_body.size() < k_max_error_body) {
            r.error_body.append(data, std::min(len, k_max_error_body - r.error_body.size()));
        }
        return len;
    }
    if (x->request->sink) {
        if (!(*x->request->sink)(data, len)) {
            r.sink_stopped = true;
            return 0;
        }
        r.sink_bytes += len;
        return len;
    }
    if (r.body.size() + len > k_max_text_body) {
        return 0;
    }
    r.body.append(data, len);
    return len;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
    auto* x = static_cast<Exchange*>(user);
    std::string_view body = x->request->body;
    size_t n = std::min(size * count, body.size() - x->read_offset);
    std::memcpy(buffer, body.data() + x->read_offset, n);
    x->read_offset += n;
    return n;
}

int on_seek(void* user, curl_off_t offset, int origin) {
    auto* x = static_cast<Exchange*>(user);
    if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > x->request->body.size()) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    x->read_offset = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* x = static_cast<Exchange*>(user);
    if (x->request->cancel && x->request->cancel->load()) {
        x->response->cancelled = true;
        return 1;
    }
    return 0;
}

using SlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// Appends `line` to `list`; false (list unchanged and still owned) when libcurl has no memory.
bool append(SlistPtr& list, const std::string& line) {
    curl_slist* grown = curl_slist_append(list.get(), line.c_str());
    if (!grown) {
        return false;
    }
    (void)list.release();  // `grown` now heads the same list
    list.reset(grown);
    return true;
}

std::string encoded_query(const Request& req) {
    std::string query;
    for (const auto& [k, v] : req.query) {
        if (!query.empty()) {
            query += '&';
        }
        query += sigv4::uri_encode(k, false) + "=" + sigv4::uri_encode(v, false);
    }
    return query;
}

// The request's headers with the SigV4 ones, as libcurl header lines (Host comes from the URL).
// Empty list and false when memory ran out.
bool signed_headers(const Client::Impl& impl, const Request& req, const std::string& path, const std::string& query,
                    SlistPtr& out) {
    sigv4::Request sreq;
    sreq.method = req.method;
    sreq.path = path;
    sreq.query = query;
    sreq.headers.emplace_back("Host", impl.host());
    bool has_type = false;
    for (const auto& h : req.headers) {
        sreq.headers.push_back(h);
        has_type = has_type || to_lower(h.first) == "content-type";
    }
    if (req.method == "POST" && !has_type) {  // else libcurl sends a form-urlencoded type, unsigned
        sreq.headers.emplace_back("Content-Type", "application/xml");
    }
    if (req.resume_from > 0) {
        sreq.headers.emplace_back("Range", "bytes=" + std::to_string(req.resume_from) + "-");
        if (!req.if_match.empty()) {
            sreq.headers.emplace_back("If-Match", req.if_match);
        }
    }
    sreq.payload_hash = sha256_hex(req.has_body ? req.body : std::string_view());
    sigv4::Params params;
    params.access_key_id = impl.config.credentials.access_key_id;
    params.secret_access_key = impl.config.credentials.secret_access_key;
    params.session_token = impl.config.credentials.session_token;
    params.region = impl.config.region;
    params.service = "s3";
    params.amz_date = sigv4::amz_date(static_cast<long long>(std::time(nullptr)));
    params.normalize_path = false;
    params.encode_path = false;
    params.sign_payload_header = true;
    sigv4::Signed s = sigv4::sign(sreq, params);

    bool ok = true;
    for (std::size_t i = 1; i < sreq.headers.size(); ++i) {
        ok = ok && append(out, sreq.headers[i].first + ": " + sreq.headers[i].second);
    }
    for (const auto& [name, value] : s.add_headers) {
        ok = ok && append(out, name + ": " + value);
    }
    return ok && append(out, "Expect:");
}

// The callbacks and the method's options, on a handle http::prepare() readied.
Expected<void> set_exchange(Exchange& x, curl_slist* headers) {
    CURL* curl = x.curl;
    const Request& req = *x.request;
    http::Options o(curl);
    o.set(CURLOPT_HTTPHEADER, headers);
    o.set(CURLOPT_HEADERFUNCTION, &on_header);
    o.set(CURLOPT_HEADERDATA, &x);
    o.set(CURLOPT_WRITEFUNCTION, &on_write);
    o.set(CURLOPT_WRITEDATA, &x);
    o.set(CURLOPT_NOPROGRESS, 0L);
    o.set(CURLOPT_XFERINFOFUNCTION, &on_progress);
    o.set(CURLOPT_XFERINFODATA, &x);
    if (req.method == "HEAD") {
        o.set(CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT") {
        o.set(CURLOPT_UPLOAD, 1L);
        o.set(CURLOPT_READFUNCTION, &on_read);
        o.set(CURLOPT_READDATA, &x);
        o.set(CURLOPT_SEEKFUNCTION, &on_seek);
        o.set(CURLOPT_SEEKDATA, &x);
        o.set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method == "POST") {
        o.set(CURLOPT_POST, 1L);
        o.set(CURLOPT_POSTFIELDS, req.body.data());
        o.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method != "GET") {
        o.set(CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    return o.result();
}

// The HTTP status an S3 error code stands for, when S3 names a transient condition in its body
// (also under another status, or under 200 for CompleteMultipartUpload); 0 for any other code.
long status_of_code(const std::string& code) {
    if (code == "RequestTimeout") {
        return 408;
    }
    if (code == "SlowDown") {
        return 503;
    }
    if (code == "InternalError") {
        return 500;
    }
    return 0;
}

// "HTTP 403 AccessDenied: message", and whether the engine's policy retries it.
http::Try error_answer(const Response& resp) {
    std::string code = xml::text(resp.error_body, "Code");
    std::string message = xml::text(resp.error_body, "Message");
    std::string reason = "HTTP " + std::to_string(resp.status);
    if (!code.empty()) {
        reason += " " + code;
    }
    if (!message.empty()) {
        reason += ": " + message;
    }
    if (code.empty() && resp.status == 403) {  // HEAD answers carry no body
        reason += " Forbidden (wrong credentials, or no permission)";
    } else if (code.empty() && resp.status == 404) {
        reason += " Not Found";
    }
    bool retry = http::transient_status(resp.status) || http::transient_status(status_of_code(code));
    return http::TryFailure{reason, retry};
}

// The verdict on one try. `delivered` counts the bytes a sink received over all tries so far.
http::Try judge(const Request& req, const Response& resp, std::uint64_t delivered) {
    if (resp.cancelled) {
        return http::TryFailure{"cancelled", false};
    }
    if (resp.sink_stopped) {
        return http::TryFailure{"the receiver stopped the download after " + std::to_string(delivered) + " bytes",
                                false};
    }
    if (resp.code != CURLE_OK) {
        return http::TryFailure{resp.curl_error, http::transient(resp.code, resp.status)};
    }
    if (resp.status >= 300 || resp.status < 200) {
        return error_answer(resp);
    }
    if (req.method == "POST" && resp.body.find("<Error>") != std::string::npos) {
        // CompleteMultipartUpload can fail with 200 and an <Error> body.
        std::string code = xml::text(resp.body, "Code");
        return http::TryFailure{"HTTP 200 with error " + code + ": " + xml::text(resp.body, "Message"),
                                http::transient_status(status_of_code(code))};
    }
    if (delivered > 0 && req.resume_from > 0 && resp.status != 206) {
        return http::TryFailure{
            "the server ignored the Range of a resumed download (HTTP " + std::to_string(resp.status) + ")", false};
    }
    return Ok{};
}

}  // namespace

Response Client::Impl::perform_once(CURL* curl, const Request& req) {
    Response resp;
    std::string query = encoded_query(req);
    std::string path_str = path(req.key);
    std::string url = endpoint.scheme + "://" + host() + path_str + (query.empty() ? "" : "?" + query);
    http::Transport transport;
    transport.connect_timeout_seconds = config.connect_timeout_seconds;
    transport.low_speed_limit_bytes = 1;
    transport.low_speed_time_seconds = config.low_speed_time_seconds;
    transport.path_as_is = true;  // S3 keys may contain "." and ".." segments

    char errbuf[CURL_ERROR_SIZE] = {};
    SlistPtr headers(nullptr, &curl_slist_free_all);
    Exchange x{curl, &req, &resp, 0};
    Expected<void> setup = signed_headers(*this, req, path_str, query, headers)
                               ? Expected<void>()
                               : fail("out of memory for the request headers");
    if (setup) {
        setup = http::prepare(curl, url, transport, errbuf);
    }
    if (setup) {
        setup = set_exchange(x, headers.get());
    }
    if (!setup) {
        resp.code = CURLE_FAILED_INIT;  // not transient: the same setup fails again
        resp.curl_error = std::move(setup).error();
        return resp;
    }

    resp.code = curl_easy_perform(curl);
    resp.status = http::response_status(curl);
    if (resp.code == CURLE_OK && req.method != "HEAD" && resp.status < 300) {
        std::string truncated = http::truncation(curl, req.sink ? resp.sink_bytes : resp.body.size());
        if (!truncated.empty()) {
            resp.code = CURLE_PARTIAL_FILE;
            resp.curl_error = truncated;
        }
    }
    if (resp.code != CURLE_OK && resp.curl_error.empty()) {
        resp.curl_error = http::describe(resp.code, errbuf);
    }
    // The header list is freed when this returns: the handle must not point at it any longer.
    // Clearing an option cannot fail.
    (void)curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    return resp;
}

Status Client::Impl::perform(CURL* curl, Request req, Response& resp, const std::string& what) {
    if (!config_error.empty()) {
        return Failure{"S3 " + what + ": " + config_error};
    }
    std::uint64_t delivered = 0;
    std::string etag;
    http::RetryPolicy policy{config.attempts, config.initial_backoff, config.max_backoff};
    http::Retried r = http::with_retries(
        policy,
        [&](int) {
            req.resume_from = delivered;
            req.if_match = delivered > 0 ? etag : std::string();
            resp = perform_once(curl, req);
            if (req.sink) {
                delivered += resp.sink_bytes;
                if (etag.empty()) {
                    etag = resp.headers["etag"];
                }
            }
            return judge(req, resp, delivered);
        },
        [&](const std::string& reason, std::chrono::milliseconds wait) {
            if (config.log) {
                config.log("S3 " + what + ": " + reason + "; retrying in " + std::to_string(wait.count()) + " ms");
            }
        },
        req.cancel);
    if (r) {
        return Ok{};
    }
    const http::RetryFailure& failed = r.error();
    return Failure{
        "S3 " + what + ": " +
            (failed.cancelled ? std::string("cancelled") : failed.reason + http::after_attempts(failed.attempts)),
        resp.status, failed.attempts};
}

Status Client::Impl::perform(Request req, Response& resp, const std::string& what) {
    CURL* curl = handles.acquire();
    if (!curl) {
        return Failure{"S3 " + what + ": curl_easy_init failed"};
    }
    Status st = perform(curl, std::move(req), resp, what);
    handles.release(curl);
    return st;
}

}  // namespace util::s3

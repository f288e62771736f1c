#include "util/s3.hpp"

#include "util/digest.hpp"
#include "util/sigv4.hpp"
#include "util/text.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace util::s3 {

// Status-returning TRY for this file (util has no Result<T>).
#define TRY_STATUS(expr)                                                                                               \
    do {                                                                                                               \
        Status try_status_ = (expr);                                                                                   \
        if (!try_status_.ok) {                                                                                         \
            return try_status_;                                                                                        \
        }                                                                                                              \
    } while (0)

namespace {

constexpr std::uint64_t k_min_s3_part = 5ull << 20;
constexpr std::uint64_t k_max_s3_part = 5ull << 30;
constexpr int k_max_parts = 10000;
constexpr std::size_t k_max_error_body = 64 << 10;
constexpr std::size_t k_max_text_body = 64 << 20;

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) {
        ++b;
    }
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) {
        --e;
    }
    return std::string(s.substr(b, e - b));
}

// ---- minimal XML: S3's responses are flat, element text is entity-escaped ----

std::string xml_unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        std::size_t semi = s.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            out += s[i];
            continue;
        }
        std::string_view ent = s.substr(i + 1, semi - i - 1);
        unsigned long cp = 0;
        bool numeric = false;
        if (ent == "amp") {
            out += '&';
        } else if (ent == "lt") {
            out += '<';
        } else if (ent == "gt") {
            out += '>';
        } else if (ent == "quot") {
            out += '"';
        } else if (ent == "apos") {
            out += '\'';
        } else if (ent.size() > 1 && ent[0] == '#') {
            numeric = true;
            const bool hex = ent[1] == 'x' || ent[1] == 'X';
            // A code point Unicode has (up to U+10FFFF); anything else stays as it was written.
            auto n = parse_uint(ent.substr(hex ? 2 : 1), {.max = 0x10FFFF, .base = hex ? 16 : 10});
            if (!n) {
                out += s[i];
                continue;
            }
            cp = static_cast<unsigned long>(*n);
        } else {
            out += s[i];
            continue;
        }
        if (numeric) {   // UTF-8 encode the code point
            if (cp < 0x80) {
                out += static_cast<char>(cp);
            } else if (cp < 0x800) {
                out += static_cast<char>(0xC0 | (cp >> 6));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out += static_cast<char>(0xE0 | (cp >> 12));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
                out += static_cast<char>(0xF0 | (cp >> 18));
                out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            }
        }
        i = semi;
    }
    return out;
}

std::string xml_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

// The raw contents of every <tag>...</tag> (or <tag attr="...">) in `xml`, in order. An empty
// element <tag/> gives an empty string.
std::vector<std::string_view> xml_all(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> out;
    std::string open = "<" + std::string(tag);
    std::string close = "</" + std::string(tag) + ">";
    std::size_t pos = 0;
    while ((pos = xml.find(open, pos)) != std::string_view::npos) {
        std::size_t after = pos + open.size();
        if (after >= xml.size()) {
            break;
        }
        char c = xml[after];
        if (c != '>' && c != ' ' && c != '/') {   // <KeyMarker> is not <Key>
            pos = after;
            continue;
        }
        std::size_t gt = xml.find('>', after);
        if (gt == std::string_view::npos) {
            break;
        }
        if (xml[gt - 1] == '/') {
            out.emplace_back();
            pos = gt + 1;
            continue;
        }
        std::size_t end = xml.find(close, gt + 1);
        if (end == std::string_view::npos) {
            break;
        }
        out.push_back(xml.substr(gt + 1, end - gt - 1));
        pos = end + close.size();
    }
    return out;
}

std::string xml_text(std::string_view xml, std::string_view tag) {
    auto all = xml_all(xml, tag);
    return all.empty() ? std::string() : xml_unescape(all.front());
}

// ---- one HTTP exchange ----

struct Request {
    std::string method = "GET";
    std::string key;                                             // empty: the bucket itself
    std::vector<std::pair<std::string, std::string>> query;      // not encoded
    std::vector<std::pair<std::string, std::string>> headers;
    std::string_view body;
    bool has_body = false;
    // Streamed response body (GET); when unset the body is collected into Response::body.
    const std::function<bool(const char*, std::size_t)>* sink = nullptr;
    std::uint64_t resume_from = 0;   // GET: Range start (a resumed download)
    std::string if_match;            // GET resume: the ETag the first bytes came from
    const std::atomic<bool>* cancel = nullptr;
};

struct Response {
    CURLcode code = CURLE_OK;
    long status = 0;
    std::map<std::string, std::string> headers;   // lower-case names
    std::string body;
    std::string error_body;
    std::uint64_t sink_bytes = 0;
    bool sink_stopped = false;
    bool cancelled = false;
    std::string curl_error;
};

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
        x->response->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* x = static_cast<Exchange*>(user);
    size_t len = size * count;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    Response& r = *x->response;
    if (status >= 300) {
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

bool retryable_code(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
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

struct Endpoint {
    std::string scheme;      // "http" / "https"
    std::string authority;   // host[:port]
    std::string base_path;   // "" or "/prefix"
};

bool parse_endpoint(const std::string& endpoint, Endpoint& out, std::string& error) {
    std::size_t sep = endpoint.find("://");
    if (sep == std::string::npos) {
        error = "endpoint '" + endpoint + "' has no scheme (expected http:// or https://)";
        return false;
    }
    out.scheme = lower(endpoint.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https") {
        error = "endpoint '" + endpoint + "': scheme must be http or https";
        return false;
    }
    std::string rest = endpoint.substr(sep + 3);
    std::size_t slash = rest.find('/');
    out.authority = rest.substr(0, slash);
    out.base_path = slash == std::string::npos ? std::string() : rest.substr(slash);
    while (!out.base_path.empty() && out.base_path.back() == '/') {
        out.base_path.pop_back();
    }
    if (out.authority.empty() || out.authority.find('@') != std::string::npos) {
        error = "endpoint '" + endpoint + "' has no host (or carries user info, which is not allowed)";
        return false;
    }
    return true;
}

} // namespace

std::string encode_key(std::string_view key) {
    return sigv4::uri_encode(key, true);
}

// ---- Client::Impl ----

struct Client::Impl {
    Config config;
    Endpoint endpoint;
    std::string config_error;
    std::mutex pool_mutex;
    std::vector<CURL*> pool;

    explicit Impl(const Config& c) : config(c) {
        global_init();
        if (config.endpoint.empty()) {
            config.endpoint = "https://s3." + config.region + ".amazonaws.com";
        }
        if (config.bucket.empty()) {
            config_error = "no bucket configured";
        } else if (parse_endpoint(config.endpoint, endpoint, config_error)) {
            config_error.clear();
        }
        if (config.region.empty()) {
            config.region = "us-east-1";
        }
        if (config.credentials.access_key_id.empty() || config.credentials.secret_access_key.empty()) {
            if (config_error.empty()) {
                config_error = "no S3 credentials (access key id and secret access key)";
            }
        }
        config.attempts = std::max(config.attempts, 1);
        config.parallel_parts = std::clamp(config.parallel_parts, 1, 64);
        config.min_part_size = std::clamp(config.min_part_size, k_min_s3_part, k_max_s3_part);
    }
    ~Impl() {
        for (CURL* c : pool) {
            curl_easy_cleanup(c);
        }
    }

    CURL* acquire() {
        {
            std::lock_guard lock(pool_mutex);
            if (!pool.empty()) {
                CURL* c = pool.back();
                pool.pop_back();
                return c;
            }
        }
        return curl_easy_init();
    }
    void release(CURL* c) {
        if (!c) {
            return;
        }
        std::lock_guard lock(pool_mutex);
        pool.push_back(c);
    }

    // "s3://bucket/key", for messages.
    std::string where(const std::string& key) const { return "s3://" + config.bucket + "/" + key; }

    std::string host() const {
        return config.path_style ? endpoint.authority : config.bucket + "." + endpoint.authority;
    }
    std::string path(const std::string& key) const {
        std::string p = endpoint.base_path;
        if (config.path_style) {
            p += "/" + encode_key(config.bucket);
        }
        p += "/" + encode_key(key);
        return p;
    }

    // One try. The request is signed afresh (current time) every try.
    Response perform_once(CURL* curl, const Request& req) {
        Response resp;
        curl_easy_reset(curl);
        std::string query;
        for (const auto& [k, v] : req.query) {
            if (!query.empty()) {
                query += '&';
            }
            query += sigv4::uri_encode(k, false) + "=" + sigv4::uri_encode(v, false);
        }
        std::string path_str = path(req.key);
        std::string url = endpoint.scheme + "://" + host() + path_str + (query.empty() ? "" : "?" + query);

        sigv4::Request sreq;
        sreq.method = req.method;
        sreq.path = path_str;
        sreq.query = query;
        sreq.headers.emplace_back("Host", host());
        bool has_type = false;
        for (const auto& h : req.headers) {
            sreq.headers.push_back(h);
            has_type = has_type || lower(h.first) == "content-type";
        }
        if (req.method == "POST" && !has_type) {   // else libcurl sends a form-urlencoded type, unsigned
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
        params.access_key_id = config.credentials.access_key_id;
        params.secret_access_key = config.credentials.secret_access_key;
        params.session_token = config.credentials.session_token;
        params.region = config.region;
        params.service = "s3";
        params.amz_date = sigv4::amz_date(static_cast<long long>(std::time(nullptr)));
        params.normalize_path = false;
        params.encode_path = false;
        params.sign_payload_header = true;
        sigv4::Signed s = sigv4::sign(sreq, params);

        curl_slist* list = nullptr;
        for (std::size_t i = 1; i < sreq.headers.size(); ++i) {   // Host comes from the URL
            list = curl_slist_append(list, (sreq.headers[i].first + ": " + sreq.headers[i].second).c_str());
        }
        for (const auto& [name, value] : s.add_headers) {
            list = curl_slist_append(list, (name + ": " + value).c_str());
        }
        list = curl_slist_append(list, "Expect:");

        Exchange x{curl, &req, &resp, 0};
        char errbuf[CURL_ERROR_SIZE] = {};
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);   // S3 keys may contain "." and ".." segments
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, config.connect_timeout_seconds);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, config.low_speed_time_seconds);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
        if (req.method == "HEAD") {
            curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        } else if (req.method == "PUT") {
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, &on_read);
            curl_easy_setopt(curl, CURLOPT_READDATA, &x);
            curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &on_seek);
            curl_easy_setopt(curl, CURLOPT_SEEKDATA, &x);
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        } else if (req.method == "POST") {
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        } else if (req.method != "GET") {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        }

        resp.code = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
        if (resp.code == CURLE_OK && req.method != "HEAD" && resp.status < 300) {
            curl_off_t length = -1;
            curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
            std::uint64_t got = req.sink ? resp.sink_bytes : resp.body.size();
            if (length >= 0 && got != static_cast<std::uint64_t>(length)) {
                resp.code = CURLE_PARTIAL_FILE;
                resp.curl_error = "truncated body: " + std::to_string(got) + " of " + std::to_string(length) + " bytes";
            }
        }
        if (resp.code != CURLE_OK && resp.curl_error.empty()) {
            resp.curl_error = curl_easy_strerror(resp.code);
            if (errbuf[0] != '\0') {
                resp.curl_error += std::string(": ") + errbuf;
            }
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
        curl_slist_free_all(list);
        return resp;
    }

    // Runs tries with exponential backoff until one succeeds or a failure is not transient.
    // `what` is "PUT s3://b/k" for messages. A GET into a sink resumes with a Range request.
    Status perform(CURL* curl, Request req, Response& resp, const std::string& what) {
        Status st;
        if (!config_error.empty()) {
            return {false, "S3 " + what + ": " + config_error, 0};
        }
        auto backoff = config.initial_backoff;
        std::uint64_t delivered = 0;
        std::string etag;
        for (int i = 1; i <= config.attempts; ++i) {
            req.resume_from = delivered;
            req.if_match = delivered > 0 ? etag : std::string();
            resp = perform_once(curl, req);
            if (req.sink) {
                delivered += resp.sink_bytes;
                if (etag.empty()) {
                    etag = resp.headers["etag"];
                }
            }
            bool retry = false;
            std::string reason;
            if (resp.cancelled) {
                reason = "cancelled";
            } else if (resp.sink_stopped) {
                reason = "the receiver stopped the download after " + std::to_string(delivered) + " bytes";
            } else if (resp.code != CURLE_OK) {
                reason = resp.curl_error;
                retry = retryable_code(resp.code);
            } else if (resp.status >= 300 || resp.status < 200) {
                std::string code = xml_text(resp.error_body, "Code");
                std::string message = xml_text(resp.error_body, "Message");
                reason = "HTTP " + std::to_string(resp.status);
                if (!code.empty()) {
                    reason += " " + code;
                }
                if (!message.empty()) {
                    reason += ": " + message;
                }
                if (code.empty() && resp.status == 403) {   // HEAD answers carry no body
                    reason += " Forbidden (wrong credentials, or no permission)";
                } else if (code.empty() && resp.status == 404) {
                    reason += " Not Found";
                }
                // 501 NotImplemented / 505 will not change on a retry.
                retry = resp.status == 408 || resp.status == 429 ||
                        (resp.status >= 500 && resp.status != 501 && resp.status != 505) || code == "RequestTimeout" ||
                        code == "SlowDown" || code == "InternalError";
            } else if (req.method == "POST" && resp.body.find("<Error>") != std::string::npos) {
                // CompleteMultipartUpload can fail with 200 and an <Error> body.
                std::string code = xml_text(resp.body, "Code");
                reason = "HTTP 200 with error " + code + ": " + xml_text(resp.body, "Message");
                retry = code == "InternalError" || code == "SlowDown" || code == "RequestTimeout";
            } else if (delivered > 0 && req.resume_from > 0 && resp.status != 206) {
                reason = "the server ignored the Range of a resumed download (HTTP " + std::to_string(resp.status) + ")";
            } else {
                st.ok = true;
                st.http_status = resp.status;
                return st;
            }
            st.ok = false;
            st.http_status = resp.status;
            st.error = "S3 " + what + ": " + reason + " (after " + std::to_string(i) +
                       (i == 1 ? " attempt)" : " attempts)");
            if (!retry || i == config.attempts) {
                break;
            }
            if (config.log) {
                config.log("S3 " + what + ": " + reason + "; retrying in " + std::to_string(backoff.count()) + " ms");
            }
            auto until = std::chrono::steady_clock::now() + backoff;
            while (std::chrono::steady_clock::now() < until) {
                if (req.cancel && req.cancel->load()) {
                    st.error = "S3 " + what + ": cancelled";
                    return st;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            backoff = std::min(backoff * 2, config.max_backoff);
        }
        return st;
    }

    Status perform(Request req, Response& resp, const std::string& what) {
        CURL* curl = acquire();
        if (!curl) {
            return {false, "S3 " + what + ": curl_easy_init failed", 0};
        }
        Status st = perform(curl, std::move(req), resp, what);
        release(curl);
        return st;
    }

    void add_storage_class(Request& req) const {
        if (!config.storage_class.empty()) {
            req.headers.emplace_back("x-amz-storage-class", config.storage_class);
        }
    }
};

// ---- multipart upload ----

namespace {

class StreamingUpload : public Upload {
public:
    StreamingUpload(Client::Impl& impl, std::string key, std::uint64_t size_hint)
        : m_impl(impl), m_key(std::move(key)), m_hint(size_hint) {
        m_part_size = Client::part_size_for(m_impl.config.min_part_size, m_hint, 1);
        m_buffer.reserve(m_part_size);
    }
    ~StreamingUpload() override {
        if (m_state == State::open || m_state == State::failed) {
            abort();
        }
    }

    Status write(const void* data, std::size_t size) override {
        if (m_state != State::open) {
            return closed_status();
        }
        const char* p = static_cast<const char*>(data);
        while (size > 0) {
            std::size_t take = std::min<std::size_t>(size, m_part_size - m_buffer.size());
            m_buffer.append(p, take);
            p += take;
            size -= take;
            m_bytes += take;
            if (m_buffer.size() >= m_part_size) {
                Status st = send_buffer();
                if (!st.ok) {
                    return fail(st);
                }
            }
        }
        return {};
    }

    Status finish() override {
        if (m_state != State::open) {
            return closed_status();
        }
        if (m_upload_id.empty()) {   // smaller than one part: a single PUT
            Request req;
            req.method = "PUT";
            req.key = m_key;
            req.body = m_buffer;
            req.has_body = true;
            req.headers.emplace_back("Content-Type", "application/octet-stream");
            m_impl.add_storage_class(req);
            Response resp;
            Status st = m_impl.perform(req, resp, "PUT " + m_impl.where(m_key));
            m_state = st.ok ? State::finished : State::failed;
            m_failure = st;
            std::string().swap(m_buffer);
            return st;
        }
        if (!m_buffer.empty()) {
            Status st = send_buffer();
            if (!st.ok) {
                return fail(st);
            }
        }
        {
            std::unique_lock lock(m_mutex);
            m_space.wait(lock, [&] { return m_in_flight == 0 || m_failed; });
            if (m_failed) {
                Status st = m_part_failure;
                lock.unlock();
                return fail(st);
            }
        }
        stop_workers();
        std::string xml = "<CompleteMultipartUpload>";
        for (const auto& [number, etag] : m_etags) {
            xml += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + xml_escape(etag) +
                   "</ETag></Part>";
        }
        xml += "</CompleteMultipartUpload>";
        Request req;
        req.method = "POST";
        req.key = m_key;
        req.query = {{"uploadId", m_upload_id}};
        req.body = xml;
        req.has_body = true;
        Response resp;
        Status st = m_impl.perform(req, resp, "CompleteMultipartUpload " + m_impl.where(m_key));
        if (!st.ok) {
            return fail(st);
        }
        m_state = State::finished;
        return st;
    }

    void abort() override {
        if (m_state == State::finished || m_state == State::aborted) {
            return;
        }
        // abort() cannot fail: an upload S3 refuses to abort is left to the bucket's lifecycle
        // rule (and `nodectl backup prune` lists it); the upload is over for us either way.
        (void)abort_multipart();
        m_state = State::aborted;
    }

    std::uint64_t bytes_written() const override { return m_bytes; }
    int parts() const override { return m_upload_id.empty() ? 0 : m_next_part - 1; }

private:
    enum class State { open, finished, failed, aborted };
    struct Part {
        int number = 0;
        std::string data;
    };

    Status closed_status() const {
        if (m_state == State::failed || m_state == State::aborted) {
            Status st = m_failure;
            st.ok = false;
            if (st.error.empty()) {
                st.error = "S3 upload " + m_impl.where(m_key) + " was aborted";
            }
            return st;
        }
        return {false, "S3 upload " + m_impl.where(m_key) + " is already finished", 0};
    }

    // A failure: abort the multipart upload, and say in the message whether that worked.
    Status fail(Status st) {
        st.ok = false;
        if (!m_upload_id.empty()) {
            Status ab = abort_multipart();
            st.error += ab.ok ? "; the multipart upload was aborted, no object and no parts remain"
                              : "; " + ab.error + " (upload " + m_upload_id + " of " + m_key +
                                    " may stay open until a lifecycle rule or abort_upload removes it; no object "
                                    "was completed)";
        }
        m_failure = st;
        m_state = State::aborted;
        return st;
    }

    Status abort_multipart() {
        m_cancel = true;   // parts in flight stop at once (progress callback)
        stop_workers();
        std::string().swap(m_buffer);
        if (m_upload_id.empty() || m_abort_sent) {
            return m_abort_status;
        }
        m_abort_sent = true;
        Request req;
        req.method = "DELETE";
        req.key = m_key;
        req.query = {{"uploadId", m_upload_id}};
        Response resp;
        m_abort_status = m_impl.perform(req, resp, "AbortMultipartUpload " + m_impl.where(m_key));
        if (!m_abort_status.ok && resp.status == 404) {   // already gone
            m_abort_status = {};
        }
        if (!m_abort_status.ok && m_impl.config.log) {
            m_impl.config.log(m_abort_status.error + "; upload " + m_upload_id + " may stay open (no object was completed)");
        }
        return m_abort_status;
    }

    Status start_multipart() {
        Request req;
        req.method = "POST";
        req.key = m_key;
        req.query = {{"uploads", ""}};
        req.has_body = true;   // an empty body
        req.headers.emplace_back("Content-Type", "application/octet-stream");
        m_impl.add_storage_class(req);
        Response resp;
        Status st = m_impl.perform(req, resp, "CreateMultipartUpload " + m_impl.where(m_key));
        if (!st.ok) {
            return st;
        }
        m_upload_id = xml_text(resp.body, "UploadId");
        if (m_upload_id.empty()) {
            return {false, "S3 CreateMultipartUpload " + m_impl.where(m_key) + ": no UploadId in the answer", resp.status};
        }
        int workers = m_impl.config.parallel_parts;
        for (int i = 0; i < workers; ++i) {
            m_workers.emplace_back([this] { work(); });
        }
        return {};
    }

    // Queues the full buffer as the next part; blocks while parallel_parts parts are in flight.
    Status send_buffer() {
        if (m_upload_id.empty()) {
            TRY_STATUS(start_multipart());
        }
        if (m_next_part > k_max_parts) {
            return {false, "S3 upload " + m_impl.where(m_key) + ": more than 10,000 parts", 0};
        }
        {
            std::unique_lock lock(m_mutex);
            m_space.wait(lock, [&] { return m_in_flight < m_impl.config.parallel_parts || m_failed; });
            if (m_failed) {
                return m_part_failure;
            }
            m_queue.push_back(Part{m_next_part++, std::move(m_buffer)});
            ++m_in_flight;
        }
        m_work.notify_one();
        m_part_size = Client::part_size_for(m_impl.config.min_part_size, m_hint, m_next_part);
        m_buffer = std::string();
        m_buffer.reserve(m_part_size);
        return {};
    }

    void work() {
        CURL* curl = m_impl.acquire();
        for (;;) {
            Part part;
            {
                std::unique_lock lock(m_mutex);
                m_work.wait(lock, [&] { return !m_queue.empty() || m_stop; });
                if (m_queue.empty()) {
                    break;
                }
                part = std::move(m_queue.front());
                m_queue.pop_front();
            }
            Status st;
            std::string etag;
            if (!m_cancel.load()) {
                Request req;
                req.method = "PUT";
                req.key = m_key;
                req.query = {{"partNumber", std::to_string(part.number)}, {"uploadId", m_upload_id}};
                req.body = part.data;
                req.has_body = true;
                req.cancel = &m_cancel;
                Response resp;
                st = curl ? m_impl.perform(curl, req, resp,
                                           "UploadPart " + std::to_string(part.number) + " of " + m_impl.where(m_key))
                          : Status{false, "curl_easy_init failed", 0};
                etag = resp.headers["etag"];
                if (st.ok && etag.empty()) {
                    st = {false, "S3 UploadPart " + std::to_string(part.number) + ": no ETag in the answer", resp.status};
                }
            } else {
                st = {false, "cancelled", 0};
            }
            std::string().swap(part.data);   // the memory goes back before the next part is taken
            {
                std::lock_guard lock(m_mutex);
                if (st.ok) {
                    m_etags[part.number] = etag;
                } else if (!m_failed) {
                    m_failed = true;
                    m_part_failure = st;
                    m_cancel = true;
                }
                --m_in_flight;
            }
            m_space.notify_all();
        }
        m_impl.release(curl);
    }

    void stop_workers() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_work.notify_all();
        for (auto& t : m_workers) {
            t.join();
        }
        m_workers.clear();
    }

    Client::Impl& m_impl;
    std::string m_key;
    std::uint64_t m_hint = 0;
    std::uint64_t m_part_size = 0;
    std::uint64_t m_bytes = 0;
    std::string m_buffer;
    std::string m_upload_id;
    int m_next_part = 1;
    State m_state = State::open;
    Status m_failure;
    Status m_abort_status;
    bool m_abort_sent = false;

    std::mutex m_mutex;
    std::condition_variable m_space;
    std::condition_variable m_work;
    std::deque<Part> m_queue;
    int m_in_flight = 0;
    bool m_failed = false;
    bool m_stop = false;
    Status m_part_failure;
    std::map<int, std::string> m_etags;
    std::atomic<bool> m_cancel{false};
    std::vector<std::thread> m_workers;
};

} // namespace

// ---- Client ----

Client::Client(Config config) : m_impl(std::make_unique<Impl>(config)) {}
Client::~Client() = default;
const Config& Client::config() const {
    return m_impl->config;
}

std::string Client::url(const std::string& key) const {
    return m_impl->endpoint.scheme + "://" + m_impl->host() + m_impl->path(key);
}

std::uint64_t Client::part_size_for(std::uint64_t min_part_size, std::uint64_t size_hint, int part_number) {
    std::uint64_t base = std::clamp(min_part_size, k_min_s3_part, k_max_s3_part);
    if (size_hint > 0) {
        // 9,000 parts for the hinted size, leaving room for a hint that is too small.
        std::uint64_t need = (size_hint + 8999) / 9000;
        need = (need + (1 << 20) - 1) & ~((1ull << 20) - 1);
        base = std::max(base, need);
    }
    // Unknown or underestimated size: double every 1,000 parts. With 8 MiB that holds ~8 TiB in
    // 10,000 parts (S3's object limit is 5 TiB).
    int tier = std::clamp((part_number - 1) / 1000, 0, 20);
    std::uint64_t size = base;
    for (int i = 0; i < tier && size < k_max_s3_part; ++i) {
        size *= 2;
    }
    return std::min(size, k_max_s3_part);
}

std::unique_ptr<Upload> Client::upload(const std::string& key, std::uint64_t size_hint) {
    return std::make_unique<StreamingUpload>(*m_impl, key, size_hint);
}

Status Client::put(const std::string& key, std::string_view body) {
    Request req;
    req.method = "PUT";
    req.key = key;
    req.body = body;
    req.has_body = true;
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    m_impl->add_storage_class(req);
    Response resp;
    return m_impl->perform(req, resp, "PUT " + m_impl->where(key));
}

Status Client::get(const std::string& key, const std::function<bool(const char*, std::size_t)>& sink) {
    Request req;
    req.key = key;
    req.sink = &sink;
    Response resp;
    return m_impl->perform(req, resp, "GET " + m_impl->where(key));
}

Status Client::head(const std::string& key, ObjectInfo& out) {
    Request req;
    req.method = "HEAD";
    req.key = key;
    Response resp;
    Status st = m_impl->perform(req, resp, "HEAD " + m_impl->where(key));
    if (st.ok) {
        out.key = key;
        auto size = parse_uint(resp.headers["content-length"]);
        if (!size) {
            st.ok = false;
            st.error = "S3 HEAD " + m_impl->where(key) + ": the answer has no valid Content-Length";
            return st;
        }
        out.size = *size;
        out.etag = resp.headers["etag"];
        out.last_modified = resp.headers["last-modified"];
    } else if (st.http_status == 404) {
        st.error = "S3 HEAD " + m_impl->where(key) + ": no such object (HTTP 404)";
    }
    return st;
}

Status Client::list(const std::string& prefix, std::vector<ObjectInfo>& out) {
    out.clear();
    std::string token;
    for (int page = 1;; ++page) {
        Request req;
        req.key.clear();
        req.query = {{"list-type", "2"}, {"prefix", prefix}};
        if (!token.empty()) {
            req.query.emplace_back("continuation-token", token);
        }
        Response resp;
        Status st = m_impl->perform(req, resp, "LIST " + m_impl->where(prefix) + " (page " + std::to_string(page) + ")");
        if (!st.ok) {
            return st;
        }
        for (auto contents : xml_all(resp.body, "Contents")) {
            ObjectInfo info;
            info.key = xml_text(contents, "Key");
            auto size = parse_uint(xml_text(contents, "Size"));
            if (!size) {
                return {false, "S3 LIST " + m_impl->where(prefix) + ": an object without a valid <Size>", st.http_status};
            }
            info.size = *size;
            info.etag = xml_text(contents, "ETag");
            info.last_modified = xml_text(contents, "LastModified");
            out.push_back(std::move(info));
        }
        if (xml_text(resp.body, "IsTruncated") != "true") {
            return st;
        }
        std::string next = xml_text(resp.body, "NextContinuationToken");
        if (next.empty() || next == token) {
            return {false, "S3 LIST " + m_impl->where(prefix) + ": truncated page " + std::to_string(page) +
                               " without a new continuation token", resp.status};
        }
        token = next;
    }
}

Status Client::remove(const std::string& key) {
    Request req;
    req.method = "DELETE";
    req.key = key;
    Response resp;
    Status st = m_impl->perform(req, resp, "DELETE " + m_impl->where(key));
    if (!st.ok && st.http_status == 404) {   // already gone: the goal is reached
        return {true, {}, 404};
    }
    return st;
}

Status Client::list_uploads(const std::string& prefix, std::vector<UploadInfo>& out) {
    out.clear();
    std::string key_marker, id_marker;
    for (int page = 1;; ++page) {
        Request req;
        req.query = {{"uploads", ""}, {"prefix", prefix}};
        if (!key_marker.empty()) {
            req.query.emplace_back("key-marker", key_marker);
            req.query.emplace_back("upload-id-marker", id_marker);
        }
        Response resp;
        Status st = m_impl->perform(req, resp, "ListMultipartUploads " + m_impl->where(prefix));
        if (!st.ok) {
            return st;
        }
        for (auto upload : xml_all(resp.body, "Upload")) {
            out.push_back({xml_text(upload, "Key"), xml_text(upload, "UploadId"), xml_text(upload, "Initiated")});
        }
        if (xml_text(resp.body, "IsTruncated") != "true") {
            return st;
        }
        std::string nk = xml_text(resp.body, "NextKeyMarker"), ni = xml_text(resp.body, "NextUploadIdMarker");
        if (nk.empty() || (nk == key_marker && ni == id_marker)) {
            return {false, "S3 ListMultipartUploads: truncated page without a new marker", resp.status};
        }
        key_marker = nk;
        id_marker = ni;
    }
}

Status Client::list_uploads(const std::string& prefix, std::vector<std::string>& upload_ids) {
    std::vector<UploadInfo> uploads;
    Status st = list_uploads(prefix, uploads);
    upload_ids.clear();
    for (auto& u : uploads) {
        upload_ids.push_back(u.upload_id);
    }
    return st;
}

Status Client::abort_upload(const std::string& key, const std::string& upload_id) {
    Request req;
    req.method = "DELETE";
    req.key = key;
    req.query = {{"uploadId", upload_id}};
    Response resp;
    return m_impl->perform(req, resp, "AbortMultipartUpload " + m_impl->where(key));
}

// ---- credentials ----

namespace {

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        return v.substr(1, v.size() - 2);
    }
    return v;
}

} // namespace

Status credentials_from_file(const std::string& path, Credentials& out, std::string* warning,
                             const std::string& profile) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {false, path + ": " + std::strerror(errno), 0};
    }
    std::ifstream in(path);
    if (!in) {
        return {false, path + ": cannot be read: " + std::strerror(errno), 0};
    }
    if (warning) {
        warning->clear();
        if (st.st_mode & 077) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
            *warning = path + " holds S3 credentials but has mode " + mode + "; make it 0600 (chmod 600 " + path + ")";
        }
    }
    Credentials c;
    std::string line, section;
    bool in_profile = true, any_section = false;
    int number = 0;
    std::vector<std::string> lines;
    while (std::getline(in, line)) {
        ++number;
        std::string t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') {
            continue;
        }
        if (t.front() == '[' && t.back() == ']') {
            section = trim(t.substr(1, t.size() - 2));
            if (section.rfind("profile ", 0) == 0) {
                section = trim(section.substr(8));
            }
            any_section = true;
            in_profile = section == profile;
            continue;
        }
        std::size_t eq = t.find('=');
        if (eq == std::string::npos) {
            // s3fs's passwd format: ACCESS:SECRET or BUCKET:ACCESS:SECRET
            auto first = t.find(':');
            auto last = t.rfind(':');
            if (first != std::string::npos && !any_section) {
                c.access_key_id = first == last ? t.substr(0, first) : t.substr(first + 1, last - first - 1);
                c.secret_access_key = t.substr(last + 1);
                continue;
            }
            return {false, path + ":" + std::to_string(number) + ": expected KEY = VALUE, [section] or ACCESS:SECRET", 0};
        }
        if (!in_profile) {
            continue;
        }
        std::string k = lower(trim(t.substr(0, eq)));
        if (k.rfind("export ", 0) == 0) {
            k = trim(k.substr(7));
        }
        std::string v = unquote(trim(t.substr(eq + 1)));
        if (k == "aws_access_key_id") {
            c.access_key_id = v;
        } else if (k == "aws_secret_access_key") {
            c.secret_access_key = v;
        } else if (k == "aws_session_token") {
            c.session_token = v;
        }
    }
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
        return {false, path + ": no access key id and secret access key" +
                           (any_section ? " in section [" + profile + "]" : std::string()), 0};
    }
    out = c;
    return {};
}

Status credentials_from_environment(Credentials& out) {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    const char* token = std::getenv("AWS_SESSION_TOKEN");
    if (!id || !*id || !secret || !*secret) {
        return {false, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set", 0};
    }
    out.access_key_id = id;
    out.secret_access_key = secret;
    out.session_token = token ? token : "";
    return {};
}

namespace detail {
std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag) {
    std::vector<std::string> out;
    for (auto v : xml_all(xml, tag)) {
        out.push_back(xml_unescape(v));
    }
    return out;
}
} // namespace detail

} // namespace util::s3

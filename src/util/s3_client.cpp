// util::s3's Client: configuration, addressing (path-style or virtual-host) and the object and
// bucket requests. One request is made by s3_request.cpp, the streaming upload by s3_multipart.cpp.
#include "util/s3.hpp"

#include "util/s3_request_curl.hpp"
#include "util/s3_xml.hpp"
#include "util/sigv4.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>

namespace util::s3 {

namespace {

bool parse_endpoint(const std::string& endpoint, Endpoint& out, std::string& error) {
    std::size_t sep = endpoint.find("://");
    if (sep == std::string::npos) {
        error = "endpoint '" + endpoint + "' has no scheme (expected http:// or https://)";
        return false;
    }
    out.scheme = to_lower(endpoint.substr(0, sep));
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

}  // namespace

std::string encode_key(std::string_view key) {
    return sigv4::uri_encode(key, true);
}

// ---- Client::Impl: configuration and addressing ----

Client::Impl::Impl(const Config& c) : config(c) {
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
    config.attempts = std::clamp(config.attempts, 1, http::k_max_attempts);
    config.parallel_parts = std::clamp(config.parallel_parts, 1, 64);
    config.min_part_size = std::clamp(config.min_part_size, k_min_s3_part, k_max_s3_part);
}

std::string Client::Impl::where(const std::string& key) const {
    return "s3://" + config.bucket + "/" + key;
}

std::string Client::Impl::host() const {
    return config.path_style ? endpoint.authority : config.bucket + "." + endpoint.authority;
}

std::string Client::Impl::path(const std::string& key) const {
    std::string p = endpoint.base_path;
    if (config.path_style) {
        p += "/" + encode_key(config.bucket);
    }
    p += "/" + encode_key(key);
    return p;
}

Status Client::Impl::put_object(const std::string& key, std::string_view body) {
    Request req;
    req.method = "PUT";
    req.key = key;
    req.body = body;
    req.has_body = true;
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    add_storage_class(req);
    Response resp;
    return perform(req, resp, "PUT " + where(key));
}

void Client::Impl::add_storage_class(Request& req) const {
    if (!config.storage_class.empty()) {
        req.headers.emplace_back("x-amz-storage-class", config.storage_class);
    }
}

// ---- Client ----

Client::Client(Config config) : m_impl(std::make_unique<Impl>(config)) {}
Client::~Client() = default;
const Config& Client::config() const {
    return m_impl->config;
}

std::string Client::url(const std::string& key) const {
    return m_impl->endpoint.scheme + "://" + m_impl->host() + m_impl->path(key);
}

Status Client::put(const std::string& key, std::string_view body) {
    return m_impl->put_object(key, body);
}

Status Client::get(const std::string& key, const std::function<bool(const char*, std::size_t)>& sink) {
    Request req;
    req.key = key;
    req.sink = &sink;
    Response resp;
    return m_impl->perform(req, resp, "GET " + m_impl->where(key));
}

Outcome<ObjectInfo> Client::head(const std::string& key) {
    Request req;
    req.method = "HEAD";
    req.key = key;
    Response resp;
    Status st = m_impl->perform(req, resp, "HEAD " + m_impl->where(key));
    if (!st) {
        Failure failed = std::move(st).error();
        if (failed.http_status == 404) {
            failed.message = "S3 HEAD " + m_impl->where(key) + ": no such object (HTTP 404)";
        }
        return failed;
    }
    ObjectInfo out;
    out.key = key;
    auto size = parse_uint(resp.headers["content-length"]);
    if (!size) {
        return Failure{"S3 HEAD " + m_impl->where(key) + ": the answer has no valid Content-Length", resp.status};
    }
    out.size = *size;
    out.etag = resp.headers["etag"];
    out.last_modified = resp.headers["last-modified"];
    return out;
}

Outcome<std::vector<ObjectInfo>> Client::list(const std::string& prefix) {
    std::vector<ObjectInfo> out;
    std::string token;
    for (int page = 1;; ++page) {
        Request req;
        req.key.clear();
        req.query = {{"list-type", "2"}, {"prefix", prefix}};
        if (!token.empty()) {
            req.query.emplace_back("continuation-token", token);
        }
        Response resp;
        Status st =
            m_impl->perform(req, resp, "LIST " + m_impl->where(prefix) + " (page " + std::to_string(page) + ")");
        if (!st) {
            return std::move(st).error();
        }
        for (auto contents : xml::all(resp.body, "Contents")) {
            ObjectInfo info;
            info.key = xml::text(contents, "Key");
            auto size = parse_uint(xml::text(contents, "Size"));
            if (!size) {
                return Failure{"S3 LIST " + m_impl->where(prefix) + ": an object without a valid <Size>", resp.status};
            }
            info.size = *size;
            info.etag = xml::text(contents, "ETag");
            info.last_modified = xml::text(contents, "LastModified");
            out.push_back(std::move(info));
        }
        if (xml::text(resp.body, "IsTruncated") != "true") {
            return out;
        }
        std::string next = xml::text(resp.body, "NextContinuationToken");
        if (next.empty() || next == token) {
            return Failure{"S3 LIST " + m_impl->where(prefix) + ": truncated page " + std::to_string(page) +
                               " without a new continuation token",
                           resp.status};
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
    if (!st && st.error().http_status == 404) {  // already gone: the goal is reached
        return Ok{};
    }
    return st;
}

Outcome<std::vector<UploadInfo>> Client::list_uploads(const std::string& prefix) {
    std::vector<UploadInfo> out;
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
        if (!st) {
            return std::move(st).error();
        }
        for (auto upload : xml::all(resp.body, "Upload")) {
            out.push_back({xml::text(upload, "Key"), xml::text(upload, "UploadId"), xml::text(upload, "Initiated")});
        }
        if (xml::text(resp.body, "IsTruncated") != "true") {
            return out;
        }
        std::string nk = xml::text(resp.body, "NextKeyMarker"), ni = xml::text(resp.body, "NextUploadIdMarker");
        if (nk.empty() || (nk == key_marker && ni == id_marker)) {
            return Failure{"S3 ListMultipartUploads: truncated page without a new marker", resp.status};
        }
        key_marker = nk;
        id_marker = ni;
    }
}

Status Client::abort_upload(const std::string& key, const std::string& upload_id) {
    Request req;
    req.method = "DELETE";
    req.key = key;
    req.query = {{"uploadId", upload_id}};
    Response resp;
    return m_impl->perform(req, resp, "AbortMultipartUpload " + m_impl->where(key));
}

}  // namespace util::s3

// An S3 client over libcurl with AWS Signature Version 4 (util/sigv4.hpp). Knows nothing of nodectl.
//
// Requests: PUT, GET (streamed into a sink), HEAD, LIST (ListObjectsV2, every page), DELETE, and a
// streaming multipart upload (CreateMultipartUpload / UploadPart / CompleteMultipartUpload /
// AbortMultipartUpload) with `parallel_parts` parts in flight on worker threads, each with its own
// curl handle. Requests go through the HTTP engine shared with downloads (util/http_retry.hpp, util/http_curl.hpp)
// and are retried under its one retry policy (connection errors, time-outs, truncated bodies,
// HTTP 408, 429 and 5xx but 501/505, and S3's RequestTimeout, SlowDown and InternalError codes).
// Error messages name the operation, bucket/key and the HTTP status and S3 error code; they never
// contain the secret key or a signature. A Client is safe to use from several threads at once.
#pragma once

#include "util/expected.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace util::s3 {

struct Credentials {
    std::string access_key_id, secret_access_key, session_token;
};

struct Config {
    std::string endpoint;  // "https://s3.eu-central-1.amazonaws.com", "http://127.0.0.1:4568"
    std::string region = "us-east-1";
    std::string bucket;
    bool path_style = false;  // true for S3-compatible stores (endpoint/bucket/key)
    std::string storage_class;  // empty: the bucket's default (sent as x-amz-storage-class)
    Credentials credentials;
    int attempts = 5;  // per request (1 to 20), with exponential backoff
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{20000};
    int parallel_parts = 2;  // parts in flight during a multipart upload
    std::uint64_t min_part_size = 8ull << 20;  // at least 5 MiB (S3's minimum part size)
    long connect_timeout_seconds = 20;
    long low_speed_time_seconds = 60;  // abort a request that moves < 1 byte/s this long
    // Called with one line per retried request (what failed, the wait) and per failed abort;
    // never holds a secret. May be called from the upload's worker threads.
    std::function<void(const std::string&)> log;
};

// What failed (never contains a secret).
struct Failure {
    std::string message;
    long http_status = 0;  // of the last response; 0 when none arrived
    int attempts = 0;  // tries made; 0 when no request was sent
};
// A value, or what failed.
template <class T>
using Outcome = Expected<T, Failure>;
using Status = Outcome<void>;

struct ObjectInfo {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;
    std::string last_modified;  // as S3 gives it: ISO 8601 in LIST, RFC 7231 date in HEAD
};

// An open multipart upload, as ListMultipartUploads names it.
struct UploadInfo {
    std::string key, upload_id, initiated;
};

// A streaming upload. write() may block while parts are in flight (bounded memory:
// about (parallel_parts + 1) * part_size). Part size grows with the bytes written so that 10,000
// parts are never needed. A small object (< one part) is sent with a single PUT by finish().
// If finish() is not reached (error, destructor, abort()), the multipart upload is aborted so no
// object and no parts are left behind. After a failed write() every later call fails too.

class Upload {
public:
    virtual ~Upload() = default;
    virtual Status write(const void* data, std::size_t size) = 0;
    virtual Status finish() = 0;
    virtual void abort() = 0;
    // Bytes accepted so far and parts sent (0 parts for a single PUT); for logs and tests.
    virtual std::uint64_t bytes_written() const = 0;
    virtual int parts() const = 0;
};

class Client {
public:
    explicit Client(Config config);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const Config& config() const;  // as used: endpoint defaulted, limits clamped
    // The object's URL (path-style or virtual-host), with the key encoded once.
    std::string url(const std::string& key) const;

    std::unique_ptr<Upload> upload(const std::string& key, std::uint64_t size_hint = 0);
    Status put(const std::string& key, std::string_view body);
    // Streams the object's body to `sink` (return false from sink to stop with an error). A
    // transfer cut short is resumed with a Range request (If-Match the first ETag), so the sink
    // sees every byte exactly once.
    Status get(const std::string& key, const std::function<bool(const char*, std::size_t)>& sink);
    Outcome<ObjectInfo> head(const std::string& key);
    Outcome<std::vector<ObjectInfo>> list(const std::string& prefix);  // all pages
    Status remove(const std::string& key);
    // Multipart uploads still open under prefix (for tests and cleanup). ListMultipartUploads,
    // all pages. (s3rver 3.7 answers 501 NotImplemented.)
    Outcome<std::vector<UploadInfo>> list_uploads(const std::string& prefix);
    // Aborts one open multipart upload (cleanup of uploads left by a crashed process).
    Status abort_upload(const std::string& key, const std::string& upload_id);

    // The size of part `part_number` (from 1), given the size hint (0: unknown): min_part_size
    // (or hint / 9,000 when larger), doubled every 1,000 parts, at most 5 GiB.
    static std::uint64_t part_size_for(std::uint64_t min_part_size, std::uint64_t size_hint, int part_number);

    struct Impl;

private:
    std::unique_ptr<Impl> m_impl;
};

// Credentials from a file: awscli's shared credentials format ([default] or [profile] section with
// aws_access_key_id / aws_secret_access_key / aws_session_token), or KEY=VALUE lines
// (AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=..., AWS_SESSION_TOKEN=...), or s3fs's
// "ACCESS:SECRET" one-liner. `warning` is set when the file is readable by group or others.
Outcome<Credentials> credentials_from_file(const std::string& path, std::string* warning = nullptr,
                                           const std::string& profile = "default");
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (never argv).
Outcome<Credentials> credentials_from_environment();

// Percent-encodes an S3 key for a URL path: every byte but A-Z a-z 0-9 - _ . ~ and '/' is
// encoded once (the same string is used in the URL and the canonical request).
std::string encode_key(std::string_view key);

namespace detail {
// The unescaped text of every <tag> element of an S3 XML answer (exposed for unit tests).
std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag);
}  // namespace detail

}  // namespace util::s3

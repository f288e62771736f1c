// k3s releases: resolving a version, fetching its assets into a local cache, verifying them.
#pragma once

#include "nodectl/result.hpp"
#include "util/http.hpp"

#include <map>
#include <string>

namespace nodectl::k3s {

struct ReleaseRequest {
    std::string version;  // "v1.31.4+k3s1"; wins over channel
    std::string channel;  // "stable", "latest", "v1.31", ...: resolved through channel_url
    std::string arch;  // amd64 | arm64 | arm
    std::string release_url = "https://github.com/k3s-io/k3s/releases/download";
    std::string channel_url = "https://update.k3s.io/v1-release/channels";
    // release_url and channel_url must be https:// (or file:// for an offline mirror; such a
    // channel cannot redirect). Plain http:// only with this set (k3s.allow_insecure_http): the
    // binary and its checksum would then come over the same unauthenticated channel.
    bool allow_insecure_http = false;
    bool airgap_images = false;
    std::string cache_dir;
    util::HttpOptions http;  // retries, backoff, time-outs, progress
};

struct Release {
    std::string version;
    std::string arch;
    std::string binary_path;
    std::string binary_sha256;
    std::string sha256_file_path;
    std::string airgap_images_path;  // empty if not requested
    std::string airgap_images_sha256;
};

// The version to install: `version` if given (checked), else the one `channel` redirects to.
// ErrorCode::config for a malformed version or channel or neither given; ErrorCode::io when the
// channel cannot be resolved.
Result<std::string> resolve_version(const ReleaseRequest& request);

// "" when `url` may be used for a release or a channel (see allow_insecure_http), else why not.
std::string release_url_problem(const std::string& url, bool allow_insecure_http);

// Makes `<cache_dir>/<version>/<arch>/` hold the release's sha256sum-<arch>.txt and the requested
// assets under their release names, each verified against it. Assets already there with the right
// hash are not downloaded again (and then no request is made at all). The cached sha256sum file is
// used only when it was fetched from the same URL (recorded beside it). A download whose
// sha256 differs is deleted: ErrorCode::io, naming the URL and both hashes. A URL nodectl refuses
// (release_url_problem): ErrorCode::config, before any request. Network failures: ErrorCode::io.
Result<Release> fetch_release(const ReleaseRequest& request);

// Reads a release-shaped directory (such as a cache directory copied into an offline bundle):
// sha256sum-<arch>.txt and the assets. Every asset listed there and present is verified; the k3s
// binary must be present. The version is the parent folder's name when it looks like one.
Result<Release> release_from_dir(const std::string& dir, const std::string& arch);

// Hashes `path` again right before it is used: ErrorCode::io when its sha256 is not `expected`
// (the cache changed since it was verified).
Result<void> verify_cached_asset(const std::string& path, const std::string& expected);

// `uname -m` to a k3s architecture: x86_64 -> amd64, aarch64/arm64 -> arm64, armv7l/armv7/armhf ->
// arm; empty when k3s has no build for it.
std::string arch_from_uname(const std::string& uname_m);

// The release names of the assets for `arch` (amd64 | arm64 | arm); empty for another arch.
std::string binary_name(const std::string& arch);
std::string airgap_images_name(const std::string& arch);
std::string sha256_file_name(const std::string& arch);

// "<hex>  <name>" lines (sha256sum's output) to name -> lower-case hex. ErrorCode::io when a line
// is neither empty nor of that form, or names a path rather than a file.
Result<std::map<std::string, std::string>> parse_sha256sums(const std::string& text);

// Percent-encodes a URL path segment ('+' -> %2B).
std::string url_encode_segment(const std::string& segment);

}  // namespace nodectl::k3s

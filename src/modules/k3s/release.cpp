// k3s releases in a local cache.
//
// What it changes: only the operator's (or first-boot node's) cache directory,
// `<cache_dir>/<version>/<arch>/`, which ends up shaped like the release itself: the release's
// sha256sum-<arch>.txt and the assets under their release names. Such a directory can be copied
// into an offline bundle and read back with release_from_dir().
// How it knows a change is already there: an asset present with the sha256 the release lists is
// not downloaded again; with the sha256sum file cached too, a second fetch makes no request.
// Nothing is trusted that was not checked: a download whose sha256 differs is deleted at once.
#include "modules/k3s/release.hpp"
#include "nodectl/target.hpp"

#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace nodectl::k3s {

namespace fs = std::filesystem;

namespace {

constexpr size_t k_max_name = 128;

bool is_version(const std::string& v) {
    if (v.size() < 2 || v.size() > k_max_name || v[0] != 'v' || !std::isdigit(static_cast<unsigned char>(v[1]))) {
        return false;
    }
    for (char c : v) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '+' && c != '-' && c != '_') {
            return false;
        }
    }
    return v.find("..") == std::string::npos;
}

bool is_channel(const std::string& c) {
    if (c.empty() || c.size() > k_max_name || c[0] == '.') {
        return false;
    }
    for (char ch : c) {
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') {
            return false;
        }
    }
    return true;
}

std::string without_trailing_slash(std::string url) {
    while (!url.empty() && url.back() == '/') {
        url.pop_back();
    }
    return url;
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && util::hex_value(s[i + 1]) >= 0 && util::hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(util::hex_value(s[i + 1]) * 16 + util::hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The last path component of a URL, without query or fragment, percent-decoded.
std::string last_path_component(std::string url) {
    url = url.substr(0, url.find_first_of("?#"));
    url = without_trailing_slash(url);
    auto slash = url.rfind('/');
    return percent_decode(slash == std::string::npos ? url : url.substr(slash + 1));
}

bool is_file_url(const std::string& url) {
    return util::starts_with(url, "file://");
}

// The local path of a file:// URL ("file:///srv/k3s/v1%2B/k3s" -> "/srv/k3s/v1+/k3s").
std::string file_url_path(const std::string& url) {
    return percent_decode(url.substr(7));
}

// GET `url` into `dest` like util::download; a file:// URL (an offline mirror) is copied.
util::HttpResult fetch_to(const std::string& url, const std::string& dest, const util::HttpOptions& http) {
    if (!is_file_url(url)) {
        return util::download(url, dest, http);
    }
    util::HttpResponse r;
    r.attempts = 1;
    const std::string part = dest + ".part";
    std::error_code ec;
    fs::copy_file(file_url_path(url), part, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
        fs::rename(part, dest, ec);
    }
    if (ec) {
        std::error_code ignored;  // the copy's error is the one reported
        fs::remove(part, ignored);
        return util::HttpFailure{"cannot copy " + url + ": " + ec.message(), 0, 1};
    }
    r.effective_url = url;
    return r;
}

Error mismatch(const std::string& what, const std::string& actual, const std::string& expected,
               const std::string& sums_name) {
    return make_error(ErrorCode::io, "sha256 of " + what + " is " + actual + ", but " + sums_name + " says " +
                                         expected + ": refusing to install");
}

}  // namespace

std::string binary_name(const std::string& arch) {
    if (arch == "amd64") {
        return "k3s";
    }
    if (arch == "arm64") {
        return "k3s-arm64";
    }
    if (arch == "arm") {
        return "k3s-armhf";
    }
    return {};
}

std::string airgap_images_name(const std::string& arch) {
    return binary_name(arch).empty() ? std::string() : "k3s-airgap-images-" + arch + ".tar.zst";
}

std::string sha256_file_name(const std::string& arch) {
    return binary_name(arch).empty() ? std::string() : "sha256sum-" + arch + ".txt";
}

std::string arch_from_uname(const std::string& uname_m) {
    std::string m = util::trim(uname_m);
    if (m == "x86_64" || m == "amd64") {
        return "amd64";
    }
    if (m == "aarch64" || m == "arm64") {
        return "arm64";
    }
    if (m == "armv7l" || m == "armv7" || m == "armhf") {
        return "arm";
    }
    return {};
}

std::string url_encode_segment(const std::string& segment) {
    static const char* k_hex = "0123456789ABCDEF";
    std::string out;
    for (char c : segment) {
        auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += k_hex[u >> 4];
            out += k_hex[u & 15];
        }
    }
    return out;
}

Result<std::map<std::string, std::string>> parse_sha256sums(const std::string& text) {
    std::map<std::string, std::string> sums;
    int line_no = 0;
    for (const std::string& raw : util::split_lines(text)) {
        ++line_no;
        std::string line = util::trim(raw);
        if (line.empty()) {
            continue;
        }
        auto bad = [&](const std::string& why) {
            return make_error(ErrorCode::io, "not a sha256sum file: line " + std::to_string(line_no) + " " + why);
        };
        if (line.size() < 66 || line[64] != ' ') {
            return bad("is not \"<sha256>  <name>\"");
        }
        std::string hex = line.substr(0, 64);
        for (char& c : hex) {
            if (util::hex_value(c) < 0) {
                return bad("has no sha256");
            }
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        std::string name = line.substr(65);
        if (!name.empty() && (name[0] == ' ' || name[0] == '*')) {
            name.erase(0, 1);
        }
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
            return bad("names no file of a release directory");
        }
        sums[name] = hex;
    }
    return sums;
}

namespace {

// The caller's transfer settings, restricted to the schemes a release may come over.
util::HttpOptions transfer_options(const ReleaseRequest& request) {
    util::HttpOptions http = request.http;
    http.protocols = http.redirect_protocols = request.allow_insecure_http ? "http,https" : "https";
    if (http.user_agent.empty()) {
        http.user_agent = "nodectl/" NODECTL_VERSION;
    }
    return http;
}

}  // namespace

std::string release_url_problem(const std::string& url, bool allow_insecure_http) {
    if (util::starts_with(url, "https://") || is_file_url(url)) {
        return "";
    }
    if (util::starts_with(url, "http://")) {
        return allow_insecure_http
                   ? ""
                   : "'" + url +
                         "' is plain http: the release and its checksum would come over the same "
                         "unauthenticated channel; use https:// (or file:// for an offline mirror), or set "
                         "k3s.allow_insecure_http = true";
    }
    return "'" + url + "' is not an https:// or file:// URL";
}

Result<std::string> resolve_version(const ReleaseRequest& request) {
    if (!request.version.empty()) {
        if (!is_version(request.version)) {
            return make_error(ErrorCode::config,
                              "k3s version \"" + request.version + "\" is not a k3s release tag such as v1.31.4+k3s1");
        }
        return request.version;
    }
    if (request.channel.empty()) {
        return make_error(ErrorCode::config, "k3s: neither a version nor a channel is given");
    }
    if (!is_channel(request.channel)) {
        return make_error(ErrorCode::config,
                          "k3s channel \"" + request.channel + "\" is not a channel name such as stable");
    }
    if (auto why = release_url_problem(request.channel_url, request.allow_insecure_http); !why.empty()) {
        return make_error(ErrorCode::config, "k3s channel URL " + why);
    }
    std::string url = without_trailing_slash(request.channel_url) + "/" + request.channel;
    auto r = util::effective_url(url, transfer_options(request));
    if (!r) {
        return make_error(ErrorCode::io,
                          "cannot resolve k3s channel " + shell_quote(request.channel) + ": " + r.error().message);
    }
    if (without_trailing_slash(r->effective_url) == url) {
        return make_error(ErrorCode::io, "k3s channel " + shell_quote(request.channel) + ": " + url +
                                             " did not redirect to a release");
    }
    std::string version = last_path_component(r->effective_url);
    if (!is_version(version)) {
        return make_error(ErrorCode::io, "k3s channel " + shell_quote(request.channel) + " redirected to " +
                                             shell_quote(r->effective_url) + ", which names no k3s release");
    }
    return version;
}

namespace {

// One release's files in the cache directory DIR, fetched from BASE and checked against its
// sha256sum file.
struct ReleaseFiles {
    std::string version;
    fs::path dir;
    std::string base;  // the release's URL, ending in '/'
    std::string sums_name;  // its sha256sum file
    util::HttpOptions http;
    std::map<std::string, std::string> sums;  // file name -> sha256

    // A cached sha256sum file is used only when it came from this very URL: one fetched from
    // another mirror or scheme (say, plain http once), or damaged, is fetched again.
    Result<void> load_sums(const std::string& binary) {
        std::error_code ec;
        const std::string sums_path = (dir / sums_name).string();
        const std::string sums_url = base + sums_name;
        const std::string origin_path = sums_path + ".origin";
        auto cached = util::read_file(sums_path);
        auto origin = util::read_file(origin_path);
        bool trusted_origin = origin && *origin == sums_url + "\n";
        if (cached && trusted_origin) {
            if (auto cached_sums = parse_sha256sums(*cached); cached_sums && cached_sums->count(binary)) {
                sums = std::move(cached_sums.value());
                return {};
            }
        }
        fs::remove(origin_path, ec);
        auto r = fetch_to(sums_url, sums_path, http);
        if (!r) {
            return make_error(ErrorCode::io, "k3s " + version + ": " + r.error().message);
        }
        auto text = util::read_file(sums_path);
        if (!text) {
            return errno_error("cannot read " + sums_path);
        }
        auto parsed = parse_sha256sums(*text);
        if (!parsed) {
            fs::remove(sums_path, ec);
            return make_error(ErrorCode::io, base + sums_name + ": " + parsed.error().message);
        }
        sums = std::move(parsed.value());
        TRY_VOID(as_result(util::write_file_atomic(origin_path, sums_url + "\n", 0644), ErrorCode::io));
        return {};
    }

    // NAME's path in the cache and its sha256: the cached file when its digest matches, else fetched.
    Result<std::pair<std::string, std::string>> fetch(const std::string& name) {
        auto it = sums.find(name);
        if (it == sums.end()) {
            return make_error(ErrorCode::config,
                              "k3s " + version + " publishes no " + name + " (" + base + sums_name + ")");
        }
        const std::string& expected = it->second;
        const std::string path = (dir / name).string();
        std::error_code ec;
        if (fs::exists(path, ec) && util::sha256_file_hex(path) == expected) {
            return std::pair{path, expected};
        }
        const std::string url = base + url_encode_segment(name);
        auto r = fetch_to(url, path, http);
        if (!r) {
            return make_error(ErrorCode::io, "k3s " + version + ": " + r.error().message);
        }
        std::string actual = util::sha256_file_hex(path);
        if (actual != expected) {
            fs::remove(path, ec);
            return mismatch(url, actual, expected, sums_name);
        }
        return std::pair{path, expected};
    }
};

}  // namespace

Result<Release> fetch_release(const ReleaseRequest& request) {
    if (auto why = release_url_problem(request.release_url, request.allow_insecure_http); !why.empty()) {
        return make_error(ErrorCode::config, "k3s release URL " + why);
    }
    std::string version = TRY(resolve_version(request));
    const std::string binary = binary_name(request.arch);
    if (binary.empty()) {
        return make_error(ErrorCode::config, "unknown k3s architecture '" + request.arch + "' (amd64, arm64 or arm)");
    }
    if (request.cache_dir.empty()) {
        return make_error(ErrorCode::config, "k3s: no release cache directory given");
    }
    const fs::path dir = fs::path(request.cache_dir) / version / request.arch;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        return make_error(ErrorCode::io, "cannot create " + dir.string() + ": " + ec.message());
    }
    // Held while this thread or process fills the cache directory: hosts run in parallel and may
    // ask for the same release at the same time.
    auto lock = util::FileLock::take((dir.parent_path() / ("." + request.arch + ".lock")).string(), 0644,
                                     util::FileLock::Wait::yes);
    if (!lock) {
        return make_error(ErrorCode::io, "k3s release cache: " + lock.error());
    }
    ReleaseFiles files{version,
                       dir,
                       without_trailing_slash(request.release_url) + "/" + url_encode_segment(version) + "/",
                       sha256_file_name(request.arch),
                       transfer_options(request),
                       {}};
    TRY_VOID(files.load_sums(binary));

    Release release;
    release.version = version;
    release.arch = request.arch;
    release.sha256_file_path = (dir / files.sums_name).string();
    auto [binary_path, binary_sha] = TRY(files.fetch(binary));
    release.binary_path = binary_path;
    release.binary_sha256 = binary_sha;
    fs::permissions(binary_path, fs::perms(0755), fs::perm_options::replace, ec);
    if (request.airgap_images) {
        auto [images_path, images_sha] = TRY(files.fetch(airgap_images_name(request.arch)));
        release.airgap_images_path = images_path;
        release.airgap_images_sha256 = images_sha;
    }
    return release;
}

Result<Release> release_from_dir(const std::string& dir, const std::string& arch) {
    const std::string binary = binary_name(arch);
    if (binary.empty()) {
        return make_error(ErrorCode::config, "unknown k3s architecture '" + arch + "' (amd64, arm64 or arm)");
    }
    const fs::path root(dir);
    const std::string sums_name = sha256_file_name(arch);
    const std::string sums_path = (root / sums_name).string();
    auto text = util::read_file(sums_path);
    if (!text) {
        return make_error(ErrorCode::io,
                          "k3s release in " + dir + ": cannot read " + sums_path + ": " + std::strerror(errno));
    }
    auto sums = parse_sha256sums(*text);
    if (!sums) {
        return make_error(ErrorCode::io, sums_path + ": " + sums.error().message);
    }
    if (!sums->count(binary)) {
        return make_error(ErrorCode::io, sums_path + " lists no " + binary);
    }

    Release release;
    release.arch = arch;
    release.sha256_file_path = sums_path;
    fs::path normal = root.lexically_normal();
    if (!normal.has_filename()) {
        normal = normal.parent_path();
    }
    if (normal.filename() == arch && is_version(normal.parent_path().filename().string())) {
        release.version = normal.parent_path().filename().string();
    }
    std::error_code ec;
    for (const auto& [name, expected] : *sums) {
        const std::string path = (root / name).string();
        if (!fs::is_regular_file(path, ec)) {
            if (name == binary) {
                return make_error(ErrorCode::io, "k3s release in " + dir + " has no " + binary);
            }
            continue;
        }
        std::string actual = util::sha256_file_hex(path);
        if (actual != expected) {
            return mismatch(path, actual, expected, sums_name);
        }
        if (name == binary) {
            release.binary_path = path;
            release.binary_sha256 = expected;
        } else if (name == airgap_images_name(arch)) {
            release.airgap_images_path = path;
            release.airgap_images_sha256 = expected;
        }
    }
    return release;
}

}  // namespace nodectl::k3s

namespace nodectl::k3s {

Result<void> verify_cached_asset(const std::string& path, const std::string& expected) {
    std::string actual = util::sha256_file_hex(path);
    if (actual != expected) {
        return make_error(ErrorCode::io, "sha256 of " + path + " is " + (actual.empty() ? "unreadable" : actual) +
                                             " now, but it was verified as " + expected +
                                             ": the cache changed; refusing to install");
    }
    return Ok{};
}

}  // namespace nodectl::k3s

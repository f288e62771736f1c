#include "util/sigv4.hpp"
#include "util/strings.hpp"

#include "util/digest.hpp"
#include "util/time.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace util::sigv4 {

namespace {

bool unreserved(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

std::string uri_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            int hi = util::hex_value(s[i + 1]);
            int lo = util::hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

// RFC 3986 dot-segment removal plus collapsing of empty segments, as AWS's generic services do.
std::string normalize(std::string_view path) {
    std::vector<std::string_view> segments;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        std::string_view seg = path.substr(start, end - start);
        if (seg == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
        } else if (!seg.empty() && seg != ".") {
            segments.push_back(seg);
        }
        start = end + 1;
    }
    std::string out;
    for (auto seg : segments) {
        out += '/';
        out += seg;
    }
    bool trailing = !path.empty() && path.back() == '/';
    if (out.empty() || trailing) {
        out += '/';
    }
    return out;
}

// Header values: trimmed, runs of whitespace (including folded continuation lines) made one space.
std::string canonical_value(std::string_view v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = true;
            continue;
        }
        if (space && !out.empty()) {
            out += ' ';
        }
        space = false;
        out += c;
    }
    return out;
}

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> params;
    std::size_t start = 0;
    while (start < query.size()) {
        std::size_t end = query.find('&', start);
        if (end == std::string_view::npos) {
            end = query.size();
        }
        std::string_view item = query.substr(start, end - start);
        if (!item.empty()) {
            std::size_t eq = item.find('=');
            std::string_view k = item.substr(0, eq);
            std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
            params.emplace_back(uri_encode(uri_decode(k), false), uri_encode(uri_decode(v), false));
        }
        start = end + 1;
    }
    std::sort(params.begin(), params.end());
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty()) {
            out += '&';
        }
        out += k + '=' + v;
    }
    return out;
}

std::string hmac_raw(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), md, &len);
    return std::string(reinterpret_cast<char*>(md), len);
}

}  // namespace

std::string hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    return hex(hmac_raw(key, data));
}

std::string uri_encode(std::string_view s, bool keep_slash) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (unreserved(c) || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

std::string amz_date(long long unix_seconds) {
    return format_utc(unix_seconds, k_utc_compact);
}

Signed sign(const Request& request, const Params& params) {
    Signed out;
    std::vector<std::pair<std::string, std::string>> headers = request.headers;
    out.add_headers.emplace_back("X-Amz-Date", params.amz_date);
    if (!params.session_token.empty()) {
        out.add_headers.emplace_back("X-Amz-Security-Token", params.session_token);
    }
    if (params.sign_payload_header) {
        out.add_headers.emplace_back("x-amz-content-sha256", request.payload_hash);
    }
    for (const auto& h : out.add_headers) {
        if (h.first == "X-Amz-Security-Token" && params.omit_session_token) {
            continue;
        }
        headers.push_back(h);
    }

    // name -> values in the order given (duplicates joined with ',').
    std::map<std::string, std::string> canonical;
    for (const auto& [name, value] : headers) {
        std::string key = to_lower(name);
        std::string v = canonical_value(value);
        auto it = canonical.find(key);
        if (it == canonical.end()) {
            canonical.emplace(key, v);
        } else {
            it->second += ',' + v;
        }
    }
    std::string header_block, signed_headers;
    for (const auto& [name, value] : canonical) {
        header_block += name + ':' + value + '\n';
        if (!signed_headers.empty()) {
            signed_headers += ';';
        }
        signed_headers += name;
    }

    std::string path = request.path.empty() ? std::string("/") : request.path;
    if (params.normalize_path) {
        path = normalize(path);
    }
    if (params.encode_path) {
        path = uri_encode(path, true);
    }

    out.canonical_request = request.method + '\n' + path + '\n' + canonical_query(request.query) + '\n' + header_block +
                            '\n' + signed_headers + '\n' + request.payload_hash;

    std::string date = params.amz_date.substr(0, 8);
    std::string scope = date + '/' + params.region + '/' + params.service + "/aws4_request";
    out.string_to_sign =
        "AWS4-HMAC-SHA256\n" + params.amz_date + '\n' + scope + '\n' + sha256_hex(out.canonical_request);

    std::string k_date = hmac_raw("AWS4" + params.secret_access_key, date);
    std::string k_region = hmac_raw(k_date, params.region);
    std::string k_service = hmac_raw(k_region, params.service);
    std::string k_signing = hmac_raw(k_service, "aws4_request");
    out.signature = hmac_sha256(k_signing, out.string_to_sign);
    out.authorization = "AWS4-HMAC-SHA256 Credential=" + params.access_key_id + '/' + scope +
                        ", SignedHeaders=" + signed_headers + ", Signature=" + out.signature;
    out.add_headers.emplace_back("Authorization", out.authorization);
    return out;
}

}  // namespace util::sigv4

#include "util/net.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace util {

bool is_ip_address(std::string_view s) {
    if (s.empty() || s.size() > 45) {  // INET6_ADDRSTRLEN - 1
        return false;
    }
    std::string text(s);
    unsigned char buf[16];
    return ::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool is_host_name(std::string_view s) {
    if (s.empty() || s.size() > 253) {
        return false;
    }
    size_t label = 0;
    char prev = '.';
    for (char c : s) {
        if (c == '.') {
            if (label == 0 || prev == '-') {
                return false;
            }
            label = 0;
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
            if ((label == 0 && c == '-') || ++label > 63) {
                return false;
            }
        } else {
            return false;
        }
        prev = c;
    }
    return label > 0 && prev != '-';
}

std::string unbracketed(std::string_view host) {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        return std::string(host.substr(1, host.size() - 2));
    }
    return std::string(host);
}

bool is_host(std::string_view s) {
    if (s.size() > 2 && s.front() == '[') {
        std::string bare = unbracketed(s);
        return bare.find(':') != std::string::npos && is_ip_address(bare);
    }
    return is_ip_address(s) || is_host_name(s);
}

std::string url_host(std::string_view host) {
    std::string bare = unbracketed(host);
    return bare.find(':') == std::string::npos ? bare : "[" + bare + "]";
}

bool is_loopback(std::string_view host) {
    std::string bare = unbracketed(host);
    if (bare == "localhost" || bare == "::1") {
        return true;
    }
    in_addr v4{};
    return ::inet_pton(AF_INET, bare.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace util

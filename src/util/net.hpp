// Host names and IP addresses by their grammar. Values that end up in a URL, a shell command or a
// kubeconfig are checked with these first: nothing else (no '/', '@', spaces, quotes, a leading
// '-') can pass.
#pragma once

#include <string>
#include <string_view>

namespace util {

// An IPv4 address in dotted-quad form or an IPv6 address (inet_pton), without brackets or zone.
bool is_ip_address(std::string_view s);

// An RFC 1123 host name: dot-separated labels of letters, digits and '-' (not at either end of a
// label), each at most 63 characters, at most 253 in all. A trailing dot is not accepted.
bool is_host_name(std::string_view s);

// A host name or an IP address; an IPv6 address may be bracketed ("[::1]").
bool is_host(std::string_view s);

// "[::1]" -> "::1"; anything else unchanged.
std::string unbracketed(std::string_view host);

// What goes between "https://" and ":port": an IPv6 address bracketed, anything else unchanged.
std::string url_host(std::string_view host);

// 127.0.0.0/8, ::1 (bracketed or not) and "localhost".
bool is_loopback(std::string_view host);

}  // namespace util

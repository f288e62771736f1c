// The names that reach ssh's command line (ProxyCommand): host names, IP addresses, and jump
// hosts as ssh -J takes them. Checked by the key table and again by SshTarget.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nodectl {

// Whether s is a host name (letters, digits, '.', '-', '_'; not starting with '-' or '.') or an
// IPv4/IPv6 address.
bool is_ssh_host(std::string_view s);

struct SshDestination {
    std::optional<std::string> user;
    std::string host;  // without the brackets of "[v6addr]"
    std::optional<int> port;
};
// "[user@]host[:port]" or "[user@][v6addr][:port]" (the form of ssh -J and of hosts on the command
// line); nullopt for anything else.
std::optional<SshDestination> parse_ssh_destination(std::string_view s);

}  // namespace nodectl

// Kubeconfig files for the operator: k3s's admin kubeconfig made usable from another machine, and
// merged into an existing kubeconfig. Pure functions on YAML text (yaml-cpp); reading the file
// from the node and writing it locally is the CLI's job (cli/kubeconfig_cmd.cpp).
#pragma once

#include "nodectl/result.hpp"

#include <string>

namespace nodectl::k3s {

// Where a k3s server writes its admin kubeconfig (mode 0600, root's).
inline constexpr const char* k_admin_kubeconfig_path = "/etc/rancher/k3s/k3s.yaml";

// k3s's kubeconfig points at https://127.0.0.1:6443 and names everything "default". Returns it
// with every loopback server (127.0.0.1, localhost, [::1]) replaced by `server_host` (an IPv6
// address is bracketed) on the same port, the cluster, user and context "default" renamed to
// `context`, and current-context set to it. Other servers are left as they are. Errors (code
// config) when the text is not YAML, not a kubeconfig, or has no clusters.
Result<std::string> rewrite_kubeconfig(const std::string& yaml_text, const std::string& server_host,
                                       const std::string& context);

// `new_yaml`'s clusters, users and contexts merged into `existing_yaml` (may be empty): an entry
// with the same name is replaced in place, every other entry is kept, current-context becomes
// `new_yaml`'s. Merging the same kubeconfig twice gives the same text.
Result<std::string> merge_kubeconfig(const std::string& existing_yaml, const std::string& new_yaml);

} // namespace nodectl::k3s

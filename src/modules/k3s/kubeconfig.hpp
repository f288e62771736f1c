// Kubeconfig files for the operator: k3s's admin kubeconfig made usable from another machine, and
// merged into an existing kubeconfig. Pure functions on YAML text (yaml-cpp); reading the file
// from the node and writing it locally is the CLI's job (cli/kubeconfig_cmd.cpp).
//
// The server's file is not trusted (a compromised server must not run code on the operator's
// machine, nor change how kubectl reaches other clusters): nothing of it is copied but the four
// values a client needs, each checked, and the server URL is pinned to the address nodectl used.
#pragma once

#include "nodectl/result.hpp"

#include <cstddef>
#include <string>

namespace nodectl::k3s {

// Where a k3s server writes its admin kubeconfig (mode 0600, root's).
inline constexpr const char* k_admin_kubeconfig_path = "/etc/rancher/k3s/k3s.yaml";

// The most read from the server: k3s's file is about 3 KiB.
inline constexpr size_t k_max_kubeconfig_bytes = 64 * 1024;

// Every cluster, user and context nodectl writes is named with this prefix; a merge replaces
// only entries so named.
inline constexpr const char* k_kubeconfig_name_prefix = "nodectl-";

// "nodectl-" + `name` ("lab" -> "nodectl-lab"; "nodectl-lab" stays). ErrorCode::usage when `name`
// is empty or holds anything but letters, digits and . _ : @ -.
Result<std::string> kubeconfig_entry_name(const std::string& name);

// A kubeconfig built from scratch out of k3s's: the cluster's certificate-authority-data and the
// user's client-certificate-data and client-key-data (those of k3s's current context), and the
// server https://`server_address`:PORT, one cluster, user and context all named `name`, which is
// the current context. Nothing else of the server's file is kept (no exec or auth-provider
// plugins, tokens, proxies, insecure flags, extensions).
// The server's URL must be https, and its host loopback (k3s writes https://127.0.0.1:6443) or
// `connected_host`, the address nodectl reached the server at; only its port is used.
// ErrorCode::usage when `server_address` is not a host name or IP address, or `name` does not start
// with "nodectl-"; ErrorCode::config when the text is larger than k_max_kubeconfig_bytes, not YAML,
// not a kubeconfig, or any of the above does not hold.
Result<std::string> rewrite_kubeconfig(const std::string& yaml_text, const std::string& connected_host,
                                       const std::string& server_address, const std::string& name);

// `new_yaml`'s clusters, users and contexts merged into `existing_yaml` (may be empty): an entry
// with the same name is replaced in place, every other entry is kept, current-context becomes
// `new_yaml`'s. Only entries named "nodectl-..." are merged: ErrorCode::config when `new_yaml`
// holds another. Merging the same kubeconfig twice gives the same text.
Result<std::string> merge_kubeconfig(const std::string& existing_yaml, const std::string& new_yaml);

// `existing_yaml` without the cluster, user and context named `name` (which must start with
// "nodectl-": the operator's own entries are never touched); current-context is dropped when it
// was `name`. Every other entry is kept. Removing a name that is not there gives the text back
// unchanged in meaning. ErrorCode::config when the text is not a kubeconfig.
Result<std::string> remove_kubeconfig_entry(const std::string& existing_yaml, const std::string& name);

}  // namespace nodectl::k3s

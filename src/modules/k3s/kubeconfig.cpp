// Kubeconfig rewriting and merging. yaml-cpp keeps the order of mapping keys, so a file keeps its
// shape and a second merge of the same kubeconfig emits exactly the same text.
#include "modules/k3s/kubeconfig.hpp"

#include "util/net.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace nodectl::k3s {

namespace {

const char* const k_lists[] = {"clusters", "contexts", "users"};

// map[key], or an undefined node when the key is absent. A const lookup of an absent key gives a
// "zombie" node on which yaml-cpp throws for anything but IsDefined().
YAML::Node get(const YAML::Node& map, const char* key) {
    YAML::Node n = map[key];
    return n.IsDefined() ? n : YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& map, const char* key) {
    YAML::Node n = get(map, key);
    return n.IsScalar() ? n.Scalar() : std::string();
}

// Messages have no subject: the caller knows which file it was ("HOST: /etc/...: not YAML: ...").
Result<YAML::Node> parse(const std::string& text) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        return make_error(ErrorCode::config, std::string("not YAML: ") + e.what());
    }
    if (!root.IsMap()) {
        return make_error(ErrorCode::config, "not a kubeconfig: expected a mapping with clusters, contexts and users");
    }
    for (const char* key : k_lists) {
        YAML::Node list = get(root, key);
        if (list.IsDefined() && !list.IsNull() && !list.IsSequence()) {
            return make_error(ErrorCode::config, std::string("not a kubeconfig: '") + key + "' is not a list");
        }
    }
    return root;
}

Result<std::string> emit(const YAML::Node& root) {
    YAML::Emitter out;
    out << root;
    if (!out.good()) {
        return make_error(ErrorCode::internal, "cannot write the kubeconfig as YAML: " + out.GetLastError());
    }
    return std::string(out.c_str()) + "\n";
}

// The entry of list `key` ("clusters", "users") named `name`, or an undefined node (also when
// `name` is empty).
YAML::Node named(const YAML::Node& root, const char* key, const std::string& name) {
    YAML::Node list = get(root, key);
    if (!name.empty() && list.IsSequence()) {
        for (const YAML::Node& entry : list) {
            if (entry.IsMap() && scalar(entry, "name") == name) {
                return entry;
            }
        }
    }
    return YAML::Node(YAML::NodeType::Undefined);
}

bool is_base64(const std::string& s) {
    size_t pad = 0;
    for (char c : s) {
        if (c == '=') {
            ++pad;
        } else if (pad > 0 || !(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) {
            return false;
        }
    }
    return !s.empty() && pad <= 2 && s.size() % 4 == 0;
}

// body[key] as base64 text, or why not.
Result<std::string> base64_value(const YAML::Node& body, const char* key, const std::string& whose) {
    std::string v = body.IsMap() ? scalar(body, key) : "";
    if (v.empty()) {
        return make_error(ErrorCode::config, whose + " has no " + key);
    }
    if (!is_base64(v)) {
        return make_error(ErrorCode::config, whose + "'s " + key + " is not base64");
    }
    return v;
}

bool same_host(const std::string& a, const std::string& b) {
    std::string x = util::unbracketed(a), y = util::unbracketed(b);
    return x.size() == y.size() &&
           std::equal(x.begin(), x.end(), y.begin(), [](char p, char q) { return std::tolower(p) == std::tolower(q); });
}

// https://HOST[:PORT][/] from the server, HOST loopback or `connected_host`: ":PORT" or "".
Result<std::string> server_port(const std::string& server, const std::string& connected_host) {
    static const std::regex k_url(R"(^https://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:([0-9]{1,5}))?/?$)");
    std::smatch m;
    if (server.size() > 300 || !std::regex_match(server, m, k_url) || !util::is_host(m[1].str())) {
        return make_error(ErrorCode::config,
                          "the server '" + server.substr(0, 300) + "' is not an https://HOST:PORT URL");
    }
    std::string host = m[1].str();
    if (!util::is_loopback(host) && !same_host(host, connected_host)) {
        return make_error(ErrorCode::config,
                          "the server " + server + " is neither loopback nor " + connected_host +
                              ", the address nodectl connected to: refusing to point kubectl elsewhere");
    }
    if (!m[3].matched) {
        return std::string();
    }
    auto port = util::parse_uint(m[3].str(), {.max = 65535});
    if (!port || *port == 0) {
        return make_error(ErrorCode::config, "the server " + server + " has no valid port");
    }
    return ":" + std::to_string(*port);
}

}  // namespace

Result<std::string> kubeconfig_entry_name(const std::string& name) {
    static const std::regex k_name(R"(^[A-Za-z0-9._:@-]{1,200}$)");
    if (!std::regex_match(name, k_name)) {
        return make_error(ErrorCode::usage, "'" + name + "' is not a kubeconfig name (letters, digits, . _ : @ -)");
    }
    return util::starts_with(name, k_kubeconfig_name_prefix) ? name : k_kubeconfig_name_prefix + name;
}

Result<std::string> rewrite_kubeconfig(const std::string& yaml_text, const std::string& connected_host,
                                       const std::string& server_address, const std::string& name) {
    if (!util::starts_with(name, k_kubeconfig_name_prefix) || !kubeconfig_entry_name(name)) {
        return make_error(ErrorCode::usage, "'" + name + "' is not a kubeconfig name nodectl writes (nodectl-...)");
    }
    if (!util::is_host(server_address)) {
        return make_error(ErrorCode::usage, "'" + server_address + "' is not a host name or an IP address");
    }
    if (yaml_text.size() > k_max_kubeconfig_bytes) {
        return make_error(ErrorCode::config, "larger than " + std::to_string(k_max_kubeconfig_bytes / 1024) +
                                                 " KiB: not a k3s kubeconfig");
    }
    YAML::Node root = TRY(parse(yaml_text));
    try {
        YAML::Node clusters = get(root, "clusters");
        if (!clusters.IsSequence() || clusters.size() == 0) {
            return make_error(ErrorCode::config, "no clusters");
        }
        // k3s's current context ("default"), or the only one there is.
        std::string current = scalar(root, "current-context");
        YAML::Node contexts = get(root, "contexts");
        if (current.empty() && contexts.IsSequence() && contexts.size() == 1 && contexts[0].IsMap()) {
            current = scalar(contexts[0], "name");
        }
        YAML::Node context = named(root, "contexts", current);
        YAML::Node refs = context.IsDefined() ? get(context, "context") : YAML::Node(YAML::NodeType::Undefined);
        if (!refs.IsMap()) {
            return make_error(ErrorCode::config, "no current context");
        }
        std::string cluster_name = scalar(refs, "cluster"), user_name = scalar(refs, "user");
        YAML::Node cluster_entry = named(root, "clusters", cluster_name);
        YAML::Node user_entry = named(root, "users", user_name);
        if (!cluster_entry.IsDefined()) {
            return make_error(ErrorCode::config, "context \"" + current + "\" names no cluster that is there");
        }
        if (!user_entry.IsDefined()) {
            return make_error(ErrorCode::config, "context \"" + current + "\" names no user that is there");
        }
        YAML::Node cluster = get(cluster_entry, "cluster");
        YAML::Node user = get(user_entry, "user");
        std::string server = cluster.IsMap() ? scalar(cluster, "server") : "";
        if (server.empty()) {
            return make_error(ErrorCode::config, "cluster \"" + cluster_name + "\" has no server");
        }
        std::string port = TRY(server_port(server, connected_host));
        std::string ca = TRY(base64_value(cluster, "certificate-authority-data", "cluster \"" + cluster_name + "\""));
        std::string cert = TRY(base64_value(user, "client-certificate-data", "user \"" + user_name + "\""));
        std::string key = TRY(base64_value(user, "client-key-data", "user \"" + user_name + "\""));

        YAML::Node out(YAML::NodeType::Map);
        out["apiVersion"] = "v1";
        out["kind"] = "Config";
        YAML::Node cluster_out;
        cluster_out["name"] = name;
        cluster_out["cluster"]["certificate-authority-data"] = ca;
        cluster_out["cluster"]["server"] = "https://" + util::url_host(server_address) + port;
        out["clusters"].push_back(cluster_out);
        YAML::Node context_out;
        context_out["name"] = name;
        context_out["context"]["cluster"] = name;
        context_out["context"]["user"] = name;
        out["contexts"].push_back(context_out);
        out["current-context"] = name;
        YAML::Node user_out;
        user_out["name"] = name;
        user_out["user"]["client-certificate-data"] = cert;
        user_out["user"]["client-key-data"] = key;
        out["users"].push_back(user_out);
        return emit(out);
    } catch (const YAML::Exception& e) {
        return make_error(ErrorCode::config, std::string("not a kubeconfig: ") + e.what());
    }
}

Result<std::string> merge_kubeconfig(const std::string& existing_yaml, const std::string& new_yaml) {
    auto incoming_parsed = parse(new_yaml);
    if (!incoming_parsed) {
        return make_error(ErrorCode::config, "the new kubeconfig: " + incoming_parsed.error().message);
    }
    YAML::Node incoming = std::move(incoming_parsed).value();
    // An empty file (or one holding only comments) is a kubeconfig with nothing in it yet.
    bool nothing_yet = util::trim(existing_yaml).empty();
    try {
        nothing_yet = nothing_yet || YAML::Load(existing_yaml).IsNull();
    } catch (const YAML::Exception&) {
        // parse() below says what is wrong with it.
    }
    YAML::Node base;
    if (nothing_yet) {
        base = YAML::Clone(incoming);
    } else {
        base = TRY(parse(existing_yaml));
    }
    try {
        for (const char* key : k_lists) {
            YAML::Node add = get(incoming, key);
            if (!add.IsSequence()) {
                continue;
            }
            YAML::Node have = get(base, key);
            YAML::Node list = have.IsSequence() ? have : YAML::Node(YAML::NodeType::Sequence);
            for (const YAML::Node& entry : add) {
                std::string name = entry.IsMap() ? scalar(entry, "name") : "";
                if (name.empty()) {
                    return make_error(ErrorCode::config,
                                      std::string("the new kubeconfig has an entry of '") + key + "' without a name");
                }
                // The operator's own entries are never replaced: only names nodectl gives are merged.
                if (!util::starts_with(name, k_kubeconfig_name_prefix)) {
                    return make_error(ErrorCode::config, std::string("the new kubeconfig's entry of '") + key + "' \"" +
                                                             name + "\" is not named " + k_kubeconfig_name_prefix +
                                                             "...: refusing to merge it");
                }
                bool replaced = false;
                for (size_t i = 0; i < list.size() && !replaced; ++i) {
                    if (list[i].IsMap() && scalar(list[i], "name") == name) {
                        list[i] = YAML::Clone(entry);
                        replaced = true;
                    }
                }
                if (!replaced) {
                    list.push_back(YAML::Clone(entry));
                }
            }
            base[key] = list;
        }
        std::string current = scalar(incoming, "current-context");
        if (!current.empty() && !util::starts_with(current, k_kubeconfig_name_prefix)) {
            return make_error(ErrorCode::config, "the new kubeconfig's current context \"" + current +
                                                     "\" is not named " + k_kubeconfig_name_prefix +
                                                     "...: refusing to merge it");
        }
        if (!current.empty()) {
            base["current-context"] = current;
        }
        if (!get(base, "apiVersion").IsDefined()) {
            base["apiVersion"] = "v1";
        }
        if (!get(base, "kind").IsDefined()) {
            base["kind"] = "Config";
        }
        return emit(base);
    } catch (const YAML::Exception& e) {
        return make_error(ErrorCode::config, std::string("cannot merge the kubeconfigs: ") + e.what());
    }
}

Result<std::string> remove_kubeconfig_entry(const std::string& existing_yaml, const std::string& name) {
    if (!util::starts_with(name, k_kubeconfig_name_prefix)) {
        return make_error(ErrorCode::usage,
                          "\"" + name + "\" is not named " + k_kubeconfig_name_prefix + "...: not removing it");
    }
    auto base = TRY(parse(existing_yaml));
    try {
        for (const char* key : k_lists) {
            YAML::Node have = get(base, key);
            if (!have.IsSequence()) {
                continue;
            }
            YAML::Node kept(YAML::NodeType::Sequence);
            for (const YAML::Node& entry : have) {
                if (!(entry.IsMap() && scalar(entry, "name") == name)) {
                    kept.push_back(entry);
                }
            }
            base[key] = kept;
        }
        if (scalar(base, "current-context") == name) {
            base.remove("current-context");
        }
        return emit(base);
    } catch (const YAML::Exception& e) {
        return make_error(ErrorCode::config, std::string("cannot edit the kubeconfig: ") + e.what());
    }
}

}  // namespace nodectl::k3s

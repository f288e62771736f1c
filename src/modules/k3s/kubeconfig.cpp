// Kubeconfig rewriting and merging. yaml-cpp keeps the order of mapping keys, so a file keeps its
// shape and a second merge of the same kubeconfig emits exactly the same text.
#include "modules/k3s/kubeconfig.hpp"

#include "util/strings.hpp"

#include <yaml-cpp/yaml.h>

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

bool is_loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "[::1]";
}

// "198.18.0.2", "node1.example", "::ffff:198.18.0.2" or "[::ffff:198.18.0.2]" -> what goes between "https://" and ":port".
Result<std::string> url_host(const std::string& host) {
    std::string bare = host;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
        bare = bare.substr(1, bare.size() - 2);
    }
    // Checked because the value lands in a URL: a '/' or '@' would silently change its meaning.
    static const std::regex k_re(R"(^[A-Za-z0-9._:-]+$)");
    if (!std::regex_match(bare, k_re)) {
        return make_error(ErrorCode::usage, "'" + host + "' is not a host name or an IP address");
    }
    return bare.find(':') == std::string::npos ? bare : "[" + bare + "]";
}

void rename(YAML::Node list, const char* key, const std::string& from, const std::string& to) {
    if (!list.IsSequence()) {
        return;
    }
    for (YAML::Node entry : list) {
        if (!entry.IsMap()) {
            continue;
        }
        if (scalar(entry, "name") == from) {
            entry["name"] = to;
        }
        // A context refers to its cluster and user by name.
        YAML::Node body = get(entry, key);
        if (std::string(key) == "context" && body.IsMap()) {
            for (const char* ref : {"cluster", "user"}) {
                if (scalar(body, ref) == from) {
                    body[ref] = to;
                }
            }
        }
    }
}

} // namespace

Result<std::string> rewrite_kubeconfig(const std::string& yaml_text, const std::string& server_host,
                                       const std::string& context) {
    if (context.empty()) {
        return make_error(ErrorCode::usage, "the context name is empty");
    }
    std::string host = TRY(url_host(server_host));
    YAML::Node root = TRY(parse(yaml_text));
    try {
        YAML::Node clusters = get(root, "clusters");
        if (!clusters.IsSequence() || clusters.size() == 0) {
            return make_error(ErrorCode::config, "no clusters");
        }
        static const std::regex k_url(R"(^([A-Za-z][A-Za-z0-9+.-]*://)(\[[^\]]*\]|[^/:\[\]]*)(:[0-9]+)?(.*)$)");
        size_t i = 0;
        for (YAML::Node entry : clusters) {
            ++i;
            YAML::Node cluster = entry.IsMap() ? get(entry, "cluster") : YAML::Node();
            std::string server = cluster.IsMap() ? scalar(cluster, "server") : "";
            if (server.empty()) {
                return make_error(ErrorCode::config, "cluster " + std::to_string(i) + " has no server");
            }
            std::smatch m;
            if (!std::regex_match(server, m, k_url)) {
                return make_error(ErrorCode::config, "server '" + server + "' is not a URL");
            }
            if (is_loopback(m[2].str())) {
                cluster["server"] = m[1].str() + host + m[3].str() + m[4].str();
            }
        }
        rename(clusters, "cluster", "default", context);
        rename(get(root, "users"), "user", "default", context);
        rename(get(root, "contexts"), "context", "default", context);

        bool found = false;
        YAML::Node contexts = get(root, "contexts");
        if (contexts.IsSequence()) {
            for (const YAML::Node& entry : contexts) {
                found = found || (entry.IsMap() && scalar(entry, "name") == context);
            }
        }
        if (!found) {
            return make_error(ErrorCode::config, "no context named \"default\"");
        }
        root["current-context"] = context;
        return emit(root);
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
                    return make_error(ErrorCode::config, std::string("the new kubeconfig has an entry of '") + key +
                                                             "' without a name");
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

} // namespace nodectl::k3s

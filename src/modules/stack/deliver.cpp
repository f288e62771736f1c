// Delivery of the stack to a k3s server node, as part of `nodectl apply`.
//
// What it changes on a node: /var/lib/rancher/k3s/server/manifests/nodectl-stack-SITE.yaml per site
// (0600 root, written atomically; k3s's deploy controller applies it, re-applies it when it changes,
// and also at k3s's start, so it works offline and at first boot), the secrets no reference gives
// (/var/lib/nodectl/stack/SITE/NAME, 0600, made once with OpenSSL's generator and then read back:
// the node keeps them, the operator's machine does not), and the record of the sites delivered
// (/var/lib/nodectl/stack/delivered).
// A site that leaves the profile: k3s's deploy controller (pkg/deploy/controller.go) only looks at
// the files that are there, so deleting a file leaves its objects running; a file that lists no
// object makes it apply an empty set with the Addon's recorded kinds, which deletes every object
// it applied from that file. So the manifest of a removed site is replaced by one without objects
// (the Namespace goes, and with it the site's volumes), and its generated secrets are removed.
// How it knows a change is there: file contents, mode and owner. Plans show each manifest's diff
// with every Secret value masked. How it is undone: remove the sites from the profile.
// Not verified here: k3s reading the files (no k3s binary on the machines this was built on).
#include "modules/stack/stack.hpp"

#include "util/log.hpp"
#include "host/files.hpp"
#include "util/diff.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <regex>
#include <set>

namespace nodectl::stack {

namespace {

// Values made on the node when the profile gives no reference: the key render_site knows them by,
// the file under k_state_dir/SITE, and the random bytes (hex: twice as many characters).
struct Generated {
    const char* key;
    const char* file;
    size_t bytes;
    std::optional<SecretRef> Site::*ref;
    bool monitored_only = false;  // needed only with [stack.monitoring] (removed without it)
};
const Generated k_generated[] = {
    {"secrets.db_password", "db_password", 24, &Site::db_password},
    {"secrets.replication_password", "replication_password", 24, &Site::replication_password},
    {"secrets.redis_password", "redis_password", 24, &Site::redis_password},
    {"secrets.crypt_key", "crypt_key", 16, &Site::crypt_key},  // Magento's own keys are 32 characters
    {"secrets.exporter_db_password", "exporter_db_password", 24, &Site::exporter_db_password, true},
    {"secrets.exporter_redis_password", "exporter_redis_password", 24, &Site::exporter_redis_password, true},
};
const char* const k_tls_files[] = {"tls.crt", "tls.key"};

// Every path below is prefixed by `root`: "" on a node, a scratch directory in unit tests.
std::string stored_path(const std::string& root, const std::string& site, const std::string& file) {
    return root + k_state_dir + "/" + site + "/" + file;
}

bool is_site_name(const std::string& s) {
    static const std::regex k_label("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$");
    return std::regex_match(s, k_label);
}

bool is_generated_value(const std::string& s, size_t bytes) {
    return s.size() == bytes * 2 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The record of delivered sites, as read from the node: one site name per line, nothing else.
Result<std::set<std::string>> delivered_sites(const std::optional<host::FileContent>& record) {
    const std::string record_name = "the record " + std::string(k_delivered);
    std::set<std::string> out;
    if (!record) {
        return out;
    }
    if (record->content.size() > 64 * 1024) {
        return make_error(ErrorCode::command, record_name + " on the node is too large to be nodectl's");
    }
    for (const auto& line : util::split_lines(record->content)) {
        if (line.empty()) {
            continue;
        }
        if (!is_site_name(line)) {
            return make_error(ErrorCode::command, record_name + " on the node holds a line that is not a site name");
        }
        out.insert(line);
    }
    return out;
}

// A file the step wants on the node: this content (0600 root), or absent.
struct Wanted {
    std::string path;
    std::optional<std::string> content;  // nullopt: the file must not exist
    enum class Show { diff, masked, hidden } show = Show::hidden;
};

// One site: its node secrets (stored ones read back, missing ones generated now) and its files.
Result<void> add_site(const std::string& root, const Site& site,
                      const std::map<std::string, std::optional<host::FileContent>>& found,
                      const std::string& node_name, std::vector<Wanted>& files) {
    NodeSecrets node;
    auto stored = [&](const std::string& file) -> std::optional<std::string> {
        auto it = found.find(stored_path(root, site.name, file));
        if (it == found.end() || !it->second) {
            return std::nullopt;
        }
        return it->second->content;
    };
    for (const auto& g : k_generated) {
        auto path = stored_path(root, site.name, g.file);
        if (site.*g.ref || (g.monitored_only && !site.monitored)) {
            files.push_back({path, std::nullopt});  // a reference replaced a value made earlier, or it is not needed
            continue;
        }
        auto value = stored(g.file);
        if (value && !value->empty() && value->back() == '\n') {
            value->pop_back();
        }
        if (value && !is_generated_value(*value, g.bytes)) {
            return make_error(ErrorCode::command, path + " on " + node_name + " is not a value nodectl generated (" +
                                                      std::to_string(g.bytes * 2) +
                                                      " hex digits); remove it to have a new one made");
        }
        node[g.key] = value ? *value : util::random_hex(g.bytes);
        files.push_back({path, node[g.key] + "\n"});
    }
    if (site.tls_cert_file.empty()) {
        auto cert = stored("tls.crt");
        auto key = stored("tls.key");
        TlsPair pair;
        if (cert && key) {
            pair = {*cert, *key};
            if (!tls_pair_valid(pair)) {
                return make_error(ErrorCode::command,
                                  stored_path(root, site.name, "tls.crt") + " and tls.key on " + node_name +
                                      " are not a certificate and its key; remove both to have a new pair made");
            }
        } else {
            pair = TRY(make_self_signed(site.hosts));
        }
        log::warn(
            node_name,
            "site {}: TLS uses a self-signed certificate{} on the node for {} (give tls.cert_file and tls.key for a trusted one)",
            site.name, cert && key ? " made earlier" : " made now", util::join(site.hosts, ", "));
        node["tls.crt"] = pair.cert_pem;
        node["tls.key"] = pair.key_pem;
        files.push_back({stored_path(root, site.name, "tls.crt"), pair.cert_pem});
        files.push_back({stored_path(root, site.name, "tls.key"), pair.key_pem});
    } else {
        for (const char* f : k_tls_files) {
            files.push_back({stored_path(root, site.name, f), std::nullopt});
        }
    }
    if (auto unpinned = unpinned_images(site); !unpinned.empty()) {
        log::warn(
            node_name,
            "site {}: images not pinned by digest: {} (images.digests_from names the `nodectl image build --out` directory)",
            site.name, util::join(unpinned, ", "));
    }
    auto manifest = TRY(render_site(site, SecretValues::resolve, node));
    files.push_back({root + manifest_path(site.name), std::move(manifest), Wanted::Show::masked});
    return Ok{};
}

// The files of the stack on a k3s server node, compared by content, mode and owner (the way the
// other modules' file steps compare), written with Target::write_file (atomic) and removed with
// host::remove_file. What the files should hold depends on the node (values generated there
// earlier), so it is worked out once per run, at the first probe.
class DeliverStack final : public Step {
public:
    DeliverStack(std::vector<Site> sites, Monitoring monitoring, std::string root)
        : m_sites(std::move(sites)), m_monitoring(std::move(monitoring)), m_root(std::move(root)) {}
    std::string id() const override { return "stack/manifests"; }
    std::string title() const override { return "Magento stack manifests for k3s"; }

    Result<Plan> probe(Target& target) override {
        Plan plan;
        auto work = TRY(differing(target));
        for (const auto& [w, current] : work) {
            const auto& path = w->path;
            if (!w->content) {
                plan.changes.push_back({"remove " + path + " (nodectl wrote it)", ""});
                continue;
            }
            std::string verb = current ? "update " : "create ";
            if (current && current->content == *w->content) {
                plan.changes.push_back({path + ": mode/owner -> 0600 root:root", ""});
            } else if (w->show == Wanted::Show::hidden) {
                plan.changes.push_back({verb + path + " (holds a secret: content hidden)", ""});
            } else if (w->show == Wanted::Show::masked) {
                auto before = current ? masked_manifest(current->content) : std::string();
                auto after = masked_manifest(*w->content);
                plan.changes.push_back(
                    {verb + path +
                         (before == after ? " (only secret values change: hidden)" : " (secret values hidden)"),
                     before == after
                         ? std::string()
                         : util::unified_diff(before, after, current ? path : "/dev/null", path + " (planned)")});
            } else {
                plan.changes.push_back(
                    {verb + path, util::unified_diff(current ? current->content : "", *w->content,
                                                     current ? path : "/dev/null", path + " (planned)")});
            }
        }
        return plan;
    }

    Result<void> apply(Target& target, const Plan&) override {
        auto work = TRY(differing(target));
        if (work.empty()) {
            return Ok{};
        }
        Command dirs;
        dirs.script =
            "umask 077; mkdir -p " + shell_quote(m_root + k_manifests_dir) + " " + shell_quote(m_root + k_state_dir);
        for (const auto& s : m_sites) {
            dirs.script += " " + shell_quote(m_root + k_state_dir + "/" + s.name);
        }
        TRY(target.run_checked(dirs, "creating the stack's directories"));
        // The record comes last (m_files ends with it): a run that dies midway leaves it as it was.
        for (const auto& [w, current] : work) {
            if (w->content) {
                TRY_VOID(target.write_file({w->path, *w->content, 0600, "root", "root"}));
            } else {
                TRY_VOID(host::remove_file(target, w->path));
            }
        }
        return Ok{};
    }

private:
    using Work = std::vector<std::pair<const Wanted*, std::optional<host::FileContent>>>;

    // The wanted files that are not as wanted on the node, with what is there now.
    Result<Work> differing(Target& target) {
        TRY_VOID(prepare(target));
        std::vector<std::string> paths;
        for (const auto& w : m_files) {
            paths.push_back(w.path);
        }
        auto current = TRY(host::read_files(target, paths));
        Work out;
        for (size_t i = 0; i < m_files.size(); ++i) {
            const auto& w = m_files[i];
            const auto& c = current[i];
            bool same =
                w.content ? c && c->content == *w.content && c->mode == 0600 && c->owner == "root" && c->group == "root"
                          : !c;
            if (!same) {
                out.emplace_back(&w, c);
            }
        }
        return out;
    }

    Result<void> prepare(Target& target) {
        if (m_prepared) {
            return Ok{};
        }
        // One round trip: the record, and what was generated earlier for each site.
        const std::string record_path = m_root + k_delivered;
        std::vector<std::string> paths{record_path};
        for (const auto& s : m_sites) {
            for (const auto& g : k_generated) {
                paths.push_back(stored_path(m_root, s.name, g.file));
            }
            for (const char* f : k_tls_files) {
                paths.push_back(stored_path(m_root, s.name, f));
            }
        }
        auto contents = TRY(host::read_files(target, paths));
        std::map<std::string, std::optional<host::FileContent>> found;
        for (size_t i = 0; i < paths.size(); ++i) {
            found[paths[i]] = std::move(contents[i]);
        }
        auto delivered = TRY(delivered_sites(found[record_path]));
        std::vector<Wanted> files;
        if (!m_sites.empty() || !delivered.empty() || m_monitoring.enabled) {
            std::string record;
            for (const auto& s : m_sites) {
                TRY_VOID(add_site(m_root, s, found, target.name(), files));
                record += s.name + "\n";
                delivered.erase(s.name);
            }
            if (m_monitoring.enabled) {
                // Recorded like a site (no site may be called so): disabling it empties its manifest.
                auto manifest = TRY(render_monitoring(m_monitoring, m_sites, SecretValues::resolve));
                files.push_back({m_root + manifest_path(k_monitoring), std::move(manifest), Wanted::Show::masked});
                record += std::string(k_monitoring) + "\n";
                delivered.erase(k_monitoring);
            }
            for (const auto& gone : delivered) {
                files.push_back({m_root + manifest_path(gone), removed_manifest(gone), Wanted::Show::masked});
                for (const auto& g : k_generated) {
                    files.push_back({stored_path(m_root, gone, g.file), std::nullopt});
                }
                for (const char* f : k_tls_files) {
                    files.push_back({stored_path(m_root, gone, f), std::nullopt});
                }
            }
            files.push_back({record_path, record, Wanted::Show::diff});
        }
        m_files = std::move(files);
        m_prepared = true;
        return Ok{};
    }

    std::vector<Site> m_sites;
    Monitoring m_monitoring;
    std::string m_root;
    bool m_prepared = false;
    std::vector<Wanted> m_files;
};

}  // namespace

std::string manifest_path(const std::string& site) {
    return std::string(k_manifests_dir) + "/nodectl-stack-" + site + ".yaml";
}

std::string removed_manifest(const std::string& site) {
    return "# nodectl-stack-" + site + ".yaml: site " + site +
           " was removed from the profile.\n"
           "# This file lists no object, so k3s's deploy controller deletes every object it applied from it\n"
           "# (deleting the file would leave them running). nodectl keeps the file; it is safe to delete\n"
           "# once `k3s kubectl get namespace " +
           site + "` finds nothing.\n";
}

std::string masked_manifest(const std::string& content) {
    std::string out;
    // Documents start at a line "---"; the lines before the first one are comments.
    std::vector<std::string> docs{""};
    for (const auto& line : util::split_lines(content)) {
        if (line == "---") {
            docs.emplace_back();
        } else {
            docs.back() += line + "\n";
        }
    }
    for (size_t i = 0; i < docs.size(); ++i) {
        const auto& d = docs[i];
        if (i > 0) {
            out += "---\n";
        }
        bool only_comments = true;
        for (const auto& line : util::split_lines(d)) {
            only_comments = only_comments && (line.empty() || line.front() == '#');
        }
        if (only_comments) {
            out += d;
            continue;
        }
        auto parsed = util::parse_json(d);
        if (!parsed || !parsed->is_object()) {
            out += "# (a document nodectl cannot read: hidden)\n";
            continue;
        }
        nlohmann::json& j = *parsed;
        if (j.value("kind", "") == "Secret") {
            for (const char* field : {"data", "stringData"}) {
                if (j.contains(field) && j[field].is_object()) {
                    for (auto& [k, v] : j[field].items()) {
                        v = "(hidden)";
                    }
                }
            }
        }
        out += util::json_text(j, 2) + "\n";
    }
    return out;
}

std::unique_ptr<Step> make_delivery_step(std::vector<Site> sites, Monitoring monitoring, const std::string& root) {
    return std::make_unique<DeliverStack>(std::move(sites), std::move(monitoring), root);
}

Result<StepList> steps(const ModuleContext& ctx) {
    const auto& t = ctx.profile.table();
    bool has_stack = t.contains("stack");
    bool has_k3s = t.contains("k3s");
    bool k3s_server = has_k3s && ctx.profile.section("k3s").str("role") != "agent";
    if (has_stack && has_k3s && !k3s_server) {
        return make_error(ErrorCode::config,
                          ctx.profile.section("k3s").where("role") +
                              ": [stack] is delivered to a k3s server node, and this profile makes an agent");
    }
    if (!has_stack && !k3s_server) {
        return StepList{};
    }
    std::vector<Site> sites;
    Monitoring monitoring;
    if (has_stack) {
        sites = TRY(sites_from(ctx.profile));
        monitoring = TRY(monitoring_from(ctx.profile));
    }
    StepList out;
    out.push_back(make_delivery_step(std::move(sites), std::move(monitoring)));
    return out;
}

}  // namespace nodectl::stack

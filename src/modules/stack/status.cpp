// `nodectl stack status`: kubectl's JSON about pods, HPAs and Ingresses, per site.
#include "modules/stack/status.hpp"
#include "modules/stack/stack.hpp"

#include "util/json.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <map>

namespace nodectl::stack {

namespace {

using nlohmann::json;

constexpr int64_t k_max_count = 1'000'000'000;  // larger replica or restart counts are not believed
constexpr size_t k_max_string = 1024;  // names and hosts longer than this are cut

// The member `key` of `j` when `j` is an object and the member has the wanted type; else null.
const json* member(const json& j, const char* key) {
    if (!j.is_object()) {
        return nullptr;
    }
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

std::string string_at(const json& j, std::initializer_list<const char*> path) {
    const json* cur = &j;
    for (const char* k : path) {
        cur = member(*cur, k);
        if (!cur) {
            return "";
        }
    }
    if (!cur->is_string()) {
        return "";
    }
    std::string s = cur->get<std::string>();
    return s.size() > k_max_string ? s.substr(0, k_max_string) + "..." : s;
}

// A non-negative integer no larger than k_max_count, else -1 (wrong type, negative, huge, fraction).
int64_t count_at(const json& j, std::initializer_list<const char*> path) {
    const json* cur = &j;
    for (const char* k : path) {
        cur = member(*cur, k);
        if (!cur) {
            return -1;
        }
    }
    if (cur->is_number_unsigned()) {
        auto v = cur->get<uint64_t>();
        return v <= static_cast<uint64_t>(k_max_count) ? static_cast<int64_t>(v) : -1;
    }
    if (cur->is_number_integer()) {
        auto v = cur->get<int64_t>();
        return v >= 0 && v <= k_max_count ? v : -1;
    }
    return -1;
}

// Ready: the pod's Ready condition is "True".
bool pod_ready(const json& pod) {
    const json* conds = member(pod, "status");
    conds = conds ? member(*conds, "conditions") : nullptr;
    if (!conds || !conds->is_array()) {
        return false;
    }
    for (const auto& c : *conds) {
        if (string_at(c, {"type"}) == "Ready") {
            return string_at(c, {"status"}) == "True";
        }
    }
    return false;
}

int64_t pod_restarts(const json& pod) {
    int64_t sum = 0;
    const json* st = member(pod, "status");
    for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
        const json* cs = st ? member(*st, list) : nullptr;
        if (!cs || !cs->is_array()) {
            continue;
        }
        for (const auto& c : *cs) {
            int64_t n = count_at(c, {"restartCount"});
            if (n > 0) {
                sum = std::min(sum + n, k_max_count);
            }
        }
    }
    return sum;
}

}  // namespace

Result<std::vector<SiteStatus>> parse_status(const std::string& json_text, const std::vector<std::string>& sites) {
    if (json_text.size() > k_max_status_bytes) {
        return make_error(ErrorCode::command, "kubectl's output is larger than " +
                                                  std::to_string(k_max_status_bytes >> 20) + " MiB: refused");
    }
    auto doc = util::parse_json(json_text);
    const json* items = doc ? member(*doc, "items") : nullptr;
    if (!items || !items->is_array()) {
        return make_error(ErrorCode::command, "kubectl's output is not a JSON List (no \"items\" array)");
    }
    std::map<std::string, SiteStatus> by_name;
    for (const auto& s : sites) {
        by_name[s].name = s;
        by_name[s].in_profile = true;
    }
    for (const auto& item : *items) {
        std::string ns = string_at(item, {"metadata", "namespace"});
        if (ns.empty()) {
            continue;
        }
        auto& site = by_name[ns];
        site.name = ns;
        std::string kind = string_at(item, {"kind"});
        std::string name = string_at(item, {"metadata", "name"});
        if (kind == "Pod") {
            if (string_at(item, {"status", "phase"}) == "Succeeded") {
                continue;  // a finished backup Job
            }
            site.pods_total++;
            if (pod_ready(item)) {
                site.pods_ready++;
            } else {
                site.not_ready.push_back(name);
            }
            site.restarts = std::min(site.restarts + pod_restarts(item), k_max_count);
        } else if (kind == "HorizontalPodAutoscaler") {
            site.hpas.push_back({name, count_at(item, {"status", "currentReplicas"}),
                                 count_at(item, {"status", "desiredReplicas"}),
                                 count_at(item, {"spec", "maxReplicas"})});
        } else if (kind == "Ingress") {
            const json* rules = member(item, "spec");
            rules = rules ? member(*rules, "rules") : nullptr;
            if (!rules || !rules->is_array()) {
                site.ignored++;
                continue;
            }
            for (const auto& r : *rules) {
                std::string host = string_at(r, {"host"});
                if (!host.empty() &&
                    std::find(site.ingress_hosts.begin(), site.ingress_hosts.end(), host) == site.ingress_hosts.end()) {
                    site.ingress_hosts.push_back(host);
                }
            }
        } else {
            site.ignored++;
        }
    }
    std::vector<SiteStatus> out;
    for (auto& [_, s] : by_name) {
        out.push_back(std::move(s));
    }
    return out;
}

namespace {

std::string count_text(int64_t n) {
    return n < 0 ? "?" : std::to_string(n);
}

}  // namespace

std::string format_status(const std::vector<SiteStatus>& sites) {
    std::string out;
    for (const auto& s : sites) {
        // [stack.monitoring]'s namespace carries nodectl's label too; it is not a site.
        const bool monitoring = s.name == k_monitoring;
        out += (monitoring ? std::string("monitoring (Prometheus, Alertmanager)") : "site " + util::printable(s.name)) +
               ": " + (s.ready() ? "ready" : "NOT READY") +
               (s.in_profile || monitoring ? "" : " (not in the profile)") + "\n";
        out += "  pods     " + std::to_string(s.pods_ready) + "/" + std::to_string(s.pods_total) + " ready, " +
               std::to_string(s.restarts) + " restarts";
        if (!s.not_ready.empty()) {
            std::vector<std::string> names;
            for (const auto& n : s.not_ready) {
                names.push_back(util::printable(n));
            }
            out += "; not ready: " + util::join(names, ", ");
        }
        out += "\n";
        for (const auto& h : s.hpas) {
            out += "  hpa      " + util::printable(h.name) + ": " + count_text(h.current) + " current, " +
                   count_text(h.desired) + " desired, " + count_text(h.max) + " max\n";
        }
        std::vector<std::string> hosts;
        for (const auto& h : s.ingress_hosts) {
            hosts.push_back(util::printable(h));
        }
        out += "  ingress  " + (hosts.empty() ? std::string("(none)") : util::join(hosts, ", ")) + "\n";
        if (s.ignored > 0) {
            out += "  (" + std::to_string(s.ignored) + " objects of an unexpected shape ignored)\n";
        }
    }
    return out;
}

std::string status_json(const std::vector<SiteStatus>& sites) {
    json arr = json::array();
    auto count = [](int64_t n) { return n < 0 ? json(nullptr) : json(n); };
    for (const auto& s : sites) {
        json hpas = json::array();
        for (const auto& h : s.hpas) {
            hpas.push_back({{"name", h.name},
                            {"current", count(h.current)},
                            {"desired", count(h.desired)},
                            {"max", count(h.max)}});
        }
        arr.push_back(
            {{"name", s.name},
             {"in_profile", s.in_profile},
             {"ready", s.ready()},
             {"pods",
              {{"ready", s.pods_ready}, {"total", s.pods_total}, {"restarts", s.restarts}, {"not_ready", s.not_ready}}},
             {"hpa", hpas},
             {"ingress_hosts", s.ingress_hosts},
             {"ignored", s.ignored}});
    }
    // json_text escapes control characters (\u00XX) and, with error_handler replace, invalid UTF-8.
    return util::json_text(json{{"sites", arr}}, 2) + "\n";
}

Result<std::string> read_cluster_status(Target& server) {
    constexpr int k_no_k3s = 44;
    Command cmd;
    cmd.mutates = false;
    cmd.timeout = std::chrono::seconds(60);
    cmd.script =
        "command -v k3s >/dev/null 2>&1 || exit " + std::to_string(k_no_k3s) +
        "\nout=$(k3s kubectl get pods,hpa,ingress -A -l app.kubernetes.io/managed-by=nodectl -o json) || exit $?\n"
        "printf '%s' \"$out\" | head -c " +
        std::to_string(k_max_status_bytes + 1) + "\n";
    auto r = TRY(server.run(cmd));
    if (r.exit_code == k_no_k3s) {
        return make_error(ErrorCode::command, "no k3s on " + server.name() + ": is it the k3s server node?");
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "k3s kubectl failed on " + server.name() + " (exit " +
                                                  std::to_string(r.exit_code) +
                                                  "): " + util::printable(util::trim(r.err).substr(0, 2000)));
    }
    return std::move(r.out);
}

}  // namespace nodectl::stack

// `nodectl stack status`: what `k3s kubectl get pods,hpa,ingress -A -o json` on the server node
// says about each site. The JSON comes from the node: untrusted. It is read bounded, every field
// is type-checked (a field of the wrong type counts as absent), nothing throws, and every string
// is escaped before it is printed.
#pragma once

#include "nodectl/result.hpp"
#include "nodectl/target.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace nodectl::stack {

// 12 MiB of kubectl JSON (about 1000 pods), then refused; below the Target's own 16 MiB cap on output.
constexpr size_t k_max_status_bytes = 12 * 1024 * 1024;

struct HpaStatus {
    std::string name;
    int64_t current = -1, desired = -1, max = -1;  // -1: not reported (yet)
};

struct SiteStatus {
    std::string name;  // the namespace
    bool in_profile = false;
    int pods_total = 0, pods_ready = 0;
    int64_t restarts = 0;
    std::vector<std::string> not_ready;  // names of the pods that are not ready
    std::vector<HpaStatus> hpas;
    std::vector<std::string> ingress_hosts;
    int ignored = 0;  // items of the site whose shape was not understood
    bool ready() const { return pods_total > 0 && pods_ready == pods_total; }
};

// The sites of a kubectl List: one per namespace holding nodectl's objects, plus each name in
// `sites` (the profile's) even when the cluster has nothing of it. Pods of finished Jobs (phase
// Succeeded) are left out. An error only when the text is not a JSON List at all or is too large.
Result<std::vector<SiteStatus>> parse_status(const std::string& json_text, const std::vector<std::string>& sites);

// Human-readable lines (every string escaped) and the --json document.
std::string format_status(const std::vector<SiteStatus>& sites);
std::string status_json(const std::vector<SiteStatus>& sites);

// Runs `k3s kubectl get pods,hpa,ingress -A -l app.kubernetes.io/managed-by=nodectl -o json` on
// the server node (read-only) and returns its output, at most k_max_status_bytes of it.
Result<std::string> read_cluster_status(Target& server);

}  // namespace nodectl::stack

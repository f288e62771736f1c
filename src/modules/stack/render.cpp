// One site's Kubernetes objects. Every object is built as ordered JSON (key order as written here)
// and emitted as one YAML document; JSON is YAML, and k3s's manifest loader reads it as such.
// Kubernetes v1.32, no deprecated API: apps/v1, batch/v1, autoscaling/v2, policy/v1,
// networking.k8s.io/v1, traefik.io/v1alpha1.
//
// The images (images/*) start as root and drop to their service user themselves (setpriv, Apache,
// varnishd), so their containers keep exactly the capabilities that needs: CHOWN, DAC_OVERRIDE and
// FOWNER for the entrypoints' chown/mkdir on volumes, SETUID/SETGID to switch user, KILL where a
// root parent signals children of another user. Nothing listens below 1024 (Apache on 8080), so
// NET_BIND_SERVICE is never added. The root filesystem is read-only wherever the image writes only
// to volumes; Magento's entrypoint writes app/etc/env.php into the image, so its root stays writable.
#include "modules/stack/renderer.hpp"

#include "util/strings.hpp"

namespace nodectl::stack {

namespace detail {

J strings(const std::vector<std::string>& v) {
    J a = J::array();
    for (const auto& s : v) {
        a.push_back(s);
    }
    return a;
}

void Renderer::namespace_object() {
    J ns = J{{"apiVersion", "v1"},
             {"kind", "Namespace"},
             {"metadata",
              J{{"name", site.name},
                {"labels", J{{"app.kubernetes.io/part-of", part_of}, {"app.kubernetes.io/managed-by", "nodectl"}}}}}};
    // Baseline forbids hostPath: with media from the node's s3fs mount it warns and audits only.
    auto& l = ns["metadata"]["labels"];
    l[site.media_host_path.empty() ? "pod-security.kubernetes.io/enforce" : "pod-security.kubernetes.io/warn"] =
        "baseline";
    l["pod-security.kubernetes.io/audit"] = "baseline";
    emit(ns);
}

// The namespace's ResourceQuota and LimitRange, each only when the profile sets one of its values.
void Renderer::quota_and_limits() {
    if (site.quota.set()) {
        J hard = J::object();
        const std::pair<const char*, const std::string*> hard_values[] = {
            {"requests.cpu", &site.quota.requests_cpu},
            {"requests.memory", &site.quota.requests_memory},
            {"limits.cpu", &site.quota.limits_cpu},
            {"limits.memory", &site.quota.limits_memory},
            {"requests.storage", &site.quota.requests_storage}};
        for (const auto& [name, value] : hard_values) {
            if (!value->empty()) {
                hard[name] = *value;
            }
        }
        if (site.quota.pods > 0) {
            hard["pods"] = std::to_string(site.quota.pods);
        }
        J q = object("v1", "ResourceQuota", "site", "magento");
        q["spec"] = J{{"hard", std::move(hard)}};
        emit(q);
    }
    if (site.limit_range.set()) {
        const auto& lr = site.limit_range;
        J limit = J{{"type", "Container"}};
        auto pair = [](const std::string& cpu, const std::string& memory) {
            J o = J::object();
            if (!cpu.empty()) o["cpu"] = cpu;
            if (!memory.empty()) o["memory"] = memory;
            return o;
        };
        for (const auto& [name, value] :
             {std::pair{"default", pair(lr.default_cpu_limit, lr.default_memory_limit)},
              std::pair{"defaultRequest", pair(lr.default_cpu_request, lr.default_memory_request)},
              std::pair{"max", pair(lr.max_cpu, lr.max_memory)}}) {
            if (!value.empty()) {
                limit[name] = value;
            }
        }
        J l = object("v1", "LimitRange", "containers", "magento");
        l["spec"] = J{{"limits", J::array({limit})}};
        emit(l);
    }
}

}  // namespace detail

Result<std::string> render_site(const Site& site, SecretValues values, const NodeSecrets& node) {
    detail::Renderer r{site, values, {}, {}, &node};
    r.out = "# nodectl-" + site.name + ".yaml: the Magento stack of site " + site.name +
            ", rendered by `nodectl stack render` (do not edit: it is rendered again)\n";
    if (values == SecretValues::placeholders) {
        r.out += "# Secret values are placeholders (" + std::string(k_placeholder) +
                 "): this file is not deployable as it is.\n";
    }
    for (const auto& ref : unpinned_images(site)) {
        r.out += "# image not pinned by digest: " + ref + " (the node runs whatever image has that name)\n";
    }
    r.namespace_object();
    r.quota_and_limits();
    r.secrets();
    r.config_maps();
    r.services();
    r.stateful_set(true);
    if (site.mariadb_replicas > 0) {
        r.stateful_set(false);
    }
    r.redis();
    r.varnish();
    r.magento();
    r.magento_cron();
    r.ingress();
    r.network_policies();
    r.backup_cron_job();
    if (!r.problems.empty()) {
        return make_error(ErrorCode::config, util::join(r.problems, "\n"));
    }
    return r.out;
}
}  // namespace nodectl::stack

// Kubernetes quantities, and the site's quota and limit range against the stack's own requests.
#include "modules/stack/limits.hpp"

#include <cmath>
#include <cstdlib>
#include <regex>

namespace nodectl::stack {

std::optional<long double> quantity_value(const std::string& q) {
    static const std::regex k_re(
        "^\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE]([+-]?[0-9]{1,4}))?$");
    std::smatch m;
    if (q.size() > 64 || !std::regex_match(q, m, k_re)) {
        return std::nullopt;
    }
    long double v = std::strtold(m[1].str().c_str(), nullptr);
    const std::string suffix = m[3];
    static const std::pair<const char*, long double> k_suffixes[] = {
        {"Ki", 0x1p10L}, {"Mi", 0x1p20L}, {"Gi", 0x1p30L}, {"Ti", 0x1p40L}, {"Pi", 0x1p50L},
        {"Ei", 0x1p60L}, {"n", 1e-9L},    {"u", 1e-6L},    {"m", 1e-3L},    {"k", 1e3L},
        {"M", 1e6L},     {"G", 1e9L},     {"T", 1e12L},    {"P", 1e15L},    {"E", 1e18L}};
    if (m[4].matched) {
        return v * std::pow(10.0L, std::strtold(m[4].str().c_str(), nullptr));
    }
    for (const auto& [name, factor] : k_suffixes) {
        if (suffix == name) {
            return v * factor;
        }
    }
    return v;
}

namespace detail {

namespace {

struct Totals {
    long double requests_cpu = 0, requests_memory = 0, limits_cpu = 0, limits_memory = 0, storage = 0;
    int pods = 0;
};

long double value_of(const std::string& q) {
    return quantity_value(q).value_or(0);
}

Totals largest(const Site& s) {
    Totals t;
    // `containers` of the component; with pods = false they run in pods counted already (sidecars).
    auto add = [&](const std::string& component, int containers, bool pods = true) {
        const auto& r = s.resources.at(component);
        t.requests_cpu += containers * value_of(r.cpu_request);
        t.requests_memory += containers * value_of(r.memory_request);
        t.limits_cpu += containers * value_of(r.cpu_limit);
        t.limits_memory += containers * value_of(r.memory_limit);
        t.pods += pods ? containers : 0;
    };
    add("magento", s.hpa_max);
    add("varnish", s.varnish_replicas);
    add("redis", 1);
    add("mariadb", 1 + s.mariadb_replicas);
    add("cron", 1);
    if (s.backup.enabled) {
        add("backup", 1);  // concurrencyPolicy Forbid: one Job pod at a time
    }
    if (s.monitored) {  // one exporter beside Magento, Varnish, Redis and every MariaDB server
        add("exporter", s.hpa_max + s.varnish_replicas + 1 + 1 + s.mariadb_replicas, false);
    }
    t.storage = value_of(s.storage_mariadb) + s.mariadb_replicas * value_of(s.storage_replica);
    return t;
}

std::string text(long double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3Lg", v);
    return buf;
}

}  // namespace

std::vector<std::string> limit_problems(const Site& s, const ConfigView& quota, const ConfigView& limit_range) {
    std::vector<std::string> out;
    const std::string what = "[[stack.sites]] '" + s.name + "'";
    if (s.quota.set()) {
        Totals t = largest(s);
        auto check = [&](const std::string& key, const std::string& hard, long double need, const char* unit) {
            if (!hard.empty() && value_of(hard) < need) {
                out.push_back(quota.where(key) + ": " + what + " quota." + key + " = \"" + hard +
                              "\" is less than the " + text(need) + unit +
                              " the stack needs at autoscaling.max (pods beyond it would be refused)");
            }
        };
        check("requests_cpu", s.quota.requests_cpu, t.requests_cpu, " CPU");
        check("requests_memory", s.quota.requests_memory, t.requests_memory, " bytes");
        check("limits_cpu", s.quota.limits_cpu, t.limits_cpu, " CPU");
        check("limits_memory", s.quota.limits_memory, t.limits_memory, " bytes");
        check("requests_storage", s.quota.requests_storage, t.storage, " bytes");
        if (s.quota.pods > 0 && s.quota.pods < t.pods) {
            out.push_back(quota.where("pods") + ": " + what + " quota.pods = " + std::to_string(s.quota.pods) +
                          " is less than the " + std::to_string(t.pods) + " pods the stack runs at autoscaling.max");
        }
    }
    const auto& lr = s.limit_range;
    for (const auto& [component, r] : s.resources) {
        if (!lr.max_cpu.empty() && value_of(r.cpu_limit) > value_of(lr.max_cpu)) {
            out.push_back(limit_range.where("max_cpu") + ": " + what + " limit_range.max_cpu = \"" + lr.max_cpu +
                          "\" is below resources." + component + ".cpu_limit (\"" + r.cpu_limit +
                          "\"): its pods would be refused");
        }
        if (!lr.max_memory.empty() && value_of(r.memory_limit) > value_of(lr.max_memory)) {
            out.push_back(limit_range.where("max_memory") + ": " + what + " limit_range.max_memory = \"" +
                          lr.max_memory + "\" is below resources." + component + ".memory_limit (\"" + r.memory_limit +
                          "\"): its pods would be refused");
        }
    }
    auto ordered = [&](const std::string& low_key, const std::string& low, const std::string& high_key,
                       const std::string& high) {
        if (!low.empty() && !high.empty() && value_of(low) > value_of(high)) {
            out.push_back(limit_range.where(low_key) + ": " + what + " limit_range." + low_key + " (\"" + low +
                          "\") is larger than limit_range." + high_key + " (\"" + high + "\")");
        }
    };
    ordered("default_cpu_request", lr.default_cpu_request, "default_cpu_limit", lr.default_cpu_limit);
    ordered("default_memory_request", lr.default_memory_request, "default_memory_limit", lr.default_memory_limit);
    ordered("default_cpu_limit", lr.default_cpu_limit, "max_cpu", lr.max_cpu);
    ordered("default_memory_limit", lr.default_memory_limit, "max_memory", lr.max_memory);
    return out;
}

}  // namespace detail

}  // namespace nodectl::stack

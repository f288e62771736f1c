// Kernel hardening: sysctl values in one file under /etc/sysctl.d (sorting last, so it wins), a
// modprobe blacklist, and for Kubernetes roles the modules and parameters k3s needs (forwarding
// and bridge netfilter stay on; k3s's CIS kernel defaults). Values are applied live where
// /proc/sys is writable; in a container most of it is the host's kernel and read-only, which the
// controls report as not applicable, never as passing.
#include "modules/harden/groups.hpp"

#include "util/strings.hpp"

#include <algorithm>

namespace nodectl::harden {

namespace {

constexpr const char* k_sysctl_file = "/etc/sysctl.d/zz-nodectl-hardening.conf";
constexpr const char* k_blacklist_file = "/etc/modprobe.d/nodectl-blacklist.conf";
constexpr const char* k_modules_file = "/etc/modules-load.d/nodectl-k3s.conf";
const std::vector<std::string> k_k3s_modules = {"overlay", "br_netfilter"};

std::string proc_path(const std::string& key) {
    std::string p = "/proc/sys/" + key;
    std::replace(p.begin() + 10, p.end(), '.', '/');
    return p;
}

}  // namespace

bool is_forwarding_key(const std::string& key) {
    std::string k = key;
    std::replace(k.begin(), k.end(), '/', '.');
    return k == "net.ipv4.ip_forward" ||
           ((k.starts_with("net.ipv4.conf.") || k.starts_with("net.ipv6.conf.")) && k.ends_with(".forwarding"));
}

Role parse_role(const std::string& s) {
    if (s == "k3s-server") {
        return Role::k3s_server;
    }
    if (s == "k3s-server-ha") {
        return Role::k3s_server_ha;
    }
    if (s == "k3s-agent") {
        return Role::k3s_agent;
    }
    return Role::standalone;
}

bool is_kubernetes(Role r) {
    return r != Role::standalone;
}

std::vector<std::pair<std::string, std::string>> sysctl_values(const ConfigView& kernel, Role role) {
    bool k8s = is_kubernetes(role);
    std::vector<std::pair<std::string, std::string>> v = {
        {"kernel.kptr_restrict", "2"},
        {"kernel.dmesg_restrict", "1"},
        {"kernel.yama.ptrace_scope", "2"},
        {"kernel.kexec_load_disabled", "1"},
        {"kernel.core_uses_pid", "1"},
        {"kernel.ctrl-alt-del", "0"},
        {"dev.tty.ldisc_autoload", "0"},
        {"kernel.unprivileged_bpf_disabled", "1"},
        {"net.core.bpf_jit_harden", "2"},
        {"kernel.sysrq", "0"},
        {"kernel.randomize_va_space", "2"},
        {"kernel.perf_event_paranoid", "3"},
        {"fs.protected_hardlinks", "1"},
        {"fs.protected_symlinks", "1"},
        {"fs.protected_fifos", "2"},
        {"fs.protected_regular", "2"},
        {"fs.suid_dumpable", "0"},
        // Kubernetes nodes route pod traffic: strict reverse-path filtering breaks some CNIs.
        {"net.ipv4.conf.all.rp_filter", k8s ? "2" : "1"},
        {"net.ipv4.conf.default.rp_filter", k8s ? "2" : "1"},
        {"net.ipv4.conf.all.accept_redirects", "0"},
        {"net.ipv4.conf.default.accept_redirects", "0"},
        {"net.ipv4.conf.all.secure_redirects", "0"},
        {"net.ipv4.conf.default.secure_redirects", "0"},
        {"net.ipv4.conf.all.send_redirects", "0"},
        {"net.ipv4.conf.default.send_redirects", "0"},
        {"net.ipv4.conf.all.accept_source_route", "0"},
        {"net.ipv4.conf.default.accept_source_route", "0"},
        {"net.ipv6.conf.all.accept_redirects", "0"},
        {"net.ipv6.conf.default.accept_redirects", "0"},
        {"net.ipv6.conf.all.accept_source_route", "0"},
        {"net.ipv6.conf.default.accept_source_route", "0"},
        {"net.ipv4.tcp_syncookies", "1"},
        {"net.ipv4.conf.all.log_martians", "1"},
        {"net.ipv4.conf.default.log_martians", "1"},
        {"net.ipv4.icmp_echo_ignore_broadcasts", "1"},
        {"net.ipv4.icmp_ignore_bogus_error_responses", "1"},
        {"net.ipv4.ip_forward", k8s ? "1" : "0"},
        {"net.ipv6.conf.all.forwarding", k8s ? "1" : "0"},
    };
    if (k8s) {
        v.insert(v.end(), {
                              {"net.bridge.bridge-nf-call-iptables", "1"},
                              {"net.bridge.bridge-nf-call-ip6tables", "1"},
                              // k3s --protect-kernel-defaults (CIS) expects these.
                              {"vm.panic_on_oom", "0"},
                              {"vm.overcommit_memory", "1"},
                              {"kernel.panic", "10"},
                              {"kernel.panic_on_oops", "1"},
                          });
    }
    for (const auto& [key, value] : kernel.string_map("sysctl")) {
        const std::string& name = key;  // clang before 16 cannot capture a structured binding
        auto same = std::find_if(v.begin(), v.end(), [&](const auto& kv) { return kv.first == name; });
        if (same != v.end()) {
            same->second = value;
        } else {
            v.emplace_back(key, value);
        }
    }
    // Changing IPv4 forwarding makes the kernel reset accept_redirects on every interface
    // (inet_forward_change() in net/ipv4/devinet.c): the forwarding keys go first, live and in
    // the sysctl.d file (systemd-sysctl applies it in order), so nothing written later is undone.
    std::stable_partition(v.begin(), v.end(), [](const auto& kv) { return is_forwarding_key(kv.first); });
    return v;
}

ConfigSetSpec kernel_group(const ConfigView& kernel, const Settings& s) {
    ConfigSetSpec spec;
    spec.id = "harden/kernel";
    spec.title = "kernel hardening";
    spec.enabled = kernel.boolean("enabled");
    auto values = sysctl_values(kernel, s.role);
    bool k8s = is_kubernetes(s.role);

    std::string conf = "# Managed by nodectl (harden.kernel): changes here are replaced on the next apply.\n"
                       "# Named to sort after every other sysctl.d file (Debian's 99-protect-links.conf included).\n";
    std::string table;  // "key path value" lines for the shell loops
    for (const auto& [k, v] : values) {
        conf += "-" + k + " = " + v + "\n";  // '-': a key this kernel lacks is skipped, not an error
        table += k + " " + proc_path(k) + " " + v + "\n";
    }
    std::string blacklist = "# Managed by nodectl (harden.kernel.blacklist): these modules never load.\n";
    auto modules = kernel.strings("blacklist");
    for (const auto& m : modules) {
        blacklist += "install " + m + " /bin/true\nblacklist " + m + "\n";
    }
    spec.files = {{k_sysctl_file, conf, nullptr, 0644}, {k_blacklist_file, blacklist, nullptr, 0644}};
    if (k8s) {
        spec.files.push_back({k_modules_file,
                              "# Managed by nodectl: modules k3s needs.\n" + util::join(k_k3s_modules, "\n") + "\n",
                              nullptr, 0644});
    }
    // A value differs and can be changed here: a live difference. One that cannot be changed
    // (read-only /proc/sys in a container, or a key this kernel lacks) is for the controls to report.
    std::string loop = "printf '%s' " + shell_quote(table) +
                       " | while read -r k p want; do\n"
                       "  [ -e \"$p\" ] && [ -w \"$p\" ] || continue\n"
                       "  cur=$(tr -s ' \\t' ' ' < \"$p\")\n"
                       "  if [ \"$cur\" != \"$want\" ]; then ";
    spec.drift = loop + "echo \"sysctl $k: $cur -> $want\"; fi\ndone\n";
    spec.activate = loop + "sysctl -q -w \"$k=$want\" >/dev/null || echo \"cannot set $k\" >&2; fi\ndone\n";
    if (k8s) {
        std::string mods = shell_quote_all(k_k3s_modules);
        // Without this kernel's modules directory (a container) nothing can be loaded here.
        spec.drift += "if [ -d /lib/modules/$(uname -r) ]; then for m in " + mods +
                      "; do [ -d /sys/module/$m ] || echo \"load kernel module $m\"; done; fi\n";
        spec.activate = "if [ -d /lib/modules/$(uname -r) ]; then for m in " + mods + "; do modprobe $m; done; fi\n" +
                        spec.activate;
    }
    spec.restore_activate = "sysctl -q --system >/dev/null 2>&1 || true";
    // Turning the group off removes the files; live values stay until the next boot.
    spec.deactivate = "sysctl -q --system >/dev/null 2>&1 || true";

    for (const auto& [k, v] : values) {
        auto p = shell_quote(proc_path(k));
        host::Control c;
        c.id = "kernel.sysctl." + k;
        c.title = "sysctl " + k;
        c.observe = "tr -s ' \\t' ' ' < " + p;
        c.expect = host::equals(v);
        c.not_applicable =
            "if [ ! -e " + p + " ]; then echo '" + k +
            " is not in this kernel, or not visible here (a container hides some keys)'; elif [ \"$(tr -s ' \\t' ' ' < " +
            p + ")\" != " + shell_quote(v) + " ] && [ ! -w " + p +
            " ]; then echo '/proc/sys is read-only here (a container shares the host kernel): the value is persisted in " +
            k_sysctl_file + " but cannot take effect'; fi";
        spec.controls.push_back(std::move(c));
    }
    for (const auto& m : modules) {
        host::Control c;
        c.id = "kernel.module." + m;
        c.title = "module " + m + " blocked and not loaded";
        c.observe = "if grep -qsE '^install[[:space:]]+" + m +
                    "[[:space:]]+/bin/(false|true)' /etc/modprobe.d/*.conf; then b=blocked; else b='not blocked'; fi; "
                    "if grep -q '^" +
                    m + " ' /proc/modules; then echo \"$b, loaded\"; else echo \"$b, not loaded\"; fi";
        c.expect = host::equals("blocked, not loaded");
        spec.controls.push_back(std::move(c));
    }
    if (k8s) {
        for (const auto& m : k_k3s_modules) {
            host::Control c;
            c.id = "kernel.k3s_module." + m;
            c.title = "module " + m + " loaded (k3s)";
            c.observe = "if [ -d /sys/module/" + m + " ]; then echo loaded; else echo 'not loaded'; fi";
            c.expect = host::equals("loaded");
            c.not_applicable =
                "[ -d /sys/module/" + m +
                " ] || [ -d /lib/modules/$(uname -r) ] || echo 'no modules for kernel '$(uname -r)' here (a container): load " +
                m + " on the host'";
            spec.controls.push_back(std::move(c));
        }
    }
    return spec;
}

}  // namespace nodectl::harden

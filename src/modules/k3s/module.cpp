// k3s: a single-node k3s server from a profile ([k3s]), or an agent joined by `nodectl join`.
//
// What it changes on a node: /usr/local/bin/k3s and its kubectl/crictl/ctr links (the release's
// binary, checked against the release's sha256 file), the airgap images when asked,
// /etc/rancher/k3s/config.yaml (0600) and registries.yaml (0600), the k3s unit and its env file
// (0600), the server's token file (0600, created once), an on-link default route where the node
// has none, and then it starts the unit and waits for the node to be Ready.
// How it knows a change is already there: the binary's sha256 on the node, file contents
// (ApplyConfigSet), `systemctl is-active` and the node's Ready condition.
// How it is undone: `nodectl reset --k3s` removes all of it, data included.
// Not verified here: anything that needs a running k3s (no k3s binary can be downloaded on the
// machines this was built on); see docs/status.md, "Not verified here".
#include "modules/k3s/k3s.hpp"

#include "util/log.hpp"
#include "host/services.hpp"
#include "modules/k3s/steps.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

#include <thread>

namespace nodectl::k3s {

namespace {

constexpr const char* k_route_unit = "/etc/systemd/system/nodectl-default-route.service";
constexpr const char* k_route_script = "/usr/local/lib/nodectl/default-route.sh";

}  // namespace

ConfigSetSpec default_route_group() {
    ConfigSetSpec spec;
    spec.id = "k3s/default_route";
    spec.title = "default route for k3s";
    spec.prepare = [](Target& target, ConfigSetSpec& sp) -> Result<void> {
        Command cmd;
        cmd.mutates = false;
        cmd.script = std::string("if [ -e ") + k_route_unit +
                     " ] || ! ip -4 route show default | grep -q .; then "
                     "ip -4 -o addr show scope global | awk '{print $2; exit}'; echo needed; fi";
        auto r = TRY(target.run_checked(cmd, "reading the default route"));
        if (r.out.find("needed") == std::string::npos) {
            sp.files.clear();  // the node has a route of its own: nothing to manage
            sp.drift.clear();
            sp.activate.clear();
            return Ok{};
        }
        auto iface = util::trim(util::split_lines(r.out).front());
        // The interface's name comes from the node: quoted, never part of the script.
        sp.drift = "ip -4 route show default | grep -q . || echo " +
                   shell_quote("add an on-link default route via " +
                               (iface == "needed" ? std::string("the first interface") : iface) +
                               ": the node has none, and k3s needs one to choose its address") +
                   "\n";
        return Ok{};
    };
    // The route goes on the interface holding the first global address, so that is the address k3s
    // chooses. It is recreated at every boot before k3s starts.
    spec.files.push_back({k_route_script,
                          "#!/bin/sh\n# Managed by nodectl (k3s): an on-link default route for a node that has none.\n"
                          "ip -4 route show default | grep -q . && exit 0\n"
                          "dev=$(ip -4 -o addr show scope global | awk '{print $2; exit}')\n"
                          "[ -n \"$dev\" ] || { echo 'no interface with a global IPv4 address' >&2; exit 1; }\n"
                          "exec ip route add default dev \"$dev\" metric 1024\n",
                          nullptr, 0755});
    spec.files.push_back(
        {k_route_unit,
         "# Managed by nodectl (k3s)\n[Unit]\nDescription=nodectl: on-link default route for k3s\n"
         "After=network-online.target\nWants=network-online.target\nBefore=k3s.service k3s-agent.service\n\n"
         "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh " +
             std::string(k_route_script) + "\n\n[Install]\nWantedBy=multi-user.target\n",
         nullptr, 0644});
    spec.validate = std::string("systemd-analyze verify ") + k_route_unit;
    const std::string unit = "nodectl-default-route.service";
    spec.activate = host::units::script(
        {host::units::daemon_reload(), host::units::enable({unit}, {.quiet = true}), host::units::restart({unit})});
    return spec;
}

Result<ConfigSetSpec> files_group(const Settings& s) {
    ConfigSetSpec spec;
    spec.id = s.role == Role::server ? "k3s/server_files" : "k3s/agent_files";
    spec.title = std::string("k3s ") + (s.role == Role::server ? "server" : "agent") + " configuration";
    spec.files.push_back({k_config, TRY(render_config_yaml(s)), nullptr, 0600, "root", "root", s.role == Role::agent});
    if (!s.registries.empty()) {
        spec.files.push_back({k_registries, render_registries_yaml(s.registries), nullptr, 0600});
    }
    spec.files.push_back({unit_path(s.role), render_unit(s.role), nullptr, 0644});
    spec.files.push_back({env_path(s.role), render_env(s.env), nullptr, 0600, "root", "root", true});
    if (s.role == Role::server) {
        // The server's secret is made on the node and never leaves it; an existing cluster's
        // secret is kept (a new one would lock k3s out of its own datastore).
        spec.pre_write = std::string("umask 077; mkdir -p ") + k_config_dir + "\nif [ ! -s " + k_token_file +
                         " ]; then\n"
                         "  if [ -s " +
                         k_server_token + " ]; then sed 's/^.*::server://' " + k_server_token + " > " + k_token_file +
                         ".tmp\n  else head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > " + k_token_file +
                         ".tmp; fi\n"
                         "  mv " +
                         k_token_file + ".tmp " + k_token_file + "\nfi\n";
        spec.drift = std::string("[ -s ") + k_token_file + " ] || echo 'create the cluster token file " + k_token_file +
                     " (0600)'\n";
    }
    spec.validate = "systemd-analyze verify " + unit_path(s.role);
    std::string unit = unit_name(s.role);
    // A configuration change restarts a running k3s; StartK3s starts a stopped one.
    namespace units = host::units;
    spec.activate = units::script({units::daemon_reload(), units::enable({unit}, {.quiet = true})}) + "if " +
                    units::is_active(unit) + "; then " + units::restart({unit}).script() + "; fi\n";
    spec.restore_activate = units::daemon_reload().script();
    spec.drift += units::enabled_drift(unit);
    spec.controls.push_back({"k3s.config_mode", "config.yaml is readable by root only",
                             std::string("stat -c %a ") + k_config, host::equals("600"), ""});
    spec.controls.push_back({"k3s.env_mode", "the unit's env file is readable by root only",
                             "stat -c %a " + env_path(s.role), host::equals("600"), ""});
    return spec;
}

// Prints the unit's active state, then (on a server) the node's Ready condition.
std::string StartK3s::state_script() const {
    // The node's own name is its host name (k3s's default), lower-cased.
    std::string ready = m_settings.role == Role::server
                            ? std::string(k_binary) +
                                  " kubectl get node \"$(hostname | tr A-Z a-z)\" -o "
                                  "jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' 2>/dev/null"
                            : std::string("true");
    return host::units::active_state(unit_name(m_settings.role)) + " 2>/dev/null; " + ready + "; true";
}

Result<Plan> StartK3s::probe(Target& target) {
    Plan plan;
    if (!m_settings.start) {
        return plan;
    }
    Command cmd;
    cmd.mutates = false;
    std::string unit = unit_name(m_settings.role);
    cmd.script = state_script();
    auto r = TRY(target.run_checked(cmd, "reading k3s's state"));
    auto lines = util::split_lines(r.out);
    bool active = !lines.empty() && util::trim(lines[0]) == "active";
    bool ready = m_settings.role == Role::agent || (lines.size() > 1 && util::trim(lines[1]) == "True");
    if (!active || !ready) {
        plan.changes.push_back({std::string(active ? "wait for" : "start " + unit + " and wait for") +
                                    (m_settings.role == Role::server ? " the node to be Ready" : " it to run"),
                                ""});
    }
    return plan;
}

Result<void> StartK3s::apply(Target& target, const Plan&) {
    std::string unit = unit_name(m_settings.role);
    auto journal_tail = host::units::journal_tail(unit, 12, "cat") + " | tail -n 12";
    Command start;
    start.script =
        host::units::start({unit}).script() + " 2>&1 || { echo '--- last log lines:'; " + journal_tail + "; exit 1; }";
    start.timeout = std::chrono::seconds(m_settings.ready_timeout + 30);
    if (auto r = target.run_checked(start, "starting " + unit); !r) {
        return make_error(ErrorCode::command, unit + " did not start: " + r.error().message);
    }
    log::info(target.name(), "{} started; waiting up to {} s for {}", unit, m_settings.ready_timeout,
              m_settings.role == Role::server ? "the node to be Ready" : "it to settle");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(m_settings.ready_timeout);
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
        Command poll;
        poll.mutates = false;
        poll.script = state_script();
        auto r = TRY(target.run_checked(poll, "waiting for " + unit));
        auto lines = util::split_lines(r.out);
        last = lines.empty() ? "" : util::trim(lines[0]);
        bool ready = m_settings.role == Role::agent || (lines.size() > 1 && util::trim(lines[1]) == "True");
        if (last == "active" && ready) {
            return Ok{};
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    Command tail;
    tail.mutates = false;
    tail.script = journal_tail + "; true";
    auto t = target.run(tail);
    return make_error(ErrorCode::timeout,
                      unit + " is " + (last.empty() ? "unknown" : last) + " and the node was not Ready within " +
                          std::to_string(m_settings.ready_timeout) + " s (k3s.ready_timeout). Last log lines:\n" +
                          (t ? t->out : std::string("(unavailable)")));
}

Result<StepList> node_steps(Settings s, const ModuleContext& ctx) {
    if (!ctx.bundle_k3s_dir.empty()) {
        if (!s.version.empty() && !ctx.bundle_k3s_version.empty() && s.version != ctx.bundle_k3s_version) {
            return make_error(ErrorCode::config,
                              "the bundle holds k3s " + ctx.bundle_k3s_version + ", but " + s.version + " is wanted");
        }
        s.release_dir = ctx.bundle_k3s_dir;
        if (s.version.empty()) {
            s.version = ctx.bundle_k3s_version;
        }
    }
    StepList out;
    out.push_back(std::make_unique<InstallK3sRelease>(s));
    out.push_back(std::make_unique<ApplyConfigSet>(default_route_group()));
    out.push_back(std::make_unique<ApplyConfigSet>(TRY(files_group(s))));
    out.push_back(std::make_unique<StartK3s>(s));
    return out;
}

Result<StepList> steps(const ModuleContext& ctx) {
    if (!ctx.profile.table().contains("k3s")) {
        return StepList{};
    }
    ConfigView cfg = ctx.profile.section("k3s");
    auto s = TRY(settings_from(cfg));
    if (s.use_system_containerd && !ctx.profile.table().contains("runtime")) {
        return make_error(ErrorCode::config,
                          cfg.where("use_system_containerd") +
                              ": k3s.use_system_containerd needs a [runtime] section (the system containerd)");
    }
    if (ctx.profile.table().contains("harden")) {
        auto role = ctx.profile.section("harden").str("role");
        if (role == "standalone") {
            return make_error(ErrorCode::config,
                              ctx.profile.section("harden").where("role") +
                                  ": harden.role is \"standalone\", whose firewall and kernel settings stop k3s; "
                                  "set it to \"k3s-server\" or \"k3s-agent\"");
        }
    }
    return node_steps(s, ctx);
}

}  // namespace nodectl::k3s

// Published ports: this machine listens on ADDRESS:HOST_PORT and forwards each connection to node
// 1's NODE_PORT through systemd-socket-proxyd (a TCP proxy from Debian's systemd package) started
// by systemd-socket-activate, which binds the port first. A user-space proxy and not a DNAT rule:
// it works for connections from this machine itself (127.0.0.1), needs no route_localnet or
// masquerading, and leaves the host's firewall alone. The proxy is found again by its command line
// (its last word is the node's ADDRESS:PORT, unique to this environment's subnet).
#include "util/log.hpp"
#include "modules/local/detail.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include <signal.h>

using namespace std::chrono_literals;

namespace nodectl::local::detail {

namespace {

constexpr const char* k_activate = "systemd-socket-activate";
constexpr const char* k_proxyd = "/lib/systemd/systemd-socket-proxyd";

std::string forwarded_to(const Environment& env, const Publish& p) {
    return env.nodes.front().address + ":" + std::to_string(p.node_port);
}

// The proxy of `p`: systemd-socket-activate before it execs the proxy, the proxy after.
std::vector<std::string> proxy_pids(const Environment& env, const Publish& p) {
    std::string to = forwarded_to(env, p);
    std::vector<std::string> out;
    for (const auto& pid : all_pids()) {
        auto argv = cmdline(pid);
        if (argv.size() >= 2 && argv.back() == to &&
            (argv[0].ends_with(k_activate) || argv[0].ends_with("systemd-socket-proxyd"))) {
            out.push_back(pid);
        }
    }
    return out;
}

// Whether anything listens on TCP ADDRESS:PORT here (or on the wildcard address).
Result<bool> listening(const Publish& p) {
    auto r = TRY(run("ss -Hltn " + shell_quote("sport = :" + std::to_string(p.host_port))));
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "ss failed: " + util::trim(r.err));
    }
    return !util::trim(r.out).empty();
}

}  // namespace

Result<void> start_publishes(const Environment& env) {
    if (env.publish.empty()) {
        return Ok{};
    }
    TRY_VOID(need_tool(k_activate, "systemd"));
    TRY_VOID(need_tool("ss", "iproute2"));
    for (const auto& p : env.publish) {
        if (!proxy_pids(env, p).empty()) {
            continue;  // a re-run: already forwarding
        }
        if (TRY(listening(p))) {
            return make_error(ErrorCode::usage, "--publish " + p.text() + ": port " + std::to_string(p.host_port) +
                                                    " is already in use on this machine");
        }
        std::string log = env.dir + "/publish.log";
        TRY(sh("setsid -f " + std::string(k_activate) +
                   " --listen=" + shell_quote(p.address + ":" + std::to_string(p.host_port)) + " " + k_proxyd + " " +
                   shell_quote(forwarded_to(env, p)) + " </dev/null >>" + shell_quote(log) + " 2>&1",
               "starting the proxy for --publish " + p.text()));
        // Bounded: the proxy binds at once or not at all.
        bool up = false;
        for (int i = 0; i < 50 && !up; ++i) {
            std::this_thread::sleep_for(100ms);
            up = !proxy_pids(env, p).empty() && TRY(listening(p));
        }
        if (!up) {
            return make_error(ErrorCode::command,
                              "--publish " + p.text() + ": the proxy did not start listening (see " + log + ")");
        }
        log::info(k_who, "{}:{} forwards to {} ({})", p.address, p.host_port, forwarded_to(env, p),
                  env.nodes.front().name);
    }
    return Ok{};
}

void stop_publishes(const Environment& env) {
    if (env.nodes.empty()) {
        return;
    }
    for (const auto& p : env.publish) {
        for (int i = 0; i < 60; ++i) {  // SIGTERM for 5 s, then SIGKILL
            auto pids = proxy_pids(env, p);
            if (pids.empty()) {
                break;
            }
            signal_all(pids, i < 50 ? SIGTERM : SIGKILL);
            std::this_thread::sleep_for(100ms);
        }
    }
}

}  // namespace nodectl::local::detail

// `nodectl stack render`: a profile's [[stack.sites]] as Kubernetes manifests, with no node at all.
// `nodectl stack status`: the sites' pods, autoscalers and ingress hosts as k3s reports them.
#include "cli/cli.hpp"
#include "modules/stack/stack.hpp"
#include "modules/stack/status.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

namespace nodectl::cli {

namespace {

struct StackOptions {
    std::string site;
    std::string out;
    bool placeholders = false;
};

StackOptions g_stack;

}  // namespace

void configure_stack(CLI::App& app, Context& ctx) {
    app.require_subcommand(1);
    auto* render = app.add_subcommand(
        "render", "Render each site's manifest (nodectl-SITE.yaml), and with [stack.monitoring] enabled "
                  "nodectl-monitoring.yaml, to stdout or --out DIR");
    render->add_option("--profile,-p", ctx.host.profile, "Profile with [[stack.sites]]")->required();
    render->add_option("--site", g_stack.site,
                       "Only this site (its name; \"monitoring\": only the monitoring namespace)");
    render->add_option(
        "--out", g_stack.out,
        "Write DIR/nodectl-SITE.yaml (mode 0600, atomically) with the real secret values instead of printing");
    render->add_flag("--placeholders", g_stack.placeholders,
                     "With --out: write placeholder secret values instead of reading the secret references");
    auto* status =
        app.add_subcommand("status", "Pods ready/total and restarts, autoscalers and ingress hosts of each site, read "
                                     "on the k3s server node through SSH");
    status->add_option("host", ctx.args, "The k3s server: user@host[:port], or a host name of --inventory")
        ->expected(0, 1);
    status->add_option("--profile,-p", ctx.host.profile,
                       "Profile whose [[stack.sites]] must all be there (default: every site nodectl made)");
    status->add_option("--inventory,-i", ctx.host.inventory,
                       "Inventory: HOST is looked up by name; without HOST, its host with role \"server\"");
    add_connection_options(*status, ctx);
}

namespace {

Result<HostSpec> status_server(const Context& ctx) {
    if (!ctx.args.empty()) {
        return find_host(ctx, ctx.args.front());
    }
    if (ctx.host.inventory.empty()) {
        return make_error(ErrorCode::usage, "name the k3s server: HOST, or --inventory with a host of role \"server\"");
    }
    std::vector<HostSpec> servers;
    for (auto& h : TRY(load_inventory(ctx.host.inventory))) {
        if (std::find(h.roles.begin(), h.roles.end(), "server") != h.roles.end()) {
            servers.push_back(std::move(h));
        }
    }
    if (servers.size() != 1) {
        return make_error(ErrorCode::usage, ctx.host.inventory + " has " + std::to_string(servers.size()) +
                                                " hosts with role \"server\": name the one to ask (HOST)");
    }
    TRY_VOID(apply_connection_defaults(servers.front(), ctx.host));
    return servers.front();
}

int run_stack_status(Context& ctx) {
    std::vector<std::string> names;
    if (!ctx.host.profile.empty()) {
        auto profile = load_profile(ctx.host.profile);
        auto sites = profile ? stack::sites_from(*profile) : Result<std::vector<stack::Site>>(profile.error());
        if (!sites) {
            std::cerr << sites.error().message << "\n";
            return k_exit_config;
        }
        for (const auto& s : *sites) {
            names.push_back(s.name);
        }
    }
    auto host = status_server(ctx);
    if (!host) {
        std::cerr << "nodectl stack status: " << host.error().message << "\n";
        return host.error().code == ErrorCode::usage ? k_exit_usage : k_exit_config;
    }
    auto target = SshTarget::connect(*host, ssh_options(ctx));
    auto text = target ? stack::read_cluster_status(**target) : Result<std::string>(target.error());
    auto sites = text ? stack::parse_status(*text, names) : Result<std::vector<stack::SiteStatus>>(text.error());
    if (!sites) {
        std::cerr << "nodectl stack status: " << host->name << ": " << sites.error().message << "\n";
        return k_exit_all_failed;
    }
    std::cout << (ctx.global.json ? stack::status_json(*sites) : stack::format_status(*sites));
    if (sites->empty()) {
        std::cerr << "nodectl stack status: no site of nodectl's on " << host->name << "\n";
        return k_exit_not_ready;
    }
    bool all_ready = std::all_of(sites->begin(), sites->end(), [](const auto& s) { return s.ready(); });
    return all_ready ? k_exit_ok : k_exit_not_ready;
}

}  // namespace

int run_stack(CLI::App& app, Context& ctx) {
    if (app.got_subcommand("status")) {
        return run_stack_status(ctx);
    }
    auto profile = load_profile(ctx.host.profile);
    if (!profile) {
        std::cerr << profile.error().message << "\n";
        return k_exit_config;
    }
    auto sites = stack::sites_from(*profile);
    auto monitoring = sites ? stack::monitoring_from(*profile) : Result<stack::Monitoring>(sites.error());
    if (!monitoring) {
        std::cerr << monitoring.error().message << "\n";
        return k_exit_config;
    }
    if (sites->empty()) {
        std::cerr << "nodectl stack render: " << ctx.host.profile << " has no [[stack.sites]]\n";
        return k_exit_config;
    }
    bool found = g_stack.site.empty() || (monitoring->enabled && g_stack.site == stack::k_monitoring);
    for (const auto& s : *sites) {
        found = found || s.name == g_stack.site;
    }
    if (!found) {
        std::cerr << "nodectl stack render: no site '" << g_stack.site << "' in " << ctx.host.profile << "\n";
        return k_exit_usage;
    }
    // Secret values never reach stdout: printing always uses placeholders.
    auto values =
        g_stack.out.empty() || g_stack.placeholders ? stack::SecretValues::placeholders : stack::SecretValues::resolve;
    if (!g_stack.out.empty() && ::mkdir(g_stack.out.c_str(), 0700) != 0 && errno != EEXIST) {
        std::cerr << "nodectl stack render: cannot create " << g_stack.out << ": " << std::strerror(errno) << "\n";
        return k_exit_internal;
    }
    // One file per site, then the monitoring namespace's (nodectl-monitoring.yaml) when enabled.
    auto output = [&](const std::string& name, const Result<std::string>& yaml) {
        if (!yaml) {
            std::cerr << yaml.error().message << "\nnothing was written for "
                      << (name == stack::k_monitoring ? std::string("[stack.monitoring]") : "site " + name) << "\n";
            return k_exit_config;
        }
        if (g_stack.out.empty()) {
            std::cout << *yaml;
            return k_exit_ok;
        }
        std::string path = g_stack.out + "/nodectl-" + name + ".yaml";
        if (auto why = util::write_file_atomic(path, *yaml, 0600); !why) {
            std::cerr << "nodectl stack render: " << path << ": " << why.error() << "\n";
            return k_exit_internal;
        }
        std::cerr << "wrote " << path << (values == stack::SecretValues::placeholders ? " (placeholder secrets)" : "")
                  << "\n";
        return k_exit_ok;
    };
    for (const auto& s : *sites) {
        if (!g_stack.site.empty() && s.name != g_stack.site) {
            continue;
        }
        if (auto unpinned = stack::unpinned_images(s); !unpinned.empty()) {
            std::cerr << "site " << s.name << ": images not pinned by digest: " << util::join(unpinned, ", ")
                      << " (images.digests_from names the `nodectl image build --out` directory)\n";
        }
        if (int rc = output(s.name, stack::render_site(s, values)); rc != k_exit_ok) {
            return rc;
        }
    }
    if (monitoring->enabled && (g_stack.site.empty() || g_stack.site == stack::k_monitoring)) {
        return output(stack::k_monitoring, stack::render_monitoring(*monitoring, *sites, values));
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

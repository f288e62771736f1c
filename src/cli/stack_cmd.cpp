// `nodectl stack render`: a profile's [[stack.sites]] as Kubernetes manifests, with no node at all.
#include "cli/cli.hpp"
#include "modules/stack/stack.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>

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

} // namespace

void configure_stack(CLI::App& app, Context& ctx) {
    app.require_subcommand(1);
    auto* render = app.add_subcommand("render", "Render each site's manifest (nodectl-SITE.yaml) to stdout or --out DIR");
    render->add_option("--profile,-p", ctx.host.profile, "Profile with [[stack.sites]]")->required();
    render->add_option("--site", g_stack.site, "Only this site (its name)");
    render->add_option("--out", g_stack.out,
                       "Write DIR/nodectl-SITE.yaml (mode 0600, atomically) with the real secret values instead of printing");
    render->add_flag("--placeholders", g_stack.placeholders,
                     "With --out: write placeholder secret values instead of reading the secret references");
}

int run_stack(CLI::App&, Context& ctx) {
    auto profile = load_profile(ctx.host.profile);
    if (!profile) {
        std::cerr << profile.error().message << "\n";
        return k_exit_config;
    }
    auto sites = stack::sites_from(*profile);
    if (!sites) {
        std::cerr << sites.error().message << "\n";
        return k_exit_config;
    }
    if (sites->empty()) {
        std::cerr << "nodectl stack render: " << ctx.host.profile << " has no [[stack.sites]]\n";
        return k_exit_config;
    }
    bool found = g_stack.site.empty();
    for (const auto& s : *sites) {
        found = found || s.name == g_stack.site;
    }
    if (!found) {
        std::cerr << "nodectl stack render: no site '" << g_stack.site << "' in " << ctx.host.profile << "\n";
        return k_exit_usage;
    }
    // Secret values never reach stdout: printing always uses placeholders.
    auto values = g_stack.out.empty() || g_stack.placeholders ? stack::SecretValues::placeholders : stack::SecretValues::resolve;
    if (!g_stack.out.empty() && ::mkdir(g_stack.out.c_str(), 0700) != 0 && errno != EEXIST) {
        std::cerr << "nodectl stack render: cannot create " << g_stack.out << ": " << std::strerror(errno) << "\n";
        return k_exit_internal;
    }
    for (const auto& s : *sites) {
        if (!g_stack.site.empty() && s.name != g_stack.site) {
            continue;
        }
        if (auto unpinned = stack::unpinned_images(s); !unpinned.empty()) {
            std::cerr << "site " << s.name << ": images not pinned by digest: " << util::join(unpinned, ", ")
                      << " (images.digests_from names the `nodectl image build --out` directory)\n";
        }
        auto yaml = stack::render_site(s, values);
        if (!yaml) {
            std::cerr << yaml.error().message << "\nnothing was written for site " << s.name << "\n";
            return k_exit_config;
        }
        if (g_stack.out.empty()) {
            std::cout << *yaml;
            continue;
        }
        std::string path = g_stack.out + "/nodectl-" + s.name + ".yaml";
        if (auto why = util::write_file_atomic(path, *yaml, 0600); !why.empty()) {
            std::cerr << "nodectl stack render: " << path << ": " << why << "\n";
            return k_exit_internal;
        }
        std::cerr << "wrote " << path << (values == stack::SecretValues::placeholders ? " (placeholder secrets)" : "") << "\n";
    }
    return k_exit_ok;
}

} // namespace nodectl::cli

// `nodectl profile validate FILE` and `nodectl profile keys`.
#include "cli/cli.hpp"
#include "modules/stack/stack.hpp"
#include "util/json.hpp"
#include "nodectl/config.hpp"
#include "nodectl/module.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace nodectl::cli {

void configure_profile(CLI::App& app, Context& ctx) {
    app.require_subcommand(1);
    auto* validate = app.add_subcommand("validate", "Check a profile and the profiles it includes");
    validate->add_option("file", ctx.args, "Profile (TOML)")->required()->expected(1);
    app.add_subcommand("keys", "Print every configuration key: name, type, default and meaning");
}

int run_profile(CLI::App& app, Context& ctx) {
    if (app.got_subcommand("keys")) {
        if (ctx.global.json) {
            nlohmann::json j = nlohmann::json::array();
            for (const auto& k : config_keys()) {
                if (k.file == ConfigFile::recipe) {
                    continue;  // `nodectl image keys`
                }
                j.push_back({{"name", k.name},
                             {"file", k.file == ConfigFile::profile ? "profile" : "inventory"},
                             {"type", type_name(k.type)},
                             {"default", k.default_value},
                             {"doc", k.doc}});
            }
            std::cout << util::json_text(j, 2) << "\n";
            return k_exit_ok;
        }
        for (auto file : {ConfigFile::profile, ConfigFile::inventory}) {
            std::cout << (file == ConfigFile::profile ? "Profile keys" : "\nInventory keys") << "\n";
            for (const auto& k : config_keys()) {
                if (k.file != file) {
                    continue;
                }
                std::string def = k.default_value.empty() ? "" : " = " + std::string(k.default_value);
                std::cout << "  " << k.name << " (" << type_name(k.type) << def << ")\n      " << k.doc << "\n";
            }
        }
        return k_exit_ok;
    }
    const std::string& file = ctx.args.front();
    auto profile = load_profile(file);
    if (!profile) {
        std::cerr << profile.error().message << "\n";
        return k_exit_config;
    }
    // Step building catches what only the modules know (e.g. a package both wanted and unwanted).
    // Its address is an IP address (never contacted), so that keys taking one may say ${host.address}.
    HostSpec placeholder;
    placeholder.name = "validate";
    placeholder.address = "198.18.0.1";
    auto steps = build_steps(*profile, placeholder);
    if (!steps && steps.error().message.find("unknown variable") == std::string::npos) {
        std::cerr << steps.error().message << "\n";
        return k_exit_config;
    }
    // [[stack.sites]] are not steps of apply yet; their cross-key rules are checked here too.
    if (auto sites = stack::sites_from(*profile); !sites) {
        std::cerr << sites.error().message << "\n";
        return k_exit_config;
    }
    if (auto monitoring = stack::monitoring_from(*profile); !monitoring) {
        std::cerr << monitoring.error().message << "\n";
        return k_exit_config;
    }
    std::cout << file << ": ok (" << profile->files().size() << " file"
              << (profile->files().size() == 1 ? "" : "s") << ")\n";
    return k_exit_ok;
}

} // namespace nodectl::cli

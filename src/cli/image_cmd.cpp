// `nodectl image build|check|keys`: OCI images from recipes (src/modules/image/).
#include "cli/cli.hpp"
#include "util/json.hpp"
#include "modules/image/image.hpp"
#include "nodectl/config.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

namespace nodectl::cli {

namespace {

struct ImageOptions {
    image::BuildOptions build;
    std::vector<std::string> args, secrets;
    std::string compression = "gzip";
    std::string recipes = "images";
};

ImageOptions& image_options() {
    static ImageOptions o;
    return o;
}

bool split_pairs(const std::vector<std::string>& in, const char* flag, std::map<std::string, std::string>& out) {
    for (const auto& a : in) {
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << flag << " " << a << ": expected NAME=" << (std::string(flag) == "--arg" ? "VALUE" : "FILE")
                      << "\n";
            return false;
        }
        out[a.substr(0, eq)] = a.substr(eq + 1);
    }
    return true;
}

int run_image_check(Context& ctx) {
    auto& o = image_options();
    auto recipes = image::load_recipes(o.recipes);
    if (!recipes) {
        std::cerr << recipes.error().message << "\n";
        return exit_code_for(recipes.error());
    }
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [name, r] : *recipes) {
        if (!ctx.args.empty() && std::find(ctx.args.begin(), ctx.args.end(), name) == ctx.args.end()) {
            continue;
        }
        nlohmann::json args = nlohmann::json::object(), secrets = nlohmann::json::object();
        for (const auto& [a, spec] : r.args) {
            args[a] = {{"default", spec.default_value}, {"doc", spec.doc}};
        }
        for (const auto& [s, spec] : r.secrets) {
            secrets[s] = {{"required", spec.required}, {"doc", spec.doc}};
        }
        j.push_back({{"name", name},
                     {"file", r.file},
                     {"base", r.base},
                     {"suite", r.suite},
                     {"packages", r.packages},
                     {"users", r.users.size()},
                     {"files", r.files.size()},
                     {"runs", r.runs.size()},
                     {"args", args},
                     {"secrets", secrets}});
        if (!ctx.global.json) {
            std::cout << r.file << ": ok (" << (r.is_base() ? "base, " + r.suite + " " + r.variant : "on " + r.base)
                      << "; " << r.packages.size() << " package(s), " << r.users.size() << " user(s), "
                      << r.files.size() << " file(s), " << r.runs.size() << " run(s))\n";
            for (const auto& [a, spec] : r.args) {
                std::cout << "  --arg " << a << "=... " << spec.doc << "\n";
            }
            for (const auto& [s, spec] : r.secrets) {
                std::cout << "  --secret " << s << "=FILE " << (spec.required ? "(required) " : "") << spec.doc << "\n";
            }
        }
    }
    if (ctx.global.json) {
        std::cout << util::json_text(j, 2) << "\n";
    }
    return k_exit_ok;
}

}  // namespace

void configure_image(CLI::App& app, Context& ctx) {
    auto& o = image_options();
    app.require_subcommand(1);
    auto* build = app.add_subcommand("build", "Build images: OUT/NAME/ (OCI layout) and OUT/NAME.oci.tar");
    build->add_option("names", o.build.names, "Recipes to build (images/NAME/recipe.toml)");
    build->add_flag("--all", o.build.all, "Build every recipe in --recipes");
    build->add_option("--recipes", o.recipes, "Directory of recipes")->capture_default_str();
    build->add_option("--out", o.build.out, "Output directory")->capture_default_str();
    build->add_option("--arg", o.args, "Build argument NAME=VALUE (repeatable)");
    build->add_option("--secret", o.secrets, "Build secret NAME=FILE (repeatable); mounted only for the runs that ask");
    build->add_option("--compression", o.compression, "Layer compression")
        ->check(CLI::IsMember({"gzip", "zstd"}))
        ->capture_default_str();
    build
        ->add_option("--import", o.build.import,
                     "After building: containerd[=SOCKET] (ctr images import) or k3s (its airgap images dir)")
        ->check([](const std::string& v) {
            return v == "k3s" || v == "containerd" || v.starts_with("containerd=")
                       ? std::string()
                       : std::string("must be containerd, containerd=SOCKET or k3s");
        });
    build->add_option("--namespace", o.build.ns, "containerd namespace for --import containerd")->capture_default_str();
    build->add_option("--k3s-images-dir", o.build.k3s_images_dir, "Directory of --import k3s")->capture_default_str();
    build->add_option("--mirror", o.build.mirror, "Debian mirror for mmdebstrap and apt")->capture_default_str();
    build->add_option("--cache", o.build.cache, "Build cache (default: ~/.cache/nodectl/image)");
    build->add_option("--apt-cache", o.build.apt_cache, "apt lists and .debs (default: ~/.cache/nodectl/image/apt)");
    build->add_flag("--no-cache", o.build.no_cache, "Rebuild every layer (the result replaces the cached one)");
    auto* check = app.add_subcommand("check", "Parse and check recipes (nothing is built); errors as file:line:col");
    check->add_option("names", ctx.args, "Recipes to check (default: all)");
    check->add_option("--recipes", o.recipes, "Directory of recipes")->capture_default_str();
    app.add_subcommand("keys", "Print every recipe key: name, type, default and meaning");
}

int run_image(CLI::App& app, Context& ctx) {
    auto& o = image_options();
    if (app.got_subcommand("keys")) {
        for (const auto& k : config_keys()) {
            if (k.file != ConfigFile::recipe) {
                continue;
            }
            std::string def = k.default_value.empty() ? "" : " = " + std::string(k.default_value);
            std::cout << "  " << k.name << " (" << type_name(k.type) << def << ")\n      " << k.doc << "\n";
        }
        return k_exit_ok;
    }
    if (app.got_subcommand("check")) {
        return run_image_check(ctx);
    }
    o.build.recipes = o.recipes;
    o.build.compression = o.compression == "zstd" ? image::Compression::zstd : image::Compression::gzip;
    if (!split_pairs(o.args, "--arg", o.build.args) || !split_pairs(o.secrets, "--secret", o.build.secrets)) {
        return k_exit_usage;
    }
    if (o.build.all == !o.build.names.empty()) {
        std::cerr << "image build: name the recipes to build, or --all (not both)\n";
        return k_exit_usage;
    }
    // Directories given relative to where nodectl runs: apt, run from elsewhere, would read them
    // relative to its own directories.
    for (std::string* dir : {&o.build.cache, &o.build.apt_cache, &o.build.out, &o.build.recipes}) {
        if (!dir->empty()) {
            *dir = std::filesystem::absolute(*dir).lexically_normal().string();
        }
    }
    auto built = image::build(o.build);
    if (!built) {
        std::cerr << built.error().message << "\n";
        return exit_code_for(built.error());
    }
    if (ctx.global.json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& b : *built) {
            j.push_back({{"name", b.name},
                         {"reference", b.reference},
                         {"layout", b.layout},
                         {"archive", b.archive},
                         {"manifest_digest", b.manifest_digest},
                         {"layers", b.layer_digests},
                         {"compressed_size", b.compressed_size},
                         {"cached", b.cached},
                         {"seconds", b.seconds}});
        }
        std::cout << util::json_text(j, 2) << "\n";
        return k_exit_ok;
    }
    for (const auto& b : *built) {
        char size[32];
        std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(b.compressed_size) / 1e6);
        std::cout << b.name << "  " << b.reference << "  " << b.manifest_digest << "  " << size << "  " << b.archive
                  << (b.cached ? "  (cached)" : "") << "\n";
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

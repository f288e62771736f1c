// `nodectl bundle create|verify|extract`: the offline bundle (src/modules/bundle/) on the
// command line. Exit 8 means the file is not an intact bundle; the message names the entry.
#include "cli/cli.hpp"
#include "util/json.hpp"
#include "modules/bundle/bundle.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <map>

namespace nodectl::cli {

namespace {

// The command's own options; CLI11 binds them once, at configure time, and they outlive the parse.
struct BundleOptions {
    bundle::CreateOptions create;
    std::vector<std::string> packages;
    bool no_packages = false;
    std::string file;
    std::string dest;
};

BundleOptions& bundle_options() {
    static BundleOptions o;
    return o;
}

std::string human_size(uint64_t n) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

nlohmann::json manifest_json(const bundle::Manifest& m) {
    nlohmann::json pieces = nlohmann::json::array();
    uint64_t total = 0;
    for (const auto& p : m.pieces) {
        pieces.push_back(
            {{"path", p.path}, {"size", p.size}, {"sha256", p.sha256}, {"kind", bundle::kind_name(p.kind)}});
        total += p.size;
    }
    return {{"format", m.format},
            {"nodectl_version", m.nodectl_version},
            {"created", m.created},
            {"digest", m.digest},
            {"k3s", m.has_k3s() ? nlohmann::json{{"version", m.k3s_version}, {"arch", m.k3s_arch}} : nlohmann::json()},
            {"debs", m.deb_arch.empty()
                         ? nlohmann::json()
                         : nlohmann::json{{"arch", m.deb_arch}, {"release", m.deb_release}, {"packages", m.packages}}},
            {"profile", m.profile},
            {"total_size", total},
            {"pieces", pieces}};
}

void print_summary(const std::string& what, const bundle::Manifest& m) {
    std::map<std::string, std::pair<int, uint64_t>> by_kind;
    uint64_t total = 0;
    for (const auto& p : m.pieces) {
        auto& k = by_kind[std::string(bundle::kind_name(p.kind))];
        ++k.first;
        k.second += p.size;
        total += p.size;
    }
    std::cout << what << " (format " << m.format << ", nodectl " << m.nodectl_version << ", " << m.created << ")\n";
    std::cout << "  pieces: " << m.pieces.size() << ", " << human_size(total) << "\n";
    std::cout << "  manifest sha256: " << m.digest << " (firstboot.bundle_sha256 pins it)\n";
    if (m.has_k3s()) {
        std::cout << "  k3s: " << (m.k3s_version.empty() ? "(version unknown)" : m.k3s_version) << " " << m.k3s_arch
                  << "\n";
    }
    if (!m.deb_arch.empty()) {
        std::cout << "  debs: " << by_kind["deb"].first << " packages for " << m.deb_release << " " << m.deb_arch
                  << " (closure of";
        for (const auto& p : m.packages) {
            std::cout << " " << p;
        }
        std::cout << ")\n";
    }
    if (!m.profile.empty()) {
        std::cout << "  profile: " << m.profile << "\n";
    }
    for (const auto& [kind, count] : by_kind) {
        std::cout << "  " << kind << ": " << count.first << " file" << (count.first == 1 ? "" : "s") << ", "
                  << human_size(count.second) << "\n";
    }
}

int report_error(const Error& e, int code) {
    std::cerr << "nodectl bundle: " << e.message << "\n";
    return code;
}

// Reading the bundle failed: was it what is in it (exit 8) or the file system (exit 1)?
int read_failure(const Error& e) {
    return report_error(e, exit_code_for(e));
}

}  // namespace

void configure_bundle(CLI::App& app, Context&) {
    auto& o = bundle_options();
    app.require_subcommand(1);
    auto* create = app.add_subcommand("create", "Write an offline bundle: k3s, the .deb closure, images, the profile");
    create->add_option("-p,--profile", o.create.profile, "Profile (TOML); stored with its includes")->required();
    create->add_option("--out,-o", o.create.out, "The bundle file to write (atomically)")->required();
    create->add_option("--k3s-dir", o.create.k3s_dir,
                       "A k3s release dir: sha256sum-<arch>.txt, k3s|k3s-arm64|k3s-armhf, optional airgap images, "
                       "optional `version` file");
    create->add_option("--image", o.create.images, "An OCI image archive to include (repeatable)");
    auto* pk = create
                   ->add_option("--packages", o.packages,
                                "Packages whose dependency closure is included, comma-separated (default: "
                                "containerd, runc, containernetworking-plugins and what the profile needs)")
                   ->delimiter(',');
    create->add_flag("--no-packages", o.no_packages, "Include no .debs")->excludes(pk);
    auto* verify = app.add_subcommand("verify", "Check every entry of a bundle against its manifest");
    verify->add_option("file", o.file, "The bundle")->required();
    auto* extract = app.add_subcommand("extract", "Verify and extract a bundle; DIR appears only when all matched");
    extract->add_option("file", o.file, "The bundle")->required();
    extract->add_option("dir", o.dest, "Destination directory")->required();
}

int run_bundle(CLI::App& app, Context& ctx) {
    auto& o = bundle_options();
    if (app.got_subcommand("create")) {
        if (o.no_packages) {
            o.create.packages = std::vector<std::string>{};
        } else if (!o.packages.empty()) {
            o.create.packages = o.packages;
        }
        auto m = bundle::create(o.create);
        if (!m) {
            return report_error(m.error(), m.error().code == ErrorCode::config ? k_exit_config : k_exit_internal);
        }
        if (ctx.global.json) {
            std::cout << util::json_text(manifest_json(*m), 2) << "\n";
        } else {
            print_summary("wrote " + o.create.out, *m);
        }
        return k_exit_ok;
    }
    bool is_extract = app.got_subcommand("extract");
    auto m = is_extract ? bundle::extract(o.file, o.dest) : bundle::verify(o.file);
    if (!m) {
        return read_failure(m.error());
    }
    if (ctx.global.json) {
        std::cout << util::json_text(manifest_json(*m), 2) << "\n";
    } else {
        print_summary(o.file + (is_extract ? ": intact, extracted to " + o.dest : ": intact"), *m);
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

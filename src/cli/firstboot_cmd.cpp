// `nodectl firstboot [install|sign]`, `nodectl status`, `nodectl cloud-init render` and
// `nodectl usb prepare`: first boot (src/modules/firstboot/) on the command line.
#include "actions/firstboot.hpp"
#include "cli/cli.hpp"
#include "util/log.hpp"
#include "util/json.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "util/file.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

namespace nodectl::cli {

namespace {

struct FirstbootCliOptions {
    firstboot::RunOptions run;
    firstboot::InstallOptions install;
    std::string sign_key;
    std::string sign_file;
    std::string sign_out;
    std::string sign_bundle;
    bool wait = false;
    int timeout = 3600;
    firstboot::RenderOptions render;
    firstboot::UsbOptions usb;
};

FirstbootCliOptions& firstboot_options() {
    static FirstbootCliOptions o;
    return o;
}

// `nodectl status` exit codes (README "Exit codes").
constexpr int k_status_done = 0;
constexpr int k_status_running = 10;
constexpr int k_status_failed = 11;
constexpr int k_status_not_started = 12;

int status_code(firstboot::State s) {
    switch (s) {
    case firstboot::State::done: return k_status_done;
    case firstboot::State::running:
    case firstboot::State::interrupted: return k_status_running;
    case firstboot::State::failed: return k_status_failed;
    case firstboot::State::not_started: return k_status_not_started;
    }
    return k_exit_internal;
}

// --dry-run: what was found and checked, then the plan.
int print_firstboot_plan(const firstboot::RunOptions& options) {
    auto plan = actions::firstboot_plan(options);
    if (!plan) {
        std::cerr << "nodectl firstboot: " << plan.error().message << "\n";
        return k_exit_config;
    }
    if (!plan->done_line.empty()) {
        std::cout << "firstboot: this machine was provisioned already (" << plan->done_line
                  << "); a real run would do nothing. The plan below is what --force would do.\n";
    }
    std::cout << "configuration: " << plan->config << " (from " << plan->source << ")\n";
    std::cout << "signature: " << plan->signature << "\n";
    if (!plan->bundle.empty()) {
        std::cout << "bundle: " << plan->bundle << " (verified)\n";
    }
    for (const auto& st : plan->plan.steps) {
        std::cout << "  " << status_name(st.status) << "  " << st.title << "\n";
        for (const auto& c : st.plan.changes) {
            std::cout << "      " << c.summary << "\n";
        }
        if (!st.error.empty()) {
            std::cout << "      " << st.error << "\n";
        }
    }
    std::cout << "dry run: nothing was changed\n";
    return plan->plan.ok ? k_exit_ok : k_exit_all_failed;
}

// The report goes to stdout and the logs to stderr (both reach the journal and the console from
// the unit). Exit codes: 0 provisioned (or already), 3 refused (nothing changed), 5 failed.
int print_firstboot(const firstboot::RunOptions& options) {
    if (options.dry_run) {
        return print_firstboot_plan(options);
    }
    auto out = actions::firstboot(options);
    if (!out) {
        std::cerr << "nodectl firstboot: " << out.error().message << "\n";
        return out.error().code == ErrorCode::usage ? k_exit_config : k_exit_all_failed;
    }
    switch (out->end) {
    case actions::FirstbootEnd::already_provisioned:
        std::cout << "firstboot: this machine was provisioned already (" << out->done_line << ", "
                  << firstboot::k_done_file
                  << "); nothing to do. Any config or stick found now is ignored; --force runs again.\n";
        return k_exit_ok;
    case actions::FirstbootEnd::refused:
        std::cerr << "nodectl firstboot: " << out->why << "\nnothing was changed\n";
        std::cout << out->report;
        return k_exit_config;
    case actions::FirstbootEnd::failed:
        std::cout << out->report;
        std::cerr << "nodectl firstboot: failed: " << out->why << "\n";
        return k_exit_all_failed;
    case actions::FirstbootEnd::provisioned:
        std::cout << out->report;
        log::info("firstboot", "done: {} steps in {:.1f} s", out->steps, out->seconds);
        return k_exit_ok;
    }
    return k_exit_internal;
}

}  // namespace

void configure_firstboot(CLI::App& app, Context&) {
    auto& o = firstboot_options();
    app.require_subcommand(0, 1);
    app.add_option("--config,-c", o.run.config, "Profile to use (skips discovery)");
    app.add_option("--bundle", o.run.bundle, "Offline bundle (default: the stick's bundle/*.bundle, if any)");
    app.add_flag("--force", o.run.force, "Run again on a machine that finished first boot");
    app.add_flag("--dry-run,-n", o.run.dry_run,
                 "Find and check the config, then show the plan; change nothing, write no status");
    app.add_option("--lock-wait", o.run.lock_wait_seconds, "Seconds to wait for another firstboot to finish")
        ->capture_default_str();
    app.add_option("--run-timeout", o.run.run_timeout, "Seconds the whole provisioning may take")
        ->capture_default_str();
    // For tests and for machines whose boot loader cannot be changed: read this file instead.
    app.add_option("--cmdline-file", o.run.cmdline_file, "Kernel command line to read")->capture_default_str();

    auto* install = app.add_subcommand("install", "Put the unit and this binary into this system or an image's rootfs");
    install->add_option("--root", o.install.root, "Root filesystem of a golden image (default: this system)");
    install->add_option("--trust", o.install.trust_key,
                        "Ed25519 public key (PEM); configs must then carry a valid signature (CONFIG.sig)");
    install->add_option("--binary", o.install.binary, "The nodectl binary to install (default: this one)");
    install->add_flag("--no-enable", o.install.no_enable, "Write the unit but do not enable it");

    auto* sign = app.add_subcommand("sign", "Sign a config for machines that require signed configs");
    sign->add_option("--key", o.sign_key, "Ed25519 private key (PEM, mode 0600)")->required();
    sign->add_option("file", o.sign_file, "The config (profile TOML) to sign")->required();
    sign->add_option("--out", o.sign_out, "Where the signature goes (default: FILE.sig)");
    sign->add_option("--bundle", o.sign_bundle,
                     "The bundle the machine may use: its manifest sha256 is written into FILE as "
                     "firstboot.bundle_sha256 before signing (without it, a machine with a trust key uses no bundle)");
}

int run_firstboot(CLI::App& app, Context&) {
    auto& o = firstboot_options();
    if (app.got_subcommand("install")) {
        auto did = firstboot::install(o.install);
        if (!did) {
            std::cerr << "nodectl firstboot install: " << did.error().message << "\n";
            return did.error().code == ErrorCode::usage ? k_exit_usage : k_exit_config;
        }
        for (const auto& line : *did) {
            std::cout << line << "\n";
        }
        return k_exit_ok;
    }
    if (app.got_subcommand("sign")) {
        auto key = util::read_file(o.sign_key);
        if (!key) {
            std::cerr << "nodectl firstboot sign: " << o.sign_key << ": " << std::strerror(errno) << "\n";
            return k_exit_config;
        }
        // What the signature binds besides the file's bytes is written into the file first.
        auto data = firstboot::pin_for_signing(o.sign_file, o.sign_bundle);
        if (!data) {
            std::cerr << "nodectl firstboot sign: " << data.error().message << "\n";
            return k_exit_config;
        }
        auto sig = firstboot::sign(*key, *data);
        if (!sig) {
            std::cerr << "nodectl firstboot sign: " << o.sign_key << ": " << sig.error().message << "\n";
            return k_exit_config;
        }
        std::string out = o.sign_out.empty() ? o.sign_file + ".sig" : o.sign_out;
        if (auto why = util::write_file_atomic(out, *sig, 0644); !why) {
            std::cerr << "nodectl firstboot sign: " << out << ": " << why.error() << "\n";
            return k_exit_internal;
        }
        std::cout << "wrote " << out << " (Ed25519 signature of " << o.sign_file << ")\n";
        return k_exit_ok;
    }
    return print_firstboot(o.run);
}

void configure_status(CLI::App& app, Context&) {
    auto& o = firstboot_options();
    app.add_flag("--wait", o.wait, "Wait until first boot is done or failed");
    app.add_option("--timeout", o.timeout, "Seconds --wait waits at most")->capture_default_str();
}

int run_status(CLI::App&, Context& ctx) {
    auto& o = firstboot_options();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout);
    firstboot::Observed seen = firstboot::observe();
    while (o.wait && seen.state != firstboot::State::done && seen.state != firstboot::State::failed &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        seen = firstboot::observe();
    }
    if (ctx.global.json) {
        nlohmann::json j = {{"state", firstboot::state_name(seen.state)}, {"exit_code", status_code(seen.state)}};
        if (seen.status) {
            if (auto status = util::parse_json(seen.status->to_json())) {
                j["status"] = std::move(*status);
            }
        }
        std::cout << util::json_text(j, 2) << "\n";
        return status_code(seen.state);
    }
    std::cout << "firstboot: " << firstboot::state_name(seen.state);
    if (seen.state == firstboot::State::interrupted) {
        std::cout << " (the run died; it resumes at the next start of " << firstboot::k_unit_name << ")";
    }
    std::cout << "\n";
    if (seen.status) {
        std::cout << seen.status->report_text([] {
            char n[256] = "local";
            gethostname(n, sizeof n - 1);
            return std::string(n);
        }());
    } else if (!seen.done_line.empty()) {
        std::cout << seen.done_line << "\n";
    }
    return status_code(seen.state);
}

void configure_cloud_init(CLI::App& app, Context&) {
    auto& o = firstboot_options();
    app.require_subcommand(1);
    auto* render =
        app.add_subcommand("render", "Print #cloud-config user-data that provisions a machine with a profile");
    render->add_option("-p,--profile", o.render.profile, "Profile (TOML); its includes are merged into one file")
        ->required();
    auto* url =
        render->add_option("--binary-url", o.render.binary_url, "Where the node downloads nodectl (http/https)");
    auto* sha =
        render->add_option("--binary-sha256", o.render.binary_sha256, "sha256 of that binary (checked on the node)");
    auto* pre = render->add_flag("--binary-preinstalled", o.render.binary_preinstalled,
                                 "The image has /usr/local/bin/nodectl already");
    url->needs(sha);
    sha->needs(url);
    pre->excludes(url)->excludes(sha);
    render->add_flag("--inline-secrets", o.render.inline_secrets,
                     "Put secret files the profile references into the user-data (anyone who can read the "
                     "instance's user-data can read them)");
    render->add_option("--signature", o.render.signature,
                       "Signature of the profile to ship (default: PROFILE.sig if present)");
}

int run_cloud_init(CLI::App&, Context&) {
    auto& o = firstboot_options();
    if (o.render.binary_url.empty() && !o.render.binary_preinstalled) {
        std::cerr << "nodectl cloud-init render: give --binary-url URL --binary-sha256 HEX, or --binary-preinstalled\n";
        return k_exit_usage;
    }
    auto text = firstboot::render_cloud_init(o.render);
    if (!text) {
        std::cerr << "nodectl cloud-init render: " << text.error().message << "\n";
        return text.error().code == ErrorCode::usage ? k_exit_usage : k_exit_config;
    }
    std::cout << *text;
    return k_exit_ok;
}

void configure_usb(CLI::App& app, Context&) {
    auto& o = firstboot_options();
    app.require_subcommand(1);
    auto* prep = app.add_subcommand("prepare", "Write a NODECTL stick (or image): binary, profile, bundle, README");
    auto* img = prep->add_option("--image", o.usb.image, "Write a stick image file");
    prep->add_option("--size", o.usb.size, "Size of the image (K, M, G suffixes)")->capture_default_str();
    auto* dev = prep->add_option("--device", o.usb.device, "Write this block device (ERASES it)");
    img->excludes(dev);
    prep->add_option("-p,--profile", o.usb.profile, "Profile (TOML); its includes are merged into nodectl.toml")
        ->required();
    prep->add_option("--bundle", o.usb.bundle, "Offline bundle to put in bundle/");
    prep->add_option("--binary", o.usb.binary,
                     "nodectl binary to put on the stick (default: this one; use the static build)");
    prep->add_option("--signature", o.usb.signature, "Signature of the profile (default: PROFILE.sig if present)");
    prep->add_flag("--yes,-y", o.usb.yes, "Do not ask before erasing --device");
    prep->add_flag("--inline-secrets", o.usb.inline_secrets,
                   "Put secret files the profile references onto the stick (anyone holding it can read them)");
}

int run_usb(CLI::App&, Context&) {
    auto& o = firstboot_options();
    if (o.usb.image.empty() == o.usb.device.empty()) {
        std::cerr << "nodectl usb prepare: give exactly one of --image FILE or --device /dev/X\n";
        return k_exit_usage;
    }
    o.usb.confirm = [device = o.usb.device](const std::string& question) -> Result<void> {
        if (!isatty(0)) {
            return make_error(ErrorCode::usage,
                              "erasing " + device + " needs confirmation: pass --yes (stdin is not a terminal)");
        }
        std::cerr << question << " Type yes: " << std::flush;
        std::string answer;
        std::getline(std::cin, answer);
        if (answer != "yes") {
            return make_error(ErrorCode::usage, "not confirmed: " + device + " was not touched");
        }
        return Ok{};
    };
    auto did = firstboot::usb_prepare(o.usb);
    if (!did) {
        std::cerr << "nodectl usb prepare: " << did.error().message << "\n";
        return did.error().code == ErrorCode::usage    ? k_exit_usage
               : did.error().code == ErrorCode::config ? k_exit_config
                                                       : k_exit_internal;
    }
    for (const auto& line : *did) {
        std::cout << line << "\n";
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

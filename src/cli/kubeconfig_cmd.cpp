// `nodectl kubeconfig HOST`: fetch a k3s server's admin kubeconfig and make it usable from here.
// The file holds the cluster's admin key: it is never logged, and every file written is 0600.
#include "cli/cli.hpp"
#include "util/log.hpp"
#include "modules/k3s/kubeconfig.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

namespace nodectl::cli {

namespace {

constexpr unsigned k_private = 0600;

}  // namespace

std::string default_kubeconfig() {
    const char* env = std::getenv("KUBECONFIG");
    if (env) {
        for (const auto& entry : util::split(env, ':')) {
            if (!entry.empty()) {
                return entry;
            }
        }
    }
    const char* home = std::getenv("HOME");
    std::string dir = home && *home ? home : "";
    if (dir.empty()) {
        const passwd* pw = getpwuid(geteuid());
        dir = pw ? pw->pw_dir : ".";
    }
    return dir + "/.kube/config";
}

namespace {

// k3s's admin kubeconfig as the node sends it, at most k3s::k_max_kubeconfig_bytes of it.
Result<std::string> fetch(const HostSpec& h, const SshOptions& ssh) {
    log::debug(h.name, "connecting to {}", h.address);
    auto target = TRY(SshTarget::connect(h, ssh));
    constexpr int k_absent = 44;
    const std::string path = shell_quote(k3s::k_admin_kubeconfig_path);
    Command cmd;
    cmd.mutates = false;
    cmd.script = "[ -e " + path + " ] || exit " + std::to_string(k_absent) + "; exec head -c " +
                 std::to_string(k3s::k_max_kubeconfig_bytes + 1) + " -- " + path;
    auto r = TRY(target->run(cmd));
    if (r.exit_code == k_absent) {
        return make_error(ErrorCode::command, "k3s has not written its kubeconfig on " + h.name +
                                                  ": is the k3s server running? (" + k3s::k_admin_kubeconfig_path +
                                                  " does not exist)");
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command,
                          std::string("cannot read ") + k3s::k_admin_kubeconfig_path + ": " + util::trim(r.err));
    }
    if (r.out.size() > k3s::k_max_kubeconfig_bytes) {
        return make_error(ErrorCode::command, std::string(k3s::k_admin_kubeconfig_path) + " is larger than " +
                                                  std::to_string(k3s::k_max_kubeconfig_bytes / 1024) +
                                                  " KiB: not a k3s kubeconfig");
    }
    return std::move(r.out);
}

Result<void> write_private(const std::string& path, const std::string& content) {
    return as_result(util::write_file_atomic(path, content, k_private), ErrorCode::io);
}

Result<std::string> merge_into_file(const std::string& path, const std::string& kubeconfig) {
    std::error_code ec;
    bool exists = std::filesystem::exists(path, ec);
    std::string existing;
    if (exists) {
        auto text = util::read_file(path);
        if (!text) {
            return errno_error("cannot read " + path);
        }
        existing = std::move(*text);
    } else {
        // kubectl's own default folder; private, like the keys that go into it.
        auto dir = std::filesystem::path(path).parent_path();
        if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
            std::filesystem::create_directories(dir, ec);
            if (ec) {
                return make_error(ErrorCode::io, "cannot create " + dir.string() + ": " + ec.message());
            }
            ::chmod(dir.c_str(), 0700);
        }
    }
    auto merged = k3s::merge_kubeconfig(existing, kubeconfig);
    if (!merged) {
        return make_error(ErrorCode::io, path + ": " + merged.error().message);
    }
    if (exists) {
        TRY_VOID(write_private(path + ".bak", existing));
    }
    TRY_VOID(write_private(path, *merged));
    return exists ? path + " (the previous content is in " + path + ".bak)" : path;
}

}  // namespace

Result<HostSpec> find_host(const Context& ctx, const std::string& arg) {
    std::optional<HostSpec> found;
    if (!ctx.host.inventory.empty()) {
        for (auto& h : TRY(load_inventory(ctx.host.inventory))) {
            if (h.name == arg) {
                found = std::move(h);
                break;
            }
        }
    }
    HostSpec host = found ? std::move(*found) : TRY(host_from_arg(arg, ctx.host));
    TRY_VOID(apply_connection_defaults(host, ctx.host));
    return host;
}

SshOptions ssh_options(const Context& ctx) {
    SshOptions ssh = ctx.host.ssh;
    ssh.connect_timeout = std::chrono::seconds(ctx.host.connect_timeout);
    return ssh;
}

void configure_kubeconfig(CLI::App& app, Context& ctx) {
    auto& k = ctx.kubeconfig;
    app.add_option("host", ctx.args, "The k3s server: user@host[:port], or a host name of --inventory")
        ->required()
        ->expected(1);
    app.add_option("--inventory,-i", ctx.host.inventory, "Inventory (TOML) in which to look HOST up by name");
    auto* out = app.add_option("--out,-o", k.out, "Write the kubeconfig to FILE (mode 0600, atomically)");
    auto* merge = app.add_flag("--merge", k.merge, "Merge it into --kubeconfig FILE and make it the current context");
    out->excludes(merge);
    app.add_option("--kubeconfig", k.kubeconfig,
                   "File --merge writes (default: first entry of $KUBECONFIG, else ~/.kube/config)")
        ->needs(merge);
    app.add_option("--context", k.context,
                   "Name the cluster, user and context nodectl-NAME (default NAME: HOST's name)");
    app.add_option("--server-address", k.server_address,
                   "Address clients reach the API server at (default: HOST's address)");
    add_connection_options(app, ctx);
}

int run_kubeconfig(CLI::App&, Context& ctx) {
    const auto& k = ctx.kubeconfig;
    const std::string& arg = ctx.args.front();
    auto host = find_host(ctx, arg);
    if (!host) {
        std::cerr << "nodectl: " << host.error().message << "\n";
        return host.error().code == ErrorCode::usage ? k_exit_usage : k_exit_config;
    }
    SshOptions ssh = ssh_options(ctx);

    auto admin = fetch(*host, ssh);
    if (!admin) {
        std::cerr << "nodectl: " << host->name << ": " << admin.error().message << "\n";
        return k_exit_all_failed;
    }
    auto entry_name = k3s::kubeconfig_entry_name(k.context.empty() ? host->name : k.context);
    if (!entry_name) {
        std::cerr << "nodectl: --context: " << entry_name.error().message << "\n";
        return k_exit_usage;
    }
    const std::string& context = *entry_name;
    std::string address = k.server_address.empty() ? host->address : k.server_address;
    auto kubeconfig = k3s::rewrite_kubeconfig(*admin, host->address, address, context);
    if (!kubeconfig) {
        const auto& e = kubeconfig.error();
        if (e.code == ErrorCode::usage) {
            std::cerr << "nodectl: --server-address: " << e.message << "\n";
            return k_exit_usage;
        }
        std::cerr << "nodectl: " << host->name << ": " << k3s::k_admin_kubeconfig_path << ": " << e.message << "\n";
        return k_exit_all_failed;
    }

    if (!k.merge && k.out.empty()) {
        std::cout << *kubeconfig << std::flush;
        return k_exit_ok;
    }
    Result<std::string> written = k.out;
    if (k.merge) {
        written = merge_into_file(k.kubeconfig.empty() ? default_kubeconfig() : k.kubeconfig, *kubeconfig);
    } else if (auto w = write_private(k.out, *kubeconfig); !w) {
        written = std::move(w).error();
    }
    if (!written) {
        std::cerr << "nodectl: " << written.error().message << "\n";
        return k_exit_internal;
    }
    log::info(host->name, "wrote context \"{}\" to {}", context, *written);
    return k_exit_ok;
}

}  // namespace nodectl::cli

// base: the everyday first-boot chores.
//
// What it changes on a node: the apt proxy drop-in, the host name (/etc/hostname, the kernel's
// name, the 127.0.1.1 line of /etc/hosts), the time zone (/etc/localtime, /etc/timezone), a marked
// block of /etc/hosts, installed and removed Debian packages, files with content/mode/owner, and
// enabled or disabled systemd units.
// How it knows a change is already there: it reads the current state (file hashes, dpkg status,
// `systemctl is-enabled/is-active`) and compares content, never timestamps.
// How it is undone: it is not; removing a key from the profile leaves the host as it is
// (`apt_proxy = ""` removes the proxy drop-in, `packages_absent` removes packages).
#include "modules/base/base.hpp"
#include "modules/base/steps.hpp"
#include "util/text.hpp"

#include <algorithm>

namespace nodectl::base {

namespace {

// A profile value with this host's ${...} filled in, checked by the key's own validator.
Result<std::string> expanded(const ConfigView& cfg, std::string_view key, const std::string& text,
                             const HostSpec& host) {
    auto value = TRY(expand_vars(text, host, cfg.where(key)));
    auto reason = check_expanded(ConfigFile::profile, "base." + std::string(key), value);
    if (!reason.empty()) {
        return make_error(ErrorCode::config, cfg.where(key) + ": 'base." + std::string(key) + "' for host '" +
                                                 host.name + "' is \"" + value + "\", which " + reason);
    }
    return value;
}

}  // namespace

Result<StepList> steps(const ModuleContext& ctx) {
    ConfigView cfg = ctx.profile.section("base");
    StepList out;
    if (cfg.has("apt_proxy")) {
        auto url = TRY(expanded(cfg, "apt_proxy", cfg.str("apt_proxy"), ctx.host));
        ManagedFile f;
        f.spec.path = k_apt_proxy_path;
        f.spec.content = url.empty() ? std::string() : TRY(apt_proxy_conf(url));
        f.absent = url.empty();
        out.push_back(std::make_unique<WriteFile>("base/apt_proxy", std::move(f)));
    }
    if (cfg.has("hostname")) {
        auto name = TRY(expanded(cfg, "hostname", cfg.str("hostname"), ctx.host));
        out.push_back(std::make_unique<SetHostname>(name));
    }
    if (cfg.has("timezone")) {
        out.push_back(std::make_unique<SetTimezone>(cfg.str("timezone")));
    }
    if (cfg.has("hosts_entries")) {
        std::vector<std::string> lines;
        for (const auto& l : cfg.strings("hosts_entries")) {
            lines.push_back(TRY(expanded(cfg, "hosts_entries", l, ctx.host)));
        }
        out.push_back(std::make_unique<ManageHostsBlock>(std::move(lines)));
    }
    auto present = cfg.strings("packages");
    auto absent = cfg.strings("packages_absent");
    for (const auto& p : present) {
        if (std::find(absent.begin(), absent.end(), p) != absent.end()) {
            return make_error(ErrorCode::config, cfg.where("packages_absent") + ": package '" + p +
                                                     "' is in both base.packages and base.packages_absent");
        }
    }
    if (!present.empty() || !absent.empty()) {
        out.push_back(std::make_unique<EnsurePackages>("base/packages", present, absent, ctx.bundle_apt_sources));
    }
    // [[base.files]] lists from included profiles are appended; for a path named twice, the
    // later entry wins, in the earlier one's place.
    std::vector<ManagedFile> files;
    for (const auto& ft : cfg.tables("files")) {
        ManagedFile f;
        f.spec.path = ft.str("path");
        // The key table has checked the mode ("^0?[0-7]{3,4}$"): 0644 stands only for what cannot occur.
        f.spec.mode = static_cast<uint32_t>(util::parse_uint(ft.str("mode"), {.max = 07777, .base = 8}).value_or(0644));
        f.spec.owner = ft.str("owner");
        f.spec.group = ft.str("group");
        f.sensitive = ft.boolean("sensitive");
        if (ft.has("source")) {
            f.source = ft.str("source");
        } else {
            f.spec.content = TRY(expand_vars(ft.str("content"), ctx.host, ft.where("content")));
        }
        auto same =
            std::find_if(files.begin(), files.end(), [&](const ManagedFile& x) { return x.spec.path == f.spec.path; });
        if (same != files.end()) {
            *same = std::move(f);
        } else {
            files.push_back(std::move(f));
        }
    }
    for (auto& f : files) {
        std::string id = "base/file:" + f.spec.path;
        out.push_back(std::make_unique<WriteFile>(id, std::move(f)));
    }
    auto enabled = cfg.strings("units_enabled");
    auto disabled = cfg.strings("units_disabled");
    if (!enabled.empty() || !disabled.empty()) {
        out.push_back(std::make_unique<EnsureUnits>(enabled, disabled));
    }
    return out;
}

}  // namespace nodectl::base

// mounts: network filesystems a node uses, as systemd mount units.
//
// What it changes on a node: for each [[mounts.nfs]], installs nfs-common and writes
// /etc/systemd/system/<where>.mount (Type=nfs, the profile's options, After=network-online.target,
// Before=nodectl-backup.service) and, by default, a matching <where>.automount (TimeoutIdleSec),
// which is enabled (WantedBy=remote-fs.target) and started, so the share is mounted on first
// access and the backup service finds it. For each [[mounts.s3fs]], installs s3fs and fuse3,
// writes the credentials to /etc/nodectl/s3fs/<where>.passwd (0600, root) and a
// <where>.mount of Type=fuse.s3fs with _netdev and the profile's s3fs options (url,
// use_path_request_style, use_cache, stat_cache_expire, max_stat_cache_size, allow_other); the
// mount is enabled and started (restarted when its unit or credentials changed).
// How it knows a change is already there: the files' contents and modes (ApplyConfigSet), and
// `systemctl is-enabled` / `is-active` of the units.
// How it is undone: it is not; removing a mount from the profile leaves its unit in place
// (`systemctl disable --now <unit>` and deleting the files removes it).
#include "modules/mounts/mounts.hpp"

#include "host/services.hpp"
#include "modules/base/steps.hpp"
#include "util/strings.hpp"

#include <cctype>
#include <cstdio>

namespace nodectl::mounts {

namespace {

std::string join_options(const std::vector<std::string>& options) {
    return util::join(options, ",");
}

std::string state_id(const std::string& kind, const std::string& where) {
    return "mounts/" + kind + ":" + where;
}

}  // namespace

std::string unit_name_for(const std::string& where, const std::string& suffix) {
    // systemd.unit(5), "String Escaping for Inclusion in Unit Names", for a path.
    std::string path = where;
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
    }
    size_t start = 0;
    while (start < path.size() && path[start] == '/') {
        ++start;
    }
    path = path.substr(start);
    if (path.empty()) {
        return "-." + suffix;
    }
    std::string out;
    for (size_t i = 0; i < path.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(path[i]);
        if (c == '/') {
            out += '-';
        } else if (std::isalnum(c) || c == ':' || c == '_' || (c == '.' && i > 0)) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + "." + suffix;
}

std::string render_nfs_mount(const NfsMount& m) {
    std::string out = "# Managed by nodectl ([[mounts.nfs]]): changes here are replaced on the next apply.\n"
                      "[Unit]\n"
                      "Description=NFS share " +
                      m.what + " at " + m.where +
                      " (nodectl)\n"
                      "After=network-online.target\n"
                      "Wants=network-online.target\n"
                      "Before=" +
                      std::string(k_backup_service) +
                      "\n\n"
                      "[Mount]\n"
                      "What=" +
                      m.what +
                      "\n"
                      "Where=" +
                      m.where +
                      "\n"
                      "Type=nfs\n"
                      "Options=" +
                      join_options(m.options) +
                      "\n"
                      "TimeoutSec=60\n";
    if (!m.automount) {
        out += "\n[Install]\nWantedBy=remote-fs.target\n";
    }
    return out;
}

std::string render_nfs_automount(const NfsMount& m) {
    return "# Managed by nodectl ([[mounts.nfs]]): changes here are replaced on the next apply.\n"
           "[Unit]\n"
           "Description=Automount of the NFS share at " +
           m.where +
           " (nodectl)\n"
           "Before=" +
           std::string(k_backup_service) +
           "\n\n"
           "[Automount]\n"
           "Where=" +
           m.where +
           "\n"
           "TimeoutIdleSec=" +
           std::to_string(m.idle_timeout) +
           "\n\n"
           "[Install]\n"
           "WantedBy=remote-fs.target\n";
}

namespace {
std::string passwd_path_in(const S3fsMount& m, const std::string& dir) {
    std::string stem = unit_name_for(m.where, "mount");
    stem = stem.substr(0, stem.size() - 6);
    return dir + "/" + stem + ".passwd";
}

std::string options_with(const S3fsMount& m, const std::string& passwd) {
    std::vector<std::string> o{"_netdev", "passwd_file=" + passwd};
    if (!m.url.empty()) {
        o.push_back("url=" + m.url);
    }
    if (!m.region.empty()) {
        o.push_back("endpoint=" + m.region);
    }
    if (m.path_style) {
        o.push_back("use_path_request_style");
    }
    if (!m.use_cache.empty()) {
        o.push_back("use_cache=" + m.use_cache);
    }
    o.push_back("stat_cache_expire=" + std::to_string(m.stat_cache_expire));
    o.push_back("max_stat_cache_size=" + std::to_string(m.max_stat_cache_size));
    if (m.allow_other) {
        o.push_back("allow_other");
    }
    for (const auto& x : m.options) {
        o.push_back(x);
    }
    return join_options(o);
}

std::string render_s3fs_with(const S3fsMount& m, const std::string& passwd) {
    return "# Managed by nodectl ([[mounts.s3fs]]): changes here are replaced on the next apply.\n"
           "[Unit]\n"
           "Description=s3fs mount of bucket " +
           m.bucket + " at " + m.where +
           " (nodectl)\n"
           "After=network-online.target\n"
           "Wants=network-online.target\n\n"
           "[Mount]\n"
           "What=" +
           m.bucket +
           "\n"
           "Where=" +
           m.where +
           "\n"
           "Type=fuse.s3fs\n"
           "Options=" +
           options_with(m, passwd) +
           "\n"
           "TimeoutSec=60\n\n"
           "[Install]\n"
           "WantedBy=remote-fs.target\n";
}
}  // namespace

std::string s3fs_passwd_path(const S3fsMount& m) {
    return passwd_path_in(m, k_s3fs_passwd_dir);
}

std::string s3fs_options(const S3fsMount& m) {
    return options_with(m, s3fs_passwd_path(m));
}

std::string render_s3fs_mount(const S3fsMount& m) {
    return render_s3fs_with(m, s3fs_passwd_path(m));
}

ConfigSetSpec nfs_group(const NfsMount& m, const std::string& unit_dir) {
    namespace units = host::units;
    ConfigSetSpec spec;
    spec.id = state_id("nfs", m.where);
    spec.title = "NFS mount " + m.where;
    std::string mount_unit = unit_name_for(m.where, "mount");
    std::string auto_unit = unit_name_for(m.where, "automount");
    std::string unit = m.automount ? auto_unit : mount_unit;
    spec.files.push_back({unit_dir + "/" + mount_unit, render_nfs_mount(m), nullptr, 0644});
    if (m.automount) {
        spec.files.push_back({unit_dir + "/" + auto_unit, render_nfs_automount(m), nullptr, 0644});
    }
    std::string verify = "systemd-analyze verify";
    for (const auto& f : spec.files) {
        verify += " " + shell_quote(f.path);
    }
    spec.validate = verify;
    spec.pre_write = "mkdir -p " + shell_quote(m.where);
    std::vector<host::UnitOp> activate = {units::daemon_reload(), units::enable({unit}, {.quiet = true})};
    if (m.start) {
        // A changed automount takes effect on the next mount; a plain mount is remounted.
        activate.push_back(m.automount ? units::start({unit}) : units::restart({unit}));
    }
    spec.activate = units::script(activate);
    spec.restore_activate = units::daemon_reload().script();
    spec.drift = units::enabled_drift(unit) + (m.start ? units::active_drift(unit) : "");
    spec.controls.push_back({"mounts.nfs:" + m.where, unit + " enabled" + std::string(m.start ? " and active" : ""),
                             units::state_pair(unit),
                             host::one_of(m.start ? std::vector<std::string>{"enabled,active"}
                                                  : std::vector<std::string>{"enabled,active", "enabled,inactive"}),
                             ""});
    return spec;
}

ConfigSetSpec s3fs_group(const S3fsMount& m, const std::string& unit_dir, const std::string& passwd_dir) {
    namespace units = host::units;
    ConfigSetSpec spec;
    spec.id = state_id("s3fs", m.where);
    spec.title = "s3fs mount " + m.where;
    std::string unit = unit_name_for(m.where, "mount");
    std::string passwd = passwd_path_in(m, passwd_dir);
    spec.files.push_back({passwd, m.credentials + "\n", nullptr, 0600, "root", "root", true});
    spec.files.push_back({unit_dir + "/" + unit, render_s3fs_with(m, passwd), nullptr, 0644});
    spec.pre_write = "mkdir -p " + shell_quote(m.where) + "\ninstall -d -m 0700 " + shell_quote(passwd_dir);
    if (!m.use_cache.empty()) {
        spec.pre_write += "\ninstall -d -m 0700 " + shell_quote(m.use_cache);
    }
    spec.validate = "systemd-analyze verify " + shell_quote(unit_dir + "/" + unit);
    spec.activate = units::script({units::daemon_reload(), units::enable({unit}, {.quiet = true})});
    spec.drift = units::enabled_drift(unit);
    if (m.start) {
        spec.activate +=
            units::restart({unit}).script() + " || { { " + units::journal_tail(unit, 10) + "; } >&2; exit 1; }\n";
        spec.drift += units::active_drift(unit, "mount " + m.where + " (start " + unit + ")");
    }
    spec.restore_activate = units::daemon_reload().script();
    spec.controls.push_back({"mounts.s3fs_passwd:" + m.where, "the s3fs credentials file is readable by root only",
                             "stat -c %a " + shell_quote(passwd), host::equals("600"), ""});
    return spec;
}

Result<StepList> steps(const ModuleContext& ctx) {
    if (!ctx.profile.table().contains("mounts")) {
        return StepList{};
    }
    ConfigView cfg = ctx.profile.section("mounts");
    StepList out;
    std::vector<NfsMount> nfs;
    std::vector<S3fsMount> s3fs;
    std::vector<std::string> wheres;
    auto unique_where = [&](const ConfigView& t, const char* kind, const char* first_key) -> Result<void> {
        for (const char* key : {first_key, "where"}) {
            if (t.str(key).empty()) {
                return make_error(ErrorCode::config, t.where(key) + ": [[mounts." + kind + "]] needs `" + key + "`");
            }
        }
        std::string w = t.str("where");
        for (const auto& other : wheres) {
            if (other == w) {
                return make_error(ErrorCode::config,
                                  t.where("where") + ": mount point " + w + " is used by two mounts");
            }
        }
        wheres.push_back(w);
        return Ok{};
    };
    for (const auto& t : cfg.tables("nfs")) {
        TRY_VOID(unique_where(t, "nfs", "what"));
        NfsMount m;
        m.what = t.str("what");
        m.where = t.str("where");
        m.options = t.strings("options");
        m.automount = t.boolean("automount");
        m.idle_timeout = static_cast<int>(t.integer("idle_timeout"));
        m.start = t.boolean("start");
        nfs.push_back(std::move(m));
    }
    for (const auto& t : cfg.tables("s3fs")) {
        TRY_VOID(unique_where(t, "s3fs", "bucket"));
        S3fsMount m;
        m.bucket = t.str("bucket");
        m.where = t.str("where");
        m.url = t.str("url");
        m.region = t.str("region");
        m.path_style = t.boolean("path_style");
        m.use_cache = t.str("use_cache");
        m.stat_cache_expire = static_cast<int>(t.integer("stat_cache_expire"));
        m.max_stat_cache_size = static_cast<int>(t.integer("max_stat_cache_size"));
        m.allow_other = t.boolean("allow_other");
        m.options = t.strings("options");
        m.start = t.boolean("start");
        auto ref = t.secret("credentials");
        if (!ref) {
            return make_error(ErrorCode::config,
                              t.where("credentials") +
                                  ": an s3fs mount needs credentials = "
                                  "{ file = \"PATH\" } or { env = \"VAR\" } holding ACCESS_KEY_ID:SECRET_ACCESS_KEY");
        }
        auto secret = resolve_secret(*ref);
        if (!secret) {
            return make_error(ErrorCode::config, t.where("credentials") + ": " + secret.error().message);
        }
        m.credentials = util::trim(secret->reveal());
        auto colon = m.credentials.find(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == m.credentials.size() ||
            m.credentials.find('\n') != std::string::npos) {
            return make_error(ErrorCode::config,
                              t.where("credentials") + ": secret " + ref->describe() +
                                  " must be one line ACCESS_KEY_ID:SECRET_ACCESS_KEY (s3fs's passwd format)");
        }
        s3fs.push_back(std::move(m));
    }
    std::vector<std::string> packages;
    if (!nfs.empty()) {
        packages.push_back("nfs-common");
    }
    if (!s3fs.empty()) {
        packages.push_back("s3fs");
        packages.push_back("fuse3");
    }
    if (!packages.empty()) {
        out.push_back(std::make_unique<base::EnsurePackages>("mounts/packages", packages, std::vector<std::string>{},
                                                             ctx.bundle_apt_sources));
    }
    for (const auto& m : nfs) {
        out.push_back(std::make_unique<ApplyConfigSet>(nfs_group(m)));
    }
    for (const auto& m : s3fs) {
        out.push_back(std::make_unique<ApplyConfigSet>(s3fs_group(m)));
    }
    return out;
}

}  // namespace nodectl::mounts

// mounts: NFS client mounts (systemd .mount + .automount) and s3fs (FUSE) mounts, from [mounts].
#pragma once

#include "modules/config_set/config_set.hpp"
#include "nodectl/module.hpp"

#include <string>
#include <vector>

namespace nodectl::mounts {

struct NfsMount {
    std::string what;  // "server:/export"
    std::string where;  // "/mnt/backup"
    std::vector<std::string> options;  // nfsvers=4.2,_netdev,noatime
    bool automount = true;
    int idle_timeout = 600;  // seconds (TimeoutIdleSec of the .automount)
    bool start = true;  // start the automount (or the mount) now
};

struct S3fsMount {
    std::string bucket;
    std::string where;
    std::string url;  // "" : AWS; "http://198.18.60.1:4568" for S3-compatible stores
    std::string region;  // "" : s3fs's default
    bool path_style = false;  // use_path_request_style
    std::string use_cache;  // cache directory; "" : no local cache
    int stat_cache_expire = 900;
    int max_stat_cache_size = 100000;
    bool allow_other = false;
    std::vector<std::string> options;  // further s3fs -o options
    std::string credentials;  // "ACCESS_KEY_ID:SECRET_ACCESS_KEY" (the secret's value)
    bool start = true;
};

constexpr const char* k_unit_dir = "/etc/systemd/system";
constexpr const char* k_s3fs_passwd_dir = "/etc/nodectl/s3fs";
constexpr const char* k_backup_service = "nodectl-backup.service";

// systemd's unit name for a mount point (`systemd-escape --path --suffix=mount`).
std::string unit_name_for(const std::string& where, const std::string& suffix);

std::string render_nfs_mount(const NfsMount& m);
std::string render_nfs_automount(const NfsMount& m);
// s3fs's passwd file for a mount: /etc/nodectl/s3fs/<unit stem>.passwd
std::string s3fs_passwd_path(const S3fsMount& m);
// The -o options s3fs gets (passwd_file, url, use_path_request_style, cache, ..., _netdev).
std::string s3fs_options(const S3fsMount& m);
std::string render_s3fs_mount(const S3fsMount& m);

// The config sets; unit_dir and passwd_dir are parameters so that unit tests can apply them in a
// temporary directory.
ConfigSetSpec nfs_group(const NfsMount& m, const std::string& unit_dir = k_unit_dir);
ConfigSetSpec s3fs_group(const S3fsMount& m, const std::string& unit_dir = k_unit_dir,
                         const std::string& passwd_dir = k_s3fs_passwd_dir);

Result<StepList> steps(const ModuleContext& ctx);

}  // namespace nodectl::mounts

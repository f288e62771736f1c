// Filesystem: /tmp as a tmpfs mounted nosuid,nodev,noexec (a tmp.mount unit; apt remounts it
// exec while dpkg runs, since maintainer scripts extracted there must execute), /dev/shm
// nosuid,nodev,noexec (fstab), owner and mode of the account databases, cron directories and
// sshd host keys, and core dumps off (limits.d and systemd-coredump).
#include "modules/harden/groups.hpp"

#include "host/services.hpp"
#include "util/strings.hpp"

namespace nodectl::harden {

namespace {

constexpr const char* k_shm_line = "tmpfs\t/dev/shm\ttmpfs\tdefaults,nosuid,nodev,noexec\t0\t0";
constexpr const char* k_proc_line = "proc\t/proc\tproc\tdefaults,nosuid,nodev,noexec,hidepid=invisible\t0\t0";

struct Perm {
    const char* path;  // may be a glob
    const char* mode;
    const char* owner;  // user:group
};

const Perm k_perms[] = {
    {"/etc/passwd", "644", "root:root"},
    {"/etc/passwd-", "600", "root:root"},
    {"/etc/group", "644", "root:root"},
    {"/etc/group-", "600", "root:root"},
    {"/etc/shadow", "640", "root:shadow"},
    {"/etc/shadow-", "640", "root:shadow"},
    {"/etc/gshadow", "640", "root:shadow"},
    {"/etc/gshadow-", "640", "root:shadow"},
    {"/etc/crontab", "600", "root:root"},
    {"/etc/cron.d", "700", "root:root"},
    {"/etc/cron.hourly", "700", "root:root"},
    {"/etc/cron.daily", "700", "root:root"},
    {"/etc/cron.weekly", "700", "root:root"},
    {"/etc/cron.monthly", "700", "root:root"},
    {"/etc/ssh/sshd_config", "600", "root:root"},
    {"/etc/ssh/ssh_host_*_key", "600", "root:root"},
    {"/etc/ssh/ssh_host_*_key.pub", "644", "root:root"},
};

// "path mode owner" for every existing path whose mode or owner differ; $1 is the fix command.
std::string perm_loop(const std::string& on_difference) {
    std::string table;
    for (const auto& p : k_perms) {
        table += std::string(p.path) + " " + p.mode + " " + p.owner + "\n";
    }
    return "printf '%s' " + shell_quote(table) +
           " | while read -r glob mode owner; do\n"
           "  for f in $glob; do\n"
           "    [ -e \"$f\" ] || continue\n"
           "    cur=$(stat -c '%a %U:%G' \"$f\")\n"
           "    if [ \"$cur\" != \"$mode $owner\" ]; then " +
           on_difference +
           "; fi\n"
           "  done\n"
           "done\n";
}

// Prints "FSTYPE nosuid,nodev,noexec," with those of the three flags `where` is mounted with.
std::string restrictive_flags(const std::string& where) {
    return "findmnt -n -o FSTYPE,OPTIONS --mountpoint " + where +
           " | awk '{ n = split($2, o, \",\"); s = \"\"; for (i = 1; i <= n; i++) if (o[i] ~ /^(nosuid|nodev|noexec)$/) "
           "s = s o[i] \",\"; print $1 \" \" s }'";
}

// Prints a line when `where` lacks one of nosuid,nodev,noexec.
std::string mount_drift(const std::string& where) {
    return "o=$(findmnt -n -o OPTIONS --mountpoint " + where +
           ")\n"
           "for x in nosuid nodev noexec; do case \",$o,\" in *,$x,*) ;; *) echo \"" +
           where + " is mounted without $x\";; esac; done\n";
}

}  // namespace

ConfigSetSpec filesystem_group(const ConfigView& fs, const Settings&) {
    namespace units = host::units;
    ConfigSetSpec spec;
    spec.id = "harden/filesystem";
    spec.title = "filesystem hardening";
    spec.enabled = fs.boolean("enabled");
    bool hidepid = fs.boolean("proc_hidepid");
    std::string tmp_opts = "mode=1777,strictatime,nosuid,nodev,noexec,size=" + fs.str("tmp_size");
    spec.files = {
        {"/etc/systemd/system/tmp.mount",
         "# Managed by nodectl (harden.filesystem)\n[Unit]\nDescription=Temporary Directory /tmp\n"
         "ConditionPathIsSymbolicLink=!/tmp\nDefaultDependencies=no\nConflicts=umount.target\n"
         "Before=local-fs.target umount.target\nAfter=swap.target\n\n[Mount]\nWhat=tmpfs\nWhere=/tmp\nType=tmpfs\nOptions=" +
             tmp_opts + "\n\n[Install]\nWantedBy=local-fs.target\n",
         nullptr, 0644},
        {"/etc/apt/apt.conf.d/51nodectl-tmp-exec",
         "// Managed by nodectl (harden.filesystem): /tmp is noexec, but maintainer scripts apt extracts there must run.\n"
         "DPkg::Pre-Invoke { \"mount -o remount,exec /tmp || true\"; };\n"
         "DPkg::Post-Invoke { \"mount -o remount,noexec /tmp || true\"; };\n",
         nullptr, 0644},
        {"/etc/fstab", "",
         [hidepid](const std::string& cur) {
             return set_fstab_entries(cur, hidepid ? std::vector<std::string>{k_shm_line, k_proc_line}
                                                   : std::vector<std::string>{k_shm_line});
         },
         0644},
        // A container manager mounts /tmp before tmp.mount could: re-apply the options at boot.
        {"/etc/systemd/system/nodectl-tmp-options.service",
         "# Managed by nodectl (harden.filesystem)\n[Unit]\nDescription=nodectl: nosuid,nodev,noexec on a /tmp mounted by someone else\n"
         "DefaultDependencies=no\nAfter=tmp.mount local-fs.target\nBefore=multi-user.target\nConditionPathIsMountPoint=/tmp\n\n"
         "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/mount -o remount,nosuid,nodev,noexec /tmp\n\n"
         "[Install]\nWantedBy=local-fs.target\n",
         nullptr, 0644},
        {"/etc/systemd/system.conf.d/nodectl-coredump.conf",
         "# Managed by nodectl (harden.filesystem)\n[Manager]\nDefaultLimitCORE=0\n", nullptr, 0644},
        {"/etc/security/limits.d/nodectl-coredump.conf",
         "# Managed by nodectl (harden.filesystem)\n* hard core 0\n* soft core 0\n", nullptr, 0644},
        {"/etc/systemd/coredump.conf.d/nodectl.conf",
         "# Managed by nodectl (harden.filesystem)\n[Coredump]\nStorage=none\nProcessSizeMax=0\n", nullptr, 0644},
    };
    const std::vector<std::string> tmp_units = {"tmp.mount", "nodectl-tmp-options.service"};
    spec.drift =
        units::enabled_drift(tmp_units[0]) + units::enabled_drift(tmp_units[1]) +
        "[ \"$(findmnt -n -o FSTYPE --mountpoint /tmp)\" = tmpfs ] || echo '/tmp is not a tmpfs'\n" +
        mount_drift("/tmp") + mount_drift("/dev/shm") +
        (hidepid
             ? "case \",$(findmnt -n -o OPTIONS --mountpoint /proc),\" in *,hidepid=invisible,*|*,hidepid=2,*) ;; *) echo '/proc is mounted without hidepid=invisible';; esac\n"
             : "") +
        perm_loop("echo \"$f: $cur -> $mode $owner\"");
    spec.activate =
        units::script({units::daemon_reload(), units::enable(tmp_units, {.quiet = true})}) +
        "if [ \"$(findmnt -n -o FSTYPE --mountpoint /tmp)\" = tmpfs ]; then mount -o remount,nosuid,nodev,noexec /tmp; "
        "else " +
        units::start({"tmp.mount"}).script() +
        "; fi\n"
        "mount -o remount,nosuid,nodev,noexec /dev/shm\n" +
        std::string(hidepid ? "mount -o remount,hidepid=invisible /proc\n" : "") +
        perm_loop("chown \"$owner\" \"$f\" && chmod \"$mode\" \"$f\"");
    spec.restore_activate = units::daemon_reload().script();
    spec.deactivate =
        units::script({units::daemon_reload(), units::disable(tmp_units, {.quiet = true, .ignore_failure = true})}) +
        "mount -o remount,exec /tmp 2>/dev/null; mount -o remount,exec /dev/shm 2>/dev/null; true";

    spec.controls = {
        {"filesystem.tmp", "/tmp is a tmpfs with nosuid,nodev,noexec", restrictive_flags("/tmp"),
         host::equals("tmpfs nosuid,nodev,noexec,"), ""},
        {"filesystem.dev_shm", "/dev/shm has nosuid,nodev,noexec", restrictive_flags("/dev/shm"),
         host::equals("tmpfs nosuid,nodev,noexec,"), ""},
        {"filesystem.proc_hidepid", "users see only their own processes (/proc hidepid)",
         "findmnt -n -o OPTIONS --mountpoint /proc | tr ',' '\\n' | grep -E '^hidepid=' || echo 'no hidepid'",
         hidepid ? host::one_of({"hidepid=invisible", "hidepid=2"})
                 : host::Expect{"not managed", [](const std::string&) { return true; }},
         ""},
        {"filesystem.permissions", "account databases, cron and host keys have safe owners and modes",
         perm_loop("echo \"$f is $cur\""), host::empty_output("all as expected"), ""},
        {"filesystem.core_dumps", "core dumps are off (limits and systemd-coredump)",
         "grep -hs '^\\* hard core 0' /etc/security/limits.d/*.conf | head -n 1; systemd-analyze cat-config systemd/coredump.conf 2>/dev/null | "
         "grep -E '^Storage=' | tail -n 1",
         host::equals("* hard core 0\nStorage=none"), ""},
    };
    return spec;
}

}  // namespace nodectl::harden

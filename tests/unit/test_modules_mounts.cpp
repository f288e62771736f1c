// The mounts module: unit names (against systemd-escape where it exists), the rendered .mount /
// .automount units (checked with systemd-analyze verify where it exists), the profile's steps and
// errors, and the config sets applied for real on a LocalTarget in a temporary directory: a fresh
// host gets the files (the credentials file 0600), a second run changes nothing.
// (FakeTarget models only the scripts of src/host and the base steps, not ApplyConfigSet's.)
#include "result_checks.hpp"
#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "modules/mounts/mounts.hpp"
#include "nodectl/module.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

using namespace nodectl;
using nodectl::testing::check_error;
using nodectl::testing::contains;
using nodectl::testing::read_text;
namespace fs = std::filesystem;

namespace {

std::string run_out(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) {
        return out;
    }
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    ::pclose(p);
    while (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    return out;
}

mounts::NfsMount sample_nfs() {
    mounts::NfsMount m;
    m.what = "198.18.60.1:/export/backup";
    m.where = "/mnt/backup";
    m.options = {"nfsvers=4.2", "_netdev", "noatime"};
    return m;
}

mounts::S3fsMount sample_s3fs() {
    mounts::S3fsMount m;
    m.bucket = "media";
    m.where = "/var/www/media";
    m.url = "http://198.18.60.1:4568";
    m.path_style = true;
    m.use_cache = "/var/cache/s3fs";
    m.allow_other = true;
    m.options = {"uid=33"};
    m.credentials = "AKEXAMPLE:SECRETEXAMPLE";
    return m;
}

}  // namespace

TEST_CASE("mounts: unit names are systemd's escaping of the mount point") {
    CHECK(mounts::unit_name_for("/mnt/backup", "mount") == "mnt-backup.mount");
    CHECK(mounts::unit_name_for("/mnt/backup/", "automount") == "mnt-backup.automount");
    CHECK(mounts::unit_name_for("/srv/a-b/my media/x.y", "mount") == "srv-a\\x2db-my\\x20media-x.y.mount");
    CHECK(mounts::unit_name_for("/", "mount") == "-.mount");
    if (fs::exists("/usr/bin/systemd-escape")) {
        for (const char* p : {"/mnt/backup", "/srv/a-b/my media/x.y", "/var/www/magento/pub/media", "/mnt/.hidden"}) {
            CAPTURE(p);
            CHECK(mounts::unit_name_for(p, "mount") ==
                  run_out(std::string("systemd-escape --path --suffix=mount ") + shell_quote(p)));
        }
    }
}

TEST_CASE("mounts: the NFS .mount and .automount units") {
    auto m = sample_nfs();
    auto unit = mounts::render_nfs_mount(m);
    CHECK(contains(unit, "What=198.18.60.1:/export/backup\n"));
    CHECK(contains(unit, "Where=/mnt/backup\n"));
    CHECK(contains(unit, "Type=nfs\n"));
    CHECK(contains(unit, "Options=nfsvers=4.2,_netdev,noatime\n"));
    CHECK(contains(unit, "Before=nodectl-backup.service\n"));
    CHECK(contains(unit, "After=network-online.target\n"));
    CHECK_FALSE(contains(unit, "[Install]"));  // the automount is what gets enabled
    auto au = mounts::render_nfs_automount(m);
    CHECK(contains(au, "[Automount]\nWhere=/mnt/backup\nTimeoutIdleSec=600\n"));
    CHECK(contains(au, "Before=nodectl-backup.service\n"));
    CHECK(contains(au, "WantedBy=remote-fs.target\n"));
    m.automount = false;
    CHECK(contains(mounts::render_nfs_mount(m), "[Install]\nWantedBy=remote-fs.target\n"));

    auto spec = mounts::nfs_group(sample_nfs());
    REQUIRE(spec.files.size() == 2);
    CHECK(spec.files[0].path == "/etc/systemd/system/mnt-backup.mount");
    CHECK(spec.files[1].path == "/etc/systemd/system/mnt-backup.automount");
    CHECK(contains(spec.activate, "systemctl enable --quiet 'mnt-backup.automount'"));
    CHECK(contains(spec.activate, "systemctl start 'mnt-backup.automount'"));
    CHECK(contains(spec.validate, "systemd-analyze verify"));
}

TEST_CASE("mounts: the s3fs unit has _netdev and the profile's options; the credentials file is 0600 and hidden") {
    auto m = sample_s3fs();
    auto unit = mounts::render_s3fs_mount(m);
    CHECK(contains(unit, "What=media\n"));
    CHECK(contains(unit, "Where=/var/www/media\n"));
    CHECK(contains(unit, "Type=fuse.s3fs\n"));
    CHECK(contains(unit,
                   "Options=_netdev,passwd_file=/etc/nodectl/s3fs/var-www-media.passwd,url=http://198.18.60.1:4568,"
                   "use_path_request_style,use_cache=/var/cache/s3fs,stat_cache_expire=900,max_stat_cache_size=100000,"
                   "allow_other,uid=33\n"));
    CHECK_FALSE(contains(unit, "SECRETEXAMPLE"));
    auto spec = mounts::s3fs_group(m);
    REQUIRE(spec.files.size() == 2);
    CHECK(spec.files[0].path == "/etc/nodectl/s3fs/var-www-media.passwd");
    CHECK(spec.files[0].content == "AKEXAMPLE:SECRETEXAMPLE\n");
    CHECK(spec.files[0].mode == 0600);
    CHECK(spec.files[0].sensitive);
    CHECK(spec.files[1].path == "/etc/systemd/system/var-www-media.mount");
    m.url.clear();
    m.path_style = false;
    m.use_cache.clear();
    m.allow_other = false;
    m.options.clear();
    CHECK(
        mounts::s3fs_options(m) ==
        "_netdev,passwd_file=/etc/nodectl/s3fs/var-www-media.passwd,stat_cache_expire=900,max_stat_cache_size=100000");
}

TEST_CASE("mounts: systemd-analyze verify accepts the units") {
    if (!fs::exists("/usr/bin/systemd-analyze")) {
        MESSAGE("systemd-analyze is not installed here: verify is left to the integration suite");
        return;
    }
    testing::TempDir dir;
    auto nfs = sample_nfs();
    nfs.where = "/mnt/nodectl-unit-verify";
    auto s3 = sample_s3fs();
    s3.where = "/mnt/nodectl-unit-verify-s3";
    std::string a = dir.write(mounts::unit_name_for(nfs.where, "mount"), mounts::render_nfs_mount(nfs));
    std::string b = dir.write(mounts::unit_name_for(nfs.where, "automount"), mounts::render_nfs_automount(nfs));
    std::string c = dir.write(mounts::unit_name_for(s3.where, "mount"), mounts::render_s3fs_mount(s3));
    // verify complains about a missing mount point and unknown dependencies, not about the syntax:
    // the lines that would name our files are what must be absent.
    std::string out = run_out("systemd-analyze verify " + shell_quote(a) + " " + shell_quote(b) + " " + shell_quote(c) +
                              " 2>&1 | grep -E 'nodectl-unit-verify.*(Unknown|Invalid|Failed to parse|bad)' || true");
    CHECK(out.empty());
}

TEST_CASE("mounts: profile keys become packages and one config set per mount") {
    testing::TempDir dir;
    std::string creds = dir.write("s3.creds", "AKX:SKX\n", 0600);
    auto profile = testing::profile_from(R"(
[[mounts.nfs]]
what = "198.18.60.1:/export/backup"
where = "/mnt/backup"

[[mounts.s3fs]]
bucket = "media"
where = "/var/www/media"
url = "http://198.18.60.1:4568"
path_style = true
credentials = { file = ")" + creds + R"(" }
)");
    HostSpec host;
    host.name = "n1";
    auto steps = mounts::steps(ModuleContext{profile, host});
    REQUIRE(steps);
    REQUIRE(steps->size() == 3);
    CHECK((*steps)[0]->id() == "mounts/packages");
    auto* nfs = dynamic_cast<ApplyConfigSet*>((*steps)[1].get());
    auto* s3 = dynamic_cast<ApplyConfigSet*>((*steps)[2].get());
    REQUIRE(nfs);
    REQUIRE(s3);
    CHECK(contains(nfs->spec().files[0].content, "Options=nfsvers=4.2,_netdev,noatime\n"));  // the defaults
    CHECK(s3->spec().files[0].content == "AKX:SKX\n");

    auto none = testing::profile_from("[base]\n");
    auto no_steps = mounts::steps(ModuleContext{none, host});
    REQUIRE(no_steps);
    CHECK(no_steps->empty());
}

TEST_CASE("mounts: profile errors name the file and line") {
    check_error(testing::try_profile("[[mounts.nfs]]\nwhat = \"no-colon\"\nwhere = \"/mnt/x\"\n"), {":2:"});
    check_error(testing::try_profile("[[mounts.nfs]]\nwhat = \"h:/x\"\nwhere = \"/mnt/x\"\noptions = [\"a,b\"]\n"),
                {"options"});

    HostSpec host;
    host.name = "n1";
    auto steps_of = [&](const std::string& toml) {
        return mounts::steps(ModuleContext{testing::profile_from(toml), host});
    };
    // An s3fs mount's credentials: a file of the operator's, 0600, ACCESS_KEY_ID:SECRET_ACCESS_KEY.
    testing::TempDir dir;
    auto s3fs_with = [&](const std::string& creds_file) {
        return "[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/b\"\ncredentials = { file = \"" + creds_file + "\" }\n";
    };
    check_error(steps_of("[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/b\"\n"), {"needs credentials"});
    check_error(steps_of(s3fs_with(dir.write("open.creds", "AK:SK\n", 0644))), {"readable by group or others"});
    auto shape = steps_of(s3fs_with(dir.write("one.creds", "only-a-key\n", 0600)));
    check_error(shape, {"ACCESS_KEY_ID:SECRET_ACCESS_KEY"});
    CHECK_FALSE(contains(shape.error().message, "only-a-key"));
    check_error(steps_of("[[mounts.nfs]]\nwhat = \"h:/a\"\nwhere = \"/mnt/a\"\n"
                         "[[mounts.nfs]]\nwhat = \"h:/b\"\nwhere = \"/mnt/a\"\n"),
                {"used by two mounts", ":6:"});
}

TEST_CASE("mounts: applied on a fresh host the files appear (credentials 0600); a second run changes nothing") {
    testing::QuietLogs quiet;
    testing::TempDir dir;
    std::random_device rd;
    auto m = sample_s3fs();
    m.where = dir.file("media");
    m.use_cache = dir.file("cache");
    auto spec = mounts::s3fs_group(m, dir.file("units"), dir.file("passwd"));
    // This host runs no systemd: activation is recorded instead of run.
    std::string log = dir.file("activate.log");
    spec.id = "test/mounts-unit-" + std::to_string(rd());
    spec.validate = "true";
    spec.activate = "echo activated >> " + shell_quote(log);
    spec.drift.clear();
    fs::create_directories(dir.file("units"));
    struct Cleanup {
        std::string id;
        ~Cleanup() {
            std::error_code ec;
            std::string s = id;
            for (auto& c : s) {
                c = c == '/' ? '-' : c;
            }
            fs::remove_all("/var/lib/nodectl/rollback/" + s, ec);
            fs::remove_all("/var/lib/nodectl/applied/" + s, ec);
        }
    } cleanup{spec.id};
    LocalTarget target("local");
    ApplyConfigSet step(spec);
    auto plan = step.probe(target);
    REQUIRE(plan);
    REQUIRE(plan->changes.size() == 2);
    CHECK(contains(plan->changes[0].summary, "holds a secret: content hidden"));
    CHECK(plan->changes[0].diff.empty());
    REQUIRE(step.apply(target, *plan));
    struct stat st {};
    std::string passwd = dir.file("passwd") + "/" + fs::path(mounts::s3fs_passwd_path(m)).filename().string();
    REQUIRE(::stat(passwd.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(read_text(passwd) == "AKEXAMPLE:SECRETEXAMPLE\n");
    REQUIRE(::stat(dir.file("passwd").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(fs::is_directory(m.where));
    CHECK(fs::is_directory(m.use_cache));
    std::string unit = read_text(dir.file("units") + "/" + mounts::unit_name_for(m.where, "mount"));
    CHECK(contains(unit, "passwd_file=" + passwd + ","));
    CHECK(read_text(log) == "activated\n");

    ApplyConfigSet again(spec);
    auto plan2 = again.probe(target);
    REQUIRE(plan2);
    CHECK(plan2->changes.empty());
}

// Audit: a mount point went unquoted into the drift probe, which `plan` runs: a ' in `where`
// ran code on the host even in plan. Applied for real on a LocalTarget, nothing may run.
TEST_CASE("mounts: a mount point with quotes and ';' runs nothing in plan or apply (quoted in every script)") {
    testing::QuietLogs quiet;
    testing::TempDir dir;
    std::random_device rd;
    std::string pwned_sq = dir.file("pwned-single");
    std::string pwned_dq = dir.file("pwned-double");
    auto m = sample_s3fs();
    // Breaks out of '...' (the drift's echo) and of "..." (restore.sh's logger line).
    m.where = dir.file("media';touch " + pwned_sq + ";'\";touch " + pwned_dq + ";\"");
    m.use_cache = dir.file("cache");
    auto spec = mounts::s3fs_group(m, dir.file("units"), dir.file("passwd"));
    CHECK(contains(spec.drift,
                   shell_quote("mount " + m.where + " (start " + mounts::unit_name_for(m.where, "mount") + ")")));
    std::string rollback = "/var/lib/nodectl/rollback/" + std::string("test-mounts-hostile-") + std::to_string(rd());
    spec.id = "test/" + rollback.substr(rollback.rfind('/') + 1);
    spec.validate = "true";
    spec.activate = "false";  // a failed activation runs restore.sh (with the title) and the disarm script
    fs::create_directories(dir.file("units"));
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{rollback};
    LocalTarget target("local");
    ApplyConfigSet step(spec);
    auto plan = step.probe(target);
    CHECK_FALSE(fs::exists(pwned_sq));
    CHECK_FALSE(fs::exists(pwned_dq));
    REQUIRE(plan);
    CHECK(std::any_of(plan->changes.begin(), plan->changes.end(), [&](const Change& c) {
        return c.summary == "mount " + m.where + " (start " + mounts::unit_name_for(m.where, "mount") + ")";
    }));
    auto applied = step.apply(target, *plan);
    CHECK_FALSE(applied);  // activation failed, the previous files were restored
    CHECK_FALSE(fs::exists(pwned_sq));
    CHECK_FALSE(fs::exists(pwned_dq));
    CHECK(fs::is_directory(m.where));

    // The profile refuses such a mount point before any of this.
    check_error(testing::try_profile("[[mounts.nfs]]\nwhat = \"h:/x\"\nwhere = \"/mnt/x';touch /tmp/p;'\"\n"),
                {"'mounts.nfs[].where' must be an absolute path of letters, digits"});
}

// Audit: ApplyConfigSet's rollback scripts put its id (the timer unit's name, the rollback
// directory) into shell commands unquoted, one of them inside `sh -c '...'`.
TEST_CASE("config set: an id with quotes and ';' runs nothing when the rollback is armed, restored and disarmed") {
    testing::QuietLogs quiet;
    testing::TempDir dir;
    std::random_device rd;
    // State names replace '/': the payload names its files through the environment instead.
    ::setenv("NODECTL_TEST_PWNED_ARM", dir.file("pwned-arm").c_str(), 1);
    ::setenv("NODECTL_TEST_PWNED_DISARM", dir.file("pwned-disarm").c_str(), 1);
    ConfigSetSpec spec;
    spec.id = "test/hostile-" + std::to_string(rd()) +
              "';touch \"$NODECTL_TEST_PWNED_ARM\";';touch \"$NODECTL_TEST_PWNED_DISARM\";x";
    spec.title = "hostile id";
    spec.files.push_back({dir.file("conf"), "new\n", nullptr, 0644});
    spec.validate = "true";
    spec.activate = "false";
    spec.guard = true;
    spec.rollback_after = std::chrono::seconds(30);
    std::string state = spec.id;
    for (auto& c : state) {
        c = c == '/' ? '-' : c;
    }
    struct Cleanup {
        std::string state;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all("/var/lib/nodectl/rollback/" + state, ec);
            fs::remove_all("/var/lib/nodectl/applied/" + state, ec);
            ::unsetenv("NODECTL_TEST_PWNED_ARM");
            ::unsetenv("NODECTL_TEST_PWNED_DISARM");
        }
    } cleanup{state};
    LocalTarget target("local");
    ApplyConfigSet step(spec);
    auto plan = step.probe(target);
    REQUIRE(plan);
    CHECK_FALSE(step.apply(target, *plan));  // activation fails: restored and disarmed
    CHECK_FALSE(fs::exists(dir.file("pwned-arm")));
    CHECK_FALSE(fs::exists(dir.file("pwned-disarm")));
}

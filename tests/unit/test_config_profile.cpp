// Loading profiles: validation messages with file:line:col, extends/include merging, cycles,
// errors in included files, the rules that tie keys together, and the profiles shipped in profiles/.
#include "test_support.hpp"

#include "nodectl/config.hpp"
#include "nodectl/module.hpp"
#include "fake_target.hpp"
#include "modules/base/base.hpp"
#include "config/validate.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::load_profile_ok;
using nodectl::testing::read_text;
using nodectl::testing::TempDir;

namespace {

// The error message of a profile that must not load.
std::string profile_error(const std::string& path) {
    auto p = load_profile(path);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == ErrorCode::config);
    return p.error().message;
}

// The NAMEs of every ${vars.NAME} written in these files.
std::set<std::string> referenced_vars(const std::vector<std::string>& files) {
    std::set<std::string> out;
    for (const auto& f : files) {
        std::string text = read_text(f);
        for (size_t pos = text.find("${vars."); pos != std::string::npos; pos = text.find("${vars.", pos + 1)) {
            size_t end = text.find('}', pos);
            if (end != std::string::npos) {
                out.insert(text.substr(pos + 7, end - pos - 7));
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE("profile: an unknown key names file:line:col and suggests the key that was meant") {
    TempDir dir;
    std::string path = dir.write("web.toml", "# web servers\n[base]\ntimezone = \"Etc/UTC\"\nhostnme = \"web1\"\n");
    std::string msg = profile_error(path);
    CHECK(msg == path + ":4:1: unknown key 'base.hostnme'; did you mean 'hostname'?");
}

TEST_CASE("profile: a character beyond ASCII outside a string or comment names its position; inside them it is text") {
    // Found by fuzz_profile: toml++ 3.3 reaches __builtin_unreachable() on such a character.
    TempDir dir;
    std::string path = dir.write("bad.toml", "# caf\u00e9\n[base]\ntimezone = \"Etc/UTC\" \u00e9\n");
    CHECK(profile_error(path) ==
          path + ":3:22: a character beyond ASCII outside a string or comment (TOML allows them only there)");
    CHECK(profile_error(dir.write("key.toml", "[caf\u00e9]\n")).find("key.toml:1:5: a character beyond ASCII") !=
          std::string::npos);
    // toml++ scans a value up to its end, through quotes: found by fuzz_inventory.
    CHECK(profile_error(dir.write("value.toml", "[base]\ntimezone = 53n\"\u00e9\"\n")).find("value.toml:2:") !=
          std::string::npos);
    // toml++ asks whether what follows a line-ending backslash is whitespace.
    CHECK(profile_error(dir.write("ml.toml", "description = \"\"\"a \\\n  \u00e9\"\"\"\n"))
              .find("ml.toml:2:3: a character") != std::string::npos);
    // Every kind of string, escaped quotes, and the up to two quotes that may end a multi-line one.
    std::string text = "# caf\u00e9\na = \"\u00e9 \\\" \u00e9\"\nb = 'l\u00e9'\n"
                       "c = \"\"\"\n\u00e9 \\\"\"\" \u00e9 \"\"\u00e9\"\"\"\"\nd = '''\u00e9 '' \u00e9'''''\n";
    Diagnostics diags;
    auto t = parse_toml_text(text, "ok.toml", diags);
    REQUIRE_MESSAGE(t.has_value(), (diags.empty() ? std::string() : diags[0]));
    CHECK((*t)["a"].value_or(std::string()) == "\u00e9 \" \u00e9");
    CHECK((*t)["c"].value_or(std::string()) == "\u00e9 \"\"\" \u00e9 \"\"\u00e9\"");
    CHECK((*t)["d"].value_or(std::string()) == "\u00e9 '' \u00e9''");
}

TEST_CASE("profile: an unknown top-level key with nothing close points at `profile keys`") {
    TempDir dir;
    std::string path = dir.write("p.toml", "frobnicator = true\n");
    std::string msg = profile_error(path);
    CHECK(contains(msg, path + ":1:1: unknown key 'frobnicator'"));
    CHECK(contains(msg, "nodectl profile keys"));
    CHECK_FALSE(contains(msg, "did you mean"));
}

TEST_CASE("profile: a value of the wrong type names its position, the expected and the actual type") {
    TempDir dir;
    std::string path = dir.write("p.toml", "[base]\npackages = 3\n");
    CHECK(profile_error(path) == path + ":2:12: 'base.packages' must be a list of strings, not integer");
}

TEST_CASE("profile: every problem of a file is reported at once, one per line") {
    TempDir dir;
    std::string path = dir.write("p.toml", "[base]\nhostnme = \"a\"\npackages = 3\ntimezone = \"Not A Zone\"\n");
    std::string msg = profile_error(path);
    CHECK(std::count(msg.begin(), msg.end(), '\n') == 2);
    CHECK(contains(msg, path + ":2:1: unknown key 'base.hostnme'"));
    CHECK(contains(msg, path + ":3:12: 'base.packages' must be a list of strings"));
    CHECK(contains(msg, path + ":4:12: 'base.timezone' must be a zoneinfo name"));
}

TEST_CASE("profile: value checks from the key table") {
    TempDir dir;
    std::string path = dir.write("p.toml", "[[base.files]]\npath = \"/etc/x\"\ncontent = \"\"\nmode = \"0999\"\n");
    CHECK(profile_error(path) ==
          path + ":4:8: 'base.files[].mode' must be an octal file mode as a string, such as \"0644\"");

    struct Refused {
        const char* what;
        std::string toml, error;  // the profile, and a part of its error message
    };
    const std::vector<Refused> cases = {
        {"mode given as a number", "[[base.files]]\npath = \"/etc/x\"\ncontent = \"\"\nmode = 644\n",
         ":4:8: 'base.files[].mode' must be a string, not integer"},
        {"relative file path", "[[base.files]]\npath = \"etc/x\"\ncontent = \"\"\n",
         ":2:8: 'base.files[].path' must be an absolute path"},
        {"path with ..", "[[base.files]]\npath = \"/etc/../root/x\"\ncontent = \"\"\n", "must not contain '..'"},
        {"bad host name", "[base]\nhostname = \"web_1\"\n", ":2:12: 'base.hostname' must be a valid host name"},
        {"unit without suffix", "[base]\nunits_enabled = [\"ssh\"]\n", "systemd unit name with its suffix"},
        {"bad package name", "[base]\npackages = [\"Curl\"]\n", "got \"Curl\""},
        {"apt proxy that is not a URL", "[base]\napt_proxy = \"cache:3142\"\n",
         "'base.apt_proxy' must be an http:// or https:// URL"},
        {"unknown key inside [[base.files]]", "[[base.files]]\npath = \"/x\"\ncontent = \"\"\nowner_ = \"root\"\n",
         ":4:1: unknown key 'base.files[].owner_'; did you mean 'owner'?"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        CHECK(contains(profile_error(dir.write("p.toml", c.toml)), c.error));
    }
}

TEST_CASE(
    "profile: a newline or control character is refused in every one-line value (audit: injection into units and config files)") {
    TempDir dir;
    SUBCASE("schedule: a newline would add a directive to the timer unit") {
        std::string path = dir.write("p.toml", "[backup]\nschedule = \"daily\\nOnCalendar=minutely\"\n");
        CHECK(profile_error(path) ==
              path + ":2:12: 'backup.schedule' must be one line without control characters (found byte 0x0a)");
    }
    SUBCASE("s3fs bucket, in a list of tables") {
        std::string path = dir.write("p.toml", "[[mounts.s3fs]]\nbucket = \"b\\rx\"\nwhere = \"/m\"\n");
        CHECK(contains(profile_error(path),
                       ":2:10: 'mounts.s3fs[].bucket' must be one line without control characters (found byte 0x0d)"));
    }
    SUBCASE("a map's key and a map's value") {
        std::string key = dir.write("k.toml", "[k3s.env]\n\"A\\nB\" = \"1\"\n");
        CHECK(contains(profile_error(key), "'k3s.env' has a key that must be one line"));
        std::string value = dir.write("v.toml", "[harden.kernel.sysctl]\n\"vm.swappiness\" = \"10\\nkernel.x = 1\"\n");
        CHECK(contains(profile_error(value), "'harden.kernel.sysctl' must be one line"));
    }
    SUBCASE("an escape sequence in a list entry") {
        std::string path = dir.write("p.toml", "[k3s]\ntls_san = [\"a\\u001b[2J\"]\n");
        CHECK(contains(profile_error(path), "(found byte 0x1b)"));
    }
    SUBCASE("multi-line text keys keep their newlines") {
        std::string path = dir.write(
            "p.toml", "description = \"two\\nlines\"\n[[base.files]]\npath = \"/etc/x\"\ncontent = \"a\\n\\tb\\n\"\n");
        load_profile_ok(path);
    }
    SUBCASE("after ${...} expansion too") {
        CHECK(check_expanded(ConfigFile::profile, "base.hostname", "web1\nx") ==
              "must be one line without control characters (found byte 0x0a)");
        CHECK(check_expanded(ConfigFile::profile, "base.hostname", "web1") == "");
    }
}

TEST_CASE("profile: values written into scripts, units and apt configuration keep to their grammar (audit: quoting)") {
    TempDir dir;
    auto refused = [&](const std::string& text, const std::string& key) {
        CAPTURE(text);
        std::string path = dir.write("p.toml", text);
        CHECK(contains(profile_error(path), "'" + key + "' must be"));
    };
    refused("[base]\napt_proxy = \"http://x\\\";Acquire::http::Proxy::x\\\"y\"\n", "base.apt_proxy");
    refused("[base]\napt_proxy = \"http://x;y\"\n", "base.apt_proxy");
    refused("[base]\napt_proxy = \"http://user@cache:3142\"\n", "base.apt_proxy");
    refused("[base]\napt_proxy = \"http://cache:3142/path\"\n", "base.apt_proxy");
    refused("[[mounts.nfs]]\nwhat = \"h:/x\"\nwhere = \"/mnt/a b\"\n", "mounts.nfs[].where");
    refused("[[mounts.nfs]]\nwhat = \"h:/x'y\"\nwhere = \"/mnt/x\"\n", "mounts.nfs[].what");
    refused("[[mounts.s3fs]]\nbucket = \"b,allow_other\"\nwhere = \"/mnt/x\"\n", "mounts.s3fs[].bucket");
    refused("[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/x'\"\n", "mounts.s3fs[].where");
    refused("[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/x\"\nregion = \"eu,allow_other\"\n",
            "mounts.s3fs[].region");
    refused("[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/x\"\nuse_cache = \"/c,allow_other\"\n",
            "mounts.s3fs[].use_cache");
    refused("[[mounts.s3fs]]\nbucket = \"b\"\nwhere = \"/mnt/x\"\nurl = \"http://h/%i\"\n", "mounts.s3fs[].url");
    refused("[[backup.targets]]\nname = \"t\"\ntype = \"s3\"\nbucket = \"a b\"\n", "backup.targets[].bucket");
    refused("[[backup.targets]]\nname = \"t\"\ntype = \"s3\"\nprefix = \"../x\"\n", "backup.targets[].prefix");
    refused("[[backup.targets]]\nname = \"t\"\ntype = \"s3\"\nprefix = \"/abs/\"\n", "backup.targets[].prefix");
    refused("[[backup.targets]]\nname = \"t\"\npath = \"/srv/a b\"\n", "backup.targets[].path");
    refused("[backup]\nmetrics_file = \"/var/lib/m%h.prom\"\n", "backup.metrics_file");
    refused("[harden.filesystem]\ntmp_size = \"25%,exec\"\n", "harden.filesystem.tmp_size");
    refused("[runtime]\nsandbox_image = \"pause\\\" x\"\n", "runtime.sandbox_image");
    refused("[[runtime.mirrors]]\nregistry = \"..\"\nendpoints = [\"http://198.18.0.1\"]\n",
            "runtime.mirrors[].registry");

    std::string ok = dir.write("ok.toml", R"(
[base]
apt_proxy = "http://apt-cache.lan:3142/"
[harden.filesystem]
tmp_size = "512m"
[runtime]
sandbox_image = "registry.local:5000/pause:3.9"
[[mounts.nfs]]
what = "198.18.60.1:/export/backup"
where = "/mnt/backup"
[[mounts.s3fs]]
bucket = "media"
where = "/var/www/magento/pub/media"
region = "eu-central-1"
use_cache = "/var/cache/s3fs"
url = "http://198.18.60.1:4568"
[[backup.targets]]
name = "s3"
type = "s3"
bucket = "backups"
prefix = "nodes/web1/"
[[backup.targets]]
name = "nfs"
path = "/mnt/backup/nodes"
)");
    load_profile_ok(ok);
}

TEST_CASE("profile: a TOML syntax error names file:line:col") {
    TempDir dir;
    std::string path = dir.write("p.toml", "[base]\nhostname = \"web1\nx = 1\n");
    CHECK(profile_error(path).rfind(path + ":2:", 0) == 0);
}

TEST_CASE("profile: extends and include merge in order, the later file winning, plain lists replaced") {
    TempDir dir;
    dir.write("common/base.toml", R"(description = "common"
[base]
hostname = "from-base"
timezone = "Etc/UTC"
packages = ["curl", "vim", "git"]
units_enabled = ["ssh.service"]
)");
    dir.write("common/extra.toml", R"([base]
timezone = "Europe/Berlin"
packages = ["htop"]
)");
    std::string main = dir.write("web.toml", R"(extends = "common/base.toml"
include = ["common/extra.toml"]
[base]
hostname = "web1"
)");
    Profile p = load_profile_ok(main);
    ConfigView base = p.section("base");
    CHECK(base.str("hostname") == "web1");  // the profile itself wins
    CHECK(base.str("timezone") == "Europe/Berlin");  // an include wins over what it extends
    CHECK(base.strings("packages") == std::vector<std::string>{"htop"});  // replaced, not appended
    CHECK(base.strings("units_enabled") == std::vector<std::string>{"ssh.service"});  // kept from base
    CHECK(p.table().contains("description"));
    CHECK_FALSE(p.table().contains("extends"));
    CHECK_FALSE(p.table().contains("include"));
    REQUIRE(p.files().size() == 3);
    CHECK(p.files()[0].ends_with("common/base.toml"));
    CHECK(p.files()[1].ends_with("common/extra.toml"));
    CHECK(p.files()[2].ends_with("web.toml"));
    // Merged values keep where they came from.
    CHECK(contains(base.where("packages"), "extra.toml:3:12"));
    CHECK(contains(base.where("hostname"), "web.toml:4:12"));
}

TEST_CASE("profile: the digest depends on the merged content only") {
    TempDir dir;
    std::string a = dir.write("a.toml", "[base]\nhostname = \"web1\"\n");
    std::string b = dir.write("b.toml", "# same thing, written differently\n[base]\n  hostname   =   \"web1\"\n");
    std::string c = dir.write("c.toml", "[base]\nhostname = \"web2\"\n");
    std::string da = load_profile_ok(a).digest();
    CHECK(da.size() == 64);
    CHECK(da.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(load_profile_ok(b).digest() == da);
    CHECK(load_profile_ok(c).digest() != da);
}

TEST_CASE("profile: include cycles are reported, not followed") {
    TempDir dir;
    SUBCASE("two files including each other") {
        dir.write("b.toml", "include = [\"a.toml\"]\n");
        std::string a = dir.write("a.toml", "include = [\"b.toml\"]\n");
        std::string msg = profile_error(a);
        CHECK(contains(msg, "b.toml:1:12: profile includes itself"));
        CHECK(contains(msg, "a.toml -> "));
    }
    SUBCASE("a profile extending itself") {
        std::string a = dir.write("a.toml", "extends = \"a.toml\"\n");
        CHECK(contains(profile_error(a), "a.toml:1:11: profile includes itself"));
    }
}

TEST_CASE("profile: an error inside an included file names that file and line") {
    TempDir dir;
    std::string inc = dir.write("inc/common.toml", "[base]\ntimezone = \"Etc/UTC\"\npackagez = [\"curl\"]\n");
    std::string main = dir.write("main.toml", "include = [\"inc/common.toml\"]\n[base]\nhostname = \"h\"\n");
    std::string msg = profile_error(main);
    CHECK(contains(msg, inc + ":3:1: unknown key 'base.packagez'; did you mean 'packages'?"));
    CHECK_FALSE(contains(msg, "main.toml:"));
}

TEST_CASE("profile: a missing included file is reported at the include line") {
    TempDir dir;
    std::string main = dir.write("main.toml", "description = \"x\"\ninclude = [\"nope.toml\"]\n");
    std::string msg = profile_error(main);
    CHECK(contains(msg, main + ":2:12: included profile "));
    CHECK(contains(msg, "nope.toml does not exist"));
}

TEST_CASE("profile: [[base.files]] needs exactly one of content or source, and a path") {
    TempDir dir;
    dir.write("motd", "hi\n");
    SUBCASE("both") {
        std::string p =
            dir.write("p.toml", "[base]\n\n[[base.files]]\npath = \"/etc/motd\"\ncontent = \"x\"\nsource = \"motd\"\n");
        std::string msg = profile_error(p);
        CHECK(contains(msg, p + ":3:1: [[base.files]] needs exactly one of 'content' or 'source'"));
    }
    SUBCASE("neither") {
        std::string p = dir.write("p.toml", "[[base.files]]\npath = \"/etc/motd\"\n");
        CHECK(contains(profile_error(p), "needs exactly one of 'content' or 'source'"));
    }
    SUBCASE("no path") {
        std::string p = dir.write("p.toml", "[[base.files]]\ncontent = \"x\"\n");
        CHECK(contains(profile_error(p), p + ":1:1: [[base.files]] needs 'path'"));
    }
    SUBCASE("in an included file, the included file is named") {
        std::string inc =
            dir.write("inc.toml", "[[base.files]]\npath = \"/etc/motd\"\ncontent = \"x\"\nsource = \"motd\"\n");
        std::string p = dir.write("p.toml", "include = [\"inc.toml\"]\n");
        CHECK(contains(profile_error(p), inc + ":1:1: [[base.files]] needs exactly one of"));
    }
}

TEST_CASE("profile: a file source is relative to the profile naming it, and must exist") {
    TempDir dir;
    std::string motd = dir.write("inc/files/motd", "hi\n");
    dir.write("inc/common.toml", "[[base.files]]\npath = \"/etc/motd\"\nsource = \"files/motd\"\n");
    std::string main = dir.write("main.toml", "include = [\"inc/common.toml\"]\n");
    Profile p = load_profile_ok(main);
    auto files = p.section("base").tables("files");
    REQUIRE(files.size() == 1);
    CHECK(std::filesystem::path(files[0].str("source")) == std::filesystem::path(motd));

    std::string bad = dir.write("bad.toml", "[[base.files]]\npath = \"/etc/motd\"\nsource = \"files/none\"\n");
    std::string msg = profile_error(bad);
    CHECK(contains(msg, bad + ":3:10: 'base.files[].source' file "));
    CHECK(contains(msg, "files/none does not exist"));
}

TEST_CASE("profile: a profile file that does not exist") {
    std::string msg = profile_error("/nonexistent/nodectl-unit/p.toml");
    CHECK(contains(msg, "/nonexistent/nodectl-unit/p.toml: cannot read file"));
}

// The profiles shipped in profiles/ must all load; an empty or missing folder fails this test.
TEST_CASE("profiles/*.toml: every shipped profile loads without error") {
    namespace fs = std::filesystem;
    fs::path dir = fs::path(NODECTL_SOURCE_DIR) / "profiles";
    std::vector<fs::path> found;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file() && it->path().extension() == ".toml") {
            found.push_back(it->path());
        }
    }
    std::sort(found.begin(), found.end());
    REQUIRE_MESSAGE(!found.empty(), "no profiles in " << dir.string());
    for (const auto& p : found) {
        CAPTURE(p.string());
        auto loaded = load_profile(p.string());
        CHECK_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
        if (loaded.ok()) {
            // And the modules can turn it into steps, for a host that has every ${vars.NAME} the
            // profile's files mention.
            HostSpec host;
            host.name = host.address = "test-host";
            for (const auto& v : referenced_vars(loaded->files())) {
                bool url = v.ends_with("proxy") || v.ends_with("url");
                bool key = v.ends_with("_key");
                host.vars[v] =
                    url   ? "http://198.18.0.1:3142"
                    : key ? "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0fakeKeyForParsingOnly0000000000000000000 test"
                          : "test-" + v;
            }
            auto steps = build_steps(*loaded, host);
            CHECK_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.error().message));
        }
    }
}

TEST_CASE("profile: [[base.files]] from included profiles are appended; a later entry for a path wins") {
    TempDir dir;
    dir.write("common.toml", "[[base.files]]\npath = \"/etc/motd\"\ncontent = \"common\\n\"\n"
                             "[[base.files]]\npath = \"/etc/issue\"\ncontent = \"issue\\n\"\n");
    std::string path =
        dir.write("site.toml", "include = [\"common.toml\"]\n"
                               "[[base.files]]\npath = \"/etc/role\"\ncontent = \"web\\n\"\n"
                               "[[base.files]]\npath = \"/etc/motd\"\ncontent = \"site\\n\"\nmode = \"0600\"\n");
    auto profile = load_profile(path);
    REQUIRE_MESSAGE(profile.ok(), (profile.ok() ? "" : profile.error().message));
    CHECK(profile->section("base").tables("files").size() == 4);
    HostSpec host;
    host.name = host.address = "h";
    auto steps = base::steps(ModuleContext{*profile, host});
    REQUIRE(steps.ok());
    std::vector<std::string> ids;
    for (const auto& s : *steps) {
        ids.push_back(s->id());
    }
    CHECK(ids == std::vector<std::string>{"base/file:/etc/motd", "base/file:/etc/issue", "base/file:/etc/role"});
    testing::FakeTarget t;
    for (auto& s : *steps) {
        REQUIRE(s->apply(t, Plan{}).ok());
    }
    CHECK(t.host().content("/etc/motd") == "site\n");
    CHECK(t.host().files.at("/etc/motd").mode == 0600);
}

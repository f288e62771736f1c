// ConfigView: reading validated tables with the key table's defaults, and the key table itself.
#include "test_support.hpp"

#include "nodectl/config.hpp"

#include <doctest/doctest.h>

#include <set>
#include <stdexcept>

using namespace nodectl;
using nodectl::testing::load_profile_ok;
using nodectl::testing::TempDir;

TEST_CASE("ConfigView: [[base.files]] defaults: mode 0644, root:root, not sensitive") {
    TempDir dir;
    std::string path = dir.write("p.toml", R"([[base.files]]
path = "/etc/motd"
content = "hi"

[[base.files]]
path = "/etc/key"
content = "k"
mode = "0600"
owner = "www-data"
group = "adm"
sensitive = true
)");
    Profile p = load_profile_ok(path);
    auto files = p.section("base").tables("files");
    REQUIRE(files.size() == 2);

    CHECK_FALSE(files[0].has("mode"));
    CHECK(files[0].str("mode") == "0644");
    CHECK(std::stoul(files[0].str("mode"), nullptr, 8) == 0644);
    CHECK(files[0].str("owner") == "root");
    CHECK(files[0].str("group") == "root");
    CHECK(files[0].boolean("sensitive") == false);
    CHECK(files[0].str("source").empty());

    CHECK(files[1].has("mode"));
    CHECK(files[1].str("mode") == "0600");
    CHECK(files[1].str("owner") == "www-data");
    CHECK(files[1].str("group") == "adm");
    CHECK(files[1].boolean("sensitive") == true);

    CHECK(files[1].where("mode") == path + ":8:8");
    CHECK(files[1].where() == path + ":5:1");  // the table, for a key it does not have
    CHECK(files[1].where("source") == path + ":5:1");
}

TEST_CASE("ConfigView: absent keys and sections read as their defaults") {
    TempDir dir;
    std::string path = dir.write("p.toml", "description = \"nothing else\"\n");
    Profile p = load_profile_ok(path);
    ConfigView base = p.section("base");
    CHECK_FALSE(base.has("hostname"));
    CHECK(base.str("hostname").empty());
    CHECK(base.strings("packages").empty());
    CHECK(base.tables("files").empty());
}

TEST_CASE("ConfigView: inventory defaults and maps") {
    TempDir dir;
    std::string path = dir.write("inv.toml", R"([defaults]
sudo_password = { file = "/etc/nodectl/pw" }
[[hosts]]
address = "h"
vars = { a = "1" }
)");
    // Read the inventory's own table through a view, the way load_inventory does.
    auto table = toml::parse_file(path);
    ConfigView root(ConfigFile::inventory, &table, "");
    ConfigView defaults = root.section("defaults");
    CHECK(defaults.integer("port") == 22);
    CHECK(defaults.str("user").empty());  // no default: ~/.ssh/config or the local user, as ssh
    CHECK(defaults.str("sudo") == "none");
    auto secret = defaults.secret("sudo_password");
    REQUIRE(secret.has_value());
    CHECK(secret->file == "/etc/nodectl/pw");
    CHECK(secret->describe() == "file /etc/nodectl/pw");
    auto hosts = root.tables("hosts");
    REQUIRE(hosts.size() == 1);
    CHECK(hosts[0].string_map("vars") == std::map<std::string, std::string>{{"a", "1"}});
    CHECK(hosts[0].integer("port") == 22);
    CHECK_FALSE(hosts[0].secret("sudo_password").has_value());
}

TEST_CASE("ConfigView: reading a key that is not in the key table is a programming error") {
    TempDir dir;
    Profile p = load_profile_ok(dir.write("p.toml", "[base]\nhostname = \"h\"\n"));
    CHECK_THROWS_AS(p.section("base").str("hostnme"), std::logic_error);
    CHECK_THROWS_AS(p.section("base").strings("files.path"), std::logic_error);
}

TEST_CASE("key table: names are unique per file, and every default parses as its type") {
    std::set<std::pair<int, std::string>> seen;
    for (const auto& k : config_keys()) {
        CAPTURE(k.name);
        CHECK(seen.insert({static_cast<int>(k.file), std::string(k.name)}).second);
        CHECK_FALSE(k.doc.empty());
        CHECK(find_key(k.file, k.name) == &k);
        if (!k.default_value.empty()) {
            toml::table t;
            CHECK_NOTHROW(t = toml::parse("v = " + std::string(k.default_value)));
            if (k.validate) {
                CHECK(k.validate(*t.get("v")).empty());  // a default must pass its own check
            }
        }
    }
    CHECK(find_key(ConfigFile::profile, "hosts[].port") == nullptr);
    CHECK(find_key(ConfigFile::inventory, "hosts[].port") != nullptr);
    CHECK(find_key(ConfigFile::inventory, "defaults.sudo") != nullptr);
    CHECK(type_name(ValueType::string_list) == "list of strings");
}

// `nodectl local`: the pure parts (subnets, limits, names). Booting is tested for real in
// tests/integration/test_local.sh.
#include "modules/local/detail.hpp"
#include "modules/local/local.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <toml++/toml.h>

#include <fstream>

using namespace nodectl;
// nodectl::local's names unqualified in this file only: its own namespace keeps the using-directive
// out of the test files compiled together with this one (unity build).
namespace local_test {
using namespace nodectl::local;

TEST_CASE("local: a subnet is parsed, its addresses numbered, bad ones refused with the reason") {
    auto s = parse_subnet("198.18.50.0/24");
    REQUIRE(s.ok());
    CHECK(s->text() == "198.18.50.0/24");
    CHECK(s->address(1) == "198.18.50.1");
    CHECK(s->address(3) == "198.18.50.3");
    CHECK(s->size() == 256);
    CHECK(parse_subnet("198.18.50.0/28")->size() == 16);

    auto host_bits = parse_subnet("198.18.50.7/24");
    REQUIRE_FALSE(host_bits.ok());
    CHECK(host_bits.error().message.find("198.18.50.0/24") != std::string::npos);
    CHECK_FALSE(parse_subnet("198.18.50.0").ok());
    CHECK_FALSE(parse_subnet("198.18.50.0/33").ok());
    CHECK_FALSE(parse_subnet("198.18.0.0/8").ok());  // too wide
    CHECK_FALSE(parse_subnet("198.18.50.0/30").ok());  // too narrow
    CHECK_FALSE(parse_subnet("example.org/24").ok());
}

TEST_CASE("local: overlaps with the host's addresses and routes are found") {
    Subnet a = *parse_subnet("198.18.50.0/24");
    CHECK(a.overlaps(*parse_subnet("198.18.0.0/16")));
    CHECK(parse_subnet("198.18.0.0/16")->overlaps(a));
    CHECK_FALSE(a.overlaps(*parse_subnet("198.18.51.0/24")));

    auto used =
        used_subnets("2: eth0    inet 198.18.7.9/24 brd 198.18.7.255 scope global eth0\\       valid_lft forever\n"
                     "1: lo    inet 127.0.0.1/8 scope host lo\n",
                     "default via 198.18.7.1 dev eth0\n198.18.60.0/23 dev nlbr-x proto kernel scope link\n"
                     "local 198.18.7.9 dev eth0 table local proto kernel scope host src 198.18.7.9\n"
                     "broadcast 198.18.7.255 dev eth0 table local\n");
    REQUIRE(used.size() == 5);
    CHECK(used[0].text() == "198.18.7.0/24");
    CHECK(used[1].text() == "127.0.0.0/8");
    CHECK(used[2].text() == "198.18.60.0/23");
    CHECK(used[3].text() == "198.18.7.9/32");
    auto overlaps_any = [&](const char* cidr) {
        Subnet s = *parse_subnet(cidr);
        for (const auto& u : used) {
            if (u.overlaps(s)) {
                return true;
            }
        }
        return false;
    };
    CHECK(overlaps_any("198.18.61.0/24"));  // inside the /23 route
    CHECK(overlaps_any("198.18.7.0/28"));
    CHECK_FALSE(overlaps_any("198.18.62.0/24"));
}

TEST_CASE("local: memory and CPU limits") {
    CHECK(parse_memory("512M") == 512ull << 20);
    CHECK(parse_memory("2G") == 2ull << 30);
    CHECK(parse_memory("1073741824") == 1ull << 30);
    CHECK_FALSE(parse_memory("1M"));  // below 64 MiB nothing boots
    CHECK_FALSE(parse_memory("lots"));
    CHECK_FALSE(parse_memory("-1G"));
    CHECK_FALSE(parse_memory(""));
    CHECK(parse_cpus("1") == 100u);
    CHECK(parse_cpus("0.5") == 50u);
    CHECK(parse_cpus("2.25") == 225u);
    CHECK_FALSE(parse_cpus("0"));
    CHECK_FALSE(parse_cpus("1.234"));
    CHECK_FALSE(parse_cpus("1e3"));
}

TEST_CASE("local: names, bridges and the rootfs cache key") {
    CHECK(valid_name("dev"));
    CHECK(valid_name("ci-2"));
    CHECK_FALSE(valid_name("Dev"));
    CHECK_FALSE(valid_name("2dev"));
    CHECK_FALSE(valid_name("dev-"));
    CHECK_FALSE(valid_name("a/b"));
    CHECK_FALSE(valid_name("abcdefghijklmnopqrstu"));  // 21
    CHECK(bridge_name("dev").size() == 15);  // IFNAMSIZ - 1
    CHECK(bridge_name("dev") != bridge_name("dev2"));
    CHECK(bridge_name("dev").starts_with("nlbr-"));
    CHECK(rootfs_key("bookworm", {"a", "b"}) == rootfs_key("bookworm", {"b", "a"}));
    CHECK(rootfs_key("bookworm", {"a"}) != rootfs_key("trixie", {"a"}));
    CHECK(rootfs_key("bookworm", {"a"}) != rootfs_key("bookworm", {"a", "b"}));
}

TEST_CASE("local: --publish [ADDRESS:]HOST_PORT:NODE_PORT") {
    auto p = parse_publish("8443:443");
    REQUIRE(p.ok());
    CHECK(p->address == "127.0.0.1");  // this machine only, unless asked
    CHECK(p->host_port == 8443);
    CHECK(p->node_port == 443);
    CHECK(p->text() == "127.0.0.1:8443:443");
    auto all = parse_publish("0.0.0.0:8080:80");
    REQUIRE(all.ok());
    CHECK(all->address == "0.0.0.0");
    CHECK(parse_publish(all->text()).value() == *all);  // env.json round trip
    for (const char* bad : {"", "80", "a:80", "80:0", "0:80", "65536:80", "1:2:3:4", "example.org:80:80",
                            "198.18.0.1:80", "-1:80", "80:80 ", ":80"}) {
        CAPTURE(bad);
        auto r = parse_publish(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("HOST_PORT:NODE_PORT") != std::string::npos);
    }
}

TEST_CASE("local: --suite and --bind are checked before anything is made") {
    for (const char* s : {"bookworm", "trixie", "bullseye"}) {
        CHECK(check_suite(s).ok());
    }
    for (const char* s : {"", "sid", "Bookworm", "bookworm "}) {
        CAPTURE(s);
        auto r = check_suite(s);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("bookworm, trixie or bullseye") != std::string::npos);
    }
    CHECK(check_bind("/dev/null").ok());
    CHECK(check_bind("/tmp:/mnt/host-tmp").ok());
    for (const char* b : {"", "relative", "dev/null", "/dev/null:", "/dev/null:mnt", "/dev/null:/a:/b", "/dev/null,ro",
                          "/tmp/a b", "/tmp/$(id)", "/tmp;true"}) {
        CAPTURE(b);
        auto r = check_bind(b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("SOURCE[:TARGET]") != std::string::npos);
    }
    auto missing = check_bind("/nonexistent/nodectl-test-device");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("does not exist") != std::string::npos);
}

TEST_CASE("local: the written inventory parses back, with every node's vars; a range of nodes") {
    Environment env;
    env.name = "dev";
    env.dir = "/var/lib/nodectl/local/dev";
    env.nodes = {{"dev-1", "198.18.50.2"}, {"dev-2", "198.18.50.3"}, {"dev-3", "198.18.50.4"}};
    env.vars = {{"apt_proxy", "http://198.18.50.1:3142"}, {"admin_key", "ssh-ed25519 AAAA \"x\" = y\\z"}};
    auto all = toml::parse(inventory_text(env));
    CHECK(all["defaults"]["user"].value_or(std::string()) == "root");
    CHECK(all["defaults"]["identity"].value_or(std::string()) == "/var/lib/nodectl/local/dev/id_ed25519");
    CHECK(all["defaults"]["known_hosts"].value_or(std::string()) == "/var/lib/nodectl/local/dev/known_hosts");
    auto* hosts = all["hosts"].as_array();
    REQUIRE(hosts);
    REQUIRE(hosts->size() == 3);
    for (const auto& h : *hosts) {
        CHECK((*h.as_table())["vars"]["admin_key"].value_or(std::string()) == "ssh-ed25519 AAAA \"x\" = y\\z");
    }
    auto agents = toml::parse(inventory_text(env, 1));
    REQUIRE(agents["hosts"].as_array()->size() == 2);
    CHECK(agents["hosts"][0]["name"].value_or(std::string()) == "dev-2");
    auto server = toml::parse(inventory_text(env, 0, 1));
    REQUIRE(server["hosts"].as_array()->size() == 1);
    CHECK(server["hosts"][0]["address"].value_or(std::string()) == "198.18.50.2");
}

TEST_CASE("local: the kernel's filesystems") {
    const std::string text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";
    CHECK(kernel_has_filesystem(text, "overlay"));
    CHECK(kernel_has_filesystem(text, "ext4"));
    CHECK_FALSE(kernel_has_filesystem(text, "overlayfs"));
    CHECK_FALSE(kernel_has_filesystem("nodev\tsysfs\n", "overlay"));
    CHECK_FALSE(kernel_has_filesystem("", "overlay"));
}

TEST_CASE("local: --var KEY=VALUE for the inventory") {
    auto v = parse_var("apt_proxy=http://198.18.50.1:3142");
    REQUIRE(v.ok());
    CHECK(v->first == "apt_proxy");
    CHECK(v->second == "http://198.18.50.1:3142");
    auto key = parse_var("admin_key=ssh-ed25519 AAAA= x@y \"quoted\" = sign");  // anything on one line
    REQUIRE(key.ok());
    CHECK(key->second == "ssh-ed25519 AAAA= x@y \"quoted\" = sign");
    CHECK(parse_var("empty=")->second.empty());
    for (const char* bad : {"", "novalue", "=x", "1key=x", "a-b=x", "a.b=x", "key=two\nlines", "key=cr\r"}) {
        CAPTURE(bad);
        auto r = parse_var(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::usage);
    }
}

TEST_CASE("local: the Debian mirror comes from the host's apt sources") {
    testing::TempDir dir;
    auto put = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir.file(name)) << text;
        return dir.file(name);
    };
    auto deb822 =
        put("debian.sources", "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
                              "Suites: bookworm\n\nTypes: deb\nURIs: http://security.example/debian-security\n");
    auto security_first = put("sec.sources", "URIs: http://deb.example/debian-security https://deb.example/debian\n");
    auto one_line = put("sources.list", "# deb http://commented.example/debian bookworm main\n"
                                        "deb http://security.example/debian-security bookworm-security main\n"
                                        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n");
    auto src_only = put("src.list", "deb-src http://src.example/debian bookworm main\n");
    using detail::debian_mirror;
    CHECK(debian_mirror({deb822}) == "http://mirror.example/debian");
    CHECK(debian_mirror({security_first}) == "https://deb.example/debian");
    CHECK(debian_mirror({one_line}) == "http://one.example/debian");
    CHECK(debian_mirror({src_only, dir.file("missing.list"), one_line}) == "http://one.example/debian");
    CHECK(debian_mirror({one_line, deb822}) == "http://one.example/debian");  // the first file that names one
    CHECK(debian_mirror({src_only}) == "http://deb.debian.org/debian");
    CHECK(debian_mirror({}) == "http://deb.debian.org/debian");
}

}  // namespace local_test

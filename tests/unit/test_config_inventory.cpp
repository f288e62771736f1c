// Inventories (defaults and per-host values), host arguments from the command line, and ${...}
// expansion in profile strings.
#include "test_support.hpp"

#include "config/ssh_destination.hpp"
#include "nodectl/config.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::TempDir;

namespace {

// The error message of an inventory that must not load.
std::string inventory_error(const std::string& path) {
    auto inv = load_inventory(path);
    REQUIRE_FALSE(inv.ok());
    CHECK(inv.error().code == ErrorCode::config);
    return inv.error().message;
}

}  // namespace

TEST_CASE("inventory: [defaults] fill what a host leaves out; a host's own value wins") {
    TempDir dir;
    std::string path = dir.write("hosts.toml", R"([defaults]
user = "admin"
port = 2222
sudo = "nopasswd"
identity = "keys/id_ed25519"
known_hosts = "keys/known_hosts"
proxy_jump = "bastion.example.org"

[[hosts]]
address = "198.18.99.1"

[[hosts]]
name = "db"
address = "db.example.org"
user = "root"
port = 22
sudo = "none"
identity = "/etc/nodectl/db.key"
known_hosts = "/etc/nodectl/known_hosts"
roles = ["db", "backup"]
vars = { site = "fra", rack = "3" }
)");
    auto inv = load_inventory(path);
    REQUIRE_MESSAGE(inv.ok(), (inv.ok() ? "" : inv.error().message));
    REQUIRE(inv->size() == 2);

    const HostSpec& a = (*inv)[0];
    CHECK(a.name == "198.18.99.1");  // the address, when there is no name
    CHECK(a.address == "198.18.99.1");
    CHECK(a.user == std::optional<std::string>("admin"));
    CHECK(a.port == std::optional<int>(2222));
    CHECK(a.sudo == SudoMode::nopasswd);
    CHECK(a.identity == std::optional<std::string>((dir.path() / "keys/id_ed25519").string()));  // relative to the file
    CHECK(a.known_hosts == std::optional<std::string>((dir.path() / "keys/known_hosts").string()));
    CHECK(a.proxy_jump == std::optional<std::string>("bastion.example.org"));
    CHECK(a.roles.empty());

    const HostSpec& db = (*inv)[1];
    CHECK(db.name == "db");
    CHECK(db.user == std::optional<std::string>("root"));
    CHECK(db.port == std::optional<int>(22));
    CHECK(db.sudo == SudoMode::none);
    CHECK(db.identity == std::optional<std::string>("/etc/nodectl/db.key"));
    CHECK(db.known_hosts == std::optional<std::string>("/etc/nodectl/known_hosts"));
    CHECK(db.proxy_jump == std::optional<std::string>("bastion.example.org"));
    CHECK(db.roles == std::vector<std::string>{"db", "backup"});
    CHECK(db.vars == std::map<std::string, std::string>{{"site", "fra"}, {"rack", "3"}});
}

TEST_CASE("inventory: without [defaults], a host needs only its address") {
    TempDir dir;
    std::string path = dir.write("hosts.toml", "[[hosts]]\naddress = \"h1\"\n");
    auto inv = load_inventory(path);
    REQUIRE(inv.ok());
    REQUIRE(inv->size() == 1);
    CHECK((*inv)[0].name == "h1");
    CHECK((*inv)[0].sudo == SudoMode::none);
    CHECK_FALSE((*inv)[0].port.has_value());  // left to ssh and ~/.ssh/config
    CHECK_FALSE((*inv)[0].identity.has_value());
    CHECK_FALSE((*inv)[0].known_hosts.has_value());
    CHECK_FALSE((*inv)[0].sudo_password.has_value());
}

TEST_CASE("inventory: sudo password secret from defaults") {
    TempDir dir;
    std::string path = dir.write("hosts.toml", R"([defaults]
sudo = "password"
sudo_password = { env = "NODECTL_SUDO_PW" }
[[hosts]]
address = "h1"
)");
    auto inv = load_inventory(path);
    REQUIRE_MESSAGE(inv.ok(), (inv.ok() ? "" : inv.error().message));
    REQUIRE((*inv)[0].sudo_password.has_value());
    CHECK((*inv)[0].sudo == SudoMode::password);
    CHECK((*inv)[0].sudo_password->env == "NODECTL_SUDO_PW");
    CHECK((*inv)[0].sudo_password->file.empty());
    CHECK((*inv)[0].sudo_password->describe() == "environment variable NODECTL_SUDO_PW");
}

TEST_CASE("inventory: errors name file:line:col") {
    TempDir dir;
    SUBCASE("port out of range") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\naddress = \"h1\"\nport = 70000\n");
        CHECK(inventory_error(path) == path + ":3:8: 'hosts[].port' must be a TCP port between 1 and 65535");
    }
    SUBCASE("port 0 in [defaults]") {
        std::string path = dir.write("hosts.toml", "[defaults]\nport = 0\n");
        CHECK(contains(inventory_error(path), path + ":2:8: 'defaults.port' must be a TCP port"));
    }
    SUBCASE("unknown sudo mode") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\naddress = \"h1\"\nsudo = \"yes\"\n");
        CHECK(contains(inventory_error(path),
                       ":3:8: 'hosts[].sudo' must be one of \"none\", \"nopasswd\", \"password\""));
    }
    SUBCASE("misspelled key") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\nadress = \"h1\"\n");
        CHECK(contains(inventory_error(path), ":2:1: unknown key 'hosts[].adress'; did you mean 'address'?"));
    }
    SUBCASE("secret in the wrong shape") {
        std::string path = dir.write("hosts.toml", "[defaults]\nsudo_password = \"hunter2\"\n");
        CHECK(contains(
            inventory_error(path),
            "'defaults.sudo_password' must be a secret ({ file = \"PATH\" } or { env = \"VAR\" }), not string"));
    }
    SUBCASE("host without address") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\nname = \"x\"\n");
        CHECK(contains(inventory_error(path), path + ":1:1: [[hosts]] needs 'address'"));
    }
    SUBCASE("sudo = password without a password") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\naddress = \"h1\"\nsudo = \"password\"\n");
        CHECK(contains(inventory_error(path), "host 'h1' has sudo = \"password\" but no sudo_password"));
    }
    SUBCASE("a proxy_jump that is an ssh option") {
        std::string path =
            dir.write("hosts.toml", "[[hosts]]\naddress = \"h1\"\nproxy_jump = \"-oProxyCommand=touch /tmp/x\"\n");
        CHECK(contains(inventory_error(path), ":3:14: 'hosts[].proxy_jump' must be \"[user@]host[:port]\""));
    }
    SUBCASE("an address with shell syntax") {
        std::string path = dir.write("hosts.toml", "[[hosts]]\naddress = \"h1'$(id)'\"\n");
        CHECK(contains(inventory_error(path), ":2:11: 'hosts[].address' must be a host name or an IP address"));
    }
    SUBCASE("the same name twice") {
        std::string path = dir.write(
            "hosts.toml", "[[hosts]]\naddress = \"h1\"\n[[hosts]]\nname = \"h1\"\naddress = \"198.18.99.1\"\n");
        CHECK(contains(inventory_error(path), path + ":3:1: host name 'h1' is used twice"));
    }
}

TEST_CASE("parse_host_arg: user@host[:port], bare host, [v6]:port") {
    auto a = parse_host_arg("deploy@web1.example.org:2222");
    REQUIRE(a.ok());
    CHECK(a->user == std::optional<std::string>("deploy"));
    CHECK(a->address == "web1.example.org");
    CHECK(a->port == std::optional<int>(2222));
    CHECK(a->name == "web1.example.org");

    auto b = parse_host_arg("198.18.98.3");
    REQUIRE(b.ok());
    CHECK_FALSE(b->user.has_value());
    CHECK_FALSE(b->port.has_value());
    CHECK(b->address == "198.18.98.3");

    auto c = parse_host_arg("[::1]:22");
    REQUIRE(c.ok());
    CHECK(c->address == "::1");
    CHECK(c->port == std::optional<int>(22));

    auto d = parse_host_arg("root@[fe80::1]");
    REQUIRE(d.ok());
    CHECK(d->address == "fe80::1");
    CHECK(d->user == std::optional<std::string>("root"));
}

TEST_CASE("parse_ssh_destination: the jump host forms of ssh -J") {
    auto a = parse_ssh_destination("jump@bastion.example.org:2222");
    REQUIRE(a.has_value());
    CHECK(a->user == std::optional<std::string>("jump"));
    CHECK(a->host == "bastion.example.org");
    CHECK(a->port == std::optional<int>(2222));
    auto b = parse_ssh_destination("[fe80::1]:22");
    REQUIRE(b.has_value());
    CHECK(b->host == "fe80::1");
    CHECK_FALSE(parse_ssh_destination("-oProxyCommand=x").has_value());
    CHECK_FALSE(parse_ssh_destination("bastion -oX=y").has_value());
    CHECK(is_ssh_host("198.18.3.4"));
    CHECK(is_ssh_host("::1"));
    CHECK_FALSE(is_ssh_host("-p"));
    CHECK_FALSE(is_ssh_host("a'b"));
}

TEST_CASE("parse_host_arg: rejects what is not a host") {
    for (std::string bad : {"a@b@c", "host:70000", "host:0", "", "host:", "user@", "ho st", "host:22:22", "host;rm",
                            "-oProxyCommand=x", "root@-oProxyCommand=x", "-l@host", "h'$(id)'", "[::1;x]:22"}) {
        CAPTURE(bad);
        auto r = parse_host_arg(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::usage);
    }
    CHECK(parse_host_arg("host:70000").error().message.find("port must be between 1 and 65535") != std::string::npos);
    CHECK(parse_host_arg("a@b@c").error().message.find("'a@b@c' is not a host") != std::string::npos);
    CHECK(parse_host_arg("host:65535").ok());
}

TEST_CASE("expand_vars: host name, address and inventory vars") {
    HostSpec h;
    h.name = "web1";
    h.address = "198.18.99.7";
    h.vars = {{"x", "42"}, {"site", "fra"}};
    auto r = expand_vars("${host.name}.${vars.site}.example.org (${host.address}) x=${vars.x}", h, "p.toml:3:5");
    REQUIRE(r.ok());
    CHECK(*r == "web1.fra.example.org (198.18.99.7) x=42");

    auto plain = expand_vars("no variables, $HOME and {braces} stay", h, "w");
    REQUIRE(plain.ok());
    CHECK(*plain == "no variables, $HOME and {braces} stay");
}

TEST_CASE("expand_vars: unknown and unterminated variables are errors naming where they are") {
    HostSpec h;
    h.name = "web1";
    auto unknown = expand_vars("${vars.missing}", h, "p.toml:3:5");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().code == ErrorCode::config);
    CHECK(unknown.error().message.find("p.toml:3:5: unknown variable ${vars.missing} for host 'web1'") == 0);

    auto other = expand_vars("${env.HOME}", h, "w");
    CHECK_FALSE(other.ok());

    auto open = expand_vars("abc ${host.name", h, "p.toml:1:1");
    REQUIRE_FALSE(open.ok());
    CHECK(open.error().message.find("p.toml:1:1: unterminated ${") == 0);
}

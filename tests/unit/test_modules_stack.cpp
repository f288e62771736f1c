#include "modules/stack/stack.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <yaml-cpp/yaml.h>

#include <string>

using namespace nodectl;
using nodectl::testing::load_sites;

namespace {

// A minimal valid site; `extra` is appended inside [[stack.sites]] (before its sub-tables).
std::string site_profile(const testing::TempDir& dir, const std::string& extra = "", const std::string& tail = "",
                         bool tls = true) {
    std::string db = dir.write("db.pw", "db-secret-value\n", 0600);
    std::string repl = dir.write("repl.pw", "repl-secret-value\n", 0600);
    std::string redis = dir.write("redis.pw", "redis-secret-value\n", 0600);
    std::string crypt = dir.write("crypt.key", "crypt-secret-value\n", 0600);
    std::string s3 = dir.write("s3.creds", "AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=SK\n", 0600);
    std::string cert = dir.write("tls.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    std::string key =
        dir.write("tls.key", "-----BEGIN PRIVATE KEY-----\ntls-secret-value\n-----END PRIVATE KEY-----\n", 0600);
    return "[[mounts.s3fs]]\nbucket = \"media\"\nwhere = \"/srv/media\"\nallow_other = true\n"
           "credentials = { file = \"" +
           s3 +
           "\" }\n\n"
           "[[stack.sites]]\nname = \"shop\"\nhosts = [\"shop.example.org\"]\nmedia_host_path = \"/srv/media\"\n"
           "search_endpoint = \"http://opensearch.search:9200\"\n" +
           extra +
           (tls ? "[stack.sites.tls]\ncert_file = \"" + cert + "\"\nkey = { file = \"" + key + "\" }\n"
                : std::string()) +
           "[stack.sites.secrets]\n"
           "db_password = { file = \"" +
           db + "\" }\nreplication_password = { file = \"" + repl +
           "\" }\n"
           "redis_password = { file = \"" +
           redis + "\" }\ncrypt_key = { file = \"" + crypt +
           "\" }\n"
           "[stack.sites.backup]\nendpoint = \"https://s3.example.net\"\nbucket = \"b\"\n"
           "credentials = { file = \"" +
           s3 + "\" }\n" + tail;
}

std::string error_of(const testing::TempDir& dir, const std::string& text) {
    auto sites = load_sites(dir, text);
    REQUIRE_FALSE(sites);
    return sites.error().message;
}

}  // namespace

TEST_CASE("stack: key table refuses bad values with file:line:col") {
    testing::TempDir dir;
    CHECK(error_of(dir, "[[stack.sites]]\nname = \"Shop_1\"\n")
              .find("p.toml:2:8: 'stack.sites[].name' must be a DNS-1123 label") != std::string::npos);
    CHECK(error_of(dir, site_profile(dir, "purge_acl = [\"198.18.0.0/15 ; evil\"]\n"))
              .find("'stack.sites[].purge_acl' each entry must be") != std::string::npos);
    CHECK(error_of(dir, site_profile(dir, "", "[stack.sites.resources.magento]\ncpu_request = \"lots\"\n"))
              .find("'stack.sites[].resources.magento.cpu_request' must be a CPU quantity") != std::string::npos);
    CHECK(error_of(dir, site_profile(dir, "", "[stack.sites.storage]\nmariadb = \"10GB\"\n"))
              .find("'stack.sites[].storage.mariadb' must be a size") != std::string::npos);
    CHECK(error_of(dir, "[[stack.sites]]\nname = \"a\"\nhosts = [\"Shop.Example.org\"]\n")
              .find("'stack.sites[].hosts' each entry must be a lower-case DNS name") != std::string::npos);
    auto typo = error_of(dir, site_profile(dir, "", "[stack.sites.autoscaling]\nmaxx = 3\n"));
    CHECK(typo.find("unknown key 'stack.sites[].autoscaling.maxx'; did you mean 'max'?") != std::string::npos);
    CHECK(error_of(dir, site_profile(dir, "", "[stack.sites.images]\nmagento = \"evil image\"\n"))
              .find("image reference") != std::string::npos);
    CHECK(error_of(dir, site_profile(dir, "", "schedule_typo = 1\n")).find("unknown key") != std::string::npos);
}

TEST_CASE("stack: rules across keys are checked, all at once") {
    testing::TempDir dir;
    auto msg = error_of(dir, "[[stack.sites]]\nname = \"a\"\n[[stack.sites]]\nname = \"a\"\n");
    CHECK(msg.find("site 'a' is defined twice") != std::string::npos);
    CHECK(msg.find("needs 'hosts'") != std::string::npos);
    CHECK(msg.find("needs 'search_endpoint'") != std::string::npos);
    CHECK(msg.find("db_password") == std::string::npos);  // not given: generated on the server node
    CHECK(msg.find("backup needs 'endpoint'") != std::string::npos);
    CHECK(msg.find("needs media_host_path") != std::string::npos);

    CHECK(error_of(dir, site_profile(dir, "", "[stack.sites.autoscaling]\nmin = 5\nmax = 3\n"))
              .find("autoscaling.min (5) is larger than autoscaling.max (3)") != std::string::npos);
    std::string other_media = site_profile(dir);
    other_media.replace(other_media.find("media_host_path = \"/srv/media\""), 30, "media_host_path = \"/srv/other\"");
    CHECK(error_of(dir, other_media).find("is not the 'where' of a [[mounts.s3fs]]") != std::string::npos);
    std::string private_mount = site_profile(dir);
    private_mount.replace(private_mount.find("allow_other = true"), 18, "allow_other = false");
    CHECK(error_of(dir, private_mount).find("needs allow_other = true") != std::string::npos);
    std::string no_key = site_profile(dir);
    no_key.replace(no_key.find("key = { file"), 3, "#ke");
    CHECK(error_of(dir, no_key).find("tls needs both 'cert_file' and 'key', or neither") != std::string::npos);
    CHECK(load_sites(dir, site_profile(dir)));
}

TEST_CASE("stack: rendering is deterministic, placeholders hide every secret, --out values are the secrets'") {
    testing::TempDir dir;
    auto sites = load_sites(dir, site_profile(dir));
    REQUIRE(sites);
    REQUIRE(sites->size() == 1);
    const auto& site = sites->front();

    auto a = stack::render_site(site, stack::SecretValues::placeholders);
    auto b = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a == *b);
    for (const char* secret : {"db-secret-value", "repl-secret-value", "redis-secret-value", "crypt-secret-value",
                               "tls-secret-value", "AWS_SECRET_ACCESS_KEY=SK"}) {
        CHECK_MESSAGE(a->find(secret) == std::string::npos, secret);
    }
    CHECK(a->find(stack::k_placeholder) != std::string::npos);

    auto real = stack::render_site(site, stack::SecretValues::resolve);
    REQUIRE(real);
    CHECK(*real == *stack::render_site(site, stack::SecretValues::resolve));
    for (const char* secret :
         {"db-secret-value", "repl-secret-value", "redis-secret-value", "crypt-secret-value", "tls-secret-value"}) {
        CHECK_MESSAGE(real->find(secret) != std::string::npos, secret);
    }
    CHECK(real->find(stack::k_placeholder) == std::string::npos);

    // Every document parses as YAML and the kinds come in a fixed order.
    std::vector<std::string> kinds;
    for (const auto& doc : YAML::LoadAll(*a)) {
        kinds.push_back(doc["kind"].as<std::string>());
    }
    REQUIRE(kinds.size() > 20);
    CHECK(kinds.front() == "Namespace");
    CHECK(kinds.back() == "CronJob");
}

TEST_CASE("stack: a missing secret refuses the render with real values; a self-signed site needs placeholders") {
    testing::TempDir dir;
    std::string text = site_profile(dir);
    auto sites = load_sites(dir, text);
    REQUIRE(sites);
    std::filesystem::remove(dir.file("redis.pw"));
    auto r = stack::render_site(sites->front(), stack::SecretValues::resolve);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("secrets.redis_password") != std::string::npos);
    CHECK(stack::render_site(sites->front(), stack::SecretValues::placeholders));

    std::string self_signed = site_profile(dir, "", "", false);
    auto ss = load_sites(dir, self_signed);
    REQUIRE(ss);
    auto refused = stack::render_site(ss->front(), stack::SecretValues::resolve);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("self-signed") != std::string::npos);
}

TEST_CASE("stack: the backup CronJob's profile is a valid nodectl profile reading the mounted secrets") {
    testing::TempDir dir;
    auto sites = load_sites(dir, site_profile(dir));
    REQUIRE(sites);
    std::string text = stack::backup_profile(sites->front());
    auto path = dir.write("backup.toml", text);
    auto profile = load_profile(path);
    REQUIRE_MESSAGE(profile, (profile ? "" : profile.error().message));
    auto b = profile->section("backup");
    CHECK(b.str("name") == "shop");
    CHECK(b.section("mariadb").str("host") == "mariadb-master");
    CHECK(b.section("mariadb").str("replica_host") == "mariadb-replica-0.mariadb-replica");
    CHECK(b.section("mariadb").secret("password")->file == "/run/secrets/db/password");
    auto targets = b.tables("targets");
    REQUIRE(targets.size() == 1);
    CHECK(targets[0].str("credentials_file") == "/run/secrets/backup/s3-credentials");
    CHECK(targets[0].str("bucket") == "b");
}

TEST_CASE("stack: a memory limit too large to count or a search port out of range is a problem naming it") {
    testing::TempDir dir;
    auto sites = load_sites(dir, site_profile(dir));
    REQUIRE(sites);
    stack::Site site = sites->front();
    site.resources["redis"].memory_limit = "99999999999999999999999Mi";  // past 2^64: std::stol threw here
    site.search_endpoint = "http://opensearch.search:99999";
    auto r = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("resources.redis.memory_limit \"99999999999999999999999Mi\"") != std::string::npos);
    CHECK(r.error().message.find("port 99999 is not a TCP port") != std::string::npos);
    site = sites->front();
    site.resources["mariadb"].memory_limit = "3Gi";
    auto ok = stack::render_site(site, stack::SecretValues::placeholders);
    REQUIRE(ok);
    CHECK(ok->find("\"1536M\"") != std::string::npos);  // MYSQL_INNODB_BUFFER_POOL_SIZE: half of 3Gi
}

// Recipe parsing: the recipe rows of the key table, file:line:col and the key in every error,
// unknown keys with "did you mean", named tables ([args.NAME]), and the checks only the image
// module knows (folder name, declared secrets and arguments, one level of base).
#include "test_support.hpp"

#include "modules/image/image.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::contains;
using nodectl::testing::TempDir;

namespace {

std::string recipe_error(const std::string& path) {
    auto r = image::load_recipe(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::config);
    return r.error().message;
}

}  // namespace

TEST_CASE("image recipe: a full recipe reads into the struct") {
    TempDir t;
    t.write("images/app/conf.txt", "x\n");
    auto file = t.write("images/app/recipe.toml", R"(name = "app"
base = "base"
packages = ["redis-server"]

[[users]]
name = "redis"
uid = 999
system = true

[[files]]
src = "conf.txt"
dest = "/etc/app/conf.txt"
mode = "0640"
owner = "redis"

[[run]]
command = "echo ${args.dir}"
secrets = ["auth"]
when = "args.dir"

[args.dir]
default = "/srv"
doc = "a directory"

[secrets.auth]
required = true

[config]
entrypoint = ["/usr/bin/tini", "--"]
env = { A = "1" }
exposed_ports = ["6379/tcp"]
volumes = ["/data"]
)");
    auto r = image::load_recipe(file);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(r->name == "app");
    CHECK(r->base == "base");
    CHECK_FALSE(r->is_base());
    CHECK(r->packages == std::vector<std::string>{"redis-server"});
    REQUIRE(r->users.size() == 1);
    CHECK(r->users[0].uid == 999);
    CHECK(r->users[0].gid == 999);  // defaults to the uid
    CHECK(r->users[0].system);
    REQUIRE(r->files.size() == 1);
    CHECK(r->files[0].mode == 0640);
    CHECK(r->files[0].owner == "redis");
    CHECK(r->files[0].group == "0");
    REQUIRE(r->runs.size() == 1);
    CHECK(r->runs[0].secrets == std::vector<std::string>{"auth"});
    CHECK(r->args.at("dir").default_value == "/srv");
    CHECK(r->secrets.at("auth").required);
    CHECK(r->config.env.at("A") == "1");
    CHECK(r->config.exposed_ports == std::vector<std::string>{"6379/tcp"});
}

TEST_CASE("image recipe: errors name file, line, column and the key") {
    TempDir t;
    auto file = t.write(
        "images/app/recipe.toml",
        "name = \"app\"\nbase = \"base\"\npakages = [\"x\"]\n\n[[files]]\nsrc = \"missing.txt\"\ndest = \"etc/x\"\nmode = \"rw\"\n");
    auto msg = recipe_error(file);
    CHECK(contains(msg, file + ":3:1: unknown key 'pakages'; did you mean 'packages'?"));
    CHECK(contains(msg, file + ":7:8: 'files[].dest' must be an absolute path"));
    CHECK(contains(msg, file + ":8:8: 'files[].mode' must be an octal file mode"));

    auto typo = t.write("images/b/recipe.toml", "name = \"b\"\nsuite = \"bookworm\"\n[args.x]\ndefualt = \"1\"\n");
    CHECK(contains(recipe_error(typo), typo + ":4:1: unknown key 'args.x.defualt'; did you mean 'default'?"));

    auto syntax = t.write("images/c/recipe.toml", "name = \"c\"\nsuite = bookworm\n");
    CHECK(contains(recipe_error(syntax), syntax + ":2:"));
}

TEST_CASE("image recipe: what only the image module can check") {
    TempDir t;
    auto folder = t.write("images/x/recipe.toml", "name = \"y\"\nsuite = \"bookworm\"\n");
    CHECK(contains(recipe_error(folder), folder + ":1:8: 'name' is \"y\" but the recipe's folder is \"x\""));

    auto nosuite = t.write("images/base/recipe.toml", "name = \"base\"\n");
    CHECK(contains(recipe_error(nosuite), "'suite' is required"));

    auto refs = t.write("images/app/recipe.toml", R"(name = "app"
base = "base"
variant = "minbase"
[[run]]
command = "echo ${args.nope}"
secrets = ["undeclared"]
when = "args.other"
)");
    auto msg = recipe_error(refs);
    CHECK(contains(msg, refs + ":3:11: 'variant' belongs in a base recipe"));
    CHECK(contains(msg, refs + ":5:11: 'run[].command' uses ${args.nope} but [args.nope] is not declared"));
    CHECK(contains(msg, "'run[].secrets' names 'undeclared' but [secrets.undeclared] is not declared"));
    CHECK(contains(msg, "'run[].when' names 'args.other'"));
}

TEST_CASE("image recipe: load_recipes resolves bases") {
    TempDir t;
    t.write("images/base/recipe.toml", "name = \"base\"\nsuite = \"bookworm\"\n");
    t.write("images/app/recipe.toml", "name = \"app\"\nbase = \"base\"\n");
    auto all = image::load_recipes(t.file("images"));
    REQUIRE_MESSAGE(all.ok(), (all.ok() ? "" : all.error().message));
    CHECK(all->at("app").suite == "bookworm");
    CHECK(all->at("base").variant == "minbase");

    t.write("images/deep/recipe.toml", "name = \"deep\"\nbase = \"app\"\n");
    t.write("images/lost/recipe.toml", "name = \"lost\"\nbase = \"nothere\"\n");
    auto bad = image::load_recipes(t.file("images"));
    REQUIRE_FALSE(bad.ok());
    CHECK(contains(bad.error().message, "'base' names \"app\", which builds on \"base\" itself"));
    CHECK(contains(bad.error().message, "'base' names \"nothere\", which has no recipe"));
}

TEST_CASE("image recipe: ${args.NAME} substitution") {
    std::string err;
    CHECK(image::substitute_args("cp ${args.a}/x ${args.b}", {{"a", "/src"}, {"b", "y"}}, "w", err) == "cp /src/x y");
    CHECK(err.empty());
    image::substitute_args("${args.c}", {}, "f:1:1", err);
    CHECK(err == "f:1:1: unknown build argument 'c'");
}

TEST_CASE("image recipe: every recipe shipped in images/ and the test recipes parse") {
    for (const char* dir : {"/images", "/tests/integration/data/images"}) {
        std::string path = std::string(NODECTL_SOURCE_DIR) + dir;
        if (!std::filesystem::exists(path)) {
            continue;  // images/ arrives with the recipes branch
        }
        auto all = image::load_recipes(path);
        CHECK_MESSAGE(all.ok(), (all.ok() ? "" : all.error().message));
    }
}

// The host layer's file scripts, run for real on this machine in a temporary directory, and
// compared with what FakeTarget answers for the same state: the fake must print what the real
// commands print.
#include "fake_target.hpp"
#include "test_support.hpp"

#include "host/files.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace nodectl;
using nodectl::testing::FakeTarget;
using nodectl::testing::TempDir;

TEST_CASE("host::file_state: mode, owner and hash of a real file, and the fake agrees") {
    TempDir dir;
    LocalTarget local;
    std::string path = dir.write("conf", "key = value\n", 0640);
    auto real = host::file_state(local, path);
    REQUIRE_MESSAGE(real.ok(), (real.ok() ? "" : real.error().message));
    CHECK(real->exists);
    CHECK(real->mode == 0640);
    CHECK(real->owner == "root");
    CHECK(real->group == "root");
    CHECK(real->sha256 == util::sha256_hex("key = value\n"));

    FakeTarget fake;
    fake.host().put(path, "key = value\n", 0640);
    auto modelled = host::file_state(fake, path);
    REQUIRE(modelled.ok());
    CHECK(modelled->exists == real->exists);
    CHECK(modelled->mode == real->mode);
    CHECK(modelled->owner == real->owner);
    CHECK(modelled->group == real->group);
    CHECK(modelled->sha256 == real->sha256);

    auto none = host::file_state(local, dir.file("none"));
    REQUIRE(none.ok());
    CHECK_FALSE(none->exists);
    CHECK_FALSE(host::file_state(fake, dir.file("none"))->exists);

    auto is_dir = host::file_state(local, dir.path().string());
    REQUIRE_FALSE(is_dir.ok());
    CHECK(is_dir.error().message.find("exists but is not a regular file") != std::string::npos);
}

TEST_CASE("host::set_owner_mode and remove_file on a real file") {
    TempDir dir;
    LocalTarget local;
    std::string path = dir.write("f", "x", 0600);
    FileSpec spec;
    spec.path = path;
    spec.mode = 0644;
    REQUIRE(host::set_owner_mode(local, spec).ok());
    CHECK(host::file_state(local, path)->mode == 0644);

    REQUIRE(host::remove_file(local, path).ok());
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(host::remove_file(local, path).ok());  // already gone is fine

    spec.path = dir.file("missing");
    auto r = host::set_owner_mode(local, spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("chown/chmod " + spec.path + " failed") == 0);
}

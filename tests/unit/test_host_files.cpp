// The host layer's file scripts, run for real on this machine in a temporary directory, and
// compared with what FakeTarget answers for the same state: the fake must print what the real
// commands print.
#include "fake_target.hpp"
#include "test_support.hpp"

#include "host/files.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

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
    auto done = host::set_owner_mode(local, spec);
    REQUIRE(done.ok());
    CHECK(*done);
    CHECK(host::file_state(local, path)->mode == 0644);

    REQUIRE(host::remove_file(local, path).ok());
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(host::remove_file(local, path).ok());  // already gone is fine

    spec.path = dir.file("missing");
    auto r = host::set_owner_mode(local, spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("chown/chmod " + spec.path + " failed") == 0);
}

TEST_CASE("host::set_owner_mode leaves a file in a directory a user owns to a rewrite") {
    TempDir dir;
    LocalTarget local;
    std::string path = dir.write("home/f", "x", 0600);
    REQUIRE(chown(dir.file("home").c_str(), 64123, 64123) == 0);
    FileSpec spec;
    spec.path = path;
    spec.mode = 0644;
    auto done = host::set_owner_mode(local, spec);
    REQUIRE_MESSAGE(done.ok(), (done.ok() ? "" : done.error().message));
    CHECK_FALSE(*done);  // chmod follows symbolic links: the user could swap the file for one
    CHECK(host::file_state(local, path)->mode == 0600);

    std::filesystem::remove(path);
    std::filesystem::create_symlink(dir.write("target", "y", 0600), dir.file("f-link"));
    spec.path = dir.file("f-link");
    auto link = host::set_owner_mode(local, spec);
    REQUIRE_FALSE(link.ok());
    CHECK(link.error().message.find("is not a regular file") != std::string::npos);
}

TEST_CASE("host::file_state and read_files: numbers a host prints are parsed without throwing") {
    struct Canned final : Target {
        std::string out;
        std::string n = "canned";
        const std::string& name() const override { return n; }
        Result<CommandResult> run(const Command&) override { return CommandResult{0, out, ""}; }
        Result<std::unique_ptr<HostLock>> lock(const std::string&) override {
            return make_error(ErrorCode::internal, "no lock");
        }
    } t;
    for (std::string out : {"9z9 root root\nabc\n", "99999999999999999999999 root root\nabc\n"}) {
        t.out = out;
        Result<host::FileState> st = make_error(ErrorCode::internal, "not run");
        REQUIRE_NOTHROW(st = host::file_state(t, "/etc/x"));
        CHECK_FALSE(st.ok());
    }
    for (std::string out : {"F 644 root root 99999999999999999999999\n", "F 644 root root 18446744073709551615\nabc",
                            "F 9 root root 3\nabc"}) {
        t.out = out;
        Result<std::vector<std::optional<host::FileContent>>> r = make_error(ErrorCode::internal, "not run");
        REQUIRE_NOTHROW(r = host::read_files(t, {"/etc/x"}));
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("host::parse_file_state: stat and sha256sum lines, or nothing; a cut or lying answer names the command") {
    const std::string sum = "427f93cafd9cc19be6eec03e590c9c6cdf9f688a5eaf21fa8d72351e2b15fd05";
    auto st = host::parse_file_state("/etc/x", "640 root adm\n" + sum + "  -\n");
    REQUIRE(st.ok());
    CHECK(st->exists);
    CHECK(st->mode == 0640);
    CHECK(st->group == "adm");
    CHECK(st->sha256 == sum);
    REQUIRE(host::parse_file_state("/etc/x", "").ok());
    CHECK_FALSE(host::parse_file_state("/etc/x", "")->exists);
    // Cut after stat's line, or a sha256sum line that is not one: an error, never "no such file".
    for (const std::string& out :
         {std::string("640 root adm\n"), std::string("640 root adm"), "640 root adm\n" + sum.substr(0, 63) + "\n",
          "640 root adm\n" + sum.substr(0, 63) + "G  -\n", std::string("640 root adm\n\n")}) {
        auto bad = host::parse_file_state("/etc/x", out);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().message.find("sha256sum output for /etc/x") != std::string::npos);
    }
}

// util::Expected, the one way util/ reports failure, and the bridge to nodectl's Result; the file
// reads built on it (read_file, read_file_if_exists).
#include "test_support.hpp"

#include "nodectl/result.hpp"
#include "util/expected.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

using nodectl::testing::contains;
using nodectl::testing::TempDir;

TEST_CASE("Expected: a value or a reason; a reason that is also a string value is spelled fail()") {
    util::Expected<int> seven = 7;
    REQUIRE(seven);
    CHECK(*seven == 7);
    CHECK(seven == 7);
    CHECK(seven.value_or(0) == 7);

    util::Expected<int> broken = util::fail("why");
    REQUIRE_FALSE(broken);
    CHECK(broken.error() == "why");
    CHECK(broken.value_or(3) == 3);
    CHECK_FALSE(broken == 7);

    // Expected<std::string>: the value and the reason have one type; fail() says which it is.
    util::Expected<std::string> text = std::string("a value");
    util::Expected<std::string> reason = util::fail("a reason");
    REQUIRE(text);
    CHECK(*text == "a value");
    REQUIRE_FALSE(reason);
    CHECK(reason.error() == "a reason");
    CHECK(text != reason);

    util::Expected<void> done = util::Ok{};
    util::Expected<void> failed = util::fail("no");
    CHECK(done);
    REQUIRE_FALSE(failed);
    CHECK(failed.error() == "no");
}

TEST_CASE("Result is Expected with nodectl's Error; as_result gives a util/ reason its code") {
    nodectl::Result<int> typed = nodectl::make_error(nodectl::ErrorCode::config, "bad key");  // no fail() needed
    REQUIRE_FALSE(typed);
    CHECK(typed.error().code == nodectl::ErrorCode::config);

    auto lifted = nodectl::as_result(util::Expected<int>(util::fail("cannot read x")), nodectl::ErrorCode::io);
    REQUIRE_FALSE(lifted);
    CHECK(lifted.error().code == nodectl::ErrorCode::io);
    CHECK(lifted.error().message == "cannot read x");
    auto kept = nodectl::as_result(util::Expected<int>(4), nodectl::ErrorCode::io);
    REQUIRE(kept);
    CHECK(*kept == 4);
    CHECK(nodectl::as_result(util::Expected<void>(util::Ok{}), nodectl::ErrorCode::io));
}

TEST_CASE("read_file and read_file_if_exists: absent, present, and present but unreadable") {
    TempDir d;
    auto missing = util::read_file(d.file("none"));
    REQUIRE_FALSE(missing);
    CHECK(errno == ENOENT);
    CHECK(missing.error() == "cannot read " + d.file("none") + ": No such file or directory");

    auto absent = util::read_file_if_exists(d.file("none"));
    REQUIRE(absent);
    CHECK_FALSE(absent->has_value());
    auto present = util::read_file_if_exists(d.write("f", "text"));
    REQUIRE(present);
    REQUIRE(present->has_value());
    CHECK(**present == "text");
    // Not absent, so not taken for absent: a directory where a file was expected.
    auto dir = util::read_file_if_exists(d.path().string());
    REQUIRE_FALSE(dir);
    CHECK(contains(dir.error(), "Is a directory"));
}

// resolve_secret: from an environment variable or a private file, never a world-readable one.
#include "test_support.hpp"

#include "nodectl/config.hpp"

#include <doctest/doctest.h>

#include <cstdlib>

using namespace nodectl;
using nodectl::testing::TempDir;

TEST_CASE("resolve_secret: from an environment variable") {
    ::setenv("NODECTL_UNIT_SECRET", "s3cret value\n", 1);
    SecretRef ref;
    ref.env = "NODECTL_UNIT_SECRET";
    auto s = resolve_secret(ref);
    REQUIRE(s.ok());
    CHECK(s->reveal() == "s3cret value\n");  // a variable is taken as it is
    ::unsetenv("NODECTL_UNIT_SECRET");

    auto missing = resolve_secret(ref);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::config);
    CHECK(missing.error().message == "secret environment variable NODECTL_UNIT_SECRET is not set");
}

TEST_CASE("resolve_secret: a 0600 file is read, its trailing newline stripped") {
    TempDir dir;
    SecretRef ref;
    ref.file = dir.write("pw", "hunter2\n", 0600);
    auto s = resolve_secret(ref);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    CHECK(s->reveal() == "hunter2");

    dir.write("pw", "two\nlines\r\n\n", 0600);
    auto multi = resolve_secret(ref);
    REQUIRE(multi.ok());
    CHECK(multi->reveal() == "two\nlines");  // only the end is trimmed

    dir.write("pw", "  spaces kept  ", 0400);
    auto spaces = resolve_secret(ref);
    REQUIRE(spaces.ok());
    CHECK(spaces->reveal() == "  spaces kept  ");
}

TEST_CASE("resolve_secret: a file readable by group or others is refused without reading it") {
    TempDir dir;
    SecretRef ref;
    ref.file = dir.write("pw", "hunter2\n", 0644);
    auto s = resolve_secret(ref);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == ErrorCode::config);
    CHECK(s.error().message.find("is readable by group or others (mode 644)") != std::string::npos);
    CHECK(s.error().message.find("chmod 600") != std::string::npos);
    CHECK(s.error().message.find("hunter2") == std::string::npos);

    ref.file = dir.write("pw2", "x", 0640);
    CHECK_FALSE(resolve_secret(ref).ok());
    ref.file = dir.write("pw3", "x", 0602);
    CHECK_FALSE(resolve_secret(ref).ok());
}

TEST_CASE("resolve_secret: a missing file names the file") {
    SecretRef ref;
    ref.file = "/nonexistent/nodectl-unit/pw";
    auto s = resolve_secret(ref);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("secret file /nonexistent/nodectl-unit/pw: No such file or directory") == 0);
}

// The host layer's dpkg query, run for real on this machine (read-only) and against FakeTarget:
// the fake must print what dpkg-query prints.
#include "fake_target.hpp"

#include "host/packages.hpp"
#include "target/local_target.hpp"

#include <doctest/doctest.h>

using namespace nodectl;
using nodectl::testing::FakeTarget;

TEST_CASE("host::installed_packages: dpkg's answer on this machine, and the fake's") {
    LocalTarget local;
    std::vector<std::string> names = {"coreutils", "nodectl-no-such-package"};
    auto real = host::installed_packages(local, names);
    REQUIRE_MESSAGE(real.ok(), (real.ok() ? "" : real.error().message));
    CHECK(*real == std::set<std::string>{"coreutils"});

    FakeTarget fake;
    auto modelled = host::installed_packages(fake, names);
    REQUIRE(modelled.ok());
    CHECK(*modelled == *real);

    CHECK(host::installed_packages(local, {})->empty());
    CHECK(fake.host().commands.size() == 1);  // nothing is run for an empty list
    CHECK(host::installed_packages(fake, {})->empty());
    CHECK(fake.host().commands.size() == 1);
}

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

TEST_CASE("host::AptProgress: packages counted and named as apt installs them, at most once per period") {
    using namespace std::chrono_literals;
    auto t0 = host::AptProgress::Clock::time_point{} + 1000s;
    host::AptProgress p(t0, 10s);
    CHECK_FALSE(
        p.feed("Reading package lists...\n0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.\n", t0 + 1s));
    CHECK_FALSE(p.feed("Get:1 http://198.18.0.1:3142/debian bookworm/main amd64 aide-common all 0.18.3 [1 kB]\nGet:2 ",
                       t0 + 2s));
    // A line in two pieces counts once, when it is whole.
    CHECK_FALSE(p.feed("http://198.18.0.1:3142/debian bookworm/main amd64 aide amd64 0.18.3 [2 kB]\n", t0 + 3s));
    auto line =
        p.feed("Unpacking aide (0.18.3) ...\nUnpacking aide-common (0.18.3) ...\nSetting up aide-common (0.18.3) ...\n",
               t0 + 10s);
    REQUIRE(line);
    CHECK(*line == "2/3 fetched, 2/3 unpacked, 1/3 set up; setting up aide-common (0 s)");
    CHECK_FALSE(p.feed("", t0 + 15s));  // not due again before another 10 s
    line = p.feed("", t0 + 40s);  // a long postinst: the same package, and for how long
    REQUIRE(line);
    CHECK(*line == "2/3 fetched, 2/3 unpacked, 1/3 set up; setting up aide-common (30 s)");
    line = p.feed("Setting up aide (0.18.3) ...\nProcessing triggers for man-db (2.11.2-2) ...\n", t0 + 50s);
    REQUIRE(line);
    CHECK(*line == "2/3 fetched, 2/3 unpacked, 2/3 set up; triggers of man-db (0 s)");
    // Output that is not apt's (no total, an endless line) changes nothing and is bounded.
    host::AptProgress q(t0, 10s);
    q.feed(std::string(10000, 'x'), t0);
    line = q.feed("Setting up less (590-2) ...\n", t0 + 10s);
    REQUIRE(line);
    CHECK(*line == "0 fetched, 0 unpacked, 1 set up; setting up less (0 s)");
}

// LocalTarget and run_process: stdin/stdout/stderr, exit codes, the timeout, and the host lock.
#include "test_support.hpp"

#include "target/local_target.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace nodectl;
using nodectl::testing::TempDir;

TEST_CASE("run_process: output, errors, exit code and stdin") {
    auto r = run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, "", std::chrono::seconds(10));
    REQUIRE(r.ok());
    CHECK(r->exit_code == 3);
    CHECK(r->out == "out\n");
    CHECK(r->err == "err\n");

    std::string input(300000, 'z');  // more than a pipe buffer
    input += "\nend\n";
    auto cat = run_process({"cat"}, input, std::chrono::seconds(10));
    REQUIRE(cat.ok());
    CHECK(cat->exit_code == 0);
    CHECK(cat->out == input);

    auto missing = run_process({"/nonexistent/nodectl-unit-tool"}, "", std::chrono::seconds(10));
    REQUIRE(missing.ok());
    CHECK(missing->exit_code == 127);
    CHECK(missing->err.find("cannot execute") != std::string::npos);
}

TEST_CASE("LocalTarget run: the script gets the prologue's locale and PATH") {
    LocalTarget t;
    Command cmd;
    cmd.script = "printf '%s|%s' \"$LC_ALL\" \"$DEBIAN_FRONTEND\"";
    auto r = t.run(cmd);
    REQUIRE(r.ok());
    CHECK(r->out == "C|noninteractive");
    CHECK(t.name() == "local");
    CHECK_FALSE(t.read_only());
}

TEST_CASE("LocalTarget run: a command past its timeout is killed with its children, quickly") {
    LocalTarget t;
    Command cmd;
    // The children hold the output pipe open: had they survived, run() would wait the 30 s out.
    // The bounds are far from both ends so that a loaded machine cannot fail the test.
    cmd.script = "sleep 30 & sleep 30; echo never";
    cmd.timeout = std::chrono::seconds(1);
    auto t0 = std::chrono::steady_clock::now();
    auto r = t.run(cmd);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::timeout);
    CHECK(r.error().message == "command timed out after 1s");
    CHECK(elapsed < std::chrono::seconds(20));
    CHECK(elapsed >= std::chrono::milliseconds(900));
}

TEST_CASE("run_checked: a command that did not run to its end is named in the error") {
    LocalTarget t;
    Command cmd;
    cmd.script = "sleep 5";
    cmd.timeout = std::chrono::seconds(1);
    auto r = t.run_checked(cmd, "waiting for the lock");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::timeout);
    CHECK(r.error().message == "waiting for the lock: command timed out after 1s");
}

TEST_CASE("LocalTarget run: a timeout kills the children the script started, not only the shell") {
    TempDir dir;
    std::string marker = dir.file("child-survived");
    LocalTarget t;
    Command cmd;
    cmd.script = "(sleep 1.5; touch " + shell_quote(marker) + ") & sleep 5";
    cmd.timeout = std::chrono::seconds(1);
    auto r = t.run(cmd);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::timeout);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("LocalTarget lock: a second lock fails with ErrorCode::locked until the first is released") {
    // The lock lives in /var/lib/nodectl on this machine; leave nothing behind that was not there.
    namespace fs = std::filesystem;
    const bool dir_existed = fs::exists("/var/lib/nodectl");
    const bool lock_existed = fs::exists("/var/lib/nodectl/lock");
    struct Cleanup {
        bool dir, lock;
        ~Cleanup() {
            std::error_code ec;
            if (!lock) {
                fs::remove("/var/lib/nodectl/lock", ec);
                fs::remove("/var/lib/nodectl/lock.owner", ec);
            }
            if (!dir) {
                fs::remove("/var/lib/nodectl", ec);
            }
        }
    } cleanup{dir_existed, lock_existed};
    LocalTarget a("a");
    LocalTarget b("b");
    auto first = a.lock("unit test first holder");
    REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
    {
        // flock locks open file descriptions: a second open in the same process conflicts.
        auto second = b.lock("unit test second holder");
        REQUIRE_FALSE(second.ok());
        CHECK(second.error().code == ErrorCode::locked);
        CHECK(second.error().message.find("another nodectl run holds /var/lib/nodectl/lock") == 0);
        CHECK(second.error().message.find("unit test first holder") != std::string::npos);
    }
    first->reset();
    auto third = b.lock("unit test third holder");
    CHECK(third.ok());
}

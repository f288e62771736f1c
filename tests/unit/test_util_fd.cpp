// Fd closes what it owns; FileLock is the one flock(2) lock (host lock, first boot, caches).
#include "test_support.hpp"

#include "util/fd.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using nodectl::testing::TempDir;

namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

}  // namespace

TEST_CASE("Fd: closes on destruction and on reset, hands over on move and release") {
    TempDir t;
    const std::string path = t.file("f");
    int raw = -1;
    {
        util::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        REQUIRE(fd);
        raw = fd.get();
        util::Fd moved(std::move(fd));
        CHECK_FALSE(fd.valid());
        CHECK(moved.get() == raw);
        CHECK(is_open(raw));
    }
    CHECK_FALSE(is_open(raw));

    util::Fd a(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    raw = a.get();
    a.reset();
    CHECK_FALSE(is_open(raw));
    CHECK_FALSE(a);

    util::Fd b(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    raw = b.release();
    CHECK_FALSE(b);
    CHECK(is_open(raw));
    ::close(raw);
}

TEST_CASE("FileLock: exclusive between holders, released on destruction, created with its mode") {
    TempDir t;
    const std::string path = t.file("lock");
    {
        auto first = util::FileLock::take(path, 0600, util::FileLock::Wait::no);
        REQUIRE(first);
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
        CHECK(util::FileLock::held_by_other(path));

        auto second = util::FileLock::take(path, 0600, util::FileLock::Wait::no);
        REQUIRE_FALSE(second);
        CHECK(errno == EWOULDBLOCK);
        CHECK(second.error().find(path) != std::string::npos);

        util::FileLock moved = std::move(*first);
        CHECK(util::FileLock::held_by_other(path));
    }
    CHECK_FALSE(util::FileLock::held_by_other(path));
    auto again = util::FileLock::take(path, 0600, util::FileLock::Wait::yes);
    CHECK(again);
}

TEST_CASE("FileLock: a file that cannot be opened is an error that says why") {
    TempDir t;
    auto lock = util::FileLock::take(t.file("missing-dir/lock"), 0600, util::FileLock::Wait::yes);
    REQUIRE_FALSE(lock);
    CHECK(errno == ENOENT);
    CHECK(lock.error().find("cannot open") != std::string::npos);
    CHECK_FALSE(util::FileLock::held_by_other(t.file("missing-dir/lock")));
}

TEST_CASE("FileLock: a lock path that is a symbolic link is refused, and what it points at is not created") {
    TempDir t;
    std::string target = t.file("elsewhere");
    REQUIRE(::symlink(target.c_str(), t.file("lock").c_str()) == 0);
    auto lock = util::FileLock::take(t.file("lock"), 0600, util::FileLock::Wait::no);
    REQUIRE_FALSE(lock);
    CHECK(errno == ELOOP);
    CHECK(lock.error().find("cannot open " + t.file("lock")) == 0);
    CHECK(::access(target.c_str(), F_OK) != 0);
}

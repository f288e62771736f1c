#include "util/fd.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace util {

void Fd::reset(int fd) {
    if (m_fd >= 0) {
        // A close error on a descriptor only read or locked loses nothing; writers fsync first.
        (void)::close(m_fd);
    }
    m_fd = fd;
}

Expected<FileLock> FileLock::take(const std::string& path, unsigned mode, Wait wait) {
    auto fail = [&](const char* what) -> Expected<FileLock> {
        int e = errno;
        auto why = util::fail(std::string(what) + " " + path + ": " + std::strerror(e));
        errno = e;
        return why;
    };
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) {
        return fail("cannot open");
    }
    const int op = LOCK_EX | (wait == Wait::no ? LOCK_NB : 0);
    int rc;
    while ((rc = ::flock(fd.get(), op)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        return fail(errno == EWOULDBLOCK ? "another process holds" : "cannot lock");
    }
    return FileLock(std::move(fd));
}

bool FileLock::held_by_other(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    return fd && ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

}  // namespace util

// File descriptors that close themselves, and flock(2) locks. Knows nothing of nodectl.
#pragma once

#include "util/expected.hpp"

#include <optional>
#include <string>

namespace util {

// Owns one file descriptor and closes it on destruction; movable, not copyable.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : m_fd(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    explicit operator bool() const { return valid(); }
    // Gives up ownership: the caller closes the descriptor.
    [[nodiscard]] int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    // Closes the descriptor held (its close error, which cannot be acted on here, is ignored) and holds `fd`.
    void reset(int fd = -1);

private:
    int m_fd = -1;
};

// An exclusive flock(2) on a file, held until destruction (or until the process dies: the kernel
// drops it, so a killed holder never leaves a stale lock). Locks taken through two FileLocks
// exclude each other, in one process (threads) as across processes.
class FileLock {
public:
    enum class Wait { no, yes };

    // Opens `path` (created with `mode` if absent; O_CLOEXEC; never through a symbolic link, which
    // is refused with ELOOP) and takes the lock. Wait::yes waits
    // for a holder to let go; Wait::no fails at once with errno EWOULDBLOCK when another holds it.
    // When it fails: why ("cannot lock PATH: ..."), with errno set.
    static Expected<FileLock> take(const std::string& path, unsigned mode, Wait wait);
    // Whether another descriptor holds an flock on `path` now (a shared probe, never created; false
    // when the file cannot be opened).
    [[nodiscard]] static bool held_by_other(const std::string& path);

    int fd() const { return m_fd.get(); }

private:
    explicit FileLock(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

}  // namespace util

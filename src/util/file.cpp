#include "util/file.hpp"
#include "util/fd.hpp"
#include "util/file_at.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace util {

namespace {

bool valid_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// Reads `fd` to its end into `out`: 0, EFBIG once it holds more than max_bytes, or read's errno.
int read_to_end(int fd, size_t max_bytes, std::string& out) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno;
        }
        if (n == 0) {
            return 0;
        }
        if (out.size() + static_cast<size_t>(n) > max_bytes) {
            return EFBIG;
        }
        out.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace

Expected<std::string> read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    std::string out;
    int err = fd ? read_to_end(fd.get(), out.max_size(), out) : errno;
    if (err != 0) {
        auto why = fail("cannot read " + path + ": " + std::strerror(err));
        errno = err;  // set last: building the message may change it
        return why;
    }
    return out;
}

Expected<std::optional<std::string>> read_file_if_exists(const std::string& path) {
    auto text = read_file(path);
    if (text) {
        return std::optional<std::string>(std::move(*text));
    }
    if (errno == ENOENT) {
        return std::optional<std::string>();
    }
    return fail(std::move(text).error());
}

Expected<std::string> read_file_at(int dir_fd, const std::string& name, size_t max_bytes) {
    auto refuse = [&](int err, const std::string& what) -> Expected<std::string> {
        auto why = util::fail(name + ": " + what);
        errno = err;  // set last: building the message may change it
        return why;
    };
    if (!valid_name(name)) {
        return refuse(EINVAL, "not a file name");
    }
    // O_NONBLOCK: a FIFO planted there must not hang the open; it is refused just below.
    Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        int err = errno;
        return refuse(err, err == ELOOP ? "a symbolic link (refused)" : std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return refuse(EINVAL, "not a regular file (refused)");
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
        return refuse(EFBIG, "larger than " + std::to_string(max_bytes) + " bytes (refused)");
    }
    std::string out;
    if (int err = read_to_end(fd.get(), max_bytes, out); err != 0) {
        return refuse(err, err == EFBIG ? "larger than " + std::to_string(max_bytes) + " bytes (refused)"
                                        : std::string(std::strerror(err)));
    }
    return out;
}

Expected<Fd> open_dir_nofollow(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        std::string why = path + ": " + (err == ELOOP ? std::string("a symbolic link (refused)") : std::strerror(err));
        errno = err;
        return util::fail(std::move(why));
    }
    return fd;
}

Expected<void> write_file_atomic_at(int dir_fd, const std::string& name, std::string_view content, unsigned mode) {
    if (!valid_name(name)) {
        return util::fail(name + ": not a file name");
    }
    struct stat existing {};
    if (::fstatat(dir_fd, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(existing.st_mode) &&
        !S_ISLNK(existing.st_mode)) {
        return util::fail(name + " exists and is not a regular file");
    }
    std::random_device rd;
    std::string tmp;
    Fd fd;
    for (int attempt = 0; attempt < 100 && !fd; ++attempt) {
        char suffix[16];
        std::snprintf(suffix, sizeof suffix, ".tmp.%08x", rd());
        tmp = name + suffix;
        // Created 0600: content that must stay private never exists readable.
        fd.reset(::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd && errno != EEXIST) {
            break;
        }
    }
    if (!fd) {
        return util::fail("cannot create a temporary file for " + name + ": " + std::strerror(errno));
    }
    auto abandon = [&](const std::string& what) {
        std::string why = what + ": " + std::strerror(errno);
        fd.reset();
        ::unlinkat(dir_fd, tmp.c_str(), 0);
        return util::fail(std::move(why));
    };
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
        return abandon("cannot set the mode of " + tmp);
    }
    while (!content.empty()) {
        ssize_t n = ::write(fd.get(), content.data(), content.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return abandon("cannot write " + tmp);
        }
        content.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) != 0) {
        return abandon("cannot sync " + tmp);
    }
    // The one close whose error matters (NFS reports a failed write there): checked, not left to Fd.
    if (::close(fd.release()) != 0) {
        return abandon("cannot write " + tmp);
    }
    // A rename replaces a symbolic link at `name` itself; it never writes where the link points.
    if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
        return abandon("cannot rename " + tmp + " to " + name);
    }
    // The rename itself is durable only once the directory is synced.
    (void)::fsync(dir_fd);  // best effort: the file itself is complete and synced either way
    return Ok{};
}

Expected<void> write_file_atomic(const std::string& path, std::string_view content, unsigned mode) {
    std::error_code ec;
    std::filesystem::path dest = path;
    // Renaming over a symlink would replace the link itself, not the file the user keeps there.
    if (std::filesystem::is_symlink(dest, ec)) {
        dest = std::filesystem::weakly_canonical(dest, ec);
        if (ec) {
            return util::fail("cannot resolve the link " + path + ": " + ec.message());
        }
    }
    std::filesystem::path dir = dest.parent_path().empty() ? std::filesystem::path(".") : dest.parent_path();
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) {
        return util::fail("cannot open the directory " + dir.string() + ": " + std::strerror(errno));
    }
    auto written = write_file_atomic_at(dfd.get(), dest.filename().string(), content, mode);
    if (!written && written.error().find(dir.string()) == std::string::npos) {
        return util::fail(dir.string() + "/" + written.error());
    }
    return written;
}

}  // namespace util

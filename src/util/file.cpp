#include "util/file.hpp"
#include "util/fd.hpp"
#include "util/file_at.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace util {

namespace {

bool valid_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
}

std::optional<std::string> read_file_at(int dir_fd, const std::string& name, size_t max_bytes, std::string* why) {
    auto fail = [&](int err, const std::string& what) -> std::optional<std::string> {
        if (why) {
            *why = name + ": " + what;
        }
        errno = err;
        return std::nullopt;
    };
    if (!valid_name(name)) {
        return fail(EINVAL, "not a file name");
    }
    // O_NONBLOCK: a FIFO planted there must not hang the open; it is refused just below.
    Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        int err = errno;
        return fail(err, err == ELOOP ? "a symbolic link (refused)" : std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return fail(EINVAL, "not a regular file (refused)");
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
        return fail(EFBIG, "larger than " + std::to_string(max_bytes) + " bytes (refused)");
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            return fail(err, std::strerror(err));
        }
        if (n == 0) {
            break;
        }
        if (out.size() + static_cast<size_t>(n) > max_bytes) {
            return fail(EFBIG, "larger than " + std::to_string(max_bytes) + " bytes (refused)");
        }
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

int open_dir_nofollow(const std::string& path) {
    return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

std::string write_file_atomic_at(int dir_fd, const std::string& name, std::string_view content, unsigned mode) {
    if (!valid_name(name)) {
        return name + ": not a file name";
    }
    struct stat existing {};
    if (::fstatat(dir_fd, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(existing.st_mode) &&
        !S_ISLNK(existing.st_mode)) {
        return name + " exists and is not a regular file";
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
        return "cannot create a temporary file for " + name + ": " + std::strerror(errno);
    }
    auto fail = [&](const std::string& what) {
        std::string why = what + ": " + std::strerror(errno);
        fd.reset();
        ::unlinkat(dir_fd, tmp.c_str(), 0);
        return why;
    };
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
        return fail("cannot set the mode of " + tmp);
    }
    while (!content.empty()) {
        ssize_t n = ::write(fd.get(), content.data(), content.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return fail("cannot write " + tmp);
        }
        content.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) != 0) {
        return fail("cannot sync " + tmp);
    }
    // The one close whose error matters (NFS reports a failed write there): checked, not left to Fd.
    if (::close(fd.release()) != 0) {
        return fail("cannot write " + tmp);
    }
    // A rename replaces a symbolic link at `name` itself; it never writes where the link points.
    if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
        return fail("cannot rename " + tmp + " to " + name);
    }
    // The rename itself is durable only once the directory is synced.
    ::fsync(dir_fd);
    return {};
}

std::string write_file_atomic(const std::string& path, std::string_view content, unsigned mode) {
    std::error_code ec;
    std::filesystem::path dest = path;
    // Renaming over a symlink would replace the link itself, not the file the user keeps there.
    if (std::filesystem::is_symlink(dest, ec)) {
        dest = std::filesystem::weakly_canonical(dest, ec);
        if (ec) {
            return "cannot resolve the link " + path + ": " + ec.message();
        }
    }
    std::filesystem::path dir = dest.parent_path().empty() ? std::filesystem::path(".") : dest.parent_path();
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) {
        return "cannot open the directory " + dir.string() + ": " + std::strerror(errno);
    }
    std::string why = write_file_atomic_at(dfd.get(), dest.filename().string(), content, mode);
    if (!why.empty() && why.find(dir.string()) == std::string::npos) {
        why = dir.string() + "/" + why;
    }
    return why;
}

}  // namespace util

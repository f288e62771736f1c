#include "util/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace util {

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
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
    std::string tmp = dest.string() + ".tmp.XXXXXX";
    // mkstemp creates the file 0600, so content that must stay private never exists readable.
    int fd = ::mkstemp(tmp.data());
    if (fd < 0) {
        return "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno);
    }
    auto fail = [&](const std::string& what) {
        std::string why = what + ": " + std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
        }
        ::unlink(tmp.c_str());
        return why;
    };
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
        return fail("cannot set the mode of " + tmp);
    }
    while (!content.empty()) {
        ssize_t n = ::write(fd, content.data(), content.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return fail("cannot write " + tmp);
        }
        content.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd) != 0) {
        return fail("cannot sync " + tmp);
    }
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) {
        return fail("cannot write " + tmp);
    }
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
        return fail("cannot rename " + tmp + " to " + dest.string());
    }
    // The rename itself is durable only once the directory is synced.
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

} // namespace util

// The directory target (a local disk, or an NFS mount). An archive is written as
// `.ID.tar.zst.partial-HOST-PID-RANDOM` (hidden, never a name list/restore/prune look at), fsynced,
// renamed to its final name and the directory fsynced, so a crash or a full disk never leaves a
// partial file under a final name. What a killed run left (this host's partials whose process is
// gone) is removed when the next upload starts; other hosts' are left to them. Free space is checked first (statvfs): at least min_free_bytes, and at least
// 1.2 times the largest archive already there.
#include "modules/backup/detail.hpp"
#include "util/fd.hpp"
#include "util/text.hpp"

#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace nodectl::backup {

namespace {

// This host's name as it appears in partial names: letters, digits, '.' and '-' only.
std::string partial_host() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) {
        return "unknown";
    }
    std::string out;
    for (const char* c = name; *c; ++c) {
        out += std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-' ? *c : '_';
    }
    return out.empty() ? "unknown" : out;
}

// Removes the regular files `.*.partial-HOST-PID-XXXXXX` of this host whose process no longer runs.
void remove_stale_partials(const std::string& dir) {
    util::Fd opened(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    DIR* d = opened ? ::fdopendir(opened.get()) : nullptr;
    if (!d) {
        return;
    }
    const int dfd = opened.release();  // d's now: closedir closes it
    const std::string mine = ".partial-" + partial_host() + "-";
    std::vector<std::string> stale;
    while (auto* e = ::readdir(d)) {
        std::string n = e->d_name;
        auto at = n.rfind(mine);
        if (n.front() != '.' || at == std::string::npos || n.size() < at + mine.size() + 8) {
            continue;
        }
        std::string rest = n.substr(at + mine.size());  // PID-XXXXXX
        auto dash = rest.find('-');
        auto pid = util::parse_uint(rest.substr(0, dash), {.max = 4194304});
        if (dash == std::string::npos || rest.size() - dash != 7 || !pid || *pid == 0) {
            continue;
        }
        struct stat st {};
        if (::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH &&
            ::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            stale.push_back(n);
        }
    }
    for (const auto& n : stale) {
        ::unlinkat(dfd, n.c_str(), 0);
    }
    ::closedir(d);  // closes dfd
}

class DirUpload : public Upload {
public:
    DirUpload(std::string dir, std::string object, util::Fd fd, std::string temp)
        : m_dir(std::move(dir)), m_object(std::move(object)), m_fd(std::move(fd)), m_temp(std::move(temp)) {}
    ~DirUpload() override { abort(); }

    Result<void> write(const char* data, size_t size) override {
        while (size > 0) {
            ssize_t w = ::write(m_fd.get(), data, size);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w < 0) {
                return errno_error("cannot write " + m_temp);
            }
            data += w;
            size -= static_cast<size_t>(w);
        }
        return Ok{};
    }

    Result<void> commit() override {
        if (::fsync(m_fd.get()) != 0) {
            return errno_error("fsync " + m_temp);
        }
        // Checked before the rename: a failed write can show only at close (NFS).
        if (::close(m_fd.release()) != 0) {
            return errno_error("close " + m_temp);
        }
        std::string final_path = m_dir + "/" + m_object;
        if (::rename(m_temp.c_str(), final_path.c_str()) != 0) {
            return errno_error("rename " + m_temp + " to " + final_path);
        }
        m_temp.clear();
        if (util::Fd dfd(::open(m_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd && ::fsync(dfd.get()) != 0) {
            return errno_error("fsync " + m_dir);
        }
        return Ok{};
    }

    void abort() override {
        m_fd.reset();
        if (!m_temp.empty()) {
            ::unlink(m_temp.c_str());
            m_temp.clear();
        }
    }

private:
    std::string m_dir, m_object;
    util::Fd m_fd;
    std::string m_temp;
};

class FdSource : public Source {
public:
    FdSource(util::Fd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}
    Result<size_t> read(char* buf, size_t size) override {
        for (;;) {
            ssize_t n = ::read(m_fd.get(), buf, size);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                return errno_error("cannot read " + m_path);
            }
            return static_cast<size_t>(n);
        }
    }

private:
    util::Fd m_fd;
    std::string m_path;
};

class DirectoryTarget : public BackupTarget {
public:
    explicit DirectoryTarget(TargetSettings s) : m_s(std::move(s)) {}
    const std::string& name() const override { return m_s.name; }

    Result<void> prepare() override {
        struct stat st {};
        if (::stat(m_s.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            return make_error(ErrorCode::io,
                              "target " + m_s.name + ": " + m_s.path + " is not a directory (is the mount there?)");
        }
        struct statvfs vfs {};
        if (::statvfs(m_s.path.c_str(), &vfs) != 0) {
            return errno_error("statvfs " + m_s.path);
        }
        uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        uint64_t need = m_s.min_free_bytes;
        auto existing = list();
        if (existing) {
            for (const auto& a : *existing) {
                need = std::max<uint64_t>(need, a.size + a.size / 5);
            }
        }
        if (free_bytes < need) {
            return make_error(ErrorCode::io, "target " + m_s.name + ": only " + std::to_string(free_bytes >> 20) +
                                                 " MiB free in " + m_s.path + ", need at least " +
                                                 std::to_string(need >> 20) + " MiB");
        }
        return Ok{};
    }

    // The temp name is unpredictable and created O_EXCL|O_NOFOLLOW (mkostemp): a file or link
    // someone else put into a shared target is never opened, truncated or written through.
    Result<std::unique_ptr<Upload>> upload(const std::string& object) override {
        remove_stale_partials(m_s.path);
        std::string temp =
            m_s.path + "/." + object + ".partial-" + partial_host() + "-" + std::to_string(::getpid()) + "-XXXXXX";
        util::Fd fd(::mkostemp(temp.data(), O_CLOEXEC | O_NOFOLLOW));
        if (!fd) {
            return errno_error("cannot create " + temp);
        }
        return std::unique_ptr<Upload>(std::make_unique<DirUpload>(m_s.path, object, std::move(fd), temp));
    }

    Result<std::vector<Stored>> list() override {
        std::vector<Stored> out;
        DIR* d = ::opendir(m_s.path.c_str());
        if (!d) {
            return errno_error("cannot list " + m_s.path);
        }
        while (auto* e = ::readdir(d)) {
            auto s = parse_object_name(e->d_name);
            if (!s) {
                continue;
            }
            struct stat st {};  // lstat: a symbolic link planted under an archive's name is not one
            if (::lstat((m_s.path + "/" + e->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                s->size = static_cast<uint64_t>(st.st_size);
                out.push_back(*s);
            }
        }
        ::closedir(d);
        return out;
    }

    Result<std::unique_ptr<Source>> open(const std::string& object) override {
        std::string path = m_s.path + "/" + object;
        util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (!fd) {
            return errno_error("cannot open " + path);
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            return make_error(ErrorCode::io, "cannot open " + path + ": not a regular file");
        }
        return std::unique_ptr<Source>(std::make_unique<FdSource>(std::move(fd), path));
    }

    Result<void> remove(const std::string& object) override {
        std::string path = m_s.path + "/" + object;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return errno_error("cannot remove " + path);
        }
        return Ok{};
    }

private:
    TargetSettings m_s;
};

}  // namespace

std::unique_ptr<BackupTarget> make_directory_target(const TargetSettings& settings) {
    return std::make_unique<DirectoryTarget>(settings);
}

Result<std::unique_ptr<BackupTarget>> make_target(const TargetSettings& settings) {
    if (settings.kind == TargetKind::s3) {
        return make_s3_target(settings);
    }
    return make_directory_target(settings);
}

}  // namespace nodectl::backup

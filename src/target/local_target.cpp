#include "target/local_target.hpp"

#include "util/text.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace nodectl {

const char* const k_script_prologue =
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive; ";

namespace {

Error sys_error(const std::string& what) {
    return make_error(ErrorCode::io, what + ": " + std::strerror(errno));
}

// A user or group name (or a number) to its id.
std::optional<unsigned> user_id(const std::string& name) {
    std::vector<char> buf(16384);
    passwd pw{}, *found = nullptr;
    if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found) {
        return found->pw_uid;
    }
    unsigned id = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    return ec == std::errc() && end == name.data() + name.size() && !name.empty() ? std::optional<unsigned>(id) : std::nullopt;
}

std::optional<unsigned> group_id(const std::string& name) {
    std::vector<char> buf(16384);
    group gr{}, *found = nullptr;
    if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found) {
        return found->gr_gid;
    }
    unsigned id = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    return ec == std::errc() && end == name.data() + name.size() && !name.empty() ? std::optional<unsigned>(id) : std::nullopt;
}

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) {
            close(fd);
        }
    }
};

} // namespace

Result<CommandResult> run_process(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::seconds timeout) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
        return sys_error("pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        return sys_error("fork");
    }
    if (pid == 0) {
        setpgid(0, 0);  // own process group, so a timeout kills the whole tree
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        signal(SIGPIPE, SIG_DFL);
        execvp(args[0], args.data());
        _exit(127);
    }
    setpgid(pid, pid);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);

    CommandResult result;
    size_t written = 0;
    int in_fd = in_pipe[1];
    if (input.empty()) {
        close(in_fd);
        in_fd = -1;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    bool too_much = false;
    int open_outputs = 2;
    char buf[65536];
    while (open_outputs > 0 && !too_much) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
        int n = poll(fds, in_fd >= 0 ? 3 : 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) {
            return sys_error("poll");
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t r = read(fds[i].fd, buf, sizeof buf);
                if (r > 0) {
                    auto& into = i == 0 ? result.out : result.err;
                    into.append(buf, static_cast<size_t>(r));
                    if (into.size() > k_max_command_output) {
                        too_much = true;
                        kill(-pid, SIGKILL);
                    }
                } else if (r == 0 || errno != EAGAIN) {
                    close(fds[i].fd);
                    (i == 0 ? out_pipe[0] : err_pipe[0]) = -1;
                    --open_outputs;
                }
            }
        }
        if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in_fd, input.data() + written, input.size() - written);
            if (w > 0) {
                written += static_cast<size_t>(w);
            }
            if (w < 0 && errno != EAGAIN) {
                written = input.size();  // the command stopped reading; that is its business
            }
            if (written == input.size()) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    for (int fd : {in_fd, out_pipe[0], err_pipe[0]}) {
        if (fd >= 0) {
            close(fd);
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        return make_error(ErrorCode::timeout, "command timed out after " + std::to_string(timeout.count()) + "s");
    }
    if (too_much) {
        return make_error(ErrorCode::command, "the command printed more than " +
                                                  std::to_string(k_max_command_output >> 20) + " MiB; stopped");
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && result.err.empty()) {
        result.err = "cannot execute " + argv[0];
    }
    return result;
}

Result<CommandResult> LocalTarget::run(const Command& cmd) {
    return run_process({"/bin/sh", "-c", std::string(k_script_prologue) + cmd.script}, cmd.input, cmd.timeout);
}

Result<void> LocalTarget::write_file(const FileSpec& file) {
    auto fail = [&](const std::string& what) {
        return make_error(ErrorCode::io, "writing " + file.path + ": " + what + ": " + std::strerror(errno));
    };
    auto uid = user_id(file.owner);
    auto gid = group_id(file.group);
    if (!uid || !gid) {
        return make_error(ErrorCode::io, "writing " + file.path + ": no such " + (uid ? "group '" + file.group : "user '" + file.owner) + "'");
    }
    std::filesystem::path path(file.path);
    std::string dir = path.parent_path().string();
    std::string name = path.filename().string();
    if (dir.empty() || name.empty()) {
        return make_error(ErrorCode::io, "writing " + file.path + ": not a file path");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // like mkdir -p; errors show up at open
    Fd d{open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    if (d.fd < 0) {
        return fail(errno == ELOOP || errno == ENOTDIR ? "opening " + dir + " (not a directory, or a symbolic link)" : "opening " + dir);
    }
    struct stat dir_st {};
    if (fstat(d.fd, &dir_st) != 0) {
        return fail("stat " + dir);
    }
    if (dir_st.st_mode & 022) {  // as the SSH targets' script: such directories are refused
        return make_error(ErrorCode::io, "writing " + file.path + ": refusing, " + dir + " is writable by group or others");
    }
    std::string tmp = ".nodectl." + util::random_hex(8);
    Fd f{openat(d.fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
    if (f.fd < 0) {
        return fail("creating a temporary file in " + dir);
    }
    struct Unlink {
        int dir;
        const std::string& name;
        bool armed = true;
        ~Unlink() {
            if (armed) {
                unlinkat(dir, name.c_str(), 0);
            }
        }
    } unlink_tmp{d.fd, tmp};
    for (size_t off = 0; off < file.content.size();) {
        ssize_t n = ::write(f.fd, file.content.data() + off, file.content.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("write");
        }
        off += static_cast<size_t>(n);
    }
    if (fchown(f.fd, *uid, *gid) != 0) {
        return fail("chown " + file.owner + ":" + file.group);
    }
    if (fchmod(f.fd, file.mode) != 0) {
        return fail("chmod");
    }
    if (fsync(f.fd) != 0) {
        return fail("fsync");
    }
    if (renameat(d.fd, tmp.c_str(), d.fd, name.c_str()) != 0) {
        return fail("renaming into place");
    }
    unlink_tmp.armed = false;
    fsync(d.fd);
    return Ok{};
}

namespace {

class LocalLock final : public HostLock {
public:
    explicit LocalLock(int fd) : m_fd(fd) {}
    ~LocalLock() override { close(m_fd); }

private:
    int m_fd;
};

} // namespace

Result<std::unique_ptr<HostLock>> LocalTarget::lock(const std::string& holder) {
    const char* dir = "/var/lib/nodectl";
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return sys_error(std::string("mkdir ") + dir);
    }
    int fd = open("/var/lib/nodectl/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return sys_error("open /var/lib/nodectl/lock");
    }
    // flock is released by the kernel when the holder dies, so a killed run leaves no stale lock.
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        std::ifstream owner("/var/lib/nodectl/lock.owner");
        std::string who;
        std::getline(owner, who);
        return make_error(ErrorCode::locked, "another nodectl run holds /var/lib/nodectl/lock (" + who + ")");
    }
    std::ofstream("/var/lib/nodectl/lock.owner", std::ios::trunc) << holder << "\n";
    return std::unique_ptr<HostLock>(new LocalLock(fd));
}

} // namespace nodectl

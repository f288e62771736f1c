#include "target/local_target.hpp"

#include "util/fd.hpp"
#include "util/subprocess.hpp"
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
#include <cstring>
#include <filesystem>
#include <fstream>

namespace nodectl {

const char* const k_script_prologue =
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive; ";

namespace {

// A user or group name (or a number) to its id.
std::optional<unsigned> user_id(const std::string& name) {
    std::vector<char> buf(16384);
    passwd pw{}, *found = nullptr;
    if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found) {
        return found->pw_uid;
    }
    auto id = util::parse_uint(name, {.max = UINT32_MAX});
    return id ? std::optional<unsigned>(static_cast<unsigned>(*id)) : std::nullopt;
}

std::optional<unsigned> group_id(const std::string& name) {
    std::vector<char> buf(16384);
    group gr{}, *found = nullptr;
    if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found) {
        return found->gr_gid;
    }
    auto id = util::parse_uint(name, {.max = UINT32_MAX});
    return id ? std::optional<unsigned>(static_cast<unsigned>(*id)) : std::nullopt;
}

// How pumping a child's pipes ended.
enum class PumpEnd { outputs_closed, timed_out, too_much };

// Feeds `input` to the child and collects its output into `result` until it closes both outputs,
// the deadline passes or it prints too much (then its process group is killed).
Result<PumpEnd> pump(util::Subprocess& child, const std::string& input, std::chrono::seconds timeout,
                     const std::function<void(std::string_view)>& on_output, CommandResult& result) {
    size_t written = 0;
    util::Fd& in_fd = child.in();
    if (in_fd) {
        fcntl(in_fd.get(), F_SETFL, O_NONBLOCK);
    }
    if (input.empty()) {
        in_fd.reset();
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int open_outputs = 2;
    char buf[65536];
    while (open_outputs > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            child.signal(SIGKILL);
            return PumpEnd::timed_out;
        }
        pollfd fds[3] = {{child.out().get(), POLLIN, 0}, {child.err().get(), POLLIN, 0}, {in_fd.get(), POLLOUT, 0}};
        int n = poll(fds, in_fd ? 3 : 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) {
            return errno_error("poll");
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t r = read(fds[i].fd, buf, sizeof buf);
                if (r > 0) {
                    auto& into = i == 0 ? result.out : result.err;
                    into.append(buf, static_cast<size_t>(r));
                    if (i == 0 && on_output) {
                        on_output(std::string_view(buf, static_cast<size_t>(r)));
                    }
                    if (into.size() > k_max_command_output) {
                        child.signal(SIGKILL);
                        return PumpEnd::too_much;
                    }
                } else if (r == 0 || errno != EAGAIN) {
                    (i == 0 ? child.out() : child.err()).reset();
                    --open_outputs;
                }
            }
        }
        if (on_output && !(fds[0].revents & POLLIN)) {
            on_output({});
        }
        if (in_fd && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in_fd.get(), input.data() + written, input.size() - written);
            if (w > 0) {
                written += static_cast<size_t>(w);
            }
            if (w < 0 && errno != EAGAIN) {
                written = input.size();  // the command stopped reading; that is its business
            }
            if (written == input.size()) {
                in_fd.reset();
            }
        }
    }
    return PumpEnd::outputs_closed;
}

}  // namespace

Result<CommandResult> run_process(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::seconds timeout,
                                  const std::function<void(std::string_view)>& on_output) {
    auto child = util::Subprocess::start(
        argv,
        {.in = util::Stdio::pipe(), .out = util::Stdio::pipe(), .err = util::Stdio::pipe(), .own_process_group = true});
    if (!child) {
        if (errno == ENOENT || errno == EACCES || errno == ENOEXEC) {
            // What a shell reports for a command it cannot execute.
            return CommandResult{127, "", "cannot execute " + argv[0] + ": " + std::strerror(errno) + "\n"};
        }
        return make_error(ErrorCode::io, child.error());
    }
    CommandResult result;
    auto ended = pump(*child, input, timeout, on_output, result);
    if (!ended) {
        child->signal(SIGKILL);  // poll failed: nothing would see the child end
    }
    // Closed before the wait: a child still writing gets EPIPE, not a hang.
    child->in().reset();
    child->out().reset();
    child->err().reset();
    int status = child->wait();
    TRY_VOID(ended);
    if (*ended == PumpEnd::timed_out) {
        return make_error(ErrorCode::timeout, "command timed out after " + std::to_string(timeout.count()) + "s");
    }
    if (*ended == PumpEnd::too_much) {
        return make_error(ErrorCode::command, "the command printed more than " +
                                                  std::to_string(k_max_command_output >> 20) + " MiB; stopped");
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

Result<CommandResult> LocalTarget::run(const Command& cmd) {
    return run_process({"/bin/sh", "-c", std::string(k_script_prologue) + cmd.script}, cmd.input, cmd.timeout,
                       cmd.on_output);
}

Result<void> LocalTarget::write_file(const FileSpec& file) {
    auto fail = [&](const std::string& what) { return errno_error("writing " + file.path + ": " + what); };
    auto uid = user_id(file.owner);
    auto gid = group_id(file.group);
    if (!uid || !gid) {
        return make_error(ErrorCode::io, "writing " + file.path + ": no such " +
                                             (uid ? "group '" + file.group : "user '" + file.owner) + "'");
    }
    std::filesystem::path path(file.path);
    std::string dir = path.parent_path().string();
    std::string name = path.filename().string();
    if (dir.empty() || name.empty()) {
        return make_error(ErrorCode::io, "writing " + file.path + ": not a file path");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // like mkdir -p; errors show up at open
    util::Fd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) {
        return fail(errno == ELOOP || errno == ENOTDIR ? "opening " + dir + " (not a directory, or a symbolic link)"
                                                       : "opening " + dir);
    }
    struct stat dir_st {};
    if (fstat(d.get(), &dir_st) != 0) {
        return fail("stat " + dir);
    }
    if (dir_st.st_mode & 022) {  // as the SSH targets' script: such directories are refused
        return make_error(ErrorCode::io,
                          "writing " + file.path + ": refusing, " + dir + " is writable by group or others");
    }
    std::string tmp = ".nodectl." + util::random_hex(8);
    util::Fd f(openat(d.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!f) {
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
    } unlink_tmp{d.get(), tmp};
    for (size_t off = 0; off < file.content.size();) {
        ssize_t n = ::write(f.get(), file.content.data() + off, file.content.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("write");
        }
        off += static_cast<size_t>(n);
    }
    if (fchown(f.get(), *uid, *gid) != 0) {
        return fail("chown " + file.owner + ":" + file.group);
    }
    if (fchmod(f.get(), file.mode) != 0) {
        return fail("chmod");
    }
    if (fsync(f.get()) != 0) {
        return fail("fsync");
    }
    if (renameat(d.get(), tmp.c_str(), d.get(), name.c_str()) != 0) {
        return fail("renaming into place");
    }
    unlink_tmp.armed = false;
    fsync(d.get());
    return Ok{};
}

namespace {

class LocalLock final : public HostLock {
public:
    explicit LocalLock(util::FileLock lock) : m_lock(std::move(lock)) {}

private:
    util::FileLock m_lock;
};

}  // namespace

Result<std::unique_ptr<HostLock>> LocalTarget::lock(const std::string& holder) {
    const char* dir = "/var/lib/nodectl";
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return errno_error(std::string("mkdir ") + dir);
    }
    // flock is released by the kernel when the holder dies, so a killed run leaves no stale lock.
    auto lock = util::FileLock::take("/var/lib/nodectl/lock", 0600, util::FileLock::Wait::no);
    if (!lock && errno != EWOULDBLOCK) {
        return make_error(ErrorCode::io, lock.error());
    }
    if (!lock) {
        std::ifstream owner("/var/lib/nodectl/lock.owner");
        std::string who;
        std::getline(owner, who);
        return make_error(ErrorCode::locked, "another nodectl run holds /var/lib/nodectl/lock (" + who + ")");
    }
    std::ofstream("/var/lib/nodectl/lock.owner", std::ios::trunc) << holder << "\n";
    return std::unique_ptr<HostLock>(new LocalLock(std::move(*lock)));
}

}  // namespace nodectl

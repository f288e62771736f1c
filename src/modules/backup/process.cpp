// Child processes of a backup: mariadb-dump (stdout read as a stream), the mariadb client
// (stdin written as a stream), hooks. Credentials reach the MariaDB tools through a 0600 option
// file in a private 0700 directory, never through argv or the environment.
#include "modules/backup/detail.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

extern char** environ;

namespace nodectl::backup {

namespace {

std::string tmp_root() {
    const char* t = std::getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

// A MariaDB option-file value: quoted, with the escapes the option-file reader understands
// (my_default.c: \\ \" \n \r \t \b), so a newline in a password cannot start a new option line.
// Other control characters have no escape: refused.
Result<std::string> option_value(const std::string& what, const std::string& v) {
    std::string out = "\"";
    for (char c : v) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                return make_error(ErrorCode::config,
                                  "the MariaDB " + what + " holds a control character an option file cannot carry");
            }
            out += c;
        }
    }
    return out + "\"";
}

}  // namespace

UniqueFd::~UniqueFd() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(o.m_fd, -1);
    }
    return *this;
}

Child::~Child() {
    if (m_in >= 0) {
        ::close(m_in);
    }
    if (m_out >= 0) {
        ::close(m_out);
    }
    if (m_pid > 0) {
        kill_now();
        int st = 0;
        waitpid(m_pid, &st, 0);
    }
    if (m_err >= 0) {
        ::close(m_err);
    }
}

Result<void> Child::start(const std::vector<std::string>& argv, bool pipe_stdin, bool pipe_stdout,
                          const std::vector<std::string>& extra_env) {
    m_name = argv.at(0);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe_stdin && pipe2(in, O_CLOEXEC) != 0) {
        return errno_error("pipe");
    }
    if (pipe_stdout && pipe2(out, O_CLOEXEC) != 0) {
        return errno_error("pipe");
    }
    if (pipe_stdout) {
        // 1 MiB (the default /proc/sys/fs/pipe-max-size) rather than 64 KiB: the reader wakes and
        // reads a fraction as often (measured: about half its CPU time); a refusal changes nothing.
        (void)::fcntl(out[0], F_SETPIPE_SZ, 1 << 20);
    }
    // stderr goes to an unnamed temporary file, read back when the child failed.
    m_err = ::open(tmp_root().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (m_err < 0) {
        return errno_error("temporary file in " + tmp_root());
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe_stdin) {
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    if (pipe_stdout) {
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    } else {
        posix_spawn_file_actions_adddup2(&fa, m_err, 1);
    }
    posix_spawn_file_actions_adddup2(&fa, m_err, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) {
        env_store.emplace_back(*e);
    }
    for (const auto& e : extra_env) {
        env_store.push_back(e);
    }
    std::vector<char*> envp, args;
    for (auto& e : env_store) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    int rc = posix_spawnp(&m_pid, args[0], &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (pipe_stdin) {
        ::close(in[0]);
        m_in = in[1];
    }
    if (pipe_stdout) {
        ::close(out[1]);
        m_out = out[0];
    }
    if (rc != 0) {
        m_pid = -1;
        errno = rc;
        return errno_error("cannot run " + m_name);
    }
    return Ok{};
}

void Child::close_stdin() {
    if (m_in >= 0) {
        ::close(m_in);
        m_in = -1;
    }
}

void Child::kill_now() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
    }
}

Result<void> Child::wait() {
    close_stdin();
    if (m_out >= 0) {
        ::close(m_out);
        m_out = -1;
    }
    int st = 0;
    while (waitpid(m_pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return errno_error("waitpid " + m_name);
        }
    }
    m_pid = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        return Ok{};
    }
    std::string err;
    off_t size = lseek(m_err, 0, SEEK_END);
    off_t from = size > 4096 ? size - 4096 : 0;
    err.resize(static_cast<size_t>(size - from));
    if (pread(m_err, err.data(), err.size(), from) < 0) {
        err.clear();
    }
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) {
        err.pop_back();
    }
    std::string how = WIFEXITED(st) ? "exited " + std::to_string(WEXITSTATUS(st))
                                    : "killed by signal " + std::to_string(WTERMSIG(st));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && err.empty()) {
        err = "command not found";
    }
    return make_error(ErrorCode::command, m_name + " " + how + (err.empty() ? "" : ": " + err));
}

Result<std::string> run_capture(const std::vector<std::string>& argv, const std::string& input) {
    Child c;
    TRY_VOID(c.start(argv, !input.empty(), true));
    if (!input.empty()) {
        size_t off = 0;
        while (off < input.size()) {
            ssize_t w = ::write(c.stdin_fd(), input.data() + off, input.size() - off);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                break;  // the child's error tells why
            }
            off += static_cast<size_t>(w);
        }
        c.close_stdin();
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(c.stdout_fd(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    TRY_VOID(c.wait());
    return out;
}

Result<void> run_hook(const std::string& command, const std::vector<std::string>& extra_env) {
    Child c;
    TRY_VOID(c.start({"/bin/sh", "-c", command}, false, false, extra_env));
    auto r = c.wait();
    if (!r) {
        return make_error(ErrorCode::command, "hook `" + command + "`: " + r.error().message);
    }
    return Ok{};
}

ClientOptionFile::~ClientOptionFile() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Result<void> ClientOptionFile::create(const std::string& host, int port, const std::string& socket,
                                      const std::string& user, const std::string& password) {
    std::string text = "[client]\n";
    if (!user.empty()) {
        text += "user=" + TRY(option_value("user", user)) + "\n";
    }
    if (!password.empty()) {
        auto quoted = option_value("password", password);
        if (!quoted) {
            return quoted.error();
        }
        text += "password=" + *quoted + "\n";
        std::fill(quoted->begin(), quoted->end(), '\0');
    }
    if (!host.empty()) {
        text += "host=" + TRY(option_value("host", host)) + "\nport=" + std::to_string(port) + "\nprotocol=TCP\n";
    } else if (!socket.empty()) {
        text += "socket=" + TRY(option_value("socket", socket)) + "\n";
    }
    // Not close-on-exec: the clients read it as /dev/fd/N. 0600: MariaDB ignores a world-writable
    // option file, and a memfd starts as 0777.
    int fd = ::memfd_create("nodectl-client.cnf", 0);
    if (fd < 0) {
        std::fill(text.begin(), text.end(), '\0');
        return errno_error("memfd_create");
    }
    bool written =
        ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    std::fill(text.begin(), text.end(), '\0');
    if (!written) {
        auto e = errno_error("cannot write the client option file (memfd)");
        ::close(fd);
        return e;
    }
    m_fd = fd;
    return Ok{};
}

}  // namespace nodectl::backup

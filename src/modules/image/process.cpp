#include "modules/image/process.hpp"

#include "util/log.hpp"

#include <cerrno>
#include <cstring>
#include <deque>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nodectl::image {

Result<void> run_logged(const std::vector<std::string>& argv, const std::string& label,
                        const std::map<std::string, std::string>& env) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return errno_error("pipe");
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        return errno_error("fork");
    }
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        for (const auto& [k, v] : env) {
            ::setenv(k.c_str(), v.c_str(), 1);
        }
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::execvp(args[0], args.data());
        _exit(127);
    }
    ::close(fds[1]);
    std::deque<std::string> tail;
    std::string line;
    char buf[8192];
    auto flush = [&](std::string l) {
        if (!l.empty() && l.back() == '\r') {
            l.pop_back();
        }
        log::debug(label, "{}", l);
        if (l.rfind("@@ ", 0) == 0) {
            log::info(label, "{}", l.substr(3));
        } else if (l.rfind("I: ", 0) == 0) {
            log::info(label, "mmdebstrap: {}", l.substr(3));
        }
        tail.push_back(std::move(l));
        if (tail.size() > 30) {
            tail.pop_front();
        }
    };
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == '\n') {
                flush(std::move(line));
                line.clear();
            } else {
                line += buf[i];
            }
        }
    }
    if (!line.empty()) {
        flush(std::move(line));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return Ok{};
    }
    std::string out;
    for (const auto& l : tail) {
        out += "\n  " + l;
    }
    std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status));
    return make_error(ErrorCode::command, argv[0] + " failed (" + how + "); its last lines:" + out);
}

}  // namespace nodectl::image

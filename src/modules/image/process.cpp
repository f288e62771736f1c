#include "modules/image/process.hpp"

#include "util/log.hpp"
#include "util/subprocess.hpp"

#include <cerrno>
#include <cstring>
#include <deque>

#include <sys/wait.h>
#include <unistd.h>

namespace nodectl::image {

Result<void> run_logged(const std::vector<std::string>& argv, const std::string& label,
                        const std::map<std::string, std::string>& env) {
    util::SpawnOptions options{
        .in = util::Stdio::null(), .out = util::Stdio::pipe(), .err = util::Stdio::same_as_stdout()};
    options.env.assign(env.begin(), env.end());
    auto child = TRY(as_result(util::Subprocess::start(argv, options), ErrorCode::command));
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
        ssize_t n = ::read(child.out().get(), buf, sizeof buf);
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
    child.out().reset();
    int status = child.wait();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return Ok{};
    }
    std::string out;
    for (const auto& l : tail) {
        out += "\n  " + l;
    }
    return make_error(ErrorCode::command,
                      argv[0] + " failed (" + util::describe_wait_status(status) + "); its last lines:" + out);
}

}  // namespace nodectl::image

// util::Subprocess: the one way nodectl starts a child process (LocalTarget, the backup's database
// tools and hooks, the image builder's mmdebstrap and helpers).
#include "util/subprocess.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace {

// Everything readable on `fd` until end of file.
std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<size_t>(n));
    }
}

void write_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        REQUIRE(n > 0);
        off += static_cast<size_t>(n);
    }
}

// The process's state letter from /proc (R, S, Z...), or "" once it is gone.
std::string proc_state(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    auto close_paren = stat.rfind(')');
    return close_paren == std::string::npos || close_paren + 2 >= stat.size() ? "" : stat.substr(close_paren + 2, 1);
}

}  // namespace

TEST_CASE("subprocess: stdin and stdout as pipes, stderr apart, the exit status") {
    auto p =
        util::Subprocess::start({"sh", "-c", "cat; echo oops >&2; exit 3"},
                                {.in = util::Stdio::pipe(), .out = util::Stdio::pipe(), .err = util::Stdio::pipe()});
    REQUIRE_MESSAGE(p, (p ? "" : p.error()));
    write_all(p->in().get(), "hello\n");
    p->in().reset();
    CHECK(read_all(p->out().get()) == "hello\n");
    CHECK(read_all(p->err().get()) == "oops\n");
    int status = p->wait();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 3);
    CHECK(p->wait() == status);  // a second wait answers the same
    CHECK(util::describe_wait_status(status) == "exit 3");
}

TEST_CASE("subprocess: stderr with stdout, stdin from /dev/null, an environment variable put over the parent's") {
    REQUIRE(::setenv("NODECTL_SUBPROCESS_TEST", "parent", 1) == 0);
    util::SpawnOptions o{.in = util::Stdio::null(), .out = util::Stdio::pipe(), .err = util::Stdio::same_as_stdout()};
    o.env = {{"NODECTL_SUBPROCESS_TEST", "child"}};
    auto p = util::Subprocess::start(
        {"sh", "-c", "env | grep '^NODECTL_SUBPROCESS_TEST='; echo to-stderr >&2; wc -c; echo $HOME"}, o);
    REQUIRE(p);
    CHECK_FALSE(p->in());
    CHECK_FALSE(p->err());
    std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
    CHECK(read_all(p->out().get()) == "NODECTL_SUBPROCESS_TEST=child\nto-stderr\n0\n" + home + "\n");
    CHECK(p->wait() == 0);
    ::unsetenv("NODECTL_SUBPROCESS_TEST");
}

TEST_CASE("subprocess: a program that does not exist is an error naming it, not a child") {
    auto p = util::Subprocess::start({"/nonexistent/nodectl-unit-tool", "x"}, {});
    REQUIRE_FALSE(p);
    CHECK(errno == ENOENT);
    CHECK(p.error() == "cannot run /nonexistent/nodectl-unit-tool: spawn: No such file or directory");
}

TEST_CASE("subprocess: with a process group of its own, signal() reaches the children it started") {
    auto p =
        util::Subprocess::start({"sh", "-c", "sleep 30 & echo $!; wait"},
                                {.out = util::Stdio::pipe(), .err = util::Stdio::null(), .own_process_group = true});
    REQUIRE(p);
    std::string line;
    char c = 0;
    while (::read(p->out().get(), &c, 1) == 1 && c != '\n') {
        line += c;
    }
    pid_t grandchild = std::atoi(line.c_str());
    REQUIRE(grandchild > 0);
    CHECK(::getpgid(grandchild) == p->pid());
    p->signal(SIGTERM);
    int status = p->wait();
    CHECK(WIFSIGNALED(status));
    CHECK(util::describe_wait_status(status) == "signal 15");
    // The grandchild got the signal too: gone, or a zombie waiting for init to reap it.
    for (int i = 0; i < 100 && proc_state(grandchild) != "" && proc_state(grandchild) != "Z"; ++i) {
        ::usleep(20000);
    }
    std::string state = proc_state(grandchild);
    CHECK((state.empty() || state == "Z"));
}

TEST_CASE("subprocess: a child still running when its Subprocess goes away is killed and reaped") {
    pid_t pid = -1;
    {
        auto p = util::Subprocess::start({"sleep", "30"}, {.out = util::Stdio::null(), .err = util::Stdio::null()});
        REQUIRE(p);
        pid = p->pid();
        CHECK(proc_state(pid) != "");
    }
    int status = 0;
    CHECK(::waitpid(pid, &status, WNOHANG) == -1);  // already reaped: no such child
    CHECK(errno == ECHILD);
    CHECK(proc_state(pid) == "");
}

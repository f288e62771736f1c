// Child processes: one way to start one (posix_spawnp), wire its standard streams, signal it and
// reap it. Knows nothing of nodectl.
#pragma once

#include "util/expected.hpp"
#include "util/fd.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace util {

// Where one of the child's standard streams goes.
struct Stdio {
    enum class Kind { null, pipe, fd, same_as_stdout };
    Kind kind = Kind::pipe;
    int fd = -1;  // Kind::fd: this descriptor of ours (dup2'ed; it stays ours)

    static Stdio null() { return {Kind::null, -1}; }
    static Stdio pipe() { return {Kind::pipe, -1}; }
    static Stdio to(int fd) { return {Kind::fd, fd}; }
    static Stdio same_as_stdout() { return {Kind::same_as_stdout, -1}; }  // stderr only
};

struct SpawnOptions {
    Stdio in = Stdio::null();
    Stdio out = Stdio::pipe();
    Stdio err = Stdio::pipe();
    // A process group of its own, so that signal() reaches everything the child started.
    bool own_process_group = false;
    // Set in the child's environment (over the variables of the same name it would inherit).
    std::vector<std::pair<std::string, std::string>> env;
};

// A running child. Our ends of its pipes are in(), out() and err() (O_CLOEXEC; invalid for a
// stream that is not a pipe). A child still running when the Subprocess is destroyed is killed
// (SIGKILL) and reaped, so none outlives its owner as a zombie. SIGPIPE is at its default in the
// child; descriptors without O_CLOEXEC are inherited, as with exec.
class Subprocess {
public:
    // argv[0] is looked up in PATH. When it cannot be started, including a program that does not
    // exist: why ("cannot run NAME: WHAT: REASON"), with errno set.
    static Expected<Subprocess> start(const std::vector<std::string>& argv, const SpawnOptions& options);

    Subprocess(Subprocess&& other) noexcept;
    Subprocess& operator=(Subprocess&& other) noexcept;
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;
    ~Subprocess();

    pid_t pid() const { return m_pid; }
    Fd& in() { return m_in; }
    Fd& out() { return m_out; }
    Fd& err() { return m_err; }

    // Sends `sig` to the child, or to its whole process group with own_process_group; nothing once
    // it has been reaped.
    void signal(int sig);
    // Waits for the child to end (again: the status it ended with) and returns its wait status.
    int wait();

private:
    Subprocess() = default;
    void finish();  // closes our ends; kills and reaps a child still running
    pid_t m_pid = -1;
    bool m_group = false;
    std::optional<int> m_status;
    Fd m_in, m_out, m_err;
};

// A wait status in words: "exit 3", "signal 9".
std::string describe_wait_status(int status);

}  // namespace util

#include "util/subprocess.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace util {

namespace {

// posix_spawn's attributes and file actions, destroyed with the scope.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// One standard stream of the child: its pipe (both ends held here until the spawn), or the
// descriptor it is given. `ours` keeps our end of a pipe.
bool wire(SpawnSetup& s, const Stdio& how, int target, bool child_reads, Fd& ours, Fd& child_end) {
    switch (how.kind) {
    case Stdio::Kind::null:
        return posix_spawn_file_actions_addopen(&s.actions, target, "/dev/null", child_reads ? O_RDONLY : O_WRONLY,
                                                0) == 0;
    case Stdio::Kind::fd: return posix_spawn_file_actions_adddup2(&s.actions, how.fd, target) == 0;
    case Stdio::Kind::same_as_stdout: return posix_spawn_file_actions_adddup2(&s.actions, 1, target) == 0;
    case Stdio::Kind::pipe: {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return false;
        }
        ours.reset(child_reads ? fds[1] : fds[0]);
        child_end.reset(child_reads ? fds[0] : fds[1]);
        return posix_spawn_file_actions_adddup2(&s.actions, child_end.get(), target) == 0;
    }
    }
    return false;
}

// The parent's environment with `overrides` put over it.
std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::vector<std::string> out;
    for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        bool replaced = false;
        for (const auto& [name, value] : overrides) {
            replaced |=
                entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 && entry[name.size()] == '=';
        }
        if (!replaced) {
            out.push_back(std::move(entry));
        }
    }
    for (const auto& [name, value] : overrides) {
        out.push_back(name + "=" + value);
    }
    return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

}  // namespace

Expected<Subprocess> Subprocess::start(const std::vector<std::string>& argv, const SpawnOptions& options) {
    auto fail = [&](const std::string& what) -> Expected<Subprocess> {
        int saved = errno;
        auto why = util::fail("cannot run " + (argv.empty() ? std::string("nothing") : argv[0]) + ": " + what + ": " +
                              std::strerror(saved));
        errno = saved;
        return why;
    };
    if (argv.empty()) {
        errno = EINVAL;
        return fail("no program");
    }
    Subprocess p;
    SpawnSetup s;
    Fd child_in, child_out, child_err;  // closed here once the child has them
    if (!wire(s, options.in, 0, true, p.m_in, child_in) || !wire(s, options.out, 1, false, p.m_out, child_out) ||
        !wire(s, options.err, 2, false, p.m_err, child_err)) {
        return fail("setting up its standard streams");
    }
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&s.attr, &defaults);
    short flags = POSIX_SPAWN_SETSIGDEF;
    if (options.own_process_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&s.attr, 0);
    }
    posix_spawnattr_setflags(&s.attr, flags);
    std::vector<std::string> args = argv;
    std::vector<std::string> env = child_environment(options.env);
    auto arg_pointers = pointers(args);
    auto env_pointers = pointers(env);
    int rc = posix_spawnp(&p.m_pid, arg_pointers[0], &s.actions, &s.attr, arg_pointers.data(), env_pointers.data());
    if (rc != 0) {
        p.m_pid = -1;
        errno = rc;
        return fail("spawn");
    }
    p.m_group = options.own_process_group;
    return Expected<Subprocess>(std::move(p));
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_group(other.m_group), m_status(other.m_status),
      m_in(std::move(other.m_in)), m_out(std::move(other.m_out)), m_err(std::move(other.m_err)) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
    if (this != &other) {
        finish();
        m_pid = std::exchange(other.m_pid, -1);
        m_group = other.m_group;
        m_status = other.m_status;
        m_in = std::move(other.m_in);
        m_out = std::move(other.m_out);
        m_err = std::move(other.m_err);
    }
    return *this;
}

Subprocess::~Subprocess() {
    finish();
}

void Subprocess::finish() {
    // Our ends first: a child still writing gets EPIPE rather than blocking forever.
    m_in.reset();
    m_out.reset();
    m_err.reset();
    if (m_pid > 0 && !m_status) {
        signal(SIGKILL);
        wait();
    }
}

void Subprocess::signal(int sig) {
    if (m_pid > 0 && !m_status) {
        ::kill(m_group ? -m_pid : m_pid, sig);
    }
}

int Subprocess::wait() {
    if (!m_status) {
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0) {
            if (errno != EINTR) {
                status = W_EXITCODE(127, 0);  // not our child any more (reaped elsewhere): say it failed
                break;
            }
        }
        m_status = status;
    }
    return *m_status;
}

std::string describe_wait_status(int status) {
    return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                             : "signal " + std::to_string(WTERMSIG(status));
}

}  // namespace util

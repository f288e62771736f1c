// Whether an SSH link still moves, for SshTarget (libssh in blocking mode). libssh bounds each
// wait for one answer by the session's timeout (SSH_OPTIONS_TIMEOUT, --connect-timeout), but a
// command that prints nothing for a while asks no question, and SFTP reads again after every such
// timeout: over a link that stalled (a peer that stopped, a path that drops everything) a run
// would wait for the command's own timeout (30 min for packages), an upload for ever. These bound
// it: a silent command's link is probed, an upload's link is cut when nothing moves.
#pragma once

#include "nodectl/result.hpp"

#include <libssh/libssh.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace nodectl::link {

// A command channel silent for this long gets a probe.
inline constexpr std::chrono::seconds k_probe_after{10};

enum class Probe { alive, stalled, lost };

// Sends on `channel` a request its peer must answer (an "env" request, which sshd refuses once the
// command runs: a refusal is an answer) and waits for the answer as long as the session's timeout.
// A channel that ended meanwhile is alive: its end was the answer.
Probe probe(ssh_session session, ssh_channel channel);

// Shuts the session's socket down: every libssh call on it then fails at once, instead of waiting
// for a peer that no longer answers. The session is of no further use.
void cut(ssh_session session);

// No answer from `host` within `timeout`: cuts the session (cut()) and says so.
Error stalled(ssh_session session, const std::string& host, std::chrono::seconds timeout);
// The connection to `host` broke: libssh's reason.
Error lost(ssh_session session, const std::string& host);

// Cuts the session when kick() was not called for `limit`: around a transfer that must keep moving.
class Watchdog {
public:
    Watchdog(ssh_session session, std::chrono::seconds limit);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void kick();
    bool fired() const;

private:
    void watch();

    ssh_session m_session;
    std::chrono::seconds m_limit;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::chrono::steady_clock::time_point m_deadline;
    bool m_stop = false;
    bool m_fired = false;
    std::thread m_thread;
};

}  // namespace nodectl::link

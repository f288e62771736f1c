#include "target/link_ssh.hpp"

#include <sys/socket.h>

namespace nodectl::link {

Probe probe(ssh_session session, ssh_channel channel) {
    int rc = ssh_channel_request_env(channel, "NODECTL_LINK_PROBE", "1");
    if (rc == SSH_OK || (rc == SSH_ERROR && ssh_get_error_code(session) == SSH_REQUEST_DENIED)) {
        return Probe::alive;
    }
    if (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel)) {
        return Probe::alive;
    }
    return rc == SSH_AGAIN ? Probe::stalled : Probe::lost;
}

void cut(ssh_session session) {
    socket_t fd = ssh_get_fd(session);
    if (fd != SSH_INVALID_SOCKET) {
        ::shutdown(fd, SHUT_RDWR);
    }
}

Error stalled(ssh_session session, const std::string& host, std::chrono::seconds timeout) {
    cut(session);
    return make_error(ErrorCode::connect, "no answer from " + host + " within " + std::to_string(timeout.count()) +
                                              " s: the link or the host stalled; the connection was closed");
}

Error lost(ssh_session session, const std::string& host) {
    return make_error(ErrorCode::connect, "lost the connection to " + host + ": " + ssh_get_error(session));
}

Watchdog::Watchdog(ssh_session session, std::chrono::seconds limit)
    : m_session(session), m_limit(limit), m_deadline(std::chrono::steady_clock::now() + limit),
      m_thread([this] { watch(); }) {}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void Watchdog::kick() {
    std::lock_guard lock(m_mutex);
    m_deadline = std::chrono::steady_clock::now() + m_limit;
}

bool Watchdog::fired() const {
    std::lock_guard lock(m_mutex);
    return m_fired;
}

void Watchdog::watch() {
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
        if (std::chrono::steady_clock::now() >= m_deadline) {
            m_fired = true;
            cut(m_session);  // the socket only: libssh's state is the other thread's
            return;
        }
        m_wake.wait_until(lock, m_deadline);
    }
}

}  // namespace nodectl::link

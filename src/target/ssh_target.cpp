#include "target/ssh_target.hpp"

#include "util/log.hpp"
#include "target/link_ssh.hpp"
#include "target/local_target.hpp"
#include "config/ssh_destination.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <libssh/libssh.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include <fstream>
#include <thread>
#include <vector>

namespace nodectl {

namespace {

std::string fingerprint(ssh_key key) {
    unsigned char* hash = nullptr;
    size_t len = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) {
        return "(unknown)";
    }
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
    std::string out = std::string(ssh_key_type_to_char(ssh_key_type(key))) + " " + fp;
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    return out;
}

// The session is closed by the destructor; until then errors are read from it.
struct SessionGuard {
    ssh_session s;
    ~SessionGuard() {
        if (s) {
            ssh_disconnect(s);
            ssh_free(s);
        }
    }
};

// Fingerprints of the keys known_hosts holds for a host ("host" or "[host]:port"), hashed entries
// included. libssh only hands out an entry that matches, so the old key of a changed host is read here.
std::vector<std::string> known_fingerprints(const std::string& known_hosts, const std::string& pattern) {
    std::string path = known_hosts;
    if (path.empty()) {
        const char* home = getenv("HOME");
        path = std::string(home ? home : "") + "/.ssh/known_hosts";
    }
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (auto fp = known_hosts_line_fingerprint(line, pattern)) {
            out.push_back(std::move(*fp));
        }
    }
    return out;
}

Result<void> check_host_key(ssh_session s, const std::string& where, const std::string& host_pattern,
                            const SshOptions& options) {
    ssh_key server_key = nullptr;
    if (ssh_get_server_publickey(s, &server_key) != SSH_OK) {
        return make_error(ErrorCode::host_key, "cannot read the host key of " + where + ": " + ssh_get_error(s));
    }
    std::string server_fp = fingerprint(server_key);
    ssh_key_free(server_key);
    std::string file = options.known_hosts.empty() ? "~/.ssh/known_hosts" : options.known_hosts;

    switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK: return Ok{};
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER: {
        auto known = known_fingerprints(options.known_hosts, host_pattern);
        return make_error(ErrorCode::host_key,
                          "HOST KEY OF " + where + " HAS CHANGED: refusing to connect.\n  known (" + file +
                              "): " + (known.empty() ? "(unreadable)" : util::join(known, ", ")) +
                              "\n  offered now: " + server_fp +
                              "\n  If the host was reinstalled, verify the new key out of band and remove the old "
                              "entry (ssh-keygen -R HOST -f " +
                              file + ").");
    }
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
        if (!options.accept_new_host_key) {
            return make_error(ErrorCode::host_key, "host key of " + where + " is not in " + file + " (it offers " +
                                                       server_fp +
                                                       "). Verify it, then re-run with --accept-new-host-key "
                                                       "to record it.");
        }
        if (ssh_session_update_known_hosts(s) != SSH_OK) {
            return make_error(ErrorCode::host_key, "cannot record the host key in " + file + ": " + ssh_get_error(s));
        }
        return Ok{};
    case SSH_KNOWN_HOSTS_ERROR: break;
    }
    return make_error(ErrorCode::host_key, "cannot check the host key of " + where + ": " + ssh_get_error(s));
}

Result<void> authenticate(ssh_session s, const HostSpec& host, const std::string& where, const std::string& user) {
    std::string tried;
    int rc = SSH_AUTH_DENIED;
    if (host.identity) {
        std::string path = *host.identity;
        if (util::starts_with(path, "~/")) {
            const char* home = getenv("HOME");
            path = std::string(home ? home : "") + path.substr(1);
        }
        ssh_key key = nullptr;
        if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK) {
            return make_error(ErrorCode::auth, "cannot load private key " + path +
                                                   " (missing, unreadable, or protected by a passphrase: use "
                                                   "ssh-agent for such keys)");
        }
        rc = ssh_userauth_publickey(s, nullptr, key);
        ssh_key_free(key);
        tried = "key " + path;
    } else {
        if (getenv("SSH_AUTH_SOCK")) {
            rc = ssh_userauth_agent(s, nullptr);
        }
        if (rc != SSH_AUTH_SUCCESS) {
            rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
        }
        tried = "ssh-agent and ~/.ssh/id_*";
    }
    if (rc == SSH_AUTH_SUCCESS) {
        return Ok{};
    }
    if (rc == SSH_AUTH_ERROR) {
        // Not a refusal: the connection broke or timed out while the keys were offered (a
        // connection error, which the fresh-login check after an sshd reload retries).
        return make_error(ErrorCode::connect, "authentication as '" + user + "' on " + where + " broke off (tried " +
                                                  tried + "): " + ssh_get_error(s));
    }
    std::string hint = user == "root" ? " (a host hardened by nodectl refuses root: log in as its admin user with "
                                        "sudo = \"nopasswd\")"
                                      : "";
    return make_error(ErrorCode::auth, "authentication as '" + user + "' on " + where + " failed (tried " + tried +
                                           "): the server accepted none of the keys" + hint);
}

Result<std::string> proxy_command(const std::string& jump, const std::string& address, const HostSpec& host,
                                  const SshOptions& options) {
    // libssh 0.10 has no native ProxyJump; it runs `ssh -W` as a ProxyCommand, which checks the
    // jump host's key strictly against the same known_hosts file. Both names end up in a shell
    // command line: only a host name or an IP address gets there, quoted, after "--".
    auto dest = parse_ssh_destination(jump);
    if (!dest) {
        return make_error(ErrorCode::config, "proxy_jump '" + jump + "' is not \"[user@]host[:port]\"");
    }
    if (!is_ssh_host(address)) {
        return make_error(ErrorCode::config, "'" + address + "' is not a host name or an IP address");
    }
    std::string cmd =
        "ssh -W " + shell_quote("[" + address + "]:%p") + " -o BatchMode=yes -o StrictHostKeyChecking=yes";
    if (!options.known_hosts.empty()) {
        cmd += " -o UserKnownHostsFile=" + shell_quote(options.known_hosts);
    }
    if (!options.ssh_config.empty()) {
        cmd += " -F " + shell_quote(options.ssh_config);
    }
    if (host.identity) {
        cmd += " -i " + shell_quote(*host.identity);
    }
    if (dest->port) {
        cmd += " -p " + std::to_string(*dest->port);
    }
    if (dest->user) {
        cmd += " -l " + shell_quote(*dest->user);
    }
    return cmd + " -- " + shell_quote(dest->host);
}

}  // namespace

std::optional<std::string> known_hosts_line_fingerprint(const std::string& line, const std::string& pattern) {
    auto fields = util::split(util::trim(line), ' ');
    if (fields.size() < 3 || fields[0].empty() || fields[0][0] == '#' || fields[0][0] == '@') {
        return std::nullopt;
    }
    bool match = false;
    if (util::starts_with(fields[0], "|1|")) {
        // |1|base64(salt)|base64(HMAC-SHA1(salt, host)): both 20 bytes, 28 base64 characters.
        // The file is not trusted to hold only such entries: anything else is skipped.
        auto parts = util::split(fields[0], '|');
        if (parts.size() == 4 && parts[2].size() == 28 && parts[3].size() == 28) {
            unsigned char salt[21], want[21], got[EVP_MAX_MD_SIZE];  // 28 base64 characters decode to 21 bytes
            int salt_len = EVP_DecodeBlock(salt, reinterpret_cast<const unsigned char*>(parts[2].data()), 28);
            int want_len = EVP_DecodeBlock(want, reinterpret_cast<const unsigned char*>(parts[3].data()), 28);
            unsigned got_len = 0;
            if (salt_len >= 20 && want_len >= 20 &&
                HMAC(EVP_sha1(), salt, 20, reinterpret_cast<const unsigned char*>(pattern.data()), pattern.size(), got,
                     &got_len) &&
                got_len == 20) {
                match = std::memcmp(got, want, 20) == 0;
            }
        }
    } else {
        for (const auto& name : util::split(fields[0], ',')) {
            match = match || name == pattern;
        }
    }
    ssh_key key = nullptr;
    if (match &&
        ssh_pki_import_pubkey_base64(fields[2].c_str(), ssh_key_type_from_name(fields[1].c_str()), &key) == SSH_OK) {
        std::string fp = fingerprint(key);
        ssh_key_free(key);
        return fp;
    }
    return std::nullopt;
}

Result<std::unique_ptr<SshTarget>> SshTarget::connect(const HostSpec& host, const SshOptions& given) {
    // --known-hosts wins over the inventory's known_hosts, which wins over ~/.ssh/known_hosts.
    SshOptions options = given;
    if (options.known_hosts.empty() && host.known_hosts) {
        options.known_hosts = *host.known_hosts;
    }
    SessionGuard g{ssh_new()};
    ssh_session s = g.s;
    if (!s) {
        return make_error(ErrorCode::internal, "ssh_new failed");
    }
    ssh_options_set(s, SSH_OPTIONS_HOST, host.address.c_str());
    // ~/.ssh/config first, so that what the inventory says explicitly wins.
    if (ssh_options_parse_config(s, options.ssh_config.empty() ? nullptr : options.ssh_config.c_str()) < 0) {
        return make_error(ErrorCode::config, "cannot parse ssh config: " + std::string(ssh_get_error(s)));
    }
    if (host.port) {
        unsigned port = static_cast<unsigned>(*host.port);
        ssh_options_set(s, SSH_OPTIONS_PORT, &port);
    }
    if (host.user) {
        ssh_options_set(s, SSH_OPTIONS_USER, host.user->c_str());
    }
    // Without TCP_NODELAY every small command waits ~40 ms for Nagle and delayed ACKs.
    int nodelay = 1;
    ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
    long timeout = static_cast<long>(options.connect_timeout.count());
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
    if (!options.known_hosts.empty()) {
        ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, options.known_hosts.c_str());
    }
    char* user_c = nullptr;
    ssh_options_get(s, SSH_OPTIONS_USER, &user_c);
    std::string user = user_c ? user_c : "root";
    ssh_string_free_char(user_c);
    unsigned port = 22;
    ssh_options_get_port(s, &port);
    char* host_c = nullptr;  // after ~/.ssh/config, which may map an alias to a HostName
    ssh_options_get(s, SSH_OPTIONS_HOST, &host_c);
    std::string address = host_c ? host_c : host.address;
    ssh_string_free_char(host_c);
    std::string where = user + "@" + address + ":" + std::to_string(port);
    if (host.proxy_jump) {
        auto proxy = TRY(proxy_command(*host.proxy_jump, address, host, options));
        ssh_options_set(s, SSH_OPTIONS_PROXYCOMMAND, proxy.c_str());
    }

    if (ssh_connect(s) != SSH_OK) {
        return make_error(ErrorCode::connect, "cannot connect to " + where + ": " + ssh_get_error(s));
    }
    std::string pattern = port == 22 ? address : "[" + address + "]:" + std::to_string(port);
    TRY_VOID(check_host_key(s, where, pattern, options));
    TRY_VOID(authenticate(s, host, where, user));

    std::optional<Secret> password;
    if (host.sudo == SudoMode::password) {
        password = TRY(resolve_secret(*host.sudo_password));
    }
    std::unique_ptr<SshTarget> target(new SshTarget(host, options, user, s, std::move(password)));
    g.s = nullptr;  // owned by the target now
    TRY_VOID(target->verify_root());
    return target;
}

SshTarget::SshTarget(HostSpec host, SshOptions options, std::string user, ssh_session session,
                     std::optional<Secret> sudo_password)
    : m_name(host.name), m_host(std::move(host)), m_options(std::move(options)), m_user(std::move(user)),
      m_session(session), m_sudo(m_host.sudo), m_sudo_password(std::move(sudo_password)) {}

Result<AccessCheck> SshTarget::check_fresh_login(const std::string& user) {
    HostSpec h = m_host;
    if (!user.empty() && user != m_user) {
        h.user = user;
        h.sudo = user == "root" ? SudoMode::none : SudoMode::nopasswd;
    }
    SshOptions o = m_options;
    o.accept_new_host_key = false;
    // A firewall that drops the port makes connect() hang: wait less than a whole connect timeout.
    o.connect_timeout = std::min(o.connect_timeout, std::chrono::seconds(10));
    auto fresh = connect(h, o);
    if (!fresh) {
        return fresh.error();
    }
    return AccessCheck::verified;
}

SshTarget::~SshTarget() {
    ssh_disconnect(m_session);
    ssh_free(m_session);
}

Result<void> SshTarget::verify_root() {
    Command cmd;
    cmd.script = "id -u";
    cmd.mutates = false;
    cmd.timeout = std::chrono::seconds(30);
    auto r = TRY(run(cmd));
    if (r.exit_code == 0 && util::trim(r.out) == "0") {
        return Ok{};
    }
    std::string why = util::trim(r.err);
    switch (m_sudo) {
    case SudoMode::none:
        return make_error(ErrorCode::auth, "logged in, but not as root (uid " + util::trim(r.out) +
                                               "); set sudo = \"nopasswd\" or \"password\" for this host");
    case SudoMode::nopasswd:
        return make_error(ErrorCode::auth, "sudo -n was refused (" + why +
                                               "); this user needs a password for sudo: set sudo = \"password\"");
    case SudoMode::password: return make_error(ErrorCode::auth, "sudo refused the password (" + why + ")");
    }
    return make_error(ErrorCode::auth, "cannot become root");
}

std::string SshTarget::wrap(const Command& cmd, std::string& input) const {
    input = cmd.input;
    std::string body = std::string(k_script_prologue) + cmd.script;
    std::string sudo;
    switch (m_sudo) {
    case SudoMode::none: break;
    case SudoMode::nopasswd: sudo = "sudo -n -- "; break;
    case SudoMode::password: {
        // The password travels on stdin, never in any command line. sudo reads it only when it
        // asks: a NOPASSWD rule (nodectl's own hardening installs one) leaves it unread. So a
        // random marker line follows it, and the shell discards stdin up to and including the
        // marker before the script runs: the script's input never holds the password, whether
        // sudo read it or not. -k: sudo never answers from a cached timestamp.
        std::string marker = "nodectl-input-" + util::random_hex(16);
        input = m_sudo_password->reveal() + "\n" + marker + "\n" + cmd.input;
        body = "while IFS= read -r l; do [ \"$l\" = " + marker + " ] && break; done; unset l; " + body;
        sudo = "sudo -S -k -p '' -- ";
        break;
    }
    }
    // The remote `timeout` kills the command on the host; our own deadline covers a dead link.
    return "exec " + sudo + "timeout -k 5 " + std::to_string(cmd.timeout.count()) + " sh -c " + shell_quote(body);
}

Result<CommandResult> SshTarget::run(const Command& cmd) {
    auto t0 = std::chrono::steady_clock::now();
    auto result = run_channel(cmd);
    // Scripts never hold secrets (those travel on stdin), so they can be logged.
    log::trace(m_name, "{:.1f} ms: {}",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
               cmd.script.substr(0, 120));
    return result;
}

Error SshTarget::broken(Error why) {
    m_broken = why.message;
    return why;
}

Result<CommandResult> SshTarget::run_channel(const Command& cmd) {
    if (!m_broken.empty()) {
        return make_error(ErrorCode::connect, m_broken);
    }
    std::string input;
    std::string line = wrap(cmd, input);
    struct ChannelGuard {
        ssh_channel c = nullptr;
        void reset() {
            if (c) {
                // Closing a channel the server refused to open is a protocol error sshd answers by
                // disconnecting: close only what is open.
                if (ssh_channel_is_open(c)) {
                    ssh_channel_close(c);
                }
                ssh_channel_free(c);
                c = nullptr;
            }
        }
        ~ChannelGuard() { reset(); }
    } guard;
    // sshd counts a session against MaxSessions until it has reaped the previous command's
    // process: with MaxSessions 2 (the lock's channel and one command) a new session can be
    // refused for a moment. Retry briefly before calling it an error.
    for (int attempt = 0;; ++attempt) {
        guard.reset();
        guard.c = ssh_channel_new(m_session);
        if (!guard.c) {
            return make_error(ErrorCode::connect,
                              "cannot open an SSH channel: " + std::string(ssh_get_error(m_session)));
        }
        int opened = ssh_channel_open_session(guard.c);
        if (opened == SSH_OK) {
            break;
        }
        if (opened == SSH_AGAIN) {  // no answer at all, not a refusal
            return broken(link::stalled(m_session, m_name, m_options.connect_timeout));
        }
        if (attempt == 50 || !ssh_is_connected(m_session)) {
            return make_error(ErrorCode::connect, "cannot run a command: " + std::string(ssh_get_error(m_session)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ssh_channel ch = guard.c;
    TRY_VOID(send_command(ch, line, input));
    CommandResult result;
    TRY_VOID(read_output(ch, cmd, result));
    if (result.exit_code == 124) {
        return make_error(ErrorCode::timeout, "command timed out after " + std::to_string(cmd.timeout.count()) + "s");
    }
    return result;
}

Result<void> SshTarget::send_command(ssh_channel ch, const std::string& line, const std::string& input) {
    if (int rc = ssh_channel_request_exec(ch, line.c_str()); rc != SSH_OK) {
        if (rc == SSH_AGAIN) {
            return broken(link::stalled(m_session, m_name, m_options.connect_timeout));
        }
        return make_error(ErrorCode::connect, "cannot run a command: " + std::string(ssh_get_error(m_session)));
    }
    for (size_t off = 0; off < input.size();) {
        int n = ssh_channel_write(ch, input.data() + off,
                                  static_cast<uint32_t>(std::min<size_t>(input.size() - off, 32768)));
        if (n == 0) {  // the peer's window stayed shut for the session's timeout
            return broken(link::stalled(m_session, m_name, m_options.connect_timeout));
        }
        if (n == SSH_ERROR) {
            return broken(link::lost(m_session, m_name));
        }
        off += static_cast<size_t>(n);
    }
    ssh_channel_send_eof(ch);
    return Ok{};
}

Result<void> SshTarget::read_output(ssh_channel ch, const Command& cmd, CommandResult& result) {
    auto deadline = std::chrono::steady_clock::now() + cmd.timeout + std::chrono::seconds(10);
    auto heard = std::chrono::steady_clock::now();  // the last time the command's channel carried anything
    char buf[65536];
    while (true) {
        int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 200);
        if (n > 0) {
            result.out.append(buf, static_cast<size_t>(n));
        }
        if (cmd.on_output) {
            cmd.on_output(n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view());
        }
        int e = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1);
        if (e > 0) {
            result.err.append(buf, static_cast<size_t>(e));
        }
        if (n == SSH_ERROR || e == SSH_ERROR) {
            return broken(link::lost(m_session, m_name));
        }
        if (result.out.size() > k_max_command_output || result.err.size() > k_max_command_output) {
            ssh_channel_request_send_signal(ch, "KILL");
            return make_error(ErrorCode::command, "the command printed more than " +
                                                      std::to_string(k_max_command_output >> 20) + " MiB; stopped");
        }
        if (n == 0 && e <= 0 && ssh_channel_is_eof(ch)) {
            break;
        }
        if (n > 0 || e > 0) {
            heard = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - heard > link::k_probe_after) {
            auto p = link::probe(m_session, ch);
            if (p == link::Probe::stalled) {
                return broken(link::stalled(m_session, m_name, m_options.connect_timeout));
            }
            if (p == link::Probe::lost) {
                return broken(link::lost(m_session, m_name));
            }
            heard = std::chrono::steady_clock::now();
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ssh_channel_request_send_signal(ch, "KILL");
            return make_error(ErrorCode::timeout,
                              "command did not finish within " + std::to_string(cmd.timeout.count()) + "s");
        }
    }
    // Drain whatever arrived with the EOF, then collect the exit status.
    int e;
    while ((e = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0 &&
           result.err.size() <= k_max_command_output) {
        result.err.append(buf, static_cast<size_t>(e));
    }
    result.exit_code = ssh_channel_get_exit_status(ch);
    for (int i = 0; result.exit_code < 0 && i < 50; ++i) {
        ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 20);
        result.exit_code = ssh_channel_get_exit_status(ch);
    }
    return Ok{};
}

namespace {

// The lock lives as long as this channel: a remote `cat` holding the flock'ed fd, which exits
// when the channel (or the whole connection, if nodectl dies) closes.
class SshLock final : public HostLock {
public:
    explicit SshLock(ssh_channel ch) : m_ch(ch) {}
    ~SshLock() override {
        ssh_channel_send_eof(m_ch);
        ssh_channel_close(m_ch);
        ssh_channel_free(m_ch);
    }

private:
    ssh_channel m_ch;
};

}  // namespace

Result<std::unique_ptr<HostLock>> SshTarget::lock(const std::string& holder) {
    Command cmd;
    cmd.script = "mkdir -p /var/lib/nodectl && chmod 0700 /var/lib/nodectl && exec 9>/var/lib/nodectl/lock && "
                 "if ! flock -n 9; then echo \"busy $(cat /var/lib/nodectl/lock.owner 2>/dev/null)\"; exit 75; fi; "
                 "printf '%s\\n' " +
                 shell_quote(holder) + " > /var/lib/nodectl/lock.owner; echo locked; exec cat >/dev/null";
    cmd.timeout = std::chrono::hours(24 * 365);
    std::string input;
    std::string line = wrap(cmd, input);
    ssh_channel ch = ssh_channel_new(m_session);
    if (!ch || ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, line.c_str()) != SSH_OK) {
        if (ch) {
            ssh_channel_free(ch);
        }
        return make_error(ErrorCode::connect, "cannot open the lock channel: " + std::string(ssh_get_error(m_session)));
    }
    if (!input.empty()) {
        ssh_channel_write(ch, input.data(), static_cast<uint32_t>(input.size()));
    }
    std::string out;
    char buf[512];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.find('\n') == std::string::npos && out.size() < 4096 && std::chrono::steady_clock::now() < deadline) {
        int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 200);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
        } else if (n < 0 || ssh_channel_is_eof(ch)) {
            break;
        }
    }
    if (util::starts_with(out, "locked")) {
        return std::unique_ptr<HostLock>(new SshLock(ch));
    }
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    if (util::starts_with(out, "busy")) {
        return make_error(ErrorCode::locked,
                          "another nodectl run holds /var/lib/nodectl/lock (" + util::trim(out.substr(5)) + ")");
    }
    return make_error(ErrorCode::command, "cannot take /var/lib/nodectl/lock: " + util::trim(out));
}

}  // namespace nodectl

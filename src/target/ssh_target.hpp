// SshTarget: a host reached over SSH with libssh. Host keys are checked strictly against
// known_hosts; a first contact is accepted only when asked to, a changed key never. Commands run
// as root: directly, or through `sudo -n`, or through `sudo -S` with the password on stdin.
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/target.hpp"

#include <chrono>
#include <string>

struct ssh_session_struct;
struct ssh_channel_struct;

namespace nodectl {

struct SshOptions {
    std::string known_hosts;  // empty: ~/.ssh/known_hosts
    std::string ssh_config;  // empty: ~/.ssh/config
    bool accept_new_host_key = false;
    std::chrono::seconds connect_timeout{15};
};

// The fingerprint ("ssh-ed25519 SHA256:...") of the key on one known_hosts line when the line
// names `pattern` ("host" or "[host]:port"), hashed (|1|salt|hmac) or not; nullopt for any other
// line, comments and @-marked lines included.
std::optional<std::string> known_hosts_line_fingerprint(const std::string& line, const std::string& pattern);

class SshTarget final : public Target {
public:
    static Result<std::unique_ptr<SshTarget>> connect(const HostSpec& host, const SshOptions& options);
    ~SshTarget() override;

    const std::string& name() const override { return m_name; }
    Result<CommandResult> run(const Command& cmd) override;
    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override;
    // Copies a local file with SFTP (to a private temporary name), then moves it into place as
    // root with the given owner and mode.
    Result<void> upload(const std::string& local_path, const FileSpec& dest) override;
    std::string login_user() const override { return m_user; }
    bool batches_probes() const override { return true; }
    // A new libssh session with this target's host spec and options (host key checked the same
    // strict way); as another user, that user must reach root with `sudo -n`.
    Result<AccessCheck> check_fresh_login(const std::string& user) override;

private:
    SshTarget(HostSpec host, SshOptions options, std::string user, ssh_session_struct* session,
              std::optional<Secret> sudo_password);
    std::string wrap(const Command& cmd, std::string& input) const;
    Result<CommandResult> run_channel(const Command& cmd);
    // run_channel's parts, on a channel it opened: the command line and its input, then its output
    // until the end of the command.
    Result<void> send_command(ssh_channel_struct* ch, const std::string& line, const std::string& input);
    Result<void> read_output(ssh_channel_struct* ch, const Command& cmd, CommandResult& result);
    Result<void> verify_root();
    // Remembers why the connection broke (stalled and cut, or lost): every later command fails at
    // once with that reason.
    Error broken(Error why);

    std::string m_name;
    HostSpec m_host;
    SshOptions m_options;
    std::string m_user;  // as logged in (after ~/.ssh/config)
    ssh_session_struct* m_session;
    SudoMode m_sudo;
    std::optional<Secret> m_sudo_password;
    std::string m_broken;  // why the connection broke; empty while it works
};

}  // namespace nodectl

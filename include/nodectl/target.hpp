// Target: the only way a step touches a host. A target runs shell commands (with stdin, captured
// output, exit status and a timeout); reading, writing (atomically, with mode and owner) and
// stat'ing files are built on run() so that every target, local or remote, behaves the same.
// Test doubles override the file operations too.
#pragma once

#include "nodectl/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl {

struct Command {
    std::string script;  // POSIX sh script, run as root (through sudo when the target needs it)
    std::string input;  // written to the command's stdin; secrets travel here, never in argv
    std::chrono::seconds timeout{300};
    bool mutates = true;  // false for probes: allowed on a read-only (dry-run) target
    // When set, called with each piece of stdout as it arrives, and with an empty piece at least
    // once a second while the command runs (progress reports; the output is still collected).
    std::function<void(std::string_view out)> on_output;
};

struct CommandResult {
    int exit_code = 0;
    std::string out;
    std::string err;
};

struct FileStat {
    bool exists = false;
    bool is_dir = false;
    bool is_symlink = false;
    uint32_t mode = 0;  // permission bits, e.g. 0644
    std::string owner;
    std::string group;
    uint64_t size = 0;
    std::string link_target;
};

struct FileSpec {
    std::string path;
    std::string content;
    uint32_t mode = 0644;
    std::string owner = "root";
    std::string group = "root";
};

// Whether a second, independent login was proven to work (see Target::check_fresh_login).
enum class AccessCheck { verified, not_applicable };

// Held for the length of a run; released by the destructor, and by the OS if nodectl dies.
class HostLock {
public:
    virtual ~HostLock() = default;
};

class Target {
public:
    virtual ~Target() = default;

    // Name used on log lines and in reports.
    virtual const std::string& name() const = 0;
    virtual Result<CommandResult> run(const Command& cmd) = 0;

    // nullopt when the file does not exist.
    virtual Result<std::optional<std::string>> read_file(const std::string& path);
    // Written to a temporary name beside the destination (mode 0600 while written), synced, then
    // renamed over it: a reader never sees a partial file.
    virtual Result<void> write_file(const FileSpec& file);
    virtual Result<FileStat> stat(const std::string& path);
    // Copies a local file to the host, atomically, with owner and mode. The base version sends the
    // content through write_file(); SSH uses SFTP.
    virtual Result<void> upload(const std::string& local_path, const FileSpec& dest);
    // Takes /var/lib/nodectl/lock; fails with ErrorCode::locked when another live run holds it.
    virtual Result<std::unique_ptr<HostLock>> lock(const std::string& holder) = 0;
    // Whether this target refuses changes (dry run).
    virtual bool read_only() const { return false; }
    // Whether every run() costs a round trip to another machine, so that a run's probes are worth
    // fetching ahead in batches (target/prefetch_target.hpp).
    virtual bool batches_probes() const { return false; }
    // The user the operator logs in as ("root" when nodectl runs on the host itself).
    virtual std::string login_user() const { return "root"; }
    // Opens a second, independent connection with the same credentials (as `user` when not
    // empty), proves it can become root, and closes it; the current connection stays open. Steps
    // that could lock the operator out (sshd, firewall) call it after activating a change.
    // Targets with no remote access to lose answer not_applicable.
    virtual Result<AccessCheck> check_fresh_login(const std::string& user) {
        (void)user;
        return AccessCheck::not_applicable;
    }

    // run() that turns a non-zero exit into an ErrorCode::command error naming `what`.
    Result<CommandResult> run_checked(const Command& cmd, const std::string& what);
};

// What Target::stat reads back: `stat -c '%F|%a|%U|%G|%s'` of an existing path, then readlink's
// line for a symbolic link. ErrorCode::command naming `path` for anything else.
Result<FileStat> parse_stat_output(const std::string& path, const std::string& out);

// Shell single-quoting for building scripts: quote("a'b") == "'a'\\''b'".
std::string shell_quote(const std::string& s);
// Each word quoted, separated by single spaces: shell_quote_all({"a", "b c"}) == "'a' 'b c'".
std::string shell_quote_all(const std::vector<std::string>& words);

}  // namespace nodectl

// FakeHost: the Debian machine that FakeTarget (fake_target.hpp) stands in front of, as plain
// data: files, packages, systemd units, host name, time zone, users, the lock, and the log of what
// was done to it. Several FakeTargets can share one FakeHost, the way several connections reach one
// machine. change_unit() is systemd's part of the model: what a unit operation does to a unit and
// what systemctl answers when it cannot.
#pragma once

#include "host/services.hpp"
#include "nodectl/target.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::testing {

struct FakeFile {
    std::string content;
    uint32_t mode = 0644;
    std::string owner = "root";
    std::string group = "root";
};

struct FakeUnit {
    bool enabled = false;
    bool active = false;
    bool is_static = false;  // `systemctl is-enabled` says "static": cannot be enabled or disabled
};

// Where nodectl keeps its own state on a host; writes there are bookkeeping, not changes to the host.
inline constexpr std::string_view k_state_dir = "/var/lib/nodectl/";

struct FakeHost {
    std::map<std::string, FakeFile> files;
    std::set<std::string> dirs;  // paths that exist but are not regular files
    std::set<std::string> packages;  // installed ("ii")
    std::set<std::string> removed_packages;  // removed, config files left ("rc")
    std::set<std::string> unavailable_packages;  // apt cannot find these
    std::map<std::string, FakeUnit> units;
    std::string hostname;  // the kernel's name (`hostname`)
    std::string localtime_link;  // target of /etc/localtime; empty: not a link
    std::set<std::string> zones;  // present in /usr/share/zoneinfo
    std::set<std::string> users{"root", "daemon", "www-data", "nobody"};
    std::set<std::string> groups{"root", "daemon", "adm", "www-data", "nogroup"};
    bool has_dpkg = true;
    bool has_systemctl = true;
    // What `ssh -Q kex|cipher|mac|key-sig` lists (OpenSSH's algorithms); no entries: no ssh client.
    std::map<std::string, std::vector<std::string>> ssh_algorithms;
    // A script containing one of these exits 1 with "injected failure" on stderr.
    std::vector<std::string> fail_when_contains;
    std::optional<std::string> lock_holder;

    // What happened.
    std::vector<std::string> commands;  // every script run(), in order
    std::vector<std::string> mutations;  // every mutating call: "write /etc/hosts", "run: hostname 'x'"
    std::vector<std::string> unknown;  // scripts the fake did not recognize (the test fails)
    std::vector<std::string>
        unit_ops;  // every unit operation, flags and names unquoted: "enable --now apache2.service"

    // Mutating calls, not counting nodectl's own bookkeeping under /var/lib/nodectl/.
    size_t host_mutations() const {
        size_t n = 0;
        for (const auto& m : mutations) {
            n += m.find(k_state_dir) == std::string::npos;
        }
        return n;
    }
    bool file_exists(const std::string& path) const { return files.count(path) != 0; }
    std::string content(const std::string& path) const {
        auto it = files.find(path);
        return it == files.end() ? std::string() : it->second.content;
    }
    void put(const std::string& path, std::string content, uint32_t mode = 0644, std::string owner = "root",
             std::string group = "root") {
        files[path] = FakeFile{std::move(content), mode, std::move(owner), std::move(group)};
    }
    void clear_log() {
        commands.clear();
        mutations.clear();
        unknown.clear();
        unit_ops.clear();
    }
    std::mutex lock_mutex;  // the lock may be taken from a runner thread
};

// A freshly installed Debian machine called "debian", in UTC, with ssh and cron running.
inline std::shared_ptr<FakeHost> fresh_debian_host() {
    auto h = std::make_shared<FakeHost>();
    h->hostname = "debian";
    h->put("/etc/hostname", "debian\n");
    h->put("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n"
                         "# The following lines are desirable for IPv6 capable hosts\n"
                         "::1     localhost ip6-localhost ip6-loopback\n");
    h->put("/etc/timezone", "Etc/UTC\n");
    h->localtime_link = "/usr/share/zoneinfo/Etc/UTC";
    h->zones = {"Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"};
    h->dirs = {"/etc", "/var", "/var/lib", "/tmp"};
    h->packages = {"base-files", "bash", "coreutils", "cron", "openssh-server", "systemd", "tzdata"};
    h->units["ssh.service"] = {true, true, false};
    h->units["cron.service"] = {true, true, false};
    h->units["systemd-journald.service"] = {false, true, true};
    h->units["apache2.service"] = {false, false, false};
    h->units["rsync.service"] = {false, false, false};
    // Debian 12's OpenSSH 9.2 (the parts nodectl's lists need, and some it does not use).
    h->ssh_algorithms = {
        {"kex",
         {"diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
          "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256", "curve25519-sha256",
          "curve25519-sha256@libssh.org", "sntrup761x25519-sha512@openssh.com"}},
        {"cipher",
         {"aes128-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
          "chacha20-poly1305@openssh.com"}},
        {"mac",
         {"hmac-sha1", "hmac-sha2-256", "hmac-sha2-512", "umac-128@openssh.com", "hmac-sha2-256-etm@openssh.com",
          "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"}},
        {"key-sig", {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"}},
    };
    return h;
}

// What a command on the host prints and exits with.
inline CommandResult ok(std::string out = {}) {
    return CommandResult{0, std::move(out), ""};
}
inline CommandResult exit_with(int code, std::string err) {
    return CommandResult{code, "", std::move(err)};
}

// `systemctl is-enabled`'s word for a unit.
inline std::string enabled_word(const FakeUnit& u) {
    return u.is_static ? "static" : u.enabled ? "enabled" : "disabled";
}

// One unit's part of an operation; what systemctl reports when that part fails.
inline std::optional<CommandResult> change_unit(FakeHost& h, const host::UnitOp& op, const std::string& name) {
    std::string verb(host::verb_word(op.verb));
    auto it = h.units.find(name);
    if (it == h.units.end()) {
        bool file_verb = op.verb == host::UnitVerb::enable || op.verb == host::UnitVerb::disable;
        return file_verb ? exit_with(1, "Failed to " + verb + " unit: Unit file " + name + " does not exist.\n")
                         : exit_with(5, "Failed to " + verb + " " + name + ": Unit " + name + " not found.\n");
    }
    FakeUnit& u = it->second;
    switch (op.verb) {
    case host::UnitVerb::enable:
    case host::UnitVerb::disable:
        if (!u.is_static) {
            u.enabled = op.verb == host::UnitVerb::enable;
        }
        u.active = op.flags.now ? op.verb == host::UnitVerb::enable : u.active;
        break;
    case host::UnitVerb::start:
    case host::UnitVerb::restart: u.active = true; break;
    case host::UnitVerb::stop: u.active = false; break;
    case host::UnitVerb::reload:
        if (!u.active) {
            return exit_with(1, "Failed to reload " + name + ": Job type reload is not applicable for unit " + name +
                                    ".\n");
        }
        break;
    case host::UnitVerb::daemon_reload:
    case host::UnitVerb::reset_failed: break;
    }
    return std::nullopt;
}

}  // namespace nodectl::testing

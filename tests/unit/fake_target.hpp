// FakeTarget: a Debian host modelled in memory, for unit tests of steps and the runner.
//
// The host itself (files, packages, units, host name, time zone, lock) lives in a FakeHost that
// several FakeTargets can share, the way several connections reach one machine: a ConnectFn can
// hand the runner a fresh FakeTarget over a FakeHost the test keeps and inspects afterwards.
//
// run() understands exactly the scripts that src/host/*.cpp and src/modules/base/steps.cpp send.
// It recognizes each by a distinctive substring, parses its single-quoted arguments (and checks
// that they were quoted the way shell_quote() quotes), changes the model and prints what the
// real command prints. Anything else fails the test and exits 99, so a test notices a command it
// did not expect. Every script is recorded, and so is every mutating call, so a test can assert
// that a second run changed nothing. A systemd unit operation (host::UnitOp) is taken back to the
// operation itself, checked to be exactly what UnitOp::script() renders, and applied to the
// model of the units; the operations are logged apart (FakeHost::unit_ops), so a test states
// them, not their shell text.
//
// The model of the host is in fake_host.hpp, the reading of scripts in fake_script.hpp.
#pragma once

#include "fake_host.hpp"
#include "fake_script.hpp"
#include "host/services.hpp"
#include "nodectl/target.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::testing {

class FakeTarget final : public Target {
public:
    explicit FakeTarget(std::string name = "fake", std::shared_ptr<FakeHost> host = fresh_debian_host())
        : m_name(std::move(name)), m_host(std::move(host)) {}

    FakeHost& host() { return *m_host; }
    std::shared_ptr<FakeHost> shared_host() const { return m_host; }

    const std::string& name() const override { return m_name; }

    Result<CommandResult> run(const Command& cmd) override {
        FakeHost& h = *m_host;
        h.commands.push_back(cmd.script);
        for (const auto& s : h.fail_when_contains) {
            if (cmd.script.find(s) != std::string::npos) {
                return CommandResult{1, "", "injected failure"};
            }
        }
        return dispatch(cmd);
    }

    Result<std::optional<std::string>> read_file(const std::string& path) override {
        auto it = m_host->files.find(path);
        if (it == m_host->files.end()) {
            if (m_host->dirs.count(path)) {
                return make_error(ErrorCode::command, "cannot read " + path + ": cat: " + path + ": Is a directory");
            }
            return std::optional<std::string>();
        }
        return std::optional<std::string>(it->second.content);
    }

    Result<void> write_file(const FileSpec& file) override {
        TRY_VOID(store(file, "write "));
        return Ok{};
    }

    Result<FileStat> stat(const std::string& path) override {
        FileStat st;
        if (path == "/etc/localtime" && !m_host->localtime_link.empty()) {
            st.exists = true;
            st.is_symlink = true;
            st.mode = 0777;
            st.owner = st.group = "root";
            st.link_target = m_host->localtime_link;
            st.size = m_host->localtime_link.size();
            return st;
        }
        if (m_host->dirs.count(path)) {
            st.exists = true;
            st.is_dir = true;
            st.mode = 0755;
            st.owner = st.group = "root";
            return st;
        }
        auto it = m_host->files.find(path);
        if (it == m_host->files.end()) {
            return st;
        }
        st.exists = true;
        st.mode = it->second.mode;
        st.owner = it->second.owner;
        st.group = it->second.group;
        st.size = it->second.content.size();
        return st;
    }

    Result<void> upload(const std::string& local_path, const FileSpec& dest) override {
        auto content = util::read_file(local_path);
        if (!content) {
            return make_error(ErrorCode::io, "cannot read " + local_path);
        }
        FileSpec f = dest;
        f.content = std::move(*content);
        TRY_VOID(store(f, "upload "));
        return Ok{};
    }

    Result<std::unique_ptr<HostLock>> lock(const std::string& holder) override {
        std::lock_guard<std::mutex> guard(m_host->lock_mutex);
        if (m_host->lock_holder) {
            return make_error(ErrorCode::locked,
                              "another nodectl run holds /var/lib/nodectl/lock (" + *m_host->lock_holder + ")");
        }
        m_host->lock_holder = holder;
        return std::unique_ptr<HostLock>(new FakeLock(m_host));
    }

private:
    class FakeLock final : public HostLock {
    public:
        explicit FakeLock(std::shared_ptr<FakeHost> host) : m_host(std::move(host)) {}
        ~FakeLock() override {
            std::lock_guard<std::mutex> guard(m_host->lock_mutex);
            m_host->lock_holder.reset();
        }

    private:
        std::shared_ptr<FakeHost> m_host;
    };

    static bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

    Result<void> store(const FileSpec& file, const std::string& verb) {
        if (!m_host->users.count(file.owner)) {
            return make_error(ErrorCode::command, "writing " + file.path + " failed (exit 1): chown: invalid user: '" +
                                                      file.owner + ":" + file.group + "'");
        }
        if (!m_host->groups.count(file.group)) {
            return make_error(ErrorCode::command, "writing " + file.path + " failed (exit 1): chown: invalid group: '" +
                                                      file.owner + ":" + file.group + "'");
        }
        m_host->mutations.push_back(verb + file.path);
        m_host->files[file.path] = FakeFile{file.content, file.mode, file.owner, file.group};
        return Ok{};
    }

    // The script is not one the fake knows, or is malformed: fail the test and the command.
    CommandResult unknown(const Command& cmd, const std::string& why) {
        m_host->unknown.push_back(cmd.script);
        FAIL_CHECK("FakeTarget: " << why << ": " << cmd.script);
        return exit_with(99, "FakeTarget: " + why);
    }

    // A probe must be sent with mutates = false (or a plan would refuse it), a change with true (or
    // a plan would let it through). Returns the failure to report when it was sent wrongly; else
    // records a change and returns nothing.
    std::optional<CommandResult> admit(const Command& cmd, bool mutating) {
        if (cmd.mutates != mutating) {
            m_host->unknown.push_back(cmd.script);
            FAIL_CHECK("FakeTarget: " << (mutating ? "a changing command sent as a probe (mutates = false)"
                                                   : "a probe sent as a changing command (mutates = true)")
                                      << ": " << cmd.script);
            return exit_with(98, "FakeTarget: command sent with the wrong mutates flag");
        }
        if (mutating) {
            m_host->mutations.push_back("run: " + cmd.script);
        }
        return std::nullopt;
    }

    Result<CommandResult> dispatch(const Command& cmd) {
        const std::string& s = cmd.script;
        if (has(s, "stat -c '%a %U %G'") && has(s, "sha256sum")) {
            return file_state(cmd);
        }
        if (util::starts_with(s, "set -e; p=") && has(s, "; chown ") && has(s, "; chmod ")) {
            return chown_chmod(cmd);
        }
        if (util::starts_with(s, "rm -f -- ")) {
            return remove(cmd);
        }
        if (has(s, "dpkg-query -W")) {
            return dpkg_query(cmd);
        }
        if (has(s, "apt_install() { apt-get -o DPkg::Lock::Timeout=600 install")) {
            return apt_install(cmd);
        }
        if (has(s, "apt-get remove")) {
            return apt_remove(cmd);
        }
        if (has(s, "systemctl is-enabled")) {
            return unit_states(cmd);
        }
        if (util::starts_with(s, "systemctl ")) {
            return unit_op(cmd);
        }
        if (has(s, "cat /etc/hostname")) {
            return read_hostname(cmd);
        }
        if (util::starts_with(s, "hostname '")) {
            return set_hostname(cmd);
        }
        if (has(s, "readlink /etc/localtime")) {
            return read_zone(cmd);
        }
        if (has(s, "ln -sfn /usr/share/zoneinfo/")) {
            return link_zone(cmd);
        }
        if (has(s, "ssh -Q \"$q\"")) {
            return ssh_query(cmd);
        }
        return unknown(cmd, "unexpected script");
    }

    // for q in kex cipher mac key-sig; do echo "== $q"; ssh -Q "$q" || exit 4; done (exit 3: no ssh)
    CommandResult ssh_query(const Command& cmd) {
        if (auto bad = admit(cmd, false)) {
            return *bad;
        }
        if (m_host->ssh_algorithms.empty()) {
            return exit_with(3, "");
        }
        std::string out;
        for (const char* q : {"kex", "cipher", "mac", "key-sig"}) {
            out += std::string("== ") + q + "\n";
            auto it = m_host->ssh_algorithms.find(q);
            if (it == m_host->ssh_algorithms.end()) {
                return CommandResult{4, out, std::string("Unsupported query \"") + q + "\""};
            }
            for (const auto& a : it->second) {
                out += a + "\n";
            }
        }
        return ok(out);
    }

    // if [ -f P ]; then stat -c '%a %U %G' -- P && sha256sum < P; elif [ -e P ]; then ... exit 3; fi
    CommandResult file_state(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head = "if [ -f ";
        auto args = quoted_args(s, util::starts_with(s, head) ? head.size() : std::string::npos, s.find(" ]; then"));
        if (!args || args->size() != 1) {
            return unknown(cmd, "malformed file_state script");
        }
        if (auto refused = admit(cmd, false)) {
            return *refused;
        }
        const std::string& path = (*args)[0];
        auto it = m_host->files.find(path);
        if (it != m_host->files.end()) {
            char mode[16];
            std::snprintf(mode, sizeof mode, "%o", it->second.mode);  // %a has no leading zero
            return ok(std::string(mode) + " " + it->second.owner + " " + it->second.group + "\n" +
                      util::sha256_hex(it->second.content) + "  -\n");
        }
        if (m_host->dirs.count(path) || (path == "/etc/localtime" && !m_host->localtime_link.empty())) {
            return exit_with(3, path + " exists but is not a regular file\n");
        }
        return ok();
    }

    // host::set_owner_mode: set -e; p=P; ...(into P's directory, which is root's alone here)...;
    // chown O:G -- "$n"; chmod MODE -- "$n"
    CommandResult chown_chmod(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head = "set -e; p=";
        auto path = quoted_args(s, head.size(), s.find("; d=$(dirname"));
        auto chown_at = s.rfind("; chown ");
        auto chmod_at = s.rfind("; chmod ");
        auto owner_arg = quoted_args(s, chown_at + 8, s.find(" -- ", chown_at));
        auto mode_end = s.find(" -- ", chmod_at);
        if (!path || path->size() != 1 || !owner_arg || owner_arg->size() != 1 || mode_end == std::string::npos ||
            s.substr(mode_end) != " -- \"$n\"") {
            return unknown(cmd, "malformed chown/chmod script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        auto owner = util::split((*owner_arg)[0], ':');
        auto it = m_host->files.find((*path)[0]);
        if (it == m_host->files.end()) {
            return exit_with(1, (*path)[0] + " is not a regular file\n");
        }
        if (owner.size() != 2 || !m_host->users.count(owner[0]) || !m_host->groups.count(owner[1])) {
            return exit_with(1, "chown: invalid user: '" + (*owner_arg)[0] + "'\n");
        }
        it->second.owner = owner[0];
        it->second.group = owner[1];
        it->second.mode =
            static_cast<uint32_t>(std::stoul(s.substr(chmod_at + 8, mode_end - chmod_at - 8), nullptr, 8));
        return ok();
    }

    // rm -f -- P
    CommandResult remove(const Command& cmd) {
        auto args = quoted_args(cmd.script, std::string("rm -f -- ").size(), cmd.script.size());
        if (!args || args->size() != 1) {
            return unknown(cmd, "malformed rm script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        m_host->files.erase((*args)[0]);
        return ok();
    }

    static constexpr std::string_view k_need_dpkg = "command -v dpkg-query >/dev/null || { echo 'no dpkg-query: ";

    CommandResult no_dpkg() { return exit_with(3, "no dpkg-query: only Debian-family hosts are supported\n"); }

    // dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' NAMES 2>/dev/null; true
    CommandResult dpkg_query(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string format = "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n'";
        auto start = s.find(format);
        auto args =
            quoted_args(s, start == std::string::npos ? start : start + format.size(), s.find(" 2>/dev/null; true"));
        if (!util::starts_with(s, k_need_dpkg) || !args || args->empty()) {
            return unknown(cmd, "malformed dpkg-query script");
        }
        if (auto refused = admit(cmd, false)) {
            return *refused;
        }
        if (!m_host->has_dpkg) {
            return no_dpkg();
        }
        std::string out;
        for (const auto& name : *args) {
            if (m_host->packages.count(name)) {
                out += name + " ii \n";
            } else if (m_host->removed_packages.count(name)) {
                out += name + " rc \n";
            }
            // a name dpkg never heard of prints nothing on stdout (and an error on stderr, discarded)
        }
        return ok(out);
    }

    // host::install_packages: update_lists (the lists lock waited for), then
    // apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q ... --force-confold NAMES; }
    CommandResult apt_install(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head =
            "apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "
            "-o Dpkg::Options::=--force-confold";
        auto start = s.find(head);
        auto end = start == std::string::npos ? start : s.find("; }", start);
        auto args = end == std::string::npos ? std::nullopt : quoted_args(s, start + head.size(), end);
        bool waits =
            has(s, "apt-get -o DPkg::Lock::Timeout=600 update -q") && has(s, "dpkg --configure -a && apt_install");
        if (!util::starts_with(s, k_need_dpkg) || !waits || !args || args->empty()) {
            return unknown(cmd, "malformed apt-get install script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        if (!m_host->has_dpkg) {
            return no_dpkg();
        }
        for (const auto& name : *args) {
            if (m_host->unavailable_packages.count(name)) {
                return exit_with(100, "E: Unable to locate package " + name + "\n");
            }
        }
        for (const auto& name : *args) {
            m_host->packages.insert(name);
            m_host->removed_packages.erase(name);
        }
        return ok("Reading package lists...\n");
    }

    // apt-get remove -y -q NAMES
    CommandResult apt_remove(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head = "apt-get remove -y -q";
        auto start = s.find(head);
        auto args = quoted_args(s, start == std::string::npos ? start : start + head.size(), s.size());
        if (!util::starts_with(s, k_need_dpkg) || !args || args->empty()) {
            return unknown(cmd, "malformed apt-get remove script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        if (!m_host->has_dpkg) {
            return no_dpkg();
        }
        for (const auto& name : *args) {
            if (m_host->packages.erase(name)) {
                m_host->removed_packages.insert(name);
            }
        }
        return ok("Reading package lists...\n");
    }

    // for u in UNITS; do printf '%s|%s|%s\n' "$u" "$(systemctl is-enabled "$u" ...)" "$(systemctl is-active ...)"; done
    CommandResult unit_states(const Command& cmd) {
        const std::string& s = cmd.script;
        auto start = s.find("for u in ");
        auto args = quoted_args(s, start == std::string::npos ? start : start + 9, s.find("; do printf '%s|%s|%s\\n'"));
        if (!util::starts_with(s, "command -v systemctl >/dev/null || ") || !has(s, "systemctl is-active") || !args ||
            args->empty()) {
            return unknown(cmd, "malformed unit state script");
        }
        if (auto refused = admit(cmd, false)) {
            return *refused;
        }
        if (!m_host->has_systemctl) {
            return exit_with(3, "systemctl not found: systemd hosts only\n");
        }
        std::string out;
        for (const auto& name : *args) {
            auto it = m_host->units.find(name);
            if (it == m_host->units.end()) {
                out += name + "||inactive\n";  // is-enabled prints only to stderr for an unknown unit
            } else {
                out += name + "|" + enabled_word(it->second) + "|" + (it->second.active ? "active" : "inactive") + "\n";
            }
        }
        return ok(out);
    }

    // systemctl VERB ... UNITS: the unit model changes as systemd's would.
    CommandResult unit_op(const Command& cmd) {
        auto op = parse_unit_op(cmd.script);
        if (!op) {
            return unknown(cmd, "malformed systemctl script (not what host::UnitOp renders)");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        std::string verb(host::verb_word(op->verb));
        std::string logged = verb + (op->flags.now ? " --now" : "") + (op->flags.quiet ? " --quiet" : "") +
                             (op->flags.no_block ? " --no-block" : "");
        for (const auto& name : op->units) {
            logged += " " + name;
        }
        m_host->unit_ops.push_back(logged);
        for (const auto& name : op->units) {
            if (auto failed = change_unit(*m_host, *op, name); failed && !op->flags.ignore_failure) {
                return *failed;
            }
        }
        return ok();
    }

    // cat /etc/hostname 2>/dev/null; echo '|'; hostname
    CommandResult read_hostname(const Command& cmd) {
        if (cmd.script != "cat /etc/hostname 2>/dev/null; echo '|'; hostname") {
            return unknown(cmd, "malformed host name script");
        }
        if (auto refused = admit(cmd, false)) {
            return *refused;
        }
        return ok(m_host->content("/etc/hostname") + "|\n" + m_host->hostname + "\n");
    }

    // hostname NAME
    CommandResult set_hostname(const Command& cmd) {
        auto args = quoted_args(cmd.script, std::string("hostname ").size(), cmd.script.size());
        if (!args || args->size() != 1) {
            return unknown(cmd, "malformed hostname script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        m_host->hostname = (*args)[0];
        return ok();
    }

    // readlink /etc/localtime; echo '|'; cat /etc/timezone 2>/dev/null; echo '|'; [ -f /usr/share/zoneinfo/ZONE ] && echo known; true
    CommandResult read_zone(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head = "readlink /etc/localtime; echo '|'; cat /etc/timezone 2>/dev/null; echo '|'; "
                                 "[ -f /usr/share/zoneinfo/";
        const std::string tail = " ] && echo known; true";
        if (!util::starts_with(s, head) || s.size() < head.size() + tail.size() ||
            s.compare(s.size() - tail.size(), tail.size(), tail) != 0) {
            return unknown(cmd, "malformed time zone script");
        }
        auto args = quoted_args(s, head.size(), s.size() - tail.size());
        if (!args || args->size() != 1) {
            return unknown(cmd, "malformed time zone script");
        }
        if (auto refused = admit(cmd, false)) {
            return *refused;
        }
        std::string out = m_host->localtime_link.empty() ? "" : m_host->localtime_link + "\n";
        out += "|\n" + m_host->content("/etc/timezone") + "|\n";
        if (m_host->zones.count((*args)[0])) {
            out += "known\n";
        }
        return ok(out);
    }

    // set -e; ln -sfn /usr/share/zoneinfo/ZONE /etc/.localtime.nodectl && mv -Tf /etc/.localtime.nodectl /etc/localtime
    CommandResult link_zone(const Command& cmd) {
        const std::string& s = cmd.script;
        const std::string head = "set -e; ln -sfn /usr/share/zoneinfo/";
        const std::string tail = " /etc/.localtime.nodectl && mv -Tf /etc/.localtime.nodectl /etc/localtime";
        if (!util::starts_with(s, head) || s.size() < head.size() + tail.size() ||
            s.compare(s.size() - tail.size(), tail.size(), tail) != 0) {
            return unknown(cmd, "malformed localtime script");
        }
        auto args = quoted_args(s, head.size(), s.size() - tail.size());
        if (!args || args->size() != 1) {
            return unknown(cmd, "malformed localtime script");
        }
        if (auto refused = admit(cmd, true)) {
            return *refused;
        }
        m_host->localtime_link = "/usr/share/zoneinfo/" + (*args)[0];
        return ok();
    }

    std::string m_name;
    std::shared_ptr<FakeHost> m_host;
};

}  // namespace nodectl::testing

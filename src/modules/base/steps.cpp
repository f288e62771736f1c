#include "modules/base/steps.hpp"

#include "util/log.hpp"
#include "host/files.hpp"
#include "host/packages.hpp"
#include "host/services.hpp"
#include "util/diff.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <cctype>
#include <set>
#include <string_view>

namespace nodectl::base {

namespace {

// Diffs are shown for text files up to this size; larger ones are summarized by their hashes.
constexpr size_t k_max_diff_bytes = 256 * 1024;

Result<std::string> read_local(const std::string& path) {
    auto content = util::read_file(path);
    if (!content) {
        return make_error(ErrorCode::io, "cannot read " + path);
    }
    return std::move(*content);
}

std::string file_diff(Target& target, const std::string& path, const std::string& desired) {
    auto current = target.read_file(path);
    std::string old_text = current && *current ? **current : std::string();
    if (old_text.size() > k_max_diff_bytes || desired.size() > k_max_diff_bytes) {
        return "";
    }
    return util::unified_diff(old_text, desired, path, path + " (planned)");
}

}  // namespace

Result<std::string> apt_proxy_conf(const std::string& url) {
    for (unsigned char c : url) {
        if (!std::isalnum(c) && std::string_view(".:/[]-_").find(static_cast<char>(c)) == std::string_view::npos) {
            return make_error(ErrorCode::config,
                              "base.apt_proxy \"" + url + "\" has a character apt's configuration cannot hold ('" +
                                  std::string(1, static_cast<char>(c)) + "'); give scheme://host[:port]");
        }
    }
    return "// Managed by nodectl (base.apt_proxy).\nAcquire::http::Proxy \"" + url + "\";\n";
}

// ---- WriteFile ----

Result<std::string> WriteFile::desired_content() const {
    if (!m_file.source.empty()) {
        return read_local(m_file.source);
    }
    return m_file.spec.content;
}

Result<Plan> WriteFile::probe(Target& target) {
    const auto& spec = m_file.spec;
    auto state = TRY(host::file_state(target, spec.path));
    Plan plan;
    if (m_file.absent) {
        if (state.exists) {
            plan.changes.push_back({"remove " + spec.path, ""});
        }
        return plan;
    }
    std::string want_hash =
        m_file.source.empty() ? util::sha256_hex(spec.content) : util::sha256_file_hex(m_file.source);
    if (want_hash.empty()) {
        return make_error(ErrorCode::io, "cannot read " + m_file.source);
    }
    // A secret, or a file others may not read (now or once written): plans never show its content.
    bool hidden =
        m_file.sensitive || !host::world_readable(spec.mode) || (state.exists && !host::world_readable(state.mode));
    if (!state.exists) {
        Change c{"create " + spec.path + " (" + util::octal(spec.mode) + " " + spec.owner + ":" + spec.group + ")", ""};
        if (hidden) {
            c.summary += m_file.sensitive ? " (sensitive: content hidden)" : " (content hidden)";
        } else {
            auto content = TRY(desired_content());
            c.diff = content.size() <= k_max_diff_bytes ? util::unified_diff("", content, "/dev/null", spec.path) : "";
        }
        plan.changes.push_back(std::move(c));
        return plan;
    }
    if (state.sha256 != want_hash) {
        Change c{"update content of " + spec.path, ""};
        if (hidden) {
            c.summary += m_file.sensitive ? " (sensitive: content hidden)" : " (content hidden)";
        } else {
            c.diff = file_diff(target, spec.path, TRY(desired_content()));
        }
        plan.changes.push_back(std::move(c));
    }
    if (state.mode != spec.mode) {
        plan.changes.push_back({spec.path + " mode " + util::octal(state.mode) + " -> " + util::octal(spec.mode), ""});
    }
    if (state.owner != spec.owner || state.group != spec.group) {
        plan.changes.push_back(
            {spec.path + " owner " + state.owner + ":" + state.group + " -> " + spec.owner + ":" + spec.group, ""});
    }
    return plan;
}

Result<void> WriteFile::apply(Target& target, const Plan&) {
    const auto& spec = m_file.spec;
    if (m_file.absent) {
        return host::remove_file(target, spec.path);
    }
    auto state = TRY(host::file_state(target, spec.path));
    std::string want_hash =
        m_file.source.empty() ? util::sha256_hex(spec.content) : util::sha256_file_hex(m_file.source);
    if (state.exists && state.sha256 == want_hash && TRY(host::set_owner_mode(target, spec))) {
        return Ok{};  // only metadata differed: no rewrite
    }
    if (!m_file.source.empty()) {
        return target.upload(m_file.source, spec);
    }
    return target.write_file(spec);
}

// ---- SetHostname ----

namespace {

struct HostnameState {
    std::string file;  // /etc/hostname
    std::string kernel;  // `hostname`
};

Result<HostnameState> read_hostname(Target& target) {
    Command cmd;
    cmd.script = "cat /etc/hostname 2>/dev/null; echo '|'; hostname";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "reading the host name"));
    auto bar = r.out.find('|');
    if (bar == std::string::npos) {
        return make_error(ErrorCode::command, "unexpected output reading the host name");
    }
    return HostnameState{util::trim(r.out.substr(0, bar)), util::trim(r.out.substr(bar + 1))};
}

constexpr const char* k_begin = "# BEGIN nodectl base.hosts_entries (managed: edits here are replaced)";
constexpr const char* k_end = "# END nodectl base.hosts_entries";

// Debian names the machine itself on a 127.0.1.1 line; without it sudo complains on every call.
// Lines inside the base.hosts_entries block belong to that step and are left alone.
std::string with_loopback_name(const std::string& hosts, const std::string& name) {
    std::string out;
    bool found = false, in_block = false;
    for (const auto& line : util::split_lines(hosts)) {
        in_block = in_block ? line != k_end : line == k_begin;
        if (!in_block && util::starts_with(line, "127.0.1.1")) {
            if (!found) {
                out += "127.0.1.1\t" + name + "\n";
            }
            found = true;
        } else {
            out += line + "\n";
        }
    }
    if (!found) {
        out += "127.0.1.1\t" + name + "\n";
    }
    return out;
}

}  // namespace

Result<Plan> SetHostname::probe(Target& target) {
    auto st = TRY(read_hostname(target));
    Plan plan;
    if (st.file != m_name) {
        plan.changes.push_back({"/etc/hostname: " + (st.file.empty() ? "(none)" : st.file) + " -> " + m_name, ""});
    }
    if (st.kernel != m_name) {
        plan.changes.push_back({"running host name: " + st.kernel + " -> " + m_name, ""});
    }
    auto hosts = TRY(target.read_file("/etc/hosts")).value_or("");
    auto want = with_loopback_name(hosts, m_name);
    if (want != hosts) {
        plan.changes.push_back(
            {"/etc/hosts: 127.0.1.1 " + m_name, util::unified_diff(hosts, want, "/etc/hosts", "/etc/hosts (planned)")});
    }
    return plan;
}

Result<void> SetHostname::apply(Target& target, const Plan&) {
    auto hosts = TRY(target.read_file("/etc/hosts")).value_or("");
    auto want = with_loopback_name(hosts, m_name);
    if (want != hosts) {
        TRY_VOID(target.write_file({"/etc/hosts", want, 0644, "root", "root"}));
    }
    auto st = TRY(read_hostname(target));
    if (st.file != m_name) {
        TRY_VOID(target.write_file({"/etc/hostname", m_name + "\n", 0644, "root", "root"}));
    }
    if (st.kernel != m_name) {
        Command cmd;
        cmd.script = "hostname " + shell_quote(m_name);
        TRY(target.run_checked(cmd, "setting the host name"));
    }
    return Ok{};
}

// ---- SetTimezone ----

namespace {

struct ZoneState {
    std::string link;  // target of /etc/localtime
    std::string file;  // /etc/timezone
    bool known = false;  // /usr/share/zoneinfo/ZONE exists
};

Result<ZoneState> read_zone(Target& target, const std::string& zone) {
    Command cmd;
    cmd.script = "readlink /etc/localtime; echo '|'; cat /etc/timezone 2>/dev/null; echo '|'; "
                 "[ -f /usr/share/zoneinfo/" +
                 shell_quote(zone) + " ] && echo known; true";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "reading the time zone"));
    auto parts = util::split(r.out, '|');
    if (parts.size() != 3) {
        return make_error(ErrorCode::command, "unexpected output reading the time zone");
    }
    return ZoneState{util::trim(parts[0]), util::trim(parts[1]), util::trim(parts[2]) == "known"};
}

std::string zone_of_link(const std::string& link) {
    auto pos = link.find("zoneinfo/");
    return pos == std::string::npos ? link : link.substr(pos + 9);
}

}  // namespace

Result<Plan> SetTimezone::probe(Target& target) {
    auto st = TRY(read_zone(target, m_zone));
    Plan plan;
    if (!st.known) {
        return make_error(ErrorCode::unsupported,
                          "time zone '" + m_zone +
                              "' is not in /usr/share/zoneinfo on the host (is tzdata installed?)");
    }
    if (zone_of_link(st.link) != m_zone) {
        plan.changes.push_back(
            {"/etc/localtime: " + (st.link.empty() ? "(none)" : zone_of_link(st.link)) + " -> " + m_zone, ""});
    }
    if (st.file != m_zone) {
        plan.changes.push_back({"/etc/timezone: " + (st.file.empty() ? "(none)" : st.file) + " -> " + m_zone, ""});
    }
    return plan;
}

Result<void> SetTimezone::apply(Target& target, const Plan&) {
    Command cmd;
    // A new link renamed over the old one: /etc/localtime never disappears.
    cmd.script = "set -e; ln -sfn /usr/share/zoneinfo/" + shell_quote(m_zone) +
                 " /etc/.localtime.nodectl && mv -Tf /etc/.localtime.nodectl /etc/localtime";
    TRY(target.run_checked(cmd, "linking /etc/localtime"));
    return target.write_file({"/etc/timezone", m_zone + "\n", 0644, "root", "root"});
}

// ---- ManageHostsBlock ----

Result<std::pair<std::string, std::string>> ManageHostsBlock::current_and_desired(Target& target) const {
    auto current = TRY(target.read_file("/etc/hosts")).value_or("");
    std::string before, after;
    bool in_block = false, seen = false;
    for (const auto& line : util::split_lines(current)) {
        if (line == k_begin) {
            in_block = seen = true;
        } else if (in_block && line == k_end) {
            in_block = false;
        } else if (!in_block) {
            (seen ? after : before) += line + "\n";
        }
    }
    if (in_block) {
        // Without its end marker we cannot tell our lines from the admin's: refuse, lose nothing.
        return make_error(ErrorCode::unsupported, std::string("/etc/hosts has the line '") + k_begin + "' but no '" +
                                                      k_end + "' after it; fix the file by hand");
    }
    std::string block;
    if (!m_lines.empty()) {
        block = std::string(k_begin) + "\n";
        for (const auto& l : m_lines) {
            block += l + "\n";
        }
        block += std::string(k_end) + "\n";
    }
    return std::make_pair(current, before + block + after);
}

Result<Plan> ManageHostsBlock::probe(Target& target) {
    auto [current, desired] = TRY(current_and_desired(target));
    Plan plan;
    if (current != desired) {
        plan.changes.push_back({"/etc/hosts: " + std::to_string(m_lines.size()) + " managed entries",
                                util::unified_diff(current, desired, "/etc/hosts", "/etc/hosts (planned)")});
    }
    return plan;
}

Result<void> ManageHostsBlock::apply(Target& target, const Plan&) {
    auto [current, desired] = TRY(current_and_desired(target));
    return target.write_file({"/etc/hosts", desired, 0644, "root", "root"});
}

// ---- EnsurePackages ----

Result<std::pair<std::vector<std::string>, std::vector<std::string>>> EnsurePackages::pending(Target& target) const {
    std::vector<std::string> all = m_present;
    all.insert(all.end(), m_absent.begin(), m_absent.end());
    auto installed = TRY(host::installed_packages(target, all));
    std::vector<std::string> to_install, to_remove;
    for (const auto& p : m_present) {
        if (!installed.count(p)) {
            to_install.push_back(p);
        }
    }
    for (const auto& p : m_absent) {
        if (installed.count(p)) {
            to_remove.push_back(p);
        }
    }
    return std::make_pair(to_install, to_remove);
}

Result<Plan> EnsurePackages::probe(Target& target) {
    auto [to_install, to_remove] = TRY(pending(target));
    Plan plan;
    if (!to_install.empty()) {
        plan.changes.push_back(
            {"install " + util::join(to_install, " ") + (m_apt_sources.empty() ? "" : " (from the bundle)"), ""});
    }
    if (!to_remove.empty()) {
        plan.changes.push_back({"remove " + util::join(to_remove, " "), ""});
    }
    return plan;
}

Result<void> EnsurePackages::apply(Target& target, const Plan&) {
    auto [to_install, to_remove] = TRY(pending(target));
    if (!to_install.empty()) {
        TRY_VOID(host::install_packages(target, to_install, m_apt_sources, [&](const std::string& line) {
            log::info(target.name(), "{}: {}", title(), line);
        }));
    }
    if (!to_remove.empty()) {
        TRY_VOID(host::remove_packages(target, to_remove));
    }
    return Ok{};
}

// ---- EnsureUnits ----

namespace {

bool is_enabled(const std::string& s) {
    return s == "enabled" || s == "enabled-runtime" || s == "static" || s == "alias" || s == "indirect" ||
           s == "generated";
}

}  // namespace

Result<std::vector<std::pair<std::string, bool>>> EnsureUnits::pending(Target& target) const {
    std::vector<std::string> all = m_enabled;
    all.insert(all.end(), m_disabled.begin(), m_disabled.end());
    auto states = TRY(host::unit_states(target, all));
    std::vector<std::pair<std::string, bool>> out;
    for (const auto& u : m_enabled) {
        const auto& st = states[u];
        if (st.enabled.empty() || st.enabled == "not-found") {
            return make_error(ErrorCode::unsupported,
                              "unit " + u + " does not exist on the host (install the package that provides it)");
        }
        if (!is_enabled(st.enabled) || st.active != "active") {
            out.emplace_back(u, true);
        }
    }
    for (const auto& u : m_disabled) {
        const auto& st = states[u];
        bool known = !st.enabled.empty() && st.enabled != "not-found";
        // static units cannot be disabled, only stopped
        bool enabled = st.enabled == "enabled" || st.enabled == "enabled-runtime" || st.enabled == "alias";
        if (known && (enabled || st.active == "active")) {
            out.emplace_back(u, false);
        }
    }
    return out;
}

Result<Plan> EnsureUnits::probe(Target& target) {
    auto to_change = TRY(pending(target));
    Plan plan;
    for (const auto& [unit, enable] : to_change) {
        plan.changes.push_back({(enable ? "enable and start " : "disable and stop ") + unit, ""});
    }
    return plan;
}

Result<void> EnsureUnits::apply(Target& target, const Plan&) {
    for (const auto& [unit, enable] : TRY(pending(target))) {
        TRY_VOID(host::set_unit(target, unit, enable));
    }
    return Ok{};
}

}  // namespace nodectl::base

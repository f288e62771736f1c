#include "host/packages.hpp"

#include "util/strings.hpp"

#include <cstdio>
#include <memory>

namespace nodectl::host {

namespace {

constexpr const char* k_need_dpkg =
    "command -v dpkg-query >/dev/null || { echo 'no dpkg-query: only Debian-family hosts are supported' >&2; exit 3; }; ";

}  // namespace

Result<std::set<std::string>> installed_packages(Target& target, const std::vector<std::string>& names) {
    std::set<std::string> out;
    if (names.empty()) {
        return out;
    }
    Command cmd;
    // dpkg-query exits 1 when a name is unknown; that only means "not installed".
    cmd.script = std::string(k_need_dpkg) + "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " +
                 shell_quote_all(names) + " 2>/dev/null; true";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "dpkg-query"));
    return parse_installed_packages(r.out);
}

std::set<std::string> parse_installed_packages(const std::string& out_text) {
    std::set<std::string> out;
    for (const auto& line : util::split_lines(out_text)) {
        auto f = util::split(line, ' ');
        if (f.size() >= 2 && util::starts_with(f[1], "ii")) {
            out.insert(f[0]);
        }
    }
    return out;
}

void AptProgress::take_line(std::string_view line, Clock::time_point now) {
    auto word = [&](size_t from) {
        auto end = line.find(' ', from);
        return std::string(line.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from));
    };
    auto doing = [&](std::string what) {
        if (what != m_doing) {
            m_doing = std::move(what);
            m_since = now;
        }
    };
    if (line.find(" newly installed, ") != std::string_view::npos) {  // "U upgraded, N newly installed, ..."
        unsigned long upgraded = 0, fresh = 0;
        if (std::sscanf(std::string(line).c_str(), "%lu upgraded, %lu newly installed", &upgraded, &fresh) == 2 &&
            upgraded + fresh < 100000) {
            m_total = upgraded + fresh;
        }
    } else if (util::starts_with(line, "Get:")) {
        ++m_fetched;
        doing("fetching");
    } else if (util::starts_with(line, "Unpacking ")) {
        ++m_unpacked;
        doing("unpacking " + word(10));
    } else if (util::starts_with(line, "Setting up ")) {
        ++m_set_up;
        doing("setting up " + word(11));
    } else if (util::starts_with(line, "Processing triggers for ")) {
        doing("triggers of " + word(24));
    }
}

std::optional<std::string> AptProgress::feed(std::string_view out, Clock::time_point now) {
    m_partial.append(out);
    for (size_t nl; (nl = m_partial.find('\n')) != std::string::npos;) {
        take_line(std::string_view(m_partial).substr(0, nl), now);
        m_partial.erase(0, nl + 1);
    }
    if (m_partial.size() > 4096) {  // a line without end: not apt's
        m_partial.clear();
    }
    if (now - m_last_report < m_every) {
        return std::nullopt;
    }
    m_last_report = now;
    std::string of = m_total ? "/" + std::to_string(m_total) : "";
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - m_since).count();
    return std::to_string(m_fetched) + of + " fetched, " + std::to_string(m_unpacked) + of + " unpacked, " +
           std::to_string(m_set_up) + of + " set up; " + m_doing + " (" + std::to_string(secs) + " s)";
}

Result<void> install_packages(Target& target, const std::vector<std::string>& names, const std::string& sources_list,
                              const std::function<void(const std::string&)>& report) {
    Command cmd;
    // The host's lists of other sources are kept (List-Cleanup off), so its apt still works later.
    std::string apt = sources_list.empty() ? "apt-get"
                                           : "apt-get -o Dir::Etc::SourceList=" + shell_quote(sources_list) +
                                                 " -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=0";
    // Another apt may hold the locks: unattended-upgrades, cloud-init, or the install of an earlier
    // run whose operator died (its command goes on to the end on the host, so dpkg is not cut in
    // the middle). Install waits for dpkg's lock (DPkg::Lock::Timeout); `update` cannot wait for the
    // lists lock, so it is tried again while that lock is what stops it. A dpkg cut by a power loss
    // is finished (`dpkg --configure -a`) and the install tried once more.
    const std::string wait = " -o DPkg::Lock::Timeout=600";
    cmd.script = std::string(k_need_dpkg) + "update_lists() { for i in $(seq 1 120); do out=$(" + apt + wait +
                 " update -q 2>&1) && return 0; "
                 "case $out in *'/var/lib/apt/lists/lock'*) sleep 5 ;; *) break ;; esac; done; "
                 "printf '%s\\n' \"$out\" >&2; return 100; }\n"
                 "apt_install() { " +
                 apt + wait + " install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold " +
                 shell_quote_all(names) +
                 "; }\n"
                 "update_lists && { apt_install || { dpkg --configure -a && apt_install; }; }";
    cmd.timeout = std::chrono::seconds(1800);
    if (report) {
        auto progress = std::make_shared<AptProgress>(AptProgress::Clock::now(), std::chrono::seconds(10));
        cmd.on_output = [progress, &report](std::string_view out) {
            if (auto line = progress->feed(out, AptProgress::Clock::now())) {
                report(*line);
            }
        };
    }
    TRY(target.run_checked(cmd, "apt-get install " + shell_quote_all(names)));
    return Ok{};
}

Result<void> remove_packages(Target& target, const std::vector<std::string>& names) {
    Command cmd;
    cmd.script = std::string(k_need_dpkg) + "apt-get remove -y -q " + shell_quote_all(names);
    cmd.timeout = std::chrono::seconds(1800);
    TRY(target.run_checked(cmd, "apt-get remove " + shell_quote_all(names)));
    return Ok{};
}

}  // namespace nodectl::host

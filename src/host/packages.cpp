#include "host/packages.hpp"

#include "util/strings.hpp"

namespace nodectl::host {

namespace {

constexpr const char* k_need_dpkg =
    "command -v dpkg-query >/dev/null || { echo 'no dpkg-query: only Debian-family hosts are supported' >&2; exit 3; }; ";

} // namespace

Result<std::set<std::string>> installed_packages(Target& target, const std::vector<std::string>& names) {
    std::set<std::string> out;
    if (names.empty()) {
        return out;
    }
    Command cmd;
    // dpkg-query exits 1 when a name is unknown; that only means "not installed".
    cmd.script = std::string(k_need_dpkg) + "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + shell_quote_all(names) +
                 " 2>/dev/null; true";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "dpkg-query"));
    for (const auto& line : util::split_lines(r.out)) {
        auto f = util::split(line, ' ');
        if (f.size() >= 2 && util::starts_with(f[1], "ii")) {
            out.insert(f[0]);
        }
    }
    return out;
}

Result<void> install_packages(Target& target, const std::vector<std::string>& names, const std::string& sources_list) {
    Command cmd;
    // The host's lists of other sources are kept (List-Cleanup off), so its apt still works later.
    std::string apt = sources_list.empty() ? "apt-get" : "apt-get -o Dir::Etc::SourceList=" + shell_quote(sources_list) +
                                                             " -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=0";
    cmd.script = std::string(k_need_dpkg) + apt + " update -q && " + apt +
                 " install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold " + shell_quote_all(names);
    cmd.timeout = std::chrono::seconds(1800);
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

} // namespace nodectl::host

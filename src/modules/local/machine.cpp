// `nodectl local` on this machine: commands run as this process, files written without following
// links, and the processes of nodes and proxies found by their command lines.
#include "modules/local/detail.hpp"

#include "target/local_target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <filesystem>

#include <signal.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace nodectl::local::detail {

namespace {

LocalTarget& host() {
    static LocalTarget t("local");
    return t;
}

}  // namespace

Result<CommandResult> sh(const std::string& script, const std::string& what, std::chrono::seconds timeout) {
    Command c;
    c.script = script;
    c.timeout = timeout;
    return host().run_checked(c, what);
}

Result<void> write(const std::string& path, const std::string& content, uint32_t mode) {
    FileSpec f;
    f.path = path;
    f.content = content;
    f.mode = mode;
    return host().write_file(f);
}

bool systemd_runs_host() {
    return fs::is_directory("/run/systemd/system");  // sd_booted()
}

// Whole /proc/PID/cmdline, split at NULs.
std::vector<std::string> cmdline(const std::string& pid) {
    // A process may end between open and read (the read then fails with ESRCH): no command line.
    // util::read_file reports that as nothing read; an istreambuf_iterator would throw, and end
    // `nodectl local` while it scans for a node that is just stopping.
    std::string all = util::read_file("/proc/" + pid + "/cmdline").value_or("");
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < all.size(); ++i) {
        if (all[i] == '\0') {
            out.push_back(all.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

static std::string parent_of(const std::string& pid) {
    auto stat = util::read_file("/proc/" + pid + "/stat");
    if (!stat) {
        return "";
    }
    auto close = stat->rfind(')');  // comm may hold spaces and parentheses
    if (close == std::string::npos) {
        return "";
    }
    auto words = util::split(stat->substr(close + 2), ' ');
    return words.size() > 1 ? words[1] : "";
}

std::vector<std::string> all_pids() {
    std::vector<std::string> out;
    std::error_code ec;
    // increment(ec), not a range-for: that would throw if reading /proc failed half-way.
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        auto n = it->path().filename().string();
        if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) {
            out.push_back(n);
        }
    }
    return out;
}

Result<CommandResult> run(const std::string& script, std::chrono::seconds timeout) {
    return host().run(Command{script, "", timeout, false});
}

std::vector<std::string> descendants(const std::vector<std::string>& roots) {
    std::vector<std::pair<std::string, std::string>> parent;
    for (const auto& pid : all_pids()) {
        parent.emplace_back(pid, parent_of(pid));
    }
    std::vector<std::string> out = roots;
    for (size_t k = 0; k < out.size(); ++k) {
        for (const auto& [pid, ppid] : parent) {
            if (ppid == out[k] && std::find(out.begin(), out.end(), pid) == out.end()) {
                out.push_back(pid);
            }
        }
    }
    return out;
}

void signal_all(const std::vector<std::string>& pids, int sig) {
    for (const auto& p : pids) {
        // Skipped unless a real pid: 0 or a negative number would signal whole process groups.
        if (auto pid = util::parse_uint(p, {.max = 4194304}); pid && *pid > 0) {
            kill(static_cast<pid_t>(*pid), sig);
        }
    }
}

Result<void> need_root() {
    if (geteuid() != 0) {
        return make_error(ErrorCode::auth,
                          "nodectl local must run as root (it mounts, makes a bridge and boots containers)");
    }
    return Ok{};
}

Result<void> need_tool(const char* tool, const char* package) {
    auto r = TRY(run(std::string("command -v ") + tool));
    if (r.exit_code != 0) {
        return make_error(ErrorCode::unsupported, std::string(tool) + " is not installed: install the Debian package " +
                                                      package + " (apt-get install " + package + ")");
    }
    return Ok{};
}

}  // namespace nodectl::local::detail

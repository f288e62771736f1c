#include "modules/image/apt.hpp"

#include "util/log.hpp"
#include "modules/image/common.hpp"
#include "modules/image/process.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>

namespace nodectl::image::detail {

namespace fs = std::filesystem;

std::vector<std::string> Apt::argv(const std::string& status) const {
    return {"apt-get", "-q",
            "-o",      "Dir::Etc::SourceList=" + (root / "sources.list").string(),
            "-o",      "Dir::Etc::SourceParts=" + (root / "empty").string(),
            "-o",      "Dir::Etc::Preferences=/dev/null",
            "-o",      "Dir::Etc::PreferencesParts=" + (root / "empty").string(),
            "-o",      "Dir::State::Lists=" + lists().string(),
            "-o",      "Dir::State::status=" + status,
            "-o",      "Dir::Cache=" + (root / "cache").string(),
            "-o",      "Dir::Cache::archives=" + debs().string(),
            "-o",      "Debug::NoLocking=1",
            "-o",      "Acquire::Languages=none",
            "-o",      "APT::Install-Recommends=false"};
}

Result<void> Apt::prepare() const {
    std::error_code ec;
    for (const auto& d : {root / "empty", lists() / "partial", root / "cache", debs() / "partial"}) {
        fs::create_directories(d, ec);
        if (ec) {
            return io("cannot create " + d.string(), ec);
        }
    }
    // apt drops to the _apt user for downloads: it must be able to enter these.
    for (const auto& d : {root, lists(), lists() / "partial", debs(), debs() / "partial"}) {
        fs::permissions(d,
                        fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec,
                        ec);
    }
    TRY_VOID(as_result(util::write_file_atomic((root / "sources.list").string(), sources_line() + "\n", 0644),
                       ErrorCode::io));
    if (!fs::exists(root / "empty-status")) {
        std::ofstream((root / "empty-status").string()).close();
    }
    return Ok{};
}

Result<void> Apt::update() const {
    TRY_VOID(prepare());
    auto a = argv((root / "empty-status").string());
    a.push_back("update");
    return run_logged(a, std::string(k_log));
}

std::string Apt::release_text() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(lists(), ec)) {
        auto n = e.path().filename().string();
        if (n.ends_with("_dists_" + suite + "_InRelease") || n.ends_with("_dists_" + suite + "_Release")) {
            return util::read_file(e.path().string()).value_or("");
        }
    }
    return {};
}

Result<std::vector<std::string>> Apt::resolve(const std::vector<std::string>& packages) const {
    std::string release = release_text();
    std::string memo;
    if (!release.empty()) {
        memo =
            (root / "resolved" / util::sha256_hex(release + "\n" + sources_line() + "\n" + util::join(packages, "\n")))
                .string();
        if (auto text = util::read_file(memo)) {
            return util::split_lines(*text);
        }
    }
    auto out = TRY(resolve_now(packages));
    if (!memo.empty()) {
        std::error_code ec;
        fs::create_directories(root / "resolved", ec);
        // A memo only saves the next build a resolve: one that cannot be written is resolved again.
        if (auto err = util::write_file_atomic(memo, util::join(out, "\n") + "\n", 0644); !err) {
            log::warn(k_log, "cannot keep the resolved package list: {}", err.error());
        }
    }
    return out;
}

Result<std::vector<std::string>> Apt::resolve_now(const std::vector<std::string>& packages) const {
    auto a = argv((root / "empty-status").string());
    a.insert(a.end(), {"-s", "install", "--"});
    a.insert(a.end(), packages.begin(), packages.end());
    auto r = run_process(a, "", std::chrono::seconds(600));
    if (!r) {
        return std::move(r).error();
    }
    if (r->exit_code != 0) {
        return make_error(ErrorCode::command, "apt cannot resolve " + util::join(packages, " ") + " in " + suite +
                                                  ":\n" + (r->err.empty() ? r->out : r->err));
    }
    std::vector<std::string> out;
    for (const auto& line : util::split_lines(r->out)) {
        if (!line.starts_with("Inst ")) {
            continue;
        }
        auto parts = util::split(line, ' ');
        if (parts.size() >= 3 && parts[2].size() > 1 && parts[2][0] == '(') {
            out.push_back(parts[1] + "=" + parts[2].substr(1));
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<void> Apt::download(const std::vector<std::string>& packages, const std::string& status) const {
    auto a = argv(status);
    a.insert(a.end(), {"install", "--download-only", "-y", "--"});
    a.insert(a.end(), packages.begin(), packages.end());
    return run_logged(a, std::string(k_log));
}

int64_t Apt::release_date() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(lists(), ec)) {
        auto n = e.path().filename().string();
        if (!n.ends_with("_dists_" + suite + "_InRelease") && !n.ends_with("_dists_" + suite + "_Release")) {
            continue;
        }
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line)) {
            if (line.starts_with("Date: ")) {
                std::tm tm{};
                if (strptime(line.c_str() + 6, "%a, %d %b %Y %H:%M:%S", &tm)) {
                    return static_cast<int64_t>(timegm(&tm));
                }
            }
        }
    }
    return 0;
}

std::vector<std::string> variant_set(const std::string& variant) {
    std::vector<std::string> s = {"?essential"};
    if (variant != "essential") {
        s.push_back("apt");
    }
    if (variant == "required" || variant == "minbase" || variant == "buildd" || variant == "important" ||
        variant == "standard") {
        s.push_back("?priority(required)");
    }
    if (variant == "buildd") {
        s.push_back("build-essential");
    }
    if (variant == "important" || variant == "standard") {
        s.push_back("?priority(important)");
    }
    if (variant == "standard") {
        s.push_back("?priority(standard)");
    }
    return s;
}

}  // namespace nodectl::image::detail

// Helpers shared by the unit tests: a temporary directory, silencing the runner's log lines, and
// the small checks and readers several test files use. A helper used by one file only stays in
// that file, under a name no other test file uses (the tests compile as a unity build).
#pragma once

#include "util/log.hpp"
#include "modules/stack/stack.hpp"
#include "nodectl/config.hpp"
#include "nodectl/step.hpp"
#include "nodectl/target.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace nodectl::testing {

// The runner logs every change at info level; test output stays readable without it. Restores
// warnings when the test ends.
class QuietLogs {
public:
    QuietLogs() { nodectl::log::set_level("off"); }
    ~QuietLogs() { nodectl::log::set_level("warn"); }
    QuietLogs(const QuietLogs&) = delete;
    QuietLogs& operator=(const QuietLogs&) = delete;
};

// A fresh directory under $TMPDIR (or /tmp) for one test, removed with everything in it when the
// test ends.
class TempDir {
public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/nodectl-unit.XXXXXX";
        if (!::mkdtemp(pattern.data())) {
            throw std::runtime_error("mkdtemp failed");
        }
        m_path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return m_path; }
    std::string file(const std::string& name) const { return (m_path / name).string(); }

    // Writes `content` to `name` (creating parent folders) and returns its full path.
    std::string write(const std::string& name, const std::string& content, mode_t mode = 0644) const {
        std::filesystem::path p = m_path / name;
        std::filesystem::create_directories(p.parent_path());
        {
            std::ofstream out(p, std::ios::binary | std::ios::trunc);
            out << content;
        }
        ::chmod(p.c_str(), mode);
        return p.string();
    }

private:
    std::filesystem::path m_path;
};

// A profile loaded from `text` (written to a temporary file first).
inline Result<Profile> try_profile(const std::string& text) {
    TempDir dir;
    return load_profile(dir.write("profile.toml", text));
}

inline Profile profile_from(const std::string& text) {
    auto p = try_profile(text);
    if (!p) {
        throw std::runtime_error("profile does not load: " + p.error().message);
    }
    return std::move(p).value();
}

// The profile in the file `path`, which must load.
inline Profile load_profile_ok(const std::string& path) {
    auto p = load_profile(path);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
    return std::move(p).value();
}

// The stack sites of the profile `text` (written to `dir`/p.toml), or why they do not load.
inline Result<std::vector<stack::Site>> load_sites(const TempDir& dir, const std::string& text) {
    auto profile = load_profile(dir.write("p.toml", text));
    if (!profile) {
        return profile.error();
    }
    return stack::sites_from(*profile);
}

// The documents of a rendered stack manifest ("---" lines between JSON documents), parsed.
inline std::vector<nlohmann::ordered_json> manifest_documents(const std::string& text) {
    std::vector<nlohmann::ordered_json> docs;
    size_t pos = 0;
    while ((pos = text.find("---\n", pos)) != std::string::npos) {
        pos += 4;
        size_t end = text.find("\n---\n", pos);
        docs.push_back(nlohmann::ordered_json::parse(
            text.substr(pos, end == std::string::npos ? std::string::npos : end + 1 - pos)));
        if (end == std::string::npos) {
            break;
        }
    }
    return docs;
}

// The document of `kind` called `name` among `docs` (parsed manifest documents), or nullptr.
template <class Json>
const Json* find_document(const std::vector<Json>& docs, const std::string& kind, const std::string& name) {
    for (const auto& d : docs) {
        if (d["kind"] == kind && d["metadata"]["name"] == name) {
            return &d;
        }
    }
    return nullptr;
}

// True when `part` occurs in `text`.
inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The lines of `text` that contain `part`.
inline std::vector<std::string> lines_with(const std::string& text, const std::string& part) {
    std::vector<std::string> out;
    for (const auto& l : util::split_lines(text)) {
        if (contains(l, part)) {
            out.push_back(l);
        }
    }
    return out;
}

// A file's bytes, or "" when it cannot be opened (read as a stream: /proc files work too).
inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A file's permission bits with setuid, setgid and sticky (stat: a symbolic link is followed).
inline unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// Deterministic bytes that are not all alike (xorshift32 from `seed`), so a truncation or a flipped byte shows.
inline std::string pattern_bytes(size_t n, uint32_t seed = 2463534242u) {
    std::string s(n, '\0');
    uint32_t x = seed;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x & 0xff);
    }
    return s;
}

// The summaries of a plan's changes, in order.
inline std::vector<std::string> summaries(const Plan& plan) {
    std::vector<std::string> out;
    for (const auto& c : plan.changes) {
        out.push_back(c.summary);
    }
    return out;
}

// The plan of `step` on `target`; the probe must succeed.
inline Plan probe_ok(Step& step, Target& target) {
    auto plan = step.probe(target);
    REQUIRE_MESSAGE(plan.ok(), (plan.ok() ? "" : plan.error().message));
    return *plan;
}

// Answers every command with `out` and records the scripts: what a node, or a hostile host, sends back.
class CannedTarget final : public Target {
public:
    explicit CannedTarget(std::string out) : m_out(std::move(out)) {}
    const std::string& name() const override { return m_name; }
    Result<CommandResult> run(const Command& cmd) override {
        scripts.push_back(cmd.script);
        return CommandResult{0, m_out, ""};
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string&) override {
        return make_error(ErrorCode::internal, "not locked in this test");
    }
    std::vector<std::string> scripts;

private:
    std::string m_name = "canned";
    std::string m_out;
};

}  // namespace nodectl::testing

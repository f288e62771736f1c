// Helpers shared by the unit tests: a temporary directory, and silencing the runner's log lines.
#pragma once

#include "core/log.hpp"
#include "nodectl/config.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

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

} // namespace nodectl::testing

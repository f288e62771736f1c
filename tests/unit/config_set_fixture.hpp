// The fixture of the ApplyConfigSet unit tests (test_modules_config_set*.cpp), which apply config
// sets for real on this machine: a temp dir, a unique set id, quiet logs, and the clean-up of the
// state ApplyConfigSet keeps under /var/lib/nodectl (originals, rollback, applied) for that id.
#pragma once

#include "test_support.hpp"

#include "modules/config_set/config_set.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace nodectl::testing {

// Applies `plan` with `step`, which must succeed.
inline void apply_ok(Step& step, Target& target, const Plan& plan) {
    auto r = step.apply(target, plan);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
}

// 16 random hex digits: a set id no other test run uses.
inline std::string random_hex() {
    std::random_device rd;
    std::mt19937_64 gen(rd());
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
    return buf;
}

// Removes, when the test ends, what ApplyConfigSet left under /var/lib/nodectl for one id and one
// temp directory, and the directories above them that did not exist when the test started.
class StateGuard {
public:
    StateGuard(const std::string& id, const std::filesystem::path& tmp)
        : m_entries{k_state_dir / "rollback" / state_name(id), k_state_dir / "applied" / state_name(id),
                    std::filesystem::path(original_path(tmp.string()))} {
        for (const auto& e : m_entries) {
            REQUIRE_FALSE(std::filesystem::exists(e));  // a fresh id and temp dir: nothing of ours is there yet
            for (auto p = e.parent_path(); p.string().size() >= k_state_dir.string().size(); p = p.parent_path()) {
                if (!std::filesystem::exists(p)) {
                    m_created.insert(p);
                }
            }
        }
    }
    ~StateGuard() {
        std::error_code ec;
        for (const auto& e : m_entries) {
            std::filesystem::remove_all(e, ec);
        }
        // Children sort after their parents: remove the deepest first, and only when empty.
        for (auto it = m_created.rbegin(); it != m_created.rend(); ++it) {
            std::filesystem::remove(*it, ec);
        }
    }
    StateGuard(const StateGuard&) = delete;
    StateGuard& operator=(const StateGuard&) = delete;

    std::filesystem::path rollback_dir() const { return m_entries[0]; }
    std::filesystem::path stamp() const { return m_entries[1]; }

private:
    inline static const std::filesystem::path k_state_dir = "/var/lib/nodectl";

    // What ApplyConfigSet names its state files after: the id with '/' replaced by '-'.
    static std::string state_name(std::string id) {
        std::replace(id.begin(), id.end(), '/', '-');
        return id;
    }

    std::vector<std::filesystem::path> m_entries;
    std::set<std::filesystem::path> m_created;
};

// One ApplyConfigSet test: quiet logs, a temp dir, a unique id, and the state clean-up.
struct SetFixture {
    QuietLogs quiet;
    TempDir dir;
    std::string id = "test/harden-unit-" + random_hex();
    StateGuard state{id, dir.path()};

    std::string log() const { return dir.file("activate.log"); }
    std::string log_text() const { return read_text(log()); }
    // Appends `word` to the activation log.
    std::string logs(const std::string& word) const { return "echo " + word + " >> " + shell_quote(log()); }

    // The test's set ("unit test set"), with `files`.
    ConfigSetSpec spec(std::vector<ConfigSetFile> files = {}) const {
        ConfigSetSpec s;
        s.id = id;
        s.title = "unit test set";
        s.files = std::move(files);
        return s;
    }
};

}  // namespace nodectl::testing

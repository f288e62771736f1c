// The journal on each host (/var/lib/nodectl/journal.json, mode 0600): which run last touched the
// host, with which profile, how far it got. A run that finds an interrupted run of the same profile
// resumes it, skipping the steps that run had finished.
#pragma once

#include "nodectl/target.hpp"

#include <map>
#include <string>

namespace nodectl {

struct Journal {
    std::string run_id;
    std::string profile_digest;
    std::string state;  // "running", "complete", "failed"
    std::string started;
    std::string finished;
    std::map<std::string, std::string> steps;  // step id -> "done" | "failed"

    static constexpr const char* k_path = "/var/lib/nodectl/journal.json";

    static Result<Journal> read(Target& target);  // an empty Journal when there is none
    Result<void> write(Target& target) const;
    std::string to_json() const;
    static Journal from_json(const std::string& text);
};

} // namespace nodectl

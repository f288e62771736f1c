#include "core/journal.hpp"
#include "util/json.hpp"

#include <nlohmann/json.hpp>

namespace nodectl {

std::string Journal::to_json() const {
    nlohmann::json j = {{"run_id", run_id}, {"profile", profile_digest}, {"state", state},
                        {"started", started}, {"finished", finished}, {"steps", steps}};
    return util::json_text(j, 2) + "\n";
}

Journal Journal::from_json(const std::string& text) {
    Journal out;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) {
        return out;  // unreadable journal: nothing to resume
    }
    try {
        out.run_id = j.value("run_id", "");
        out.profile_digest = j.value("profile", "");
        out.state = j.value("state", "");
        out.started = j.value("started", "");
        out.finished = j.value("finished", "");
    } catch (const nlohmann::json::exception&) {
        return Journal{};  // a field of the wrong type: as unreadable as junk
    }
    if (j.contains("steps") && j["steps"].is_object()) {
        for (auto& [k, v] : j["steps"].items()) {
            if (v.is_string()) {
                out.steps[k] = v.get<std::string>();
            }
        }
    }
    return out;
}

Result<Journal> Journal::read(Target& target) {
    auto text = TRY(target.read_file(k_path));
    return text ? from_json(*text) : Journal{};
}

Result<void> Journal::write(Target& target) const {
    FileSpec f;
    f.path = k_path;
    f.content = to_json();
    f.mode = 0600;
    return target.write_file(f);
}

} // namespace nodectl

// The profile as a machine receives it: one self-contained file (see node_profile.cpp).
#pragma once

#include "nodectl/config.hpp"

#include <string>
#include <utility>
#include <vector>

namespace nodectl::firstboot {

struct NodeProfile {
    std::string text;  // the TOML the machine gets
    bool verbatim = false;  // the operator's file byte for byte (so its signature still matches)
    std::vector<std::pair<std::string, std::string>> secret_files;  // path -> content (inline secrets only)
    std::vector<std::string> references;  // secrets the machine must get another way
};

// `path` is the profile's main file as given to load_profile.
Result<NodeProfile> node_profile(const Profile& profile, const std::string& path, bool inline_secrets);

}  // namespace nodectl::firstboot

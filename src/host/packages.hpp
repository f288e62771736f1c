// Debian packages on a Target (dpkg/apt). Other package managers are refused, not guessed.
#pragma once

#include "nodectl/target.hpp"

#include <set>
#include <string>
#include <vector>

namespace nodectl::host {

// The subset of `names` that dpkg reports as installed ("ii").
Result<std::set<std::string>> installed_packages(Target& target, const std::vector<std::string>& names);
// `sources_list`, when not empty, is the only apt source used (an offline bundle's local
// repository): nothing is fetched from the network.
Result<void> install_packages(Target& target, const std::vector<std::string>& names, const std::string& sources_list = "");
Result<void> remove_packages(Target& target, const std::vector<std::string>& names);

} // namespace nodectl::host

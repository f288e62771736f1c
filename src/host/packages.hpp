// Debian packages on a Target (dpkg/apt). Other package managers are refused, not guessed.
#pragma once

#include "nodectl/target.hpp"

#include <set>
#include <string>
#include <vector>

namespace nodectl::host {

// The subset of `names` that dpkg reports as installed ("ii").
Result<std::set<std::string>> installed_packages(Target& target, const std::vector<std::string>& names);
Result<void> install_packages(Target& target, const std::vector<std::string>& names);
Result<void> remove_packages(Target& target, const std::vector<std::string>& names);

} // namespace nodectl::host

// Local files. Knows nothing of nodectl.
#pragma once

#include <optional>
#include <string>

namespace util {

// The whole content of a local file; nullopt when it cannot be read (errno tells why).
std::optional<std::string> read_file(const std::string& path);

} // namespace util

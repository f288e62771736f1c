// Digests through OpenSSL. Knows nothing of nodectl.
#pragma once

#include <string>
#include <string_view>

namespace util {

// Lower-case hex sha256 of the bytes.
std::string sha256_hex(std::string_view data);
// Lower-case hex sha256 of a file's contents; empty string when it cannot be read.
std::string sha256_file_hex(const std::string& path);

} // namespace util

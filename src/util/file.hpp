// Local files. Knows nothing of nodectl.
#pragma once

#include "util/expected.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace util {

// The whole content of a local file, or why it cannot be read ("cannot read PATH: REASON"; errno
// is left set, so ENOENT tells an absent file apart).
Expected<std::string> read_file(const std::string& path);
// The content of a file that may be absent: nullopt when it does not exist (ENOENT); any other
// failure is one (a file that exists but cannot be read is not taken for an absent one).
Expected<std::optional<std::string>> read_file_if_exists(const std::string& path);

// Replaces `path` so that a reader sees the old or the new content, never a mix, and a crash
// leaves one of them: a temporary file beside it (created 0600, then given `mode`), fsync,
// rename, fsync of the directory. A symbolic link at `path` is followed. On failure, why (the
// temporary file is removed).
Expected<void> write_file_atomic(const std::string& path, std::string_view content, unsigned mode);

}  // namespace util

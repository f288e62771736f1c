// Local files. Knows nothing of nodectl.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace util {

// The whole content of a local file; nullopt when it cannot be read (errno tells why).
[[nodiscard]] std::optional<std::string> read_file(const std::string& path);

// Replaces `path` so that a reader sees the old or the new content, never a mix, and a crash
// leaves one of them: a temporary file beside it (created 0600, then given `mode`), fsync,
// rename, fsync of the directory. A symbolic link at `path` is followed. Returns an empty string
// on success, else why it failed (the temporary file is removed).
[[nodiscard]] std::string write_file_atomic(const std::string& path, std::string_view content, unsigned mode);

}  // namespace util

// Local files in a directory whose content is not trusted. Knows nothing of nodectl.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace util {

// For directories whose content is not trusted (a USB stick): `name` is one path component in
// the directory `dir_fd`, a symbolic link there is never followed, and only a regular file is
// read or replaced.
//
// The content of `name`, at most max_bytes; nullopt with errno set and `why` filled otherwise
// (ENOENT: absent; ELOOP: a symbolic link; EINVAL: not a regular file; EFBIG: too large).
[[nodiscard]] std::optional<std::string> read_file_at(int dir_fd, const std::string& name, size_t max_bytes,
                                                      std::string* why = nullptr);
// write_file_atomic within `dir_fd`: the temporary file is created there with O_EXCL|O_NOFOLLOW
// and renamed over `name`, which replaces a link rather than following it; an existing `name`
// that is not a regular file is refused.
[[nodiscard]] std::string write_file_atomic_at(int dir_fd, const std::string& name, std::string_view content,
                                               unsigned mode);
// Opens the directory `path` (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC; a link is refused); -1 and errno on failure.
[[nodiscard]] int open_dir_nofollow(const std::string& path);

}  // namespace util

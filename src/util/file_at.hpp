// Local files in a directory whose content is not trusted. Knows nothing of nodectl.
#pragma once

#include "util/expected.hpp"
#include "util/fd.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace util {

// For directories whose content is not trusted (a USB stick): `name` is one path component in
// the directory `dir_fd`, a symbolic link there is never followed, and only a regular file is
// read or replaced.
//
// The content of `name`, at most max_bytes; otherwise why ("NAME: REASON"), with errno set
// (ENOENT: absent; ELOOP: a symbolic link; EINVAL: not a regular file; EFBIG: too large).
Expected<std::string> read_file_at(int dir_fd, const std::string& name, size_t max_bytes);
// write_file_atomic within `dir_fd`: the temporary file is created there with O_EXCL|O_NOFOLLOW
// and renamed over `name`, which replaces a link rather than following it; an existing `name`
// that is not a regular file is refused.
Expected<void> write_file_atomic_at(int dir_fd, const std::string& name, std::string_view content, unsigned mode);
// Opens the directory `path` (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC; a link is refused); otherwise
// why ("PATH: REASON"), with errno set.
Expected<Fd> open_dir_nofollow(const std::string& path);

}  // namespace util

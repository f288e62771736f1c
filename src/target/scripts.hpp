// Shell snippets shared by the targets.
#pragma once

#include "nodectl/target.hpp"

namespace nodectl {

// Script that writes its stdin to file.path atomically: a 0600 temporary file beside the
// destination, owner and mode set, synced, then renamed over the destination. In a directory a
// user owns, the file is written by a process running as that user; a directory writable by
// group or others, or reached through a symbolic link, is refused.
std::string atomic_write_script(const FileSpec& file);
// Script prefix that sets p (the path), d (its directory), n (its name), cd's into d without
// being led elsewhere by a symbolic link, sets du/dg (d's owner uid and gid) and safe (non-empty
// when only root can change d's entries), and fails when d is writable by group or others.
// With `create`, d is created first when missing.
std::string enter_file_directory_script(const std::string& path, bool create);

}  // namespace nodectl

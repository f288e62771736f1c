// Comparing a file on a Target with what it should be, in one round trip, by content hash.
#pragma once

#include "nodectl/target.hpp"

#include <optional>
#include <string>
#include <vector>

namespace nodectl::host {

struct FileState {
    bool exists = false;
    uint32_t mode = 0;
    std::string owner;
    std::string group;
    std::string sha256;
};

Result<FileState> file_state(Target& target, const std::string& path);
// What file_state reads back: nothing (no such file), or `stat -c '%a %U %G'` and `sha256sum`'s
// line. ErrorCode::command naming the command for anything else.
Result<FileState> parse_file_state(const std::string& path, const std::string& out);

// Whether everyone on the host may read a file of this mode. Plans and diffs never show the
// content of a file that is not (its owner chose to keep it from others).
inline bool world_readable(uint32_t mode) {
    return (mode & 0004) != 0;
}

struct FileContent {
    std::string content;
    uint32_t mode = 0;
    std::string owner;
    std::string group;
};
// Regular files read in one round trip, in the order given; nullopt for a path that is not a
// regular file.
Result<std::vector<std::optional<FileContent>>> read_files(Target& target, const std::vector<std::string>& paths);
// What read_files reads back, for `paths` in order: "N\n", or `stat -c 'F %a %U %G %s'`'s line and
// that many bytes.
Result<std::vector<std::optional<FileContent>>> parse_read_files(const std::vector<std::string>& paths,
                                                                 const std::string& text);
// chown + chmod in place; false (and nothing done) when the file's directory is not root's alone,
// where only rewriting the file (Target::write_file) is safe.
Result<bool> set_owner_mode(Target& target, const FileSpec& spec);
Result<void> remove_file(Target& target, const std::string& path);

}  // namespace nodectl::host

#include "host/files.hpp"

#include "target/scripts.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

namespace nodectl::host {

Result<FileState> file_state(Target& target, const std::string& path) {
    std::string q = shell_quote(path);
    Command cmd;
    cmd.script = "if [ -f " + q + " ]; then stat -c '%a %U %G' -- " + q + " && sha256sum < " + q + "; elif [ -e " + q +
                 " ]; then echo " + q + " exists but is not a regular file >&2; exit 3; fi";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "checking " + path));
    return parse_file_state(path, r.out);
}

Result<FileState> parse_file_state(const std::string& path, const std::string& out) {
    FileState st;
    auto lines = util::split_lines(out);
    if (lines.empty()) {
        return st;  // the script prints nothing for a path that does not exist
    }
    auto f = util::split(lines[0], ' ');
    auto mode = f.size() == 3 ? util::parse_uint(f[0], {.max = 07777, .base = 8}) : std::nullopt;
    if (!mode) {
        return make_error(ErrorCode::command,
                          "unexpected stat output for " + path + ": " + util::printable(lines[0].substr(0, 200)));
    }
    // sha256sum prints "<64 hex digits>  -". A missing or cut line is an error, not an absent file.
    std::string sum = lines.size() > 1 ? lines[1].substr(0, 64) : std::string();
    if (sum.size() != 64 || sum.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return make_error(ErrorCode::command,
                          "unexpected sha256sum output for " + path + ": " +
                              util::printable(lines.size() > 1 ? lines[1].substr(0, 200) : "(none)"));
    }
    st.exists = true;
    st.mode = static_cast<uint32_t>(*mode);
    st.owner = f[1];
    st.group = f[2];
    st.sha256 = sum;
    return st;
}

Result<std::vector<std::optional<FileContent>>> read_files(Target& target, const std::vector<std::string>& paths) {
    std::vector<std::optional<FileContent>> out;
    if (paths.empty()) {
        return out;
    }
    Command cmd;
    // Each file: a header line "F mode owner group size" and exactly `size` bytes, or "N".
    cmd.script = "for p in " + shell_quote_all(paths) +
                 "; do if [ -f \"$p\" ]; then stat -c 'F %a %U %G %s' -- \"$p\" && cat -- \"$p\"; "
                 "else echo N; fi; done";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "reading files"));
    return parse_read_files(paths, r.out);
}

Result<std::vector<std::optional<FileContent>>> parse_read_files(const std::vector<std::string>& paths,
                                                                 const std::string& text) {
    std::vector<std::optional<FileContent>> out;
    size_t pos = 0;
    for (const auto& path : paths) {
        auto eol = text.find('\n', pos);
        if (eol == std::string::npos) {
            return make_error(ErrorCode::command, "unexpected stat output reading " + path);
        }
        auto header = util::split(text.substr(pos, eol - pos), ' ');
        pos = eol + 1;
        if (header.size() == 1 && header[0] == "N") {
            out.emplace_back();
            continue;
        }
        auto mode = header.size() == 5 && header[0] == "F" ? util::parse_uint(header[1], {.max = 07777, .base = 8})
                                                           : std::nullopt;
        auto size = header.size() == 5 ? util::parse_uint(header[4]) : std::nullopt;
        if (!mode || !size) {
            return make_error(ErrorCode::command, "unexpected stat output reading " + path);
        }
        if (*size > text.size() - pos) {
            return make_error(ErrorCode::command, path + " changed while it was read; try again");
        }
        out.emplace_back(FileContent{text.substr(pos, *size), static_cast<uint32_t>(*mode), header[2], header[3]});
        pos += *size;
    }
    return out;
}

Result<bool> set_owner_mode(Target& target, const FileSpec& spec) {
    constexpr int k_not_root_only = 101;
    Command cmd;
    // Only where nobody but root can swap the file for a symbolic link between the check and
    // chmod (which follows links): elsewhere the caller rewrites the file, which is safe there.
    cmd.script = "set -e; " + enter_file_directory_script(spec.path, false) +
                 "if [ ! -f \"$n\" ] || [ -L \"$n\" ]; then echo \"$p is not a regular file\" >&2; exit 1; fi; "
                 "[ -n \"$safe\" ] || exit " +
                 std::to_string(k_not_root_only) +
                 "; "
                 "chown " +
                 shell_quote(spec.owner + ":" + spec.group) + " -- \"$n\"; chmod " + util::octal(spec.mode) +
                 " -- \"$n\"";
    auto r = TRY(target.run(cmd));
    if (r.exit_code == k_not_root_only) {
        return false;
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "chown/chmod " + spec.path + " failed (exit " +
                                                  std::to_string(r.exit_code) + "): " + util::trim(r.err));
    }
    return true;
}

Result<void> remove_file(Target& target, const std::string& path) {
    Command cmd;
    cmd.script = "rm -f -- " + shell_quote(path);
    TRY(target.run_checked(cmd, "removing " + path));
    return Ok{};
}

}  // namespace nodectl::host

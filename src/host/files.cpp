#include "host/files.hpp"

#include "util/strings.hpp"

namespace nodectl::host {

Result<FileState> file_state(Target& target, const std::string& path) {
    std::string q = shell_quote(path);
    Command cmd;
    cmd.script = "if [ -f " + q + " ]; then stat -c '%a %U %G' -- " + q + " && sha256sum < " + q +
                 "; elif [ -e " + q + " ]; then echo " + q + " exists but is not a regular file >&2; exit 3; fi";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "checking " + path));
    FileState st;
    auto lines = util::split_lines(r.out);
    if (lines.size() < 2) {
        return st;
    }
    auto f = util::split(lines[0], ' ');
    if (f.size() != 3) {
        return make_error(ErrorCode::command, "unexpected stat output for " + path + ": " + lines[0]);
    }
    st.exists = true;
    st.mode = static_cast<uint32_t>(std::stoul(f[0], nullptr, 8));
    st.owner = f[1];
    st.group = f[2];
    st.sha256 = lines[1].substr(0, 64);
    return st;
}

Result<std::vector<std::optional<FileContent>>> read_files(Target& target, const std::vector<std::string>& paths) {
    std::vector<std::optional<FileContent>> out;
    if (paths.empty()) {
        return out;
    }
    Command cmd;
    // Each file: a header line "F mode owner group size" and exactly `size` bytes, or "N".
    cmd.script = "for p in " + shell_quote_all(paths) + "; do if [ -f \"$p\" ]; then stat -c 'F %a %U %G %s' -- \"$p\" && cat -- \"$p\"; "
                 "else echo N; fi; done";
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "reading files"));
    size_t pos = 0;
    for (const auto& path : paths) {
        auto eol = r.out.find('\n', pos);
        if (eol == std::string::npos) {
            return make_error(ErrorCode::command, "unexpected output reading " + path);
        }
        auto header = util::split(r.out.substr(pos, eol - pos), ' ');
        pos = eol + 1;
        if (header.size() == 1 && header[0] == "N") {
            out.emplace_back();
            continue;
        }
        if (header.size() != 5 || header[0] != "F") {
            return make_error(ErrorCode::command, "unexpected output reading " + path);
        }
        size_t size = std::stoull(header[4]);
        if (pos + size > r.out.size()) {
            return make_error(ErrorCode::command, path + " changed while it was read; try again");
        }
        out.emplace_back(FileContent{r.out.substr(pos, size), static_cast<uint32_t>(std::stoul(header[1], nullptr, 8)),
                                     header[2], header[3]});
        pos += size;
    }
    return out;
}

Result<void> set_owner_mode(Target& target, const FileSpec& spec) {
    Command cmd;
    cmd.script = "chown " + shell_quote(spec.owner + ":" + spec.group) + " -- " + shell_quote(spec.path) + " && chmod " +
                 util::octal(spec.mode) + " -- " + shell_quote(spec.path);
    TRY(target.run_checked(cmd, "chown/chmod " + spec.path));
    return Ok{};
}

Result<void> remove_file(Target& target, const std::string& path) {
    Command cmd;
    cmd.script = "rm -f -- " + shell_quote(path);
    TRY(target.run_checked(cmd, "removing " + path));
    return Ok{};
}

} // namespace nodectl::host

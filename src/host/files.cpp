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

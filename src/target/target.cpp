// File operations for every target, built on run(): a remote host and the local machine are
// handled by the same scripts, so they behave the same. Scripts use only POSIX sh and coreutils.
#include "nodectl/target.hpp"

#include "target/scripts.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace nodectl {

namespace {

constexpr int k_absent = 100;  // exit code our scripts use for "no such file"

} // namespace

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

std::string shell_quote_all(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        out += (out.empty() ? "" : " ") + shell_quote(w);
    }
    return out;
}

Result<CommandResult> Target::run_checked(const Command& cmd, const std::string& what) {
    auto r = TRY(run(cmd));
    if (r.exit_code != 0) {
        std::string detail = util::trim(r.err.empty() ? r.out : r.err);
        if (detail.size() > 2000) {
            detail = "..." + detail.substr(detail.size() - 2000);
        }
        return make_error(ErrorCode::command,
                          what + " failed (exit " + std::to_string(r.exit_code) + ")" + (detail.empty() ? "" : ": " + detail));
    }
    return r;
}

Result<std::optional<std::string>> Target::read_file(const std::string& path) {
    Command cmd;
    cmd.script = "[ -e " + shell_quote(path) + " ] || exit " + std::to_string(k_absent) + "; exec cat -- " + shell_quote(path);
    cmd.mutates = false;
    auto r = TRY(run(cmd));
    if (r.exit_code == k_absent) {
        return std::optional<std::string>();
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "cannot read " + path + ": " + util::trim(r.err));
    }
    return std::optional<std::string>(std::move(r.out));
}

Result<FileStat> Target::stat(const std::string& path) {
    std::string q = shell_quote(path);
    Command cmd;
    cmd.script = "[ -e " + q + " ] || [ -L " + q + " ] || exit " + std::to_string(k_absent) +
                 "; stat -c '%F|%a|%U|%G|%s' -- " + q + " && if [ -L " + q + " ]; then readlink -- " + q + "; fi";
    cmd.mutates = false;
    auto r = TRY(run(cmd));
    FileStat st;
    if (r.exit_code == k_absent) {
        return st;
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "cannot stat " + path + ": " + util::trim(r.err));
    }
    auto lines = util::split_lines(r.out);
    auto f = lines.empty() ? std::vector<std::string>() : util::split(lines[0], '|');
    if (f.size() != 5) {
        return make_error(ErrorCode::command, "unexpected stat output for " + path + ": " + r.out);
    }
    st.exists = true;
    st.is_dir = f[0] == "directory";
    st.is_symlink = f[0] == "symbolic link";
    st.mode = static_cast<uint32_t>(std::stoul(f[1], nullptr, 8));
    st.owner = f[2];
    st.group = f[3];
    st.size = std::stoull(f[4]);
    if (st.is_symlink && lines.size() > 1) {
        st.link_target = lines[1];
    }
    return st;
}

std::string atomic_write_script(const FileSpec& file) {
    // mktemp creates the file 0600, so content (maybe a secret) is never readable by others while
    // it is written; owner and mode are set before the rename makes it visible under its name.
    return "set -e; p=" + shell_quote(file.path) + "; d=$(dirname -- \"$p\"); mkdir -p -- \"$d\"; "
           "t=$(mktemp \"$d/.nodectl.XXXXXX\"); trap 'rm -f -- \"$t\"' EXIT; "
           "cat > \"$t\"; chown " + shell_quote(file.owner + ":" + file.group) + " \"$t\"; "
           "chmod " + util::octal(file.mode) + " \"$t\"; sync \"$t\"; mv -f -- \"$t\" \"$p\"; trap - EXIT";
}

Result<void> Target::upload(const std::string& local_path, const FileSpec& dest) {
    auto content = util::read_file(local_path);
    if (!content) {
        return make_error(ErrorCode::io, "cannot read " + local_path);
    }
    FileSpec f = dest;
    f.content = std::move(*content);
    return write_file(f);
}

Result<void> Target::write_file(const FileSpec& file) {
    Command cmd;
    cmd.script = atomic_write_script(file);
    cmd.input = file.content;
    TRY(run_checked(cmd, "writing " + file.path));
    return Ok{};
}

} // namespace nodectl

// File operations for every target, built on run(): a remote host and the local machine are
// handled by the same scripts, so they behave the same. Scripts use only POSIX sh and coreutils.
#include "nodectl/target.hpp"

#include "target/scripts.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

namespace nodectl {

namespace {

constexpr int k_absent = 100;  // exit code our scripts use for "no such file"

}  // namespace

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
    auto ran = run(cmd);
    if (!ran) {  // it did not run to its end: timed out, or the connection broke
        Error why = ran.error();
        why.message = what + ": " + why.message;
        return why;
    }
    auto r = std::move(*ran);
    if (r.exit_code != 0) {
        std::string detail = util::trim(r.err.empty() ? r.out : r.err);
        if (detail.size() > 2000) {
            detail = "..." + detail.substr(detail.size() - 2000);
        }
        return make_error(ErrorCode::command, what + " failed (exit " + std::to_string(r.exit_code) + ")" +
                                                  (detail.empty() ? "" : ": " + detail));
    }
    return r;
}

Result<std::optional<std::string>> Target::read_file(const std::string& path) {
    Command cmd;
    cmd.script =
        "[ -e " + shell_quote(path) + " ] || exit " + std::to_string(k_absent) + "; exec cat -- " + shell_quote(path);
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
    if (r.exit_code == k_absent) {
        return FileStat{};
    }
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "cannot stat " + path + ": " + util::trim(r.err));
    }
    return parse_stat_output(path, r.out);
}

Result<FileStat> parse_stat_output(const std::string& path, const std::string& out) {
    FileStat st;
    auto lines = util::split_lines(out);
    auto f = lines.empty() ? std::vector<std::string>() : util::split(lines[0], '|');
    auto mode = f.size() == 5 ? util::parse_uint(f[1], {.max = 07777, .base = 8}) : std::nullopt;
    auto size = f.size() == 5 ? util::parse_uint(f[4]) : std::nullopt;
    if (!mode || !size) {
        return make_error(ErrorCode::command,
                          "unexpected stat output for " + path + ": " + util::printable(out.substr(0, 200)));
    }
    st.exists = true;
    st.is_dir = f[0] == "directory";
    st.is_symlink = f[0] == "symbolic link";
    st.mode = static_cast<uint32_t>(*mode);
    st.owner = f[2];
    st.group = f[3];
    st.size = *size;
    if (st.is_symlink && lines.size() > 1) {
        st.link_target = lines[1];
    }
    return st;
}

std::string enter_file_directory_script(const std::string& path, bool create) {
    // The directory's last component must not be a symbolic link (a user who owns its parent could
    // point it at /root/.ssh), checked again after the cd in case it was swapped meanwhile. From
    // then on the script works in the current directory, an inode nobody can swap.
    return "p=" + shell_quote(path) + "; d=$(dirname -- \"$p\"); n=$(basename -- \"$p\"); " +
           std::string(create ? "mkdir -p -- \"$d\"; " : "") +
           "if [ -L \"$d\" ]; then echo \"refusing $p: $d is a symbolic link\" >&2; exit 1; fi; "
           "cd -P -- \"$d\"; "
           "if [ \"$(stat -c %d:%i ..)\" != \"$(stat -L -c %d:%i -- \"$(dirname -- \"$d\")\")\" ]; then "
           "echo \"refusing $p: $d was replaced while it was opened\" >&2; exit 1; fi; "
           // du: the directory's owner uid and gid; dm: its mode; 'safe' when only root can change
           // its entries
           "set -- $(stat -c '%u %g %a' .); du=$1; dg=$2; dm=$3; "
           "if [ \"$du\" = 0 ] && [ $((0$dm & 022)) -eq 0 ]; then safe=1; else safe=; fi; "
           "if [ $((0$dm & 022)) -ne 0 ]; then "
           "echo \"refusing $p: $d is writable by group or others\" >&2; exit 1; fi; ";
}

std::string atomic_write_script(const FileSpec& file) {
    // mktemp creates the file 0600, so content (maybe a secret) is never readable by others while
    // it is written; owner and mode are set before the rename makes it visible under its name.
    // In a directory a user owns, that user can swap the temporary file for a symbolic link at any
    // moment: there the file is written by a process running as that user, and root only changes
    // its owner without following links (chown -h) and renames it, which follows nothing either.
    std::string owner = shell_quote(file.owner + ":" + file.group);
    std::string write_tmp = "set -e; t=$(mktemp ./.nodectl.XXXXXX); trap 'rm -f -- \"$t\"' EXIT; cat > \"$t\"; chmod " +
                            util::octal(file.mode) + " -- \"$t\"; sync -- \"$t\"; trap - EXIT; echo \"$t\"";
    return "set -e; " + enter_file_directory_script(file.path, true) +
           "if [ -n \"$safe\" ]; then "
           "t=$(mktemp ./.nodectl.XXXXXX); trap 'rm -f -- \"$t\"' EXIT; cat > \"$t\"; chown " +
           owner +
           " -- \"$t\"; "
           "chmod " +
           util::octal(file.mode) +
           " -- \"$t\"; sync -- \"$t\"; "
           "else "
           "t=$(setpriv --reuid=\"$du\" --regid=\"$dg\" --clear-groups -- sh -c " +
           shell_quote(write_tmp) +
           "); "
           "case $t in ./.nodectl.[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9]) ;; "
           "*) echo \"writing $p as the owner of $d failed\" >&2; exit 1;; esac; "
           "trap 'rm -f -- \"$t\"' EXIT; chown -h " +
           owner +
           " -- \"$t\"; "
           "fi; mv -fT -- \"$t\" \"$n\"; trap - EXIT";
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

}  // namespace nodectl

// SshTarget::upload: a local file to the host over SFTP, then into place by the atomic-write script.
#include "target/link_ssh.hpp"
#include "target/scripts.hpp"
#include "target/ssh_target.hpp"
#include "util/strings.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <fcntl.h>

#include <fstream>
#include <vector>

namespace nodectl {

namespace {

constexpr const char* k_upload_prefix = ".nodectl-upload-";

// Partial uploads left in the login user's home by runs whose link broke (they could not remove
// them): a name of ours not written to for 10 minutes by the host's clock (`now`, the time of the
// file just created) belongs to no upload that still runs.
void remove_stale_uploads(sftp_session sftp, const std::string& home, std::uint64_t now) {
    sftp_dir dir = sftp_opendir(sftp, home.c_str());
    if (!dir) {
        return;
    }
    while (sftp_attributes a = sftp_readdir(sftp, dir)) {
        if (a->name && util::starts_with(a->name, k_upload_prefix) && a->type == SSH_FILEXFER_TYPE_REGULAR &&
            a->mtime + 600 < now) {
            sftp_unlink(sftp, (home + "/" + a->name).c_str());
        }
        sftp_attributes_free(a);
    }
    sftp_closedir(dir);
}

}  // namespace

Result<void> SshTarget::upload(const std::string& local_path, const FileSpec& dest) {
    std::ifstream in(local_path, std::ios::binary);
    if (!in) {
        return make_error(ErrorCode::io, "cannot read " + local_path);
    }
    std::string tmp;
    {
        // SFTP waits for each answer anew after every timeout of the session: a link on which
        // nothing moves for that long is cut (then every call below fails at once).
        link::Watchdog watchdog(m_session, m_options.connect_timeout);
        auto failed = [&](ErrorCode code, const std::string& what) {
            Error why = watchdog.fired() ? broken(link::stalled(m_session, m_name, m_options.connect_timeout))
                        : !ssh_is_connected(m_session) ? broken(link::lost(m_session, m_name))
                                                       : make_error(code, ssh_get_error(m_session));
            why.message = what + ": " + why.message;
            return why;
        };
        sftp_session sftp = sftp_new(m_session);
        if (!sftp || sftp_init(sftp) != SSH_OK) {
            if (sftp) {
                sftp_free(sftp);
            }
            return failed(ErrorCode::connect, "cannot start SFTP");
        }
        struct SftpGuard {
            sftp_session s;
            ~SftpGuard() { sftp_free(s); }
        } sg{sftp};
        // The login user's temporary upload name in the login user's home (never a shared
        // directory such as /tmp), a new file (O_EXCL) under a random name; root copies it into
        // place afterwards.
        char* home = sftp_canonicalize_path(sftp, ".");
        if (!home) {
            return failed(ErrorCode::command, "SFTP cannot find the home directory of " + m_user);
        }
        const std::string dir = home;
        ssh_string_free_char(home);
        tmp = dir + "/" + k_upload_prefix + util::random_hex(8);
        sftp_file f = sftp_open(sftp, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!f) {
            return failed(ErrorCode::command, "SFTP cannot create " + tmp);
        }
        if (sftp_attributes mine = sftp_fstat(f)) {
            remove_stale_uploads(sftp, dir, mine->mtime);
            sftp_attributes_free(mine);
        }
        std::vector<char> buf(1 << 16);
        std::uint64_t sent = 0;
        while (in) {
            watchdog.kick();
            in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
            auto n = static_cast<size_t>(in.gcount());
            if (n > 0 && sftp_write(f, buf.data(), n) != static_cast<ssize_t>(n)) {
                auto why = failed(ErrorCode::command, "SFTP write to " + tmp + " failed after " + std::to_string(sent) +
                                                          " bytes of " + local_path);
                sftp_close(f);
                sftp_unlink(sftp, tmp.c_str());
                return why;
            }
            sent += n;
        }
        watchdog.kick();
        if (sftp_close(f) != SSH_NO_ERROR) {  // the host's last word on the file
            auto why = failed(ErrorCode::command, "SFTP cannot close " + tmp + " after writing " + local_path);
            sftp_unlink(sftp, tmp.c_str());
            return why;
        }
    }
    // Copied (not moved) into place: the temporary file may be on another filesystem, and only
    // a rename within the destination's directory is atomic.
    Command mv;
    mv.script = "t=" + shell_quote(tmp) + "; trap 'rm -f -- \"$t\"' EXIT; (" + atomic_write_script(dest) + ") < \"$t\"";
    TRY(run_checked(mv, "moving the upload into " + dest.path));
    return Ok{};
}

}  // namespace nodectl

#include "modules/config_set/config_set.hpp"

#include "util/log.hpp"
#include "host/files.hpp"
#include "host/services.hpp"
#include "util/diff.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

#include <thread>

namespace nodectl {

namespace {

constexpr const char* k_originals = "/var/lib/nodectl/originals";
constexpr const char* k_rollbacks = "/var/lib/nodectl/rollback";
constexpr const char* k_applied = "/var/lib/nodectl/applied";

std::string dirname_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

Result<CommandResult> run_script(Target& target, const std::string& script, const std::string& what,
                                 std::chrono::seconds timeout = std::chrono::seconds(300)) {
    Command cmd;
    cmd.script = script;
    cmd.timeout = timeout;
    return target.run_checked(cmd, what);
}

}  // namespace

std::string original_path(const std::string& path) {
    return k_originals + path;
}

// Cancels the rollback timer: the transient systemd timer, or the fallback's whole process group.
std::string ApplyConfigSet::disarm_script() const {
    std::string pid = shell_quote(std::string(k_rollbacks) + "/" + state_name() + "/timer.pid");
    return host::units::stop({"nodectl-rollback-" + state_name() + ".timer"}, {.ignore_failure = true}).script() +
           "; if [ -s " + pid + " ]; then kill -- -$(cat " + pid + ") 2>/dev/null; rm -f " + pid + "; fi; true";
}

std::string ApplyConfigSet::state_name() const {
    std::string s = m_spec.id;
    for (auto& c : s) {
        c = c == '/' ? '-' : c;
    }
    return s;
}

Result<ApplyConfigSet::Work> ApplyConfigSet::files_to_change(Target& target) const {
    // One round trip: every file, (for a revert) what nodectl first found there, and the stamp.
    std::vector<std::string> paths;
    for (const auto& f : m_spec.files) {
        paths.push_back(f.path);
        if (!m_spec.enabled) {
            paths.push_back(original_path(f.path));
            paths.push_back(original_path(f.path) + ".absent");
        }
    }
    paths.push_back(stamp_path());
    auto found = TRY(host::read_files(target, paths));
    Work result;
    if (found.back()) {
        result.stamp = found.back()->content;
    }
    auto& out = result.files;
    std::string all;
    size_t at = 0;
    for (const auto& f : m_spec.files) {
        const auto& current = found[at++];
        FileWork w{&f, current ? std::optional<std::string>(current->content) : std::nullopt, std::nullopt, false};
        w.content_hidden =
            f.sensitive || !host::world_readable(f.mode) || (current && !host::world_readable(current->mode));
        if (!m_spec.enabled) {
            // Only what nodectl changed is put back; a file it never touched is left alone.
            const auto& original = found[at++];
            const auto& absent = found[at++];
            if (original) {
                w.wanted = original->content;
                w.has_original = true;
                w.content_hidden = w.content_hidden || !host::world_readable(original->mode);
            } else if (!absent) {
                continue;
            }
            if (w.current != w.wanted) {
                out.push_back(std::move(w));
            }
            continue;
        }
        if (f.edit) {
            if (!w.current) {
                result.missing_edits.push_back(f.path);  // its package is installed by an earlier step
                continue;
            }
            w.wanted = f.edit(*w.current);
        } else {
            w.wanted = f.content;
        }
        all += f.path + "\n" + util::sha256_hex(*w.wanted) + "\n";
        if (current && current->content == *w.wanted && current->mode == f.mode && current->owner == f.owner &&
            current->group == f.group) {
            continue;
        }
        out.push_back(std::move(w));
    }
    result.digest = util::sha256_hex(all + m_spec.activate);
    return result;
}

std::string ApplyConfigSet::stamp_path() const {
    return std::string(k_applied) + "/" + state_name();
}

bool ApplyConfigSet::activation_pending(const Work& work) const {
    if (!m_spec.enabled || m_spec.activate.empty()) {
        return false;
    }
    return !work.stamp || util::trim(*work.stamp) != work.digest;
}

Result<std::string> ApplyConfigSet::drift(Target& target) const {
    if (m_spec.drift.empty()) {
        return std::string();
    }
    Command cmd;
    cmd.script = m_spec.drift;
    cmd.mutates = false;
    auto r = TRY(target.run_checked(cmd, "reading the live state of " + m_spec.title));
    return util::trim(r.out);
}

Result<void> ApplyConfigSet::prepared(Target& target) {
    if (m_spec.prepare && !m_prepared) {
        TRY_VOID(m_spec.prepare(target, m_spec));
        m_prepared = true;
    }
    return Ok{};
}

Result<Plan> ApplyConfigSet::probe(Target& target) {
    TRY_VOID(prepared(target));
    Plan plan;
    auto work = TRY(files_to_change(target));
    for (const auto& w : work.files) {
        const auto& path = w.file->path;
        if (!w.wanted) {
            plan.changes.push_back({"remove " + path + " (nodectl created it)", ""});
        } else if (!m_spec.enabled) {
            std::string summary = "restore " + path + " as nodectl found it";
            plan.changes.push_back(w.content_hidden
                                       ? Change{summary + " (content hidden)", ""}
                                       : Change{summary, util::unified_diff(w.current.value_or(""), *w.wanted, path,
                                                                            path + " (original)")});
        } else if (w.current && *w.current == *w.wanted) {
            plan.changes.push_back(
                {path + ": mode/owner -> " + util::octal(w.file->mode) + " " + w.file->owner + ":" + w.file->group,
                 ""});
        } else if (w.content_hidden) {
            plan.changes.push_back({(w.current ? "update " : "create ") + path +
                                        (w.file->sensitive ? " (holds a secret: content hidden)" : " (content hidden)"),
                                    ""});
        } else {
            plan.changes.push_back({(w.current ? "update " : "create ") + path,
                                    util::unified_diff(w.current.value_or(""), *w.wanted,
                                                       w.current ? path : "/dev/null", path + " (planned)")});
        }
    }
    for (const auto& path : work.missing_edits) {
        plan.changes.push_back({"edit " + path + " once it exists (its package is installed first)", ""});
    }
    if (work.files.empty() && activation_pending(work)) {
        plan.changes.push_back({"activate " + m_spec.title + " (its files were written but not yet made live)", ""});
    }
    if (m_spec.enabled) {
        for (const auto& line : util::split_lines(TRY(drift(target)))) {
            if (!line.empty()) {
                plan.changes.push_back({line, ""});
            }
        }
    }
    return plan;
}

Result<void> ApplyConfigSet::restore(Target& target, const std::string& why) const {
    std::string dir = std::string(k_rollbacks) + "/" + state_name();
    auto r = run_script(target, "sh " + shell_quote(dir + "/restore.sh") + " && { " + disarm_script() + "; }",
                        "restoring the previous " + m_spec.title, std::chrono::seconds(120));
    if (!r) {
        return make_error(ErrorCode::command,
                          why + "; restoring the previous files failed too (" + r.error().message + ")" +
                              (m_spec.guard ? "; the rollback timer on the host restores them within " +
                                                  std::to_string(m_spec.rollback_after.count()) + " s"
                                            : ""));
    }
    return make_error(ErrorCode::command, why + "; the previous files are back in place and active");
}

// The script that copies every file (and glob) of this set into the rollback directory, and the
// script that copies them back and re-activates them.
std::pair<std::string, std::string> ApplyConfigSet::backup_and_restore_scripts() const {
    std::string qdir = shell_quote(std::string(k_rollbacks) + "/" + state_name());
    std::string backup = "set -e\nrm -rf " + qdir + "\nmkdir -p " + qdir + "/files\nchmod 700 " + qdir + "\n";
    std::string restore_sh =
        "#!/bin/sh\n# nodectl: puts back the files " + m_spec.id + " found before its last apply.\n";
    for (size_t i = 0; i < m_spec.files.size(); ++i) {
        auto p = shell_quote(m_spec.files[i].path);
        auto saved = qdir + "/files/" + std::to_string(i);
        backup += "if [ -e " + p + " ]; then cp -a " + p + " " + saved + "; fi\n";
        restore_sh += "if [ -e " + saved + " ]; then cp -a " + saved + " " + p + "; else rm -f " + p + "; fi\n";
    }
    for (size_t i = 0; i < m_spec.also_back_up.size(); ++i) {
        const auto& glob = m_spec.also_back_up[i];  // a trusted pattern from the module, unquoted on purpose
        auto saved = qdir + "/glob" + std::to_string(i);
        backup += "mkdir -p " + saved + "\nfor f in " + glob + "; do if [ -e \"$f\" ]; then cp -a \"$f\" " + saved +
                  "/; fi; done\n";
        restore_sh += "rm -f " + glob + "\ncp -a " + saved + "/. " + shell_quote(dirname_of(glob)) + "/\n";
    }
    restore_sh += m_spec.restore_activate + "\nlogger -t nodectl " +
                  shell_quote("restored the previous " + m_spec.title) + " 2>/dev/null || true\n";
    return {backup, restore_sh};
}

// Arms the host-side rollback: a transient systemd timer, or a detached `sleep` without systemd.
Result<void> ApplyConfigSet::arm_rollback(Target& target) const {
    std::string dir = std::string(k_rollbacks) + "/" + state_name();
    std::string unit = "nodectl-rollback-" + state_name();
    std::string secs = std::to_string(m_spec.rollback_after.count());
    std::string restore_sh = shell_quote(dir + "/restore.sh");
    std::string pid = shell_quote(dir + "/timer.pid");
    // The fallback's script is itself one quoted word of `sh -c`.
    std::string sleeper = "echo $$ > " + pid + "; sleep " + secs + " && sh " + restore_sh;
    TRY(run_script(
        target,
        "if [ -d /run/systemd/system ]; then\n"
        "  " +
            host::units::stop({unit + ".timer"}, {.ignore_failure = true}).script() + "; " +
            host::units::reset_failed({unit + ".service", unit + ".timer"}, {.ignore_failure = true}).script() +
            "\n"
            "  systemd-run --quiet " +
            shell_quote("--unit=" + unit) + " --on-active=" + secs + " /bin/sh " + restore_sh +
            "\n"
            "else\n"
            "  setsid sh -c " +
            shell_quote(sleeper) +
            " </dev/null >/dev/null 2>&1 &\n"
            // Disarming kills the group named in the pid file: arming is done only once it
            // is there (a loaded host can take more than a second to start the shell).
            "  i=0; while [ ! -s " +
            pid +
            " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done\n"
            "  [ -s " +
            pid +
            " ] || { echo 'the fallback rollback timer did not start within 10 s' >&2; exit 1; }\n"
            "fi",
        "arming the rollback timer"));
    log::info(target.name(),
              "{}: rollback armed, the host restores the previous files in {} s unless a fresh login succeeds",
              m_spec.title, secs);
    return Ok{};
}

// A second, independent login (as the admin user when this change ends root's SSH access).
Result<void> ApplyConfigSet::prove_fresh_login(Target& target) const {
    std::string as = target.login_user() == "root" ? m_spec.fresh_login_as_when_root : "";
    log::info(target.name(), "{}: checking that a fresh login{} still works", m_spec.title,
              as.empty() ? "" : " as " + as);
    // sshd re-executes itself on reload: for a moment nothing listens. Retry briefly.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    auto fresh = target.check_fresh_login(as);
    while (!fresh && fresh.error().code == ErrorCode::connect && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        fresh = target.check_fresh_login(as);
    }
    if (!fresh) {
        return make_error(ErrorCode::command, "a fresh login" + (as.empty() ? "" : " as " + as) +
                                                  " failed after activating the new " + m_spec.title + " (" +
                                                  fresh.error().message + ")");
    }
    if (*fresh == AccessCheck::not_applicable) {
        log::info(target.name(), "{}: no remote login to re-check on this target", m_spec.title);
    }
    return Ok{};
}

Result<void> ApplyConfigSet::apply(Target& target, const Plan&) {
    TRY_VOID(prepared(target));
    auto all_work = TRY(files_to_change(target));
    const auto& work = all_work.files;
    if (!all_work.missing_edits.empty()) {
        return make_error(ErrorCode::command,
                          all_work.missing_edits.front() +
                              " does not exist on the host, so it cannot be edited (is its package installed?)");
    }
    std::string dir = std::string(k_rollbacks) + "/" + state_name();
    std::string qdir = shell_quote(dir);

    // 1. Back up everything this set may touch, and write the script that puts it back.
    if (m_spec.enabled) {
        auto [backup, restore_sh] = backup_and_restore_scripts();
        TRY(run_script(target, backup, "backing up " + m_spec.title));
        TRY_VOID(target.write_file({dir + "/restore.sh", restore_sh, 0700, "root", "root"}));
    }

    // 2. Remember what nodectl found, once, so that turning the group off can put it back.
    std::string originals;
    for (const auto& w : work) {
        auto p = shell_quote(w.file->path);
        auto o = shell_quote(original_path(w.file->path));
        if (m_spec.enabled) {
            originals += "if [ ! -e " + o + " ] && [ ! -e " + o + ".absent ]; then mkdir -p " +
                         shell_quote(dirname_of(original_path(w.file->path))) + " && if [ -e " + p + " ]; then cp -a " +
                         p + " " + o + "; else : > " + o + ".absent; fi; fi\n";
        } else {
            originals += "rm -f " + o + " " + o + ".absent\n";
        }
    }

    if (m_spec.enabled && !originals.empty()) {
        TRY(run_script(target, originals, "recording the original files"));
    }

    // 3. Write (or restore, or remove) the files.
    if (m_spec.enabled && !m_spec.pre_write.empty()) {
        TRY(run_script(target, m_spec.pre_write, "preparing for " + m_spec.title));
    }
    for (const auto& w : work) {
        if (!w.wanted) {
            TRY_VOID(host::remove_file(target, w.file->path));
        } else if (w.has_original) {
            // The saved original keeps its own mode and owner (cp -a), whatever the group sets.
            auto p = shell_quote(w.file->path);
            TRY(run_script(target,
                           "cp -a " + shell_quote(original_path(w.file->path)) + " " + p + ".nodectl-tmp && mv -f " +
                               p + ".nodectl-tmp " + p,
                           "restoring " + w.file->path));
        } else {
            TRY_VOID(target.write_file({w.file->path, *w.wanted, w.file->mode, w.file->owner, w.file->group}));
        }
    }
    if (!m_spec.enabled) {
        if (!work.empty() && !m_spec.deactivate.empty()) {
            TRY(run_script(target, m_spec.deactivate, "deactivating " + m_spec.title));
        }
        TRY(run_script(target, originals + "rm -f " + shell_quote(stamp_path()), "forgetting the original files"));
        return Ok{};
    }

    // 4. Prepare and validate before anything goes live.
    if (!m_spec.post_write.empty()) {
        if (auto r = run_script(target, m_spec.post_write, "preparing " + m_spec.title); !r) {
            return restore(target, r.error().message);
        }
    }
    if (!m_spec.validate.empty()) {
        if (auto r = run_script(target, m_spec.validate, "validating " + m_spec.title); !r) {
            return restore(target, "the new " + m_spec.title + " is invalid: " + r.error().message);
        }
    }

    // 5. Arm the rollback, activate, and prove that a new login still works.
    if (m_spec.guard) {
        TRY_VOID(arm_rollback(target));
    }
    if (!m_spec.activate.empty()) {
        if (auto r = run_script(target, m_spec.activate, "activating " + m_spec.title); !r) {
            return restore(target, r.error().message);
        }
    }
    // 6. Keep the change: cancel the rollback, drop the backup, record the activation.
    std::string keep = "rm -rf " + qdir + "; mkdir -p " + std::string(k_applied) + " && echo " + all_work.digest +
                       " > " + shell_quote(stamp_path());
    if (m_spec.guard) {
        if (auto ok = prove_fresh_login(target); !ok) {
            return restore(target, ok.error().message);
        }
        keep = disarm_script() + "; " + keep;
    }
    TRY(run_script(target, keep, "keeping the new " + m_spec.title));
    return Ok{};
}

Result<std::vector<ControlResult>> ApplyConfigSet::audit(Target& target) {
    TRY_VOID(prepared(target));
    auto out = TRY(Step::audit(target));
    out.front().id = m_spec.id;
    out.front().title = m_spec.enabled ? m_spec.title + ": files and live state as the profile says"
                                       : m_spec.title + ": off in the profile, nodectl's changes reverted";
    if (!m_spec.enabled || m_spec.controls.empty()) {
        return out;
    }
    auto controls = TRY(host::evaluate(target, m_spec.controls_prelude, m_spec.controls));
    out.insert(out.end(), controls.begin(), controls.end());
    return out;
}

}  // namespace nodectl

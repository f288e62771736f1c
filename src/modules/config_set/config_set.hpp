// ApplyConfigSet: the one step shape every hardening group uses. A set of configuration files
// (whole content, or an edit of the file found on the host), plus the live state they govern:
//
//   probe:  file differences + `drift` (live-state differences the files alone do not show)
//   apply:  back up -> write files -> post_write -> validate -> [arm rollback] -> activate
//           -> [prove a fresh login] -> disarm; any failure puts the previous files back and
//           activates them again (restore_activate)
//   revert: with enabled == false, every file goes back to what nodectl first found there
//           (kept under /var/lib/nodectl/originals) or is removed, then `deactivate` runs
//   audit:  the group's controls, in one round trip
// `prepare`, when set, runs once on the host before any of these: it fills in the parts of the
// spec that depend on the host (containerd's cgroup driver, the node's architecture). It reads
// only facts the run itself does not change: over SSH it runs when the run's probes are fetched
// ahead (target/prefetch_target.hpp), before the steps ahead of it have made their changes.
// After a successful activation a stamp (/var/lib/nodectl/applied/<id>) records a digest of the
// files, so files written by a run that died before activating them are still activated later.
#pragma once

#include "host/controls.hpp"
#include "nodectl/step.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace nodectl {

struct ConfigSetFile {
    std::string path;
    std::string content;
    // When set, the wanted content is derived from the file on the host (which must exist).
    std::function<std::string(const std::string& current)> edit;
    uint32_t mode = 0644;
    std::string owner = "root";
    std::string group = "root";
    bool sensitive = false;  // holds a secret: plans say that it changes, never show the content
};

struct ConfigSetSpec {
    std::string id;  // "harden/sshd"
    std::string title;  // "sshd hardening"
    bool enabled = true;
    std::vector<ConfigSetFile> files;
    std::string drift;  // sh: one line per live difference; must print nothing once applied
    std::string pre_write;  // sh: before the files are written (e.g. create the user owning them)
    std::string post_write;  // sh: after the files are written (e.g. host keys)
    std::string validate;  // sh: must succeed before anything is activated
    std::string activate;  // sh: make the files live (reload, load)
    std::string restore_activate;  // sh: make the restored previous files live again
    std::string deactivate;  // sh: after a revert (enabled == false)
    std::vector<std::string> also_back_up;  // globs `post_write` may change, e.g. /etc/ssh/ssh_host_*
    // Guarded changes (sshd, firewall): a rollback timer is armed on the host before activation
    // and cancelled only after a fresh login succeeded.
    bool guard = false;
    std::string fresh_login_as_when_root;  // root loses SSH access by this change: prove this user instead
    std::chrono::seconds rollback_after{120};
    std::string controls_prelude;
    std::vector<host::Control> controls;
    std::function<Result<void>(Target&, ConfigSetSpec&)> prepare;
};

class ApplyConfigSet final : public Step {
public:
    explicit ApplyConfigSet(ConfigSetSpec spec) : m_spec(std::move(spec)) {}
    std::string id() const override { return m_spec.id; }
    std::string title() const override { return m_spec.title; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;
    Result<std::vector<ControlResult>> audit(Target& target) override;
    const ConfigSetSpec& spec() const { return m_spec; }

private:
    Result<void> prepared(Target& target);
    struct FileWork {
        const ConfigSetFile* file;
        std::optional<std::string> current;
        std::optional<std::string> wanted;  // nullopt: the file must not exist
        bool has_original = false;
        // A secret, or a file others may not read (now, as nodectl found it, or as written): its
        // content is never shown in a plan.
        bool content_hidden = false;
    };
    struct Work {
        std::vector<FileWork> files;  // the ones that differ
        std::string digest;  // of every file's wanted content: what the stamp records
        std::vector<std::string> missing_edits;  // files to edit that do not exist (yet)
        std::optional<std::string> stamp;  // the activation stamp found on the host
    };
    Result<Work> files_to_change(Target& target) const;
    bool activation_pending(const Work& work) const;
    Result<std::string> drift(Target& target) const;
    Result<void> restore(Target& target, const std::string& why) const;
    std::string state_name() const;
    std::string stamp_path() const;
    std::string disarm_script() const;
    std::pair<std::string, std::string> backup_and_restore_scripts() const;
    Result<void> arm_rollback(Target& target) const;
    Result<void> prove_fresh_login(Target& target) const;

    ConfigSetSpec m_spec;
    bool m_prepared = false;
};

// Where nodectl keeps the first content it found at `path`, to put it back on revert.
std::string original_path(const std::string& path);

}  // namespace nodectl

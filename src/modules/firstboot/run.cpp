// `nodectl firstboot`: once per machine, find the configuration, check it (signature, profile,
// bundle) before anything changes, then run the same steps as `apply --local` through the same
// runner and journal, keeping firstboot.json current after every step.
#include "config/profile_text.hpp"
#include "core/cache.hpp"
#include "core/journal.hpp"
#include "core/log.hpp"
#include "core/runner.hpp"
#include "modules/bundle/use.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

namespace nodectl::firstboot {

namespace {

std::string machine_hostname() {
    char name[256] = "local";
    gethostname(name, sizeof name - 1);
    return name;
}

// Held for the whole run (and by a second `nodectl firstboot`, say cloud-init's runcmd while the
// unit runs, which waits and then finds the machine done). The kernel drops it if we die.
Result<util::FileLock> lock_firstboot(int wait_seconds) {
    std::error_code ec;
    std::filesystem::create_directories(k_state_dir, ec);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    bool told = false;
    while (true) {
        std::string why;
        auto lock = util::FileLock::take(k_lock_file, 0600, util::FileLock::Wait::no, &why);
        if (lock) {
            return std::move(*lock);
        }
        if (errno != EWOULDBLOCK) {
            return make_error(ErrorCode::io, why);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return make_error(ErrorCode::locked,
                              "another nodectl firstboot still runs after " + std::to_string(wait_seconds) + " s");
        }
        if (!told) {
            log::info("firstboot", "another nodectl firstboot is running; waiting for it to finish");
            told = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

std::string result_name(StepStatus s) {
    return std::string(status_name(s));
}

void fill_steps(Attempt& a, const HostReport& r) {
    a.steps.clear();
    for (const auto& s : r.steps) {
        a.steps.push_back({s.id, s.title, result_name(s.status), s.seconds, s.error});
    }
    a.resumed_run = r.resumed_run;
    a.seconds = r.seconds;
}

// A private 0700 directory, removed with everything in it when the last copy goes.
class PrivateDir {
public:
    static Result<std::shared_ptr<PrivateDir>> make(const std::string& parent) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        std::string tmpl = parent + "/firstboot-pinned.XXXXXX";
        if (!::mkdtemp(tmpl.data())) {
            return errno_error("mkdtemp in " + parent);
        }
        return std::shared_ptr<PrivateDir>(new PrivateDir(tmpl));
    }
    ~PrivateDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    const std::string& path() const { return m_path; }

private:
    explicit PrivateDir(std::string path) : m_path(std::move(path)) {}
    std::string m_path;
};

// Every `source` file must carry its sha256 pin; it is read once, checked, and used from a
// private copy, so the bytes applied are the bytes that matched the signed pin.
Result<Profile> use_pinned_sources(const Profile& profile, const std::string& shown, const std::string& parent,
                                   Checked& out) {
    const auto* files = profile.table().at_path("base.files").as_array();
    if (!files) {
        return profile;
    }
    toml::table t = profile.table();
    auto* copy = t.at_path("base.files").as_array();
    std::shared_ptr<PrivateDir> dir;
    for (size_t i = 0; i < files->size(); ++i) {
        const auto* ft = (*files)[i].as_table();
        auto* src = ft ? ft->get_as<std::string>("source") : nullptr;
        if (!src) {
            continue;
        }
        auto* pin = ft->get_as<std::string>("sha256");
        if (!pin) {
            return make_error(ErrorCode::config, shown + ": [[base.files]] " + src->get() +
                                                     " has no sha256 pin, and the signature covers only what the config "
                                                     "pins; add sha256 = \"<sha256 of the file>\"");
        }
        auto data = util::read_file(src->get());
        if (!data) {
            return make_error(ErrorCode::config, src->get() + ": " + std::strerror(errno));
        }
        if (auto got = util::sha256_hex(*data); got != pin->get()) {
            return make_error(ErrorCode::config, src->get() + " has sha256 " + got + ", not the " + pin->get() +
                                                     " the signed config pins");
        }
        if (!dir) {
            dir = TRY(PrivateDir::make(parent));
            out.pinned = dir;
        }
        std::string local = dir->path() + "/" + std::to_string(i) + "-" + pin->get().substr(0, 16);
        if (auto why = util::write_file_atomic(local, *data, 0600); !why.empty()) {
            return make_error(ErrorCode::io, why);
        }
        *(*copy)[i].as_table()->get_as<std::string>("source") = local;
    }
    return Profile(std::move(t), profile.files(), profile.digest());
}

// After a power cut dpkg may be half-way through; apt refuses to work until it is finished.
void repair_dpkg() {
    std::error_code ec;
    if (std::filesystem::is_empty("/var/lib/dpkg/updates", ec) || ec) {
        return;
    }
    log::info("firstboot", "dpkg was interrupted: running dpkg --configure -a");
    auto r = run_process({"sh", "-c", std::string(k_script_prologue) + "dpkg --configure -a"}, "", std::chrono::seconds(1800));
    if (!r || r->exit_code != 0) {
        log::warn("firstboot", "dpkg --configure -a failed: {}", r ? util::trim(r->err) : r.error().message);
    }
}

// --dry-run: the same discovery and checks, then a plan; no status, no journal, no report, and a
// stick is only read.
int dry_run(const RunOptions& options) {
    if (auto done = util::read_file(k_done_file)) {
        std::cout << "firstboot: this machine was provisioned already (" << util::trim(*done)
                  << "); a real run would do nothing. The plan below is what --force would do.\n";
    }
    DiscoverOptions d;
    d.config = options.config;
    d.cmdline_file = options.cmdline_file;
    auto found = discover(d);
    if (!found) {
        std::cerr << "nodectl firstboot: " << found.error().message << "\n";
        return k_exit_bad_input;
    }
    Source src = *found;
    struct Release {
        Source& s;
        ~Release() { release_stick(s); }
    } release{src};
    std::cout << "configuration: " << src.shown << " (from " << src.kind << ")\n";
    Status scratch;
    CheckOptions co;
    co.bundle = options.bundle;
    auto checked = check_input(src, co, scratch);
    if (!checked) {
        std::cerr << "nodectl firstboot: " << checked.error().message << "\n";
        return k_exit_bad_input;
    }
    std::cout << "signature: " << scratch.signature << "\n";
    const Profile* profile = &*checked->profile;
    std::optional<bundle::Opened>& opened = checked->bundle;
    if (opened) {
        std::cout << "bundle: " << scratch.bundle << " (verified)\n";
    }
    HostSpec h;
    h.name = machine_hostname();
    h.address = "local";
    h.local = true;
    ModuleContext mctx{*profile, h};
    StepList steps = bundle::use_on_host(opened ? &*opened : nullptr, mctx);
    auto built = build_steps(mctx);
    if (!built) {
        std::cerr << built.error().message << "\n";
        return k_exit_bad_input;
    }
    for (auto& st : *built) {
        steps.push_back(std::move(st));
    }
    nodectl::RunOptions ro;
    ro.mode = RunMode::plan;
    LocalTarget target(h.name);
    auto report = run_steps(target, steps, ro);
    for (const auto& st : report.steps) {
        std::cout << "  " << status_name(st.status) << "  " << st.title << "\n";
        for (const auto& c : st.plan.changes) {
            std::cout << "      " << c.summary << "\n";
        }
        if (!st.error.empty()) {
            std::cout << "      " << st.error << "\n";
        }
    }
    std::cout << "dry run: nothing was changed\n";
    return report.ok ? k_exit_done : k_exit_step_failed;
}

} // namespace

Result<Checked> check_input(const Source& src, const CheckOptions& options, Status& status) {
    const std::string& bundle_override = options.bundle;
    Checked out;
    auto bytes = TRY(read_config(src));
    auto key = util::read_file(options.trust_key);
    status.signature_required = key.has_value();
    if (key) {
        if (!bytes.signature) {
            return make_error(ErrorCode::config, "a signed config is required (" + options.trust_key +
                                                     " is installed) and " + src.shown + ".sig does not exist; sign it "
                                                     "with `nodectl firstboot sign --key KEY " + k_stick_config + "`");
        }
        if (auto v = verify_signature(*key, bytes.config, *bytes.signature); !v) {
            return make_error(ErrorCode::config, src.shown + ".sig: " + v.error().message + " (" + options.trust_key + ")");
        }
        status.signature = "verified with " + options.trust_key;
    } else {
        status.signature = "not required";
    }
    auto profile = load_profile_text(src.config, bytes.config);
    if (!profile) {
        return make_error(ErrorCode::config, "the profile has errors:\n" + profile.error().message);
    }
    if (status.signature_required && profile->files().size() > 1) {
        return make_error(ErrorCode::config, src.shown + " uses extends/include, which its signature does not cover; "
                                                         "sign one self-contained file");
    }
    if (status.signature_required) {
        out.profile = TRY(use_pinned_sources(*profile, src.shown, options.private_parent, out));
    } else {
        out.profile = std::move(*profile);
    }

    std::string bundle_file = !bundle_override.empty() ? bundle_override : src.bundle;
    std::string shown = !bundle_override.empty() ? bundle_override : (src.bundle_shown.empty() ? src.bundle : src.bundle_shown);
    std::string pin = out.profile->section("firstboot").str("bundle_sha256");
    if (bundle_file.empty()) {
        if (!pin.empty()) {
            return make_error(ErrorCode::config, src.shown + " pins the bundle " + pin.substr(0, 16) +
                                                     "…, and there is none (bundle/*.bundle on the stick, or --bundle)");
        }
        return out;
    }
    status.bundle = shown;
    if (status.signature_required && pin.empty()) {
        return make_error(ErrorCode::config, "the bundle " + shown + " is refused: the signed config pins no bundle "
                                             "(firstboot.bundle_sha256; `nodectl firstboot sign --bundle` writes it)");
    }
    log::info("firstboot", "verifying the bundle {}", shown);
    auto refused = [&](const std::string& why) {
        return make_error(ErrorCode::config, "the bundle " + shown + " is refused: " + why);
    };
    auto pinned = [&](const bundle::Manifest& m) {
        return pin.empty() || m.digest == pin;
    };
    // The pin is checked before anything is unpacked, and again on what open() unpacked (it
    // reads the file again).
    auto v = bundle::verify(bundle_file);
    if (!v) {
        return refused(v.error().message);
    }
    if (!pinned(*v)) {
        return refused("its manifest has sha256 " + v->digest + "; the config pins " + pin);
    }
    auto b = bundle::open(bundle_file);
    if (!b) {
        return refused(b.error().message);
    }
    if (!pinned(b->manifest)) {
        return refused("its manifest has sha256 " + b->manifest.digest + "; the config pins " + pin);
    }
    out.bundle = std::move(*b);
    status.bundle_digest = out.bundle->manifest.digest;
    return out;
}

int run(const RunOptions& options) {
    if (geteuid() != 0) {
        std::cerr << "nodectl firstboot: must run as root\n";
        return k_exit_bad_input;
    }
    // The bundle unpacks under the cache; a unit has no HOME.
    if (!std::getenv("NODECTL_CACHE_DIR") && !std::getenv("HOME")) {
        setenv("NODECTL_CACHE_DIR", "/var/cache/nodectl", 1);
    }
    if (options.dry_run) {
        return dry_run(options);
    }
    auto lock = lock_firstboot(options.lock_wait_seconds);
    if (!lock) {
        std::cerr << "nodectl firstboot: " << lock.error().message << "\n";
        return k_exit_step_failed;
    }

    // Once per machine: a finished machine does not even look for sticks or configs.
    if (auto done = util::read_file(k_done_file); done && !options.force) {
        std::cout << "firstboot: this machine was provisioned already (" << util::trim(*done) << ", " << k_done_file
                  << "); nothing to do. Any config or stick found now is ignored; --force runs again.\n";
        return k_exit_done;
    }
    if (options.force) {
        ::unlink(k_done_file);
    }

    auto previous = read_status();
    Status status;
    if (previous && *previous) {
        status = **previous;  // keep the earlier attempts: the report shows the whole story
    }
    bool was_running = status.state == "running";
    if (status.started.empty() || options.force) {
        status = Status{};
        status.started = util::utc_now();
    }
    status.state = "running";
    status.error.clear();
    status.finished.clear();
    // What this attempt finds is its own: nothing of an earlier attempt's source carries over.
    status.source.clear();
    status.config.clear();
    status.bundle.clear();
    status.bundle_digest.clear();
    status.profile_digest.clear();
    status.signature.clear();
    status.signature_required = false;
    status.pid = static_cast<long>(getpid());
    const auto attempt_t0 = std::chrono::steady_clock::now();
    auto attempt_seconds = [&] {
        return util::seconds_since(attempt_t0);
    };
    Attempt attempt;
    attempt.started = util::utc_now();
    attempt.run_id = new_run_id();
    status.attempts.push_back(attempt);
    const std::string host = machine_hostname();

    auto save = [&] {
        if (auto w = write_status(status); !w) {
            log::error("firstboot", "{}", w.error().message);
        }
    };
    save();

    Source src;
    // Bad input: said on the console and in the status, and nothing on the machine changed.
    auto refuse = [&](const std::string& why) {
        status.state = "failed";
        status.error = why;
        status.finished = util::utc_now();
        status.attempts.back().finished = status.finished;
        status.attempts.back().seconds = attempt_seconds();
        status.attempts.back().error = "refused: " + why;
        save();
        auto text = status.report_text(host);
        if (auto w = write_back_report(src, text, status.to_json()); !w) {
            log::warn("firstboot", "{}", w.error().message);
        }
        release_stick(src);
        std::cerr << "nodectl firstboot: " << why << "\nnothing was changed\n";
        std::cout << text;
        return k_exit_bad_input;
    };

    DiscoverOptions d;
    d.config = options.config;
    d.cmdline_file = options.cmdline_file;
    auto found = discover(d);
    if (!found) {
        return refuse(found.error().message);
    }
    src = *found;
    status.source = src.kind;
    status.config = src.shown;
    log::info("firstboot", "configuration: {} (from {})", src.shown, src.kind);

    CheckOptions co;
    co.bundle = options.bundle;
    auto checked = check_input(src, co, status);
    if (!checked) {
        return refuse(checked.error().message);
    }
    const Profile* profile = &*checked->profile;
    std::optional<bundle::Opened>& opened = checked->bundle;
    status.profile_digest = profile->digest();

    HostSpec h;
    h.name = host;
    h.address = "local";
    h.local = true;
    ModuleContext mctx{*profile, h};
    StepList steps = bundle::use_on_host(opened ? &*opened : nullptr, mctx);
    auto built = build_steps(mctx);
    if (!built) {
        return refuse("the profile has errors:\n" + built.error().message);
    }
    for (auto& s : *built) {
        steps.push_back(std::move(s));
    }
    save();

    if (was_running) {
        repair_dpkg();
    }

    nodectl::RunOptions ro;
    ro.mode = RunMode::apply;
    ro.parallel = 1;
    ro.run_timeout = std::chrono::seconds(options.run_timeout);
    // The bundle is part of what is applied: a different bundle must not resume a run.
    ro.profile_digest = profile->digest() + (opened ? "+" + opened->manifest.digest : "");
    ro.run_id = status.attempts.back().run_id;
    ro.operator_name = "firstboot@" + host;
    ro.on_step = [&](const HostReport& r) {
        fill_steps(status.attempts.back(), r);
        save();
    };
    LocalTarget target(host);
    log::info("firstboot", "applying {} ({} steps, run {})", src.shown, steps.size(), ro.run_id);
    HostReport report = run_steps(target, steps, ro);
    fill_steps(status.attempts.back(), report);
    status.finished = util::utc_now();
    status.attempts.back().finished = status.finished;
    status.attempts.back().seconds = attempt_seconds();  // discovery and bundle check included
    if (report.ok) {
        status.state = "done";
        std::string done = "done " + status.finished + " from " + src.kind + " " + src.shown + " profile " +
                           profile->digest().substr(0, 16);
        if (auto w = util::write_file_atomic(k_done_file, done + "\n", 0644); !w.empty()) {
            status.state = "failed";
            status.error = "writing " + std::string(k_done_file) + ": " + w;
        }
    } else {
        status.state = "failed";
        status.error = report.error.empty() ? "a step failed" : report.error;
        status.attempts.back().error = status.error;
    }
    save();
    auto text = status.report_text(host);
    if (auto w = write_back_report(src, text, status.to_json()); !w) {
        log::warn("firstboot", "{}", w.error().message);
    } else if (!src.stick_device.empty()) {
        log::info("firstboot", "report written to the stick ({}:{})", src.stick_device, k_stick_report);
    }
    release_stick(src);
    std::cout << text;
    if (status.state != "done") {
        std::cerr << "nodectl firstboot: failed: " << status.error << "\n";
        return k_exit_step_failed;
    }
    log::info("firstboot", "done: {} steps in {:.1f} s", report.steps.size(), report.seconds);
    return k_exit_done;
}

} // namespace nodectl::firstboot

// First boot: a new machine provisions itself, with nobody logged in.
//
// What it changes on a node: exactly what `nodectl apply --local` changes for the profile it
// finds (the same steps, the same runner, the same journal), plus its own state under
// /var/lib/nodectl: firstboot.json (the status, rewritten atomically after every step),
// firstboot.done (written once, when every step succeeded) and firstboot.lock.
//
// How it knows the work is already done: firstboot.done. While it exists `nodectl firstboot` does
// nothing (it does not even look for a USB stick), and nodectl-firstboot.service does not start
// (ConditionPathExists=!). A run that died (power cut, kill) left the journal in state
// "running"; the next run resumes it and reports the finished steps as "done (resumed)".
//
// How it is undone: it is not: provisioning is undone by applying another profile. `--force`
// runs again on a finished machine; removing firstboot.done re-arms the service.
//
// Where the configuration comes from, in this order (the first that exists wins, and the status
// says which): --config FILE; `nodectl.config=PATH` on the kernel command line; a filesystem
// labelled NODECTL (mounted read-only, holding nodectl.toml and optionally bundle/*.bundle);
// /etc/nodectl/profile.toml (written by cloud-init user-data, see `nodectl cloud-init render`).
// When a public key was baked in (`firstboot install --trust KEY.pub`), the configuration must
// carry a valid Ed25519 signature (CONFIG.sig) or nothing happens.
#pragma once

#include "modules/bundle/use.hpp"
#include "nodectl/config.hpp"
#include "nodectl/result.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::firstboot {

// Paths on the machine, relative to a root ("" for the running system, --root DIR for an image).
inline constexpr const char* k_state_dir = "/var/lib/nodectl";
inline constexpr const char* k_status_file = "/var/lib/nodectl/firstboot.json";
inline constexpr const char* k_done_file = "/var/lib/nodectl/firstboot.done";
inline constexpr const char* k_lock_file = "/var/lib/nodectl/firstboot.lock";
inline constexpr const char* k_cloud_init_profile = "/etc/nodectl/profile.toml";
inline constexpr const char* k_trust_key = "/etc/nodectl/firstboot-trust.pub";
inline constexpr const char* k_binary = "/usr/local/bin/nodectl";
inline constexpr const char* k_unit_name = "nodectl-firstboot.service";
inline constexpr const char* k_stick_label = "NODECTL";
inline constexpr const char* k_stick_config = "nodectl.toml";
inline constexpr const char* k_stick_report = "nodectl-report.txt";
inline constexpr const char* k_stick_mount = "/run/nodectl/stick";
inline constexpr const char* k_stick_copy = "/run/nodectl/stick-copy";  // mtools mode

// ---------------------------------------------------------------- status

struct StepStatusEntry {
    std::string id;
    std::string title;
    std::string result;  // "changed", "unchanged", "done (resumed)", "failed", "not run"
    double seconds = 0;
    std::string error;
};

struct Attempt {
    std::string started;
    std::string finished;
    std::string resumed_run;  // journal run id of the interrupted attempt this one resumed
    std::string run_id;
    std::vector<StepStatusEntry> steps;
    double seconds = 0;
    std::string error;  // why this attempt failed or was refused
};

// /var/lib/nodectl/firstboot.json. `state` is "running", "done" or "failed"; no file means
// "not started".
struct Status {
    std::string state;
    std::string source;  // "--config", "kernel command line", "USB stick", "cloud-init"
    std::string config;  // the profile's path as read (on the stick: the device and path)
    std::string bundle;  // the bundle used, if any
    std::string bundle_digest;
    std::string profile_digest;
    bool signature_required = false;
    std::string signature;  // "verified (KEY)", "not required"
    std::string started;  // of the first attempt
    std::string finished;
    std::string error;  // why it failed: the whole message (file:line:col for a profile)
    long pid = 0;  // of the process that wrote "running"
    std::vector<Attempt> attempts;

    std::string to_json() const;
    static Status from_json(const std::string& text);  // a default Status for junk
    std::string report_text(const std::string& host) const;  // human-readable, for the stick
};

Result<std::optional<Status>> read_status(const std::string& root = "");
Result<void> write_status(const Status& status, const std::string& root = "");

// What `nodectl status` answers: the file, and whether a process still works on it.
enum class State { not_started, running, interrupted, done, failed };
struct Observed {
    State state = State::not_started;
    std::optional<Status> status;
    std::string done_line;  // firstboot.done's content
};
Observed observe(const std::string& root = "");
std::string_view state_name(State s);

// ---------------------------------------------------------------- discovery

struct Source {
    std::string kind;  // see Status::source
    std::string config;  // a readable local path (on the stick: below the mount point)
    std::string shown;  // how the report names it (the stick: "LABEL=NODECTL (/dev/sdb1):nodectl.toml")
    std::string bundle;  // a bundle found with the config (stick: /proc/self/fd/N of bundle/*.bundle), else empty
    std::string bundle_shown;  // how the report names the bundle
    std::shared_ptr<int> bundle_fd;  // the stick's bundle, opened without following links
    std::string stick_device;  // set when the config is on the stick (mounted read-only)
    std::string stick_mode;  // "mount", or "mtools" when the kernel cannot mount it (copied out)
    std::string stick_root;  // where the stick's files are (tests set it; else from stick_mode)
};
// Where the stick's files are: the mount point, or the mtools copy.
std::string stick_dir(const Source& source);

// The configuration's bytes and its signature's, each read once (on the stick: relative to the
// stick's directory, never through a link, regular files only, bounded).
struct ConfigBytes {
    std::string config;
    std::optional<std::string> signature;  // CONFIG.sig, when it exists
};
Result<ConfigBytes> read_config(const Source& source);
// The stick's bundle: the one regular *.bundle file in DIR/bundle (several are an error), opened
// without following links; nullptr when there is none.
Result<std::shared_ptr<int>> open_stick_bundle(const std::string& dir, std::string& name);
// Writes the report and firstboot.json into `dir` (the stick, or the copy for mtools): links
// there are replaced, never followed.
Result<void> write_report_files(const std::string& dir, const std::string& text, const std::string& json);

struct DiscoverOptions {
    std::string config;  // --config
    std::string cmdline_file = "/proc/cmdline";
    std::string cloud_init_profile = k_cloud_init_profile;
    bool look_for_stick = true;
};

// The value of `nodectl.config=` on a kernel command line (quotes allowed); empty when absent.
std::string cmdline_config(const std::string& cmdline);
// Finds the configuration in the documented order. A stick is mounted read-only at
// k_stick_mount and stays mounted (the report is written back to it at the end). The error
// lists every place looked at.
Result<Source> discover(const DiscoverOptions& options);
// Writes `text` to the stick as nodectl-report.txt (and firstboot.json beside it): remounts it
// read-write for the write, then read-only again (mtools mode: mcopy onto the device). An error
// when it is write-protected.
Result<void> write_back_report(const Source& source, const std::string& text, const std::string& json);
void release_stick(const Source& source);

// The first device with a filesystem labelled `label` (blkid), or empty.
std::string find_labelled_device(const std::string& label);

// ---------------------------------------------------------------- signatures (Ed25519, OpenSSL)

// Verifies `sig` (64 raw bytes, or their base64) over `data` with a PEM Ed25519 public key.
Result<void> verify_signature(const std::string& public_key_pem, const std::string& data, const std::string& sig);
// Signs `data` with a PEM Ed25519 private key; 64 raw bytes, as `openssl pkeyutl -sign -rawin` writes.
Result<std::string> sign(const std::string& private_key_pem, const std::string& data);
// The bytes of `file` to sign, after binding what a machine with a trust key will use with it:
// every [[base.files]] `source` must carry its sha256 (an error lists the missing ones), and with
// `bundle` its manifest sha256 is written into the file as firstboot.bundle_sha256 (appended
// when the file has no [firstboot] table; a different pin already there is an error).
Result<std::string> pin_for_signing(const std::string& file, const std::string& bundle);
// Checks that the text is a PEM Ed25519 public key.
Result<void> check_public_key(const std::string& public_key_pem);

// ---------------------------------------------------------------- the checks before a run

// What a run uses, checked before anything changes.
struct Checked {
    std::optional<Profile> profile;
    std::optional<bundle::Opened> bundle;
    std::shared_ptr<void> pinned;  // the private dir holding the pinned `source` files (removed with it)
};
struct CheckOptions {
    std::string bundle;  // --bundle (wins over the source's)
    std::string trust_key = k_trust_key;  // absent: no signature required
    std::string private_parent = "/run/nodectl";  // where the pinned copies go (a 0700 dir in it)
};
// Reads the config once; with a trust key verifies its signature over those bytes and parses the
// same bytes; then binds everything else to what the signed config pins: each `source` file by
// its sha256 (used from a private copy of the bytes that matched) and the bundle by its
// manifest sha256 (firstboot.bundle_sha256). With a trust key nothing unpinned is used.
// Fills status.signature*, status.bundle and status.bundle_digest.
Result<Checked> check_input(const Source& source, const CheckOptions& options, Status& status);

// ---------------------------------------------------------------- the run (src/actions/firstboot.hpp)

struct RunOptions {
    std::string config;  // --config
    std::string bundle;  // --bundle (wins over the stick's)
    bool force = false;
    bool dry_run = false;  // discover, check and plan; write nothing (no status, no journal)
    std::string cmdline_file = "/proc/cmdline";
    int lock_wait_seconds = 3600;  // another firstboot running: wait this long for it
    int run_timeout = 3600;
};

// ---------------------------------------------------------------- install

struct InstallOptions {
    std::string root;  // "" = the running system
    std::string trust_key;  // a PEM Ed25519 public key to bake in; configs must then be signed
    std::string binary;  // default: this executable
    bool no_enable = false;
};
extern const char* const k_unit_text;
// Copies the binary, writes and enables the unit (a wants/ link, as `systemctl enable` does; the
// running system also gets `systemctl daemon-reload`), and the trust key. Prints what it did.
Result<std::vector<std::string>> install(const InstallOptions& options);

// ---------------------------------------------------------------- cloud-init

struct RenderOptions {
    std::string profile;
    std::string binary_url;
    std::string binary_sha256;
    bool binary_preinstalled = false;
    bool inline_secrets = false;
    std::string signature;  // a PROFILE.sig to ship beside the profile (default: PROFILE.sig if present)
};
// `#cloud-config` user-data. Secrets the profile references by file stay references (listed in a
// comment: the node must get them another way) unless inline_secrets.
Result<std::string> render_cloud_init(const RenderOptions& options);

// ---------------------------------------------------------------- usb

struct UsbOptions {
    std::string image;
    std::string size = "2G";
    std::string device;
    std::string profile;
    std::string bundle;
    std::string binary;  // default: this executable
    bool yes = false;
    bool inline_secrets = false;
    std::string signature;  // PROFILE.sig, copied as nodectl.toml.sig (default: beside the profile)
    // Asked before a device is erased (without `yes`): Ok to go on, an error to stop. The CLI
    // prompts on the terminal; null refuses.
    std::function<Result<void>(const std::string& question)> confirm;
};
// Bytes for "2G", "512M", "1500K", "4096" (bytes).
Result<uint64_t> parse_size(const std::string& text);
// Why `device` must not be written (mounted, holds the running system, not a block device), or
// empty when it may be.
std::string refuse_device(const std::string& device);
Result<std::vector<std::string>> usb_prepare(const UsbOptions& options);

std::string self_exe();

}  // namespace nodectl::firstboot

// `nodectl image build`: recipes to OCI images on the operator's machine, without a daemon.
//
// What it changes: nothing on any node. On this machine it writes OUT/<name>/ (an OCI image
// layout) and OUT/<name>.oci.tar (the same layout as a tar, for `ctr images import` and k3s),
// and keeps a build cache (cache_dir()/image: apt lists and downloaded .debs under apt/, built
// layers and base rootfs trees under builds/, or --cache DIR).
// How it knows the work is already done: every layer has a key, the sha256 of everything that
// decides its bytes (the recipe's text, the content and modes of the files it copies, the build
// arguments, the package versions apt resolves for the suite right now, the base's key, the
// epoch, and the builder's format version). A layer whose key is in the cache
// is reused as it is; an unchanged rebuild costs one `apt-get update` and the resolution.
// How it is undone: delete OUT/<name>* and the cache; `--import` is undone with `ctr images rm`
// or by deleting the file from k3s's images directory.
//
// A base recipe is built by mmdebstrap (--mode=root, into a directory); the image recipes on it
// are built in an overlayfs over that tree inside a private mount namespace (`unshare --mount`),
// so the upper directory is exactly the image's layer and no mount outlives the build.
#include "modules/image/image.hpp"
#include "util/json.hpp"

#include "core/cache.hpp"
#include "core/log.hpp"
#include "modules/image/layer.hpp"
#include "modules/image/process.hpp"
#include "nodectl/target.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/tar_writer.hpp"
#include "util/time.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nodectl::image {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::string_view k_log = "image";
// Bump when the builder writes different bytes for the same inputs: old cache entries then miss.
constexpr std::string_view k_format = "nodectl-image-2";
constexpr std::string_view k_default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Error io(const std::string& what, const std::error_code& ec) {
    return make_error(ErrorCode::io, what + ": " + ec.message());
}

double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string oci_arch() {
    auto r = run_process({"dpkg", "--print-architecture"}, "", std::chrono::seconds(10));
    std::string a = r && r->exit_code == 0 ? util::trim(r->out) : "amd64";
    if (a == "i386") {
        return "386";
    }
    if (a == "armhf") {
        return "arm";
    }
    return a;
}

// `dir`/.lock, held until destruction: two builds sharing a cache take turns instead of writing
// the same apt lists or the same layer at once.
Result<util::FileLock> lock_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string file = (dir / ".lock").string();
    std::string why;
    auto lock = util::FileLock::take(file, 0644, util::FileLock::Wait::no, &why);
    if (!lock && errno == EWOULDBLOCK) {
        log::info(k_log, "waiting for another build using {}", dir.string());
        lock = util::FileLock::take(file, 0644, util::FileLock::Wait::yes, &why);
    }
    if (!lock) {
        return make_error(ErrorCode::io, why);
    }
    return std::move(*lock);
}

// ---- apt on the operator's machine, with its own lists, status and .deb cache -----------------

struct Apt {
    fs::path root;  // CACHE/apt/<suite>
    std::string suite;
    std::string mirror;

    std::string sources_line() const { return "deb " + mirror + " " + suite + " main"; }
    fs::path lists() const { return root / "lists"; }
    fs::path debs() const { return root / "debs"; }

    std::vector<std::string> argv(const std::string& status) const {
        return {"apt-get",
                "-q",
                "-o", "Dir::Etc::SourceList=" + (root / "sources.list").string(),
                "-o", "Dir::Etc::SourceParts=" + (root / "empty").string(),
                "-o", "Dir::Etc::Preferences=/dev/null",
                "-o", "Dir::Etc::PreferencesParts=" + (root / "empty").string(),
                "-o", "Dir::State::Lists=" + lists().string(),
                "-o", "Dir::State::status=" + status,
                "-o", "Dir::Cache=" + (root / "cache").string(),
                "-o", "Dir::Cache::archives=" + debs().string(),
                "-o", "Debug::NoLocking=1",
                "-o", "Acquire::Languages=none",
                "-o", "APT::Install-Recommends=false"};
    }

    Result<void> prepare() const {
        std::error_code ec;
        for (const auto& d : {root / "empty", lists() / "partial", root / "cache", debs() / "partial"}) {
            fs::create_directories(d, ec);
            if (ec) {
                return io("cannot create " + d.string(), ec);
            }
        }
        // apt drops to the _apt user for downloads: it must be able to enter these.
        for (const auto& d : {root, lists(), lists() / "partial", debs(), debs() / "partial"}) {
            fs::permissions(d, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec, ec);
        }
        if (auto err = util::write_file_atomic((root / "sources.list").string(), sources_line() + "\n", 0644);
            !err.empty()) {
            return make_error(ErrorCode::io, err);
        }
        if (!fs::exists(root / "empty-status")) {
            std::ofstream((root / "empty-status").string()).close();
        }
        return Ok{};
    }

    Result<void> update() const {
        TRY_VOID(prepare());
        auto a = argv((root / "empty-status").string());
        a.push_back("update");
        return run_logged(a, std::string(k_log));
    }

    // The suite's signed index as fetched (InRelease, else Release); empty when absent.
    std::string release_text() const {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(lists(), ec)) {
            auto n = e.path().filename().string();
            if (n.ends_with("_dists_" + suite + "_InRelease") || n.ends_with("_dists_" + suite + "_Release")) {
                return util::read_file(e.path().string()).value_or("");
            }
        }
        return {};
    }

    // Package versions apt would install on an empty system: "name=version", sorted. The answer
    // depends only on the index, so it is remembered per (Release file, package set): an
    // unchanged archive costs no second resolution.
    Result<std::vector<std::string>> resolve(const std::vector<std::string>& packages) const {
        std::string release = release_text();
        std::string memo;
        if (!release.empty()) {
            memo = (root / "resolved" / util::sha256_hex(release + "\n" + sources_line() + "\n" + util::join(packages, "\n")))
                       .string();
            if (auto text = util::read_file(memo)) {
                return util::split_lines(*text);
            }
        }
        auto out = TRY(resolve_now(packages));
        if (!memo.empty()) {
            std::error_code ec;
            fs::create_directories(root / "resolved", ec);
            // A memo only saves the next build a resolve: one that cannot be written is resolved again.
            if (auto err = util::write_file_atomic(memo, util::join(out, "\n") + "\n", 0644); !err.empty()) {
                log::warn(k_log, "cannot keep the resolved package list: {}", err);
            }
        }
        return out;
    }

    Result<std::vector<std::string>> resolve_now(const std::vector<std::string>& packages) const {
        auto a = argv((root / "empty-status").string());
        a.insert(a.end(), {"-s", "install", "--"});
        a.insert(a.end(), packages.begin(), packages.end());
        auto r = run_process(a, "", std::chrono::seconds(600));
        if (!r) {
            return std::move(r).error();
        }
        if (r->exit_code != 0) {
            return make_error(ErrorCode::command, "apt cannot resolve " + util::join(packages, " ") + " in " + suite +
                                                      ":\n" + (r->err.empty() ? r->out : r->err));
        }
        std::vector<std::string> out;
        for (const auto& line : util::split_lines(r->out)) {
            if (!line.starts_with("Inst ")) {
                continue;
            }
            auto parts = util::split(line, ' ');
            if (parts.size() >= 3 && parts[2].size() > 1 && parts[2][0] == '(') {
                out.push_back(parts[1] + "=" + parts[2].substr(1));
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    Result<void> download(const std::vector<std::string>& packages, const std::string& status) const {
        auto a = argv(status);
        a.insert(a.end(), {"install", "--download-only", "-y", "--"});
        a.insert(a.end(), packages.begin(), packages.end());
        return run_logged(a, std::string(k_log));
    }

    // The suite's Release date: the default epoch, so that a rebuild from the same archive state
    // gives the same timestamps without the user choosing one.
    int64_t release_date() const {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(lists(), ec)) {
            auto n = e.path().filename().string();
            if (!n.ends_with("_dists_" + suite + "_InRelease") && !n.ends_with("_dists_" + suite + "_Release")) {
                continue;
            }
            std::ifstream in(e.path());
            std::string line;
            while (std::getline(in, line)) {
                if (line.starts_with("Date: ")) {
                    std::tm tm{};
                    if (strptime(line.c_str() + 6, "%a, %d %b %Y %H:%M:%S", &tm)) {
                        return static_cast<int64_t>(timegm(&tm));
                    }
                }
            }
        }
        return 0;
    }
};

// What mmdebstrap installs for a variant, as apt patterns (for resolving versions).
std::vector<std::string> variant_set(const std::string& variant) {
    std::vector<std::string> s = {"?essential"};
    if (variant != "essential") {
        s.push_back("apt");
    }
    if (variant == "required" || variant == "minbase" || variant == "buildd" || variant == "important" ||
        variant == "standard") {
        s.push_back("?priority(required)");
    }
    if (variant == "buildd") {
        s.push_back("build-essential");
    }
    if (variant == "important" || variant == "standard") {
        s.push_back("?priority(important)");
    }
    if (variant == "standard") {
        s.push_back("?priority(standard)");
    }
    return s;
}

// ---- inputs: arguments, secrets, files ---------------------------------------------------------

struct Inputs {
    std::map<std::string, std::string> args;     // every declared argument, resolved
    std::map<std::string, std::string> secrets;  // given secrets this recipe declares: name -> file
};

Result<Inputs> inputs_for(const Recipe& r, const BuildOptions& o) {
    Inputs in;
    for (const auto& [name, a] : r.args) {
        auto it = o.args.find(name);
        in.args[name] = it == o.args.end() ? a.default_value : it->second;
    }
    for (const auto& [name, s] : r.secrets) {
        auto it = o.secrets.find(name);
        if (it != o.secrets.end()) {
            in.secrets[name] = it->second;
        } else if (s.required) {
            return make_error(ErrorCode::usage, r.file + ": build secret '" + name +
                                                    "' is required: --secret " + name + "=FILE");
        }
    }
    return in;
}

// The resolved source of a [[files]] entry.
Result<fs::path> file_source(const Recipe& r, const RecipeFile& f, const Inputs& in) {
    std::string err;
    std::string src = substitute_args(f.src, in.args, f.where, err);
    if (!err.empty()) {
        return make_error(ErrorCode::config, err);
    }
    if (src.empty()) {
        return make_error(ErrorCode::usage, f.where + ": 'files[].src' is empty (a build argument without a value?)");
    }
    fs::path p = fs::path(src).is_absolute() ? fs::path(src) : fs::path(r.dir) / src;
    std::error_code ec;
    if (!fs::exists(p, ec)) {
        return make_error(ErrorCode::usage, f.where + ": 'files[].src' " + p.string() + " does not exist");
    }
    return p;
}

// Content, modes and names of a file or a directory tree, for the cache key.
void hash_tree(util::Sha256& h, const fs::path& p, const std::string& rel) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
        h.update("missing " + rel + "\n");
        return;
    }
    h.update(rel + " " + std::to_string(st.st_mode) + "\n");
    if (S_ISREG(st.st_mode)) {
        h.update(util::sha256_file_hex(p.string()) + "\n");
    } else if (S_ISLNK(st.st_mode)) {
        h.update(fs::read_symlink(p).string() + "\n");
    } else if (S_ISDIR(st.st_mode)) {
        std::vector<std::string> names;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(p, ec)) {
            names.push_back(e.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        for (const auto& n : names) {
            hash_tree(h, p / n, rel + "/" + n);
        }
    }
}

// ---- the chroot stage --------------------------------------------------------------------------

std::string q(const std::string& s) {
    return shell_quote(s);
}

// A shell expression for a numeric id, or the id of a user/group name inside the image.
std::string id_expr(const std::string& who, bool group) {
    if (!who.empty() && std::all_of(who.begin(), who.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return who;
    }
    if (group) {
        return "$(chroot \"$R\" getent group " + q(who) + " | cut -d: -f3)";
    }
    return "$(chroot \"$R\" id -u " + q(who) + ")";
}

struct Stage {
    std::string root;   // the tree to change (a merged overlay mount point, or a plain directory)
    std::string lower, upper, work;  // set: mount an overlay at root first
    std::vector<std::string> packages;
    const Apt* apt = nullptr;
};

Result<std::string> stage_script(const Recipe& r, const Inputs& in, const Stage& s, int64_t epoch) {
    std::string sh;
    sh += "set -eu\n";
    sh += "export LC_ALL=C PATH=" + std::string(k_default_path) + " DEBIAN_FRONTEND=noninteractive SOURCE_DATE_EPOCH=" +
          std::to_string(epoch) + "\n";
    sh += "R=" + q(s.root) + "\n";
    if (!s.lower.empty()) {
        sh += "mount -t overlay overlay -o " +
              q("lowerdir=" + s.lower + ",upperdir=" + s.upper + ",workdir=" + s.work +
                ",index=off,metacopy=off,redirect_dir=off") +
              " \"$R\"\n";
    }
    sh += "mount -t proc proc \"$R/proc\"\n"
          "mount --bind /dev \"$R/dev\"\n"
          "mount -t sysfs -o ro sysfs \"$R/sys\"\n"
          "mount -t tmpfs -o mode=0755 tmpfs \"$R/run\"\n"
          "mkdir -p \"$R/run/lock\"\n"
          "mount -t tmpfs -o mode=1777 tmpfs \"$R/tmp\"\n"
          "[ -e \"$R/etc/resolv.conf\" ] || : > \"$R/etc/resolv.conf\"\n"
          "[ ! -e /etc/resolv.conf ] || mount --bind /etc/resolv.conf \"$R/etc/resolv.conf\"\n"
          "printf '#!/bin/sh\\nexit 101\\n' > \"$R/usr/sbin/policy-rc.d\"\n"
          "chmod 0755 \"$R/usr/sbin/policy-rc.d\"\n";
    if (!s.packages.empty()) {
        sh += "echo " + q("@@ " + r.name + ": installing " + util::join(s.packages, " ")) + "\n";
        sh += "mount --bind " + q(s.apt->lists().string()) + " \"$R/var/lib/apt/lists\"\n";
        sh += "mkdir -p \"$R/var/cache/apt/archives\"\n";
        sh += "mount --bind " + q(s.apt->debs().string()) + " \"$R/var/cache/apt/archives\"\n";
        sh += "chroot \"$R\" apt-get install -y -q --no-install-recommends -o Acquire::Languages=none -o "
              "Dpkg::Use-Pty=0 -- " +
              shell_quote_all(s.packages) + "\n";
        sh += "umount \"$R/var/cache/apt/archives\" \"$R/var/lib/apt/lists\"\n";
    }
    for (const auto& u : r.users) {
        std::string uid = std::to_string(u.uid), gid = std::to_string(u.gid);
        std::string sys = u.system ? " --system" : "";
        std::string shell = u.system ? "/usr/sbin/nologin" : "/bin/sh";
        sh += "echo " + q("@@ " + r.name + ": user " + u.name + " (" + uid + ":" + gid + ")") + "\n";
        sh += "if chroot \"$R\" getent passwd " + q(u.name) + " >/dev/null; then\n";
        sh += "  [ \"$(chroot \"$R\" id -u " + q(u.name) + ")\" = " + uid + " ] && [ \"$(chroot \"$R\" id -g " +
              q(u.name) + ")\" = " + gid + " ] || { echo " +
              q(u.where + ": user " + u.name + " exists in the image with another uid/gid:") +
              " \"$(chroot \"$R\" id " + q(u.name) + ")\"; exit 1; }\n";
        sh += "else\n";
        sh += "  chroot \"$R\" getent group " + gid + " >/dev/null || chroot \"$R\" groupadd" + sys + " -g " + gid +
              " " + q(u.name) + "\n";
        sh += "  chroot \"$R\" useradd" + sys + " -u " + uid + " -g " + gid + " -d " + q(u.home) + " -M -s " + shell +
              " " + q(u.name) + "\n";
        if (u.home != "/nonexistent") {
            sh += "  mkdir -p \"$R\"" + q(u.home) + " && chown " + uid + ":" + gid + " \"$R\"" + q(u.home) + "\n";
        }
        sh += "fi\n";
    }
    for (const auto& f : r.files) {
        auto src = TRY(file_source(r, f, in));
        std::string dest = "\"$R\"" + q(f.dest);
        std::string owner = id_expr(f.owner, false), group = id_expr(f.group, true);
        sh += "echo " + q("@@ " + r.name + ": file " + f.dest) + "\n";
        sh += "U=" + owner + "; G=" + group + "\n";
        sh += "[ -n \"$U\" ] && [ -n \"$G\" ] || { echo " + q(f.where + ": owner '" + f.owner + "' or group '" + f.group +
                                                            "' does not exist in the image") +
              "; exit 1; }\n";
        if (fs::is_directory(src)) {
            sh += "mkdir -p " + dest + "\n";
            sh += "cp -a --no-preserve=ownership " + q(src.string() + "/.") + " " + dest + "/\n";
            sh += "chown -R \"$U:$G\" " + dest + "\n";
        } else {
            sh += "mkdir -p \"$(dirname " + dest + ")\"\n";
            sh += "rm -f " + dest + "\n";
            sh += "cp " + q(src.string()) + " " + dest + "\n";
            sh += "chown \"$U:$G\" " + dest + "\n";
            sh += "chmod " + util::octal(f.mode) + " " + dest + "\n";
        }
        // The checkout's timestamps are not an input: every copied file gets the epoch.
        sh += "find " + dest + " -exec touch -h -d @" + std::to_string(epoch) + " {} +\n";
    }
    int n = 0;
    for (const auto& run : r.runs) {
        ++n;
        if (!run.when.empty() && in.args.at(run.when.substr(5)).empty()) {
            sh += "echo " + q("@@ " + r.name + ": run " + std::to_string(n) + " skipped (" + run.when + " is empty)") +
                  "\n";
            continue;
        }
        std::string err;
        std::string cmd = substitute_args(run.command, in.args, run.where, err);
        if (!err.empty()) {
            return make_error(ErrorCode::config, err);
        }
        auto first = util::split_lines(cmd);
        sh += "echo " + q("@@ " + r.name + ": run " + std::to_string(n) + ": " + (first.empty() ? "" : first[0])) + "\n";
        bool with_secrets = false;
        for (const auto& name : run.secrets) {
            auto it = in.secrets.find(name);
            if (it == in.secrets.end()) {
                continue;  // optional and not given: the command sees no file
            }
            if (!with_secrets) {
                sh += "mkdir -p \"$R/run/secrets\"\n"
                      "mount -t tmpfs -o mode=0700,size=16m tmpfs \"$R/run/secrets\"\n";
                with_secrets = true;
            }
            sh += "install -m 0400 " + q(it->second) + " \"$R/run/secrets/\"" + q(name) + "\n";
        }
        sh += "chroot \"$R\" /bin/sh -c " + q(cmd) + " || { echo " +
              q(run.where + ": run " + std::to_string(n) + " failed") + "; exit 1; }\n";
        if (with_secrets) {
            sh += "umount \"$R/run/secrets\"\n";
        }
    }
    sh += "rm -f \"$R/usr/sbin/policy-rc.d\"\n";
    return sh;
}

Result<void> run_stage(const std::string& script, const std::string& dir, const std::string& label) {
    std::string file = (fs::path(dir) / "stage.sh").string();
    if (auto err = util::write_file_atomic(file, script, 0700); !err.empty()) {
        return make_error(ErrorCode::io, err);
    }
    // A private mount namespace: every mount of the stage disappears with it, even on failure.
    auto r = run_logged({"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", file}, label);
    std::error_code ec;
    fs::remove(file, ec);
    return r;
}

// ---- the cache ---------------------------------------------------------------------------------

struct Layer {
    LayerBlob blob;
    std::string blob_path;
    std::string created_by;
    bool cached = false;
};

std::string comp_name(Compression c) {
    return c == Compression::zstd ? "zstd" : "gzip";
}

// A layer's entry in the cache: DIR/layer-gzip(.json), DIR/layer-zstd(.json).
std::optional<Layer> read_entry(const fs::path& dir, const std::string& key, Compression comp) {
    std::string base = (dir / ("layer-" + comp_name(comp))).string();
    auto text = util::read_file(base + ".json");
    if (!text) {
        return std::nullopt;
    }
    try {
        auto j = json::parse(*text);
        if (j.value("key", "") != key) {
            return std::nullopt;
        }
        Layer l;
        l.blob.digest = j.at("digest");
        l.blob.diff_id = j.at("diff_id");
        l.blob.size = j.at("size");
        l.blob.media_type = j.at("media_type");
        l.created_by = j.at("created_by");
        l.blob_path = base;
        l.cached = true;
        std::error_code ec;
        if (fs::file_size(l.blob_path, ec) != l.blob.size || ec) {
            return std::nullopt;
        }
        return l;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Result<void> cache_store(const fs::path& dir, const std::string& key, const Layer& l, Compression comp) {
    json j = {{"key", key},
              {"digest", l.blob.digest},
              {"diff_id", l.blob.diff_id},
              {"size", l.blob.size},
              {"media_type", l.blob.media_type},
              {"created_by", l.created_by}};
    std::string file = (dir / ("layer-" + comp_name(comp) + ".json")).string();
    if (auto err = util::write_file_atomic(file, util::json_text(j, 2) + "\n", 0644); !err.empty()) {
        return make_error(ErrorCode::io, err);
    }
    return Ok{};
}

// The cached layer in `comp`; when only the other compression is cached, the tar is the same
// (same diff_id), so it is recompressed instead of rebuilt.
std::optional<Layer> cache_lookup(const fs::path& dir, const std::string& key, Compression comp) {
    if (auto l = read_entry(dir, key, comp)) {
        return l;
    }
    Compression other = comp == Compression::zstd ? Compression::gzip : Compression::zstd;
    auto src = read_entry(dir, key, other);
    if (!src) {
        return std::nullopt;
    }
    std::string dest = (dir / ("layer-" + comp_name(comp))).string();
    auto blob = recompress(src->blob_path, dest, comp);
    if (!blob || blob->diff_id != src->blob.diff_id) {
        return std::nullopt;
    }
    Layer l = *src;
    l.blob = *blob;
    l.blob_path = dest;
    if (!cache_store(dir, key, l, comp)) {
        return std::nullopt;
    }
    log::info(k_log, "layer {} recompressed as {}", src->blob.digest.substr(7, 12), comp_name(comp));
    return l;
}

// ---- building layers ---------------------------------------------------------------------------

struct Ctx {
    const BuildOptions& o;
    fs::path cache;  // builds/
    fs::path apt_root;
    int64_t epoch = 0;
    std::map<std::string, Apt> apts;  // by suite, updated once per run
};

Result<const Apt*> apt_for(Ctx& c, const std::string& suite) {
    auto it = c.apts.find(suite);
    if (it != c.apts.end()) {
        return &it->second;
    }
    Apt apt{c.apt_root / suite, suite, c.o.mirror};
    auto t = std::chrono::steady_clock::now();
    log::info(k_log, "refreshing the package lists of {} ({})", suite, c.o.mirror);
    if (auto updated = apt.update(); !updated) {
        if (apt.release_text().empty()) {
            return std::move(updated).error();
        }
        // Offline, or the mirror is down: the lists of the last update still describe an archive
        // state, and the cache key follows them.
        log::warn(k_log, "apt-get update failed; using the package lists of the last update ({})",
                  updated.error().message.substr(0, 200));
    }
    log::info(k_log, "package lists of {} ready in {:.1f}s", suite, since(t));
    return &c.apts.emplace(suite, std::move(apt)).first->second;
}

std::string key_of(const Recipe& r, const Inputs& in, const std::vector<std::string>& versions,
                   const std::string& base_key, const BuildOptions& o, int64_t epoch) {
    util::Sha256 h;
    h.update(std::string(k_format) + "\n");
    h.update("recipe " + r.name + "\n" + r.text + "\n");
    h.update("base " + base_key + "\n");
    h.update("suite " + r.suite + " mirror " + o.mirror + " epoch " + std::to_string(epoch) + "\n");
    for (const auto& v : versions) {
        h.update("deb " + v + "\n");
    }
    for (const auto& [k, v] : in.args) {
        h.update("arg " + k + "=" + v + "\n");
    }
    for (const auto& [k, file] : in.secrets) {
        // The secret's content changes what a run produces; only its hash enters the key.
        h.update("secret " + k + " " + util::sha256_file_hex(file) + "\n");
    }
    for (const auto& f : r.files) {
        auto src = file_source(r, f, in);
        if (src) {
            hash_tree(h, *src, f.dest);
        }
    }
    return h.final_hex();
}

struct BaseResult {
    Layer layer;
    std::string key;
    fs::path rootfs;
    std::vector<std::string> versions;
    ImageConfig config;
    const Recipe* recipe = nullptr;
};

Result<BaseResult> build_base(Ctx& c, const Recipe& r) {
    auto start = std::chrono::steady_clock::now();
    const Apt* apt = TRY(apt_for(c, r.suite));
    auto in = TRY(inputs_for(r, c.o));
    auto set = variant_set(r.variant);
    set.insert(set.end(), r.packages.begin(), r.packages.end());
    BaseResult b;
    b.recipe = &r;
    b.versions = TRY(apt->resolve(set));
    b.key = key_of(r, in, b.versions, "", c.o, c.epoch);
    fs::path dir = c.cache / (r.name + "-" + b.key.substr(0, 32));
    b.rootfs = dir / "rootfs";
    b.config = r.config;
    if (!c.o.no_cache) {
        if (auto hit = cache_lookup(dir, b.key, c.o.compression); hit && fs::is_directory(b.rootfs)) {
            log::info(k_log, "{}: base layer cached ({} packages resolved, key {})", r.name, b.versions.size(),
                      b.key.substr(0, 12));
            b.layer = *hit;
            return b;
        }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) {
        return io("cannot create " + dir.string(), ec);
    }
    fs::path tmp = dir / "rootfs.tmp";
    log::info(k_log, "{}: mmdebstrap {} --variant={} ({} packages)", r.name, r.suite, r.variant, b.versions.size());
    std::vector<std::string> argv = {
        "mmdebstrap", "--mode=root", "--format=directory", "--variant=" + r.variant,
        "--aptopt=APT::Install-Recommends \"false\"", "--aptopt=Acquire::Languages \"none\"",
        // No manuals and documentation in images (the copyright files stay).
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/groff/*", "--dpkgopt=path-exclude=/usr/share/lintian/*",
        // Merged /usr by symlinks (usr-is-merged) instead of the usrmerge package, which pulls
        // in perl and its modules (about 50 MB) for a conversion a fresh tree does not need.
        "--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr",
        // .debs come from and go back to the download cache (they are inputs, not outputs).
        "--skip=download/empty", "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
        // mmdebstrap splits these special hooks into words as a shell would (shellwords): quoted.
        "--setup-hook=sync-in " + q(apt->debs().string()) + " /var/cache/apt/archives/",
        "--customize-hook=sync-out /var/cache/apt/archives " + q(apt->debs().string())};
    if (!r.packages.empty()) {
        argv.push_back("--include=" + util::join(r.packages, ","));
    }
    argv.insert(argv.end(), {r.suite, tmp.string(), apt->sources_line()});
    TRY_VOID(run_logged(argv, std::string(k_log) + " " + r.name, {{"SOURCE_DATE_EPOCH", std::to_string(c.epoch)}}));
    // What mmdebstrap copies from this machine: a container gets its own.
    if (auto err = util::write_file_atomic((tmp / "etc/hostname").string(), "localhost\n", 0644); !err.empty()) {
        return make_error(ErrorCode::io, err);
    }
    fs::remove(tmp / "etc/resolv.conf", ec);
    if (!r.users.empty() || !r.files.empty() || !r.runs.empty()) {
        Stage s;
        s.root = tmp.string();
        auto script = TRY(stage_script(r, in, s, c.epoch));
        TRY_VOID(run_stage(script, dir.string(), std::string(k_log) + " " + r.name));
    }
    clean_tree(tmp.string());
    log::info(k_log, "{}: writing the base layer", r.name);
    std::string blob_path = (dir / ("layer-" + comp_name(c.o.compression))).string();
    auto blob = TRY(write_layer(tmp.string(), TreeKind::rootfs, c.epoch, c.o.compression, blob_path));
    fs::rename(tmp, b.rootfs, ec);
    if (ec) {
        return io("cannot rename " + tmp.string(), ec);
    }
    b.layer.blob = blob;
    b.layer.blob_path = blob_path;
    b.layer.created_by = "mmdebstrap --variant=" + r.variant + " " + r.suite +
                         (r.packages.empty() ? "" : " --include=" + util::join(r.packages, ",")) +
                         " (nodectl image build " + r.name + ")";
    TRY_VOID(cache_store(dir, b.key, b.layer, c.o.compression));
    log::info(k_log, "{}: base layer {} ({:.1f} MB, {} entries) in {:.1f}s", r.name, blob.digest.substr(7, 12),
              static_cast<double>(blob.size) / 1e6, blob.entries, since(start));
    return b;
}

Result<Layer> build_app(Ctx& c, const Recipe& r, const BaseResult& base) {
    auto start = std::chrono::steady_clock::now();
    const Apt* apt = TRY(apt_for(c, r.suite));
    auto in = TRY(inputs_for(r, c.o));
    std::vector<std::string> versions;
    if (!r.packages.empty()) {
        auto set = variant_set(base.recipe->variant);
        set.insert(set.end(), base.recipe->packages.begin(), base.recipe->packages.end());
        set.insert(set.end(), r.packages.begin(), r.packages.end());
        versions = TRY(apt->resolve(set));
    }
    std::string key = key_of(r, in, versions, base.key, c.o, c.epoch);
    fs::path dir = c.cache / (r.name + "-" + key.substr(0, 32));
    if (!c.o.no_cache) {
        if (auto hit = cache_lookup(dir, key, c.o.compression)) {
            log::info(k_log, "{}: layer cached (key {})", r.name, key.substr(0, 12));
            return *hit;
        }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::path upper = dir / "upper", work = dir / "work", merged = dir / "merged";
    for (const auto& d : {upper, work, merged}) {
        fs::create_directories(d, ec);
        if (ec) {
            return io("cannot create " + d.string(), ec);
        }
    }
    if (!r.packages.empty()) {
        log::info(k_log, "{}: downloading {}", r.name, util::join(r.packages, " "));
        TRY_VOID(apt->download(r.packages, (base.rootfs / "var/lib/dpkg/status").string()));
    }
    Stage s;
    s.root = merged.string();
    s.lower = base.rootfs.string();
    s.upper = upper.string();
    s.work = work.string();
    s.packages = r.packages;
    s.apt = apt;
    auto script = TRY(stage_script(r, in, s, c.epoch));
    TRY_VOID(run_stage(script, dir.string(), std::string(k_log) + " " + r.name));
    clean_tree(upper.string());
    log::info(k_log, "{}: writing the layer", r.name);
    Layer l;
    l.blob_path = (dir / ("layer-" + comp_name(c.o.compression))).string();
    l.blob = TRY(write_layer(upper.string(), TreeKind::upper, c.epoch, c.o.compression, l.blob_path,
                             base.rootfs.string()));
    l.created_by = "nodectl image build " + r.name + ":" +
                   (r.packages.empty() ? "" : " packages " + util::join(r.packages, ",") + ";") + " " +
                   std::to_string(r.users.size()) + " user(s), " + std::to_string(r.files.size()) + " file(s), " +
                   std::to_string(r.runs.size()) + " run(s)";
    fs::remove_all(upper, ec);
    fs::remove_all(work, ec);
    fs::remove_all(merged, ec);
    TRY_VOID(cache_store(dir, key, l, c.o.compression));
    log::info(k_log, "{}: layer {} ({:.1f} MB, {} entries) in {:.1f}s", r.name, l.blob.digest.substr(7, 12),
              static_cast<double>(l.blob.size) / 1e6, l.blob.entries, since(start));
    return l;
}

// ---- the OCI layout and the archive -----------------------------------------------------------

json image_config(const ImageConfig& base, const ImageConfig& own, bool has_base, const std::vector<Layer>& layers,
                  int64_t epoch, const std::string& arch) {
    ImageConfig c = own;
    if (has_base) {
        auto pick = [](auto& mine, const auto& theirs) {
            if (mine.empty()) {
                mine = theirs;
            }
        };
        pick(c.entrypoint, base.entrypoint);
        if (own.entrypoint.empty()) {
            pick(c.cmd, base.cmd);  // a new entrypoint resets the inherited cmd, as in Docker
        }
        pick(c.workdir, base.workdir);
        pick(c.user, base.user);
        pick(c.stop_signal, base.stop_signal);
        pick(c.exposed_ports, base.exposed_ports);
        pick(c.volumes, base.volumes);
        for (const auto& [k, v] : base.env) {
            c.env.emplace(k, v);
        }
        for (const auto& [k, v] : base.labels) {
            c.labels.emplace(k, v);
        }
    }
    if (!c.env.count("PATH")) {
        c.env["PATH"] = std::string(k_default_path);
    }
    json cfg = json::object();
    json env = json::array();
    for (const auto& [k, v] : c.env) {
        env.push_back(k + "=" + v);
    }
    cfg["Env"] = env;
    if (!c.entrypoint.empty()) {
        cfg["Entrypoint"] = c.entrypoint;
    }
    if (!c.cmd.empty()) {
        cfg["Cmd"] = c.cmd;
    }
    if (!c.workdir.empty()) {
        cfg["WorkingDir"] = c.workdir;
    }
    if (!c.user.empty()) {
        cfg["User"] = c.user;
    }
    if (!c.stop_signal.empty()) {
        cfg["StopSignal"] = c.stop_signal;
    }
    if (!c.exposed_ports.empty()) {
        json p = json::object();
        for (auto port : c.exposed_ports) {
            if (port.find('/') == std::string::npos) {
                port += "/tcp";
            }
            p[port] = json::object();
        }
        cfg["ExposedPorts"] = p;
    }
    if (!c.volumes.empty()) {
        json v = json::object();
        for (const auto& vol : c.volumes) {
            v[vol] = json::object();
        }
        cfg["Volumes"] = v;
    }
    if (!c.labels.empty()) {
        cfg["Labels"] = c.labels;
    }
    json diff_ids = json::array(), history = json::array();
    for (const auto& l : layers) {
        diff_ids.push_back(l.blob.diff_id);
        history.push_back({{"created", util::format_utc(epoch)}, {"created_by", l.created_by}});
    }
    return {{"architecture", arch},
            {"os", "linux"},
            {"created", util::format_utc(epoch)},
            {"config", cfg},
            {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
            {"history", history}};
}

Result<void> place_blob(const fs::path& blobs, const std::string& digest, const std::string& source) {
    fs::path dest = blobs / digest.substr(7);
    std::error_code ec;
    if (fs::exists(dest, ec)) {
        return Ok{};
    }
    fs::create_hard_link(source, dest, ec);
    if (ec) {
        ec.clear();
        fs::copy_file(source, dest, ec);
        if (ec) {
            return io("cannot copy " + source + " to " + dest.string(), ec);
        }
    }
    return Ok{};
}

Result<std::string> put_json_blob(const fs::path& blobs, const json& j) {
    std::string text = util::json_text(j);
    std::string digest = "sha256:" + util::sha256_hex(text);
    if (auto err = util::write_file_atomic((blobs / digest.substr(7)).string(), text, 0644); !err.empty()) {
        return make_error(ErrorCode::io, err);
    }
    return digest;
}

// The layout as a tar: oci-layout, index.json, blobs/sha256/*; sorted, 0:0, dated `epoch`.
Result<void> write_oci_archive(const fs::path& layout, const std::string& out, int64_t epoch) {
    std::vector<std::string> blobs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(layout / "blobs/sha256", ec)) {
        blobs.push_back(e.path().filename().string());
    }
    std::sort(blobs.begin(), blobs.end());
    std::string part = out + ".part";
    util::Fd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        return make_error(ErrorCode::io, "cannot write " + part + ": " + std::strerror(errno));
    }
    util::TarWriter tar;
    std::string err = tar.open_fd(fd.get());
    auto dir_entry = [&](const std::string& p) {
        util::TarEntry e;
        e.path = p;
        e.type = util::TarEntry::Type::dir;
        e.mode = 0755;
        e.mtime = epoch;
        return tar.add(e);
    };
    auto file_entry = [&](const std::string& p) {
        util::TarEntry e;
        e.path = p;
        e.mode = 0644;
        e.mtime = epoch;
        std::error_code size_ec;
        e.size = fs::file_size(layout / p, size_ec);
        if (size_ec) {
            return (layout / p).string() + ": " + size_ec.message();
        }
        return tar.add_file(e, (layout / p).string());
    };
    if (err.empty()) {
        err = dir_entry("blobs");
    }
    if (err.empty()) {
        err = dir_entry("blobs/sha256");
    }
    for (const auto& b : blobs) {
        if (err.empty()) {
            err = file_entry("blobs/sha256/" + b);
        }
    }
    if (err.empty()) {
        err = file_entry("index.json");
    }
    if (err.empty()) {
        err = file_entry("oci-layout");
    }
    if (err.empty()) {
        err = tar.close();
    }
    // fsync and close checked here (a failed write can show at either); on error Fd closes it.
    if (err.empty() && (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0)) {
        err = std::string("cannot write: ") + std::strerror(errno);
    }
    fd.reset();
    if (err.empty() && ::rename(part.c_str(), out.c_str()) != 0) {
        err = std::string("cannot rename: ") + std::strerror(errno);
    }
    if (!err.empty()) {
        ::unlink(part.c_str());
        return make_error(ErrorCode::io, out + ": " + err);
    }
    return Ok{};
}

Result<BuiltImage> write_image(Ctx& c, const Recipe& r, const std::vector<Layer>& layers, const json& config) {
    fs::path out = fs::absolute(c.o.out);
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) {
        return io("cannot create " + out.string(), ec);
    }
    fs::path tmp = out / ("." + r.name + ".tmp");
    fs::remove_all(tmp, ec);
    fs::path blobs = tmp / "blobs/sha256";
    fs::create_directories(blobs, ec);
    if (ec) {
        return io("cannot create " + blobs.string(), ec);
    }
    BuiltImage img;
    img.name = r.name;
    img.reference = "localhost/nodectl/" + r.name + ":latest";
    json jlayers = json::array();
    img.cached = true;
    for (const auto& l : layers) {
        TRY_VOID(place_blob(blobs, l.blob.digest, l.blob_path));
        jlayers.push_back({{"mediaType", l.blob.media_type}, {"digest", l.blob.digest}, {"size", l.blob.size}});
        img.layer_digests.push_back(l.blob.digest);
        img.compressed_size += l.blob.size;
        img.cached = img.cached && l.cached;
    }
    std::string config_text = util::json_text(config);
    std::string config_digest = TRY(put_json_blob(blobs, config));
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config",
                      {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                       {"digest", config_digest},
                       {"size", config_text.size()}}},
                     {"layers", jlayers}};
    std::string manifest_text = util::json_text(manifest);
    img.manifest_digest = TRY(put_json_blob(blobs, manifest));
    // Two names for the one manifest: the tag, and NAME@DIGEST. A pod that pins the image by
    // digest (`stack.sites[].images.digests_from`) is looked up by the CRI under NAME@DIGEST (the
    // tag dropped), the name a registry pull would have recorded; an import names images only
    // after these annotations, so without it a pinned pod would find no image offline.
    json index = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array()}};
    std::string repository = img.reference.substr(0, img.reference.rfind(':'));
    for (const std::string& name : {img.reference, repository + "@" + img.manifest_digest}) {
        index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                      {"digest", img.manifest_digest},
                                      {"size", manifest_text.size()},
                                      {"annotations", {{"io.containerd.image.name", name}, {"org.opencontainers.image.ref.name", name}}}});
    }
    for (const auto& [file, text] : {std::pair<std::string, std::string>{"index.json", util::json_text(index) + "\n"},
                                     {"oci-layout", util::json_text(json{{"imageLayoutVersion", "1.0.0"}}) + "\n"}}) {
        if (auto err = util::write_file_atomic((tmp / file).string(), text, 0644); !err.empty()) {
            return make_error(ErrorCode::io, err);
        }
    }
    img.layout = (out / r.name).string();
    img.archive = (out / (r.name + ".oci.tar")).string();
    TRY_VOID(write_oci_archive(tmp, img.archive, c.epoch));
    fs::path old = out / ("." + r.name + ".old");
    fs::remove_all(old, ec);
    if (fs::exists(img.layout)) {
        fs::rename(img.layout, old, ec);
    }
    fs::rename(tmp, img.layout, ec);
    if (ec) {
        return io("cannot rename " + tmp.string() + " to " + img.layout, ec);
    }
    fs::remove_all(old, ec);
    return img;
}

Result<void> import_image(const BuildOptions& o, const BuiltImage& img) {
    if (o.import.empty()) {
        return Ok{};
    }
    if (o.import == "k3s") {
        fs::path dir = o.k3s_images_dir;
        std::error_code ec;
        fs::create_directories(dir, ec);
        fs::path dest = dir / ("nodectl-" + img.name + ".oci.tar");
        fs::path part = dir / (".nodectl-" + img.name + ".oci.tar.part");
        fs::copy_file(img.archive, part, fs::copy_options::overwrite_existing, ec);
        if (!ec) {
            fs::rename(part, dest, ec);
        }
        if (ec) {
            fs::remove(part);
            return io("cannot write " + dest.string(), ec);
        }
        log::info(k_log, "{}: written to {} (k3s imports it when it starts)", img.name, dest.string());
        return Ok{};
    }
    std::string socket = "/run/containerd/containerd.sock";
    if (o.import.starts_with("containerd=")) {
        socket = o.import.substr(11);
    }
    log::info(k_log, "{}: importing into containerd at {} (namespace {})", img.name, socket, o.ns);
    return run_logged({"ctr", "--address", socket, "--namespace", o.ns, "images", "import", img.archive},
                      std::string(k_log) + " " + img.name);
}

} // namespace

Result<std::vector<BuiltImage>> build(const BuildOptions& o) {
    auto recipes = TRY(load_recipes(o.recipes));
    std::vector<std::string> names = o.names;
    if (o.all) {
        names.clear();
        for (const auto& [n, r] : recipes) {
            names.push_back(n);
        }
    }
    if (names.empty()) {
        return make_error(ErrorCode::usage, "no image named (NAME... or --all)");
    }
    std::set<std::string> declared_args, declared_secrets;
    for (const auto& n : names) {
        auto it = recipes.find(n);
        if (it == recipes.end()) {
            std::vector<std::string> known;
            for (const auto& [k, v] : recipes) {
                known.push_back(k);
            }
            return make_error(ErrorCode::usage, "no recipe '" + n + "' in " + o.recipes + " (there are: " +
                                                    util::join(known, ", ") + ")");
        }
        for (const Recipe* r : {&it->second, it->second.is_base() ? nullptr : &recipes.at(it->second.base)}) {
            if (!r) {
                continue;
            }
            for (const auto& [a, spec] : r->args) {
                declared_args.insert(a);
            }
            for (const auto& [s, spec] : r->secrets) {
                declared_secrets.insert(s);
            }
            TRY(inputs_for(*r, o));  // required secrets first, before anything is built
        }
    }
    for (const auto& [a, v] : o.args) {
        if (!declared_args.count(a)) {
            return make_error(ErrorCode::usage, "--arg " + a + ": no recipe being built declares [args." + a + "]");
        }
    }
    for (const auto& [s, file] : o.secrets) {
        if (!declared_secrets.count(s)) {
            return make_error(ErrorCode::usage, "--secret " + s + ": no recipe being built declares [secrets." + s + "]");
        }
        if (::access(file.c_str(), R_OK) != 0) {
            return make_error(ErrorCode::usage, "--secret " + s + ": cannot read " + file + ": " + std::strerror(errno));
        }
    }
    if (::geteuid() != 0) {
        return make_error(ErrorCode::usage, "image build needs root (mmdebstrap --mode=root, overlayfs, chroot)");
    }

    Ctx c{o, {}, {}, 0, {}};
    fs::path cache = o.cache.empty() ? fs::path(cache_dir()) / "image" : fs::path(o.cache);
    c.cache = cache / "builds";
    c.apt_root = fs::path(cache_dir()) / "image" / "apt";
    if (!o.apt_cache.empty()) {
        c.apt_root = o.apt_cache;
    }
    std::error_code ec;
    fs::create_directories(c.cache, ec);
    if (ec) {
        return io("cannot create " + c.cache.string(), ec);
    }
    auto cache_lock = TRY(lock_dir(c.cache));
    auto apt_lock = TRY(lock_dir(c.apt_root));
    std::string arch = oci_arch();

    // Bases first (each once), then the images in the order asked.
    std::map<std::string, BaseResult> bases;
    std::vector<BuiltImage> out;
    for (const auto& n : names) {
        auto start = std::chrono::steady_clock::now();
        const Recipe& r = recipes.at(n);
        const Recipe& b = r.is_base() ? r : recipes.at(r.base);
        if (!bases.count(b.name)) {
            const Apt* apt = TRY(apt_for(c, b.suite));
            c.epoch = util::source_date_epoch();
            if (c.epoch < 0) {
                c.epoch = apt->release_date();
            }
            bases.emplace(b.name, TRY(build_base(c, b)));
        }
        const BaseResult& base = bases.at(b.name);
        std::vector<Layer> layers = {base.layer};
        if (!r.is_base()) {
            layers.push_back(TRY(build_app(c, r, base)));
        }
        json config = image_config(base.config, r.config, !r.is_base(), layers, c.epoch, arch);
        auto img = TRY(write_image(c, r, layers, config));
        img.seconds = since(start);
        log::info(k_log, "{}: {} {} ({:.1f} MB compressed){}", r.name, img.reference, img.manifest_digest,
                  static_cast<double>(img.compressed_size) / 1e6, img.cached ? ", all layers cached" : "");
        TRY_VOID(import_image(o, img));
        out.push_back(std::move(img));
    }
    return out;
}

} // namespace nodectl::image

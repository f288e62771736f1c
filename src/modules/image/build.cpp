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
//
// The parts: apt.cpp (the package lists and versions), inputs.cpp (arguments, secrets, files and
// the cache key), stage.cpp (the chroot stage script), layer.cpp (trees to layer blobs),
// layer_cache.cpp (the cached layers), oci.cpp (config, layout, archive, import). This file
// builds the base and image layers and drives the whole.
#include "modules/image/image.hpp"

#include "util/cache.hpp"
#include "util/log.hpp"
#include "modules/image/apt.hpp"
#include "modules/image/common.hpp"
#include "modules/image/inputs.hpp"
#include "modules/image/layer.hpp"
#include "modules/image/layer_cache.hpp"
#include "modules/image/oci.hpp"
#include "modules/image/process.hpp"
#include "modules/image/stage.hpp"
#include "nodectl/target.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include <unistd.h>

namespace nodectl::image {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace detail;

namespace {

// `dir`/.lock, held until destruction: two builds sharing a cache take turns instead of writing
// the same apt lists or the same layer at once.
Result<util::FileLock> lock_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string file = (dir / ".lock").string();
    auto lock = util::FileLock::take(file, 0644, util::FileLock::Wait::no);
    if (!lock && errno == EWOULDBLOCK) {
        log::info(k_log, "waiting for another build using {}", dir.string());
        lock = util::FileLock::take(file, 0644, util::FileLock::Wait::yes);
    }
    return as_result(std::move(lock), ErrorCode::io);
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
    log::info(k_log, "package lists of {} ready in {:.1f}s", suite, util::seconds_since(t));
    return &c.apts.emplace(suite, std::move(apt)).first->second;
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
        "--setup-hook=sync-in " + shell_quote(apt->debs().string()) + " /var/cache/apt/archives/",
        "--customize-hook=sync-out /var/cache/apt/archives " + shell_quote(apt->debs().string())};
    if (!r.packages.empty()) {
        argv.push_back("--include=" + util::join(r.packages, ","));
    }
    argv.insert(argv.end(), {r.suite, tmp.string(), apt->sources_line()});
    TRY_VOID(run_logged(argv, std::string(k_log) + " " + r.name, {{"SOURCE_DATE_EPOCH", std::to_string(c.epoch)}}));
    // What mmdebstrap copies from this machine: a container gets its own.
    TRY_VOID(as_result(util::write_file_atomic((tmp / "etc/hostname").string(), "localhost\n", 0644), ErrorCode::io));
    fs::remove(tmp / "etc/resolv.conf", ec);
    if (!r.users.empty() || !r.files.empty() || !r.runs.empty()) {
        Stage s;
        s.root = tmp.string();
        auto script = TRY(stage_script(r, in, s, c.epoch));
        TRY_VOID(run_stage(script, dir.string(), std::string(k_log) + " " + r.name));
    }
    clean_tree(tmp.string());
    log::info(k_log, "{}: writing the base layer", r.name);
    std::string blob_path = cache_blob_path(dir, c.o.compression);
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
              static_cast<double>(blob.size) / 1e6, blob.entries, util::seconds_since(start));
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
    l.blob_path = cache_blob_path(dir, c.o.compression);
    l.blob =
        TRY(write_layer(upper.string(), TreeKind::upper, c.epoch, c.o.compression, l.blob_path, base.rootfs.string()));
    l.created_by = "nodectl image build " + r.name + ":" +
                   (r.packages.empty() ? "" : " packages " + util::join(r.packages, ",") + ";") + " " +
                   std::to_string(r.users.size()) + " user(s), " + std::to_string(r.files.size()) + " file(s), " +
                   std::to_string(r.runs.size()) + " run(s)";
    fs::remove_all(upper, ec);
    fs::remove_all(work, ec);
    fs::remove_all(merged, ec);
    TRY_VOID(cache_store(dir, key, l, c.o.compression));
    log::info(k_log, "{}: layer {} ({:.1f} MB, {} entries) in {:.1f}s", r.name, l.blob.digest.substr(7, 12),
              static_cast<double>(l.blob.size) / 1e6, l.blob.entries, util::seconds_since(start));
    return l;
}

// The names of the images to build (every recipe with --all), each checked to have a recipe, and
// every --arg and --secret checked to be declared by a recipe being built (or its base), each
// required secret given and every secret file readable: all before anything is built.
Result<std::vector<std::string>> images_to_build(const std::map<std::string, Recipe>& recipes, const BuildOptions& o) {
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
            return make_error(ErrorCode::usage, "no recipe '" + n + "' in " + o.recipes +
                                                    " (there are: " + util::join(known, ", ") + ")");
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
            return make_error(ErrorCode::usage,
                              "--secret " + s + ": no recipe being built declares [secrets." + s + "]");
        }
        if (::access(file.c_str(), R_OK) != 0) {
            return make_error(ErrorCode::usage,
                              "--secret " + s + ": cannot read " + file + ": " + std::strerror(errno));
        }
    }
    return names;
}

}  // namespace

Result<std::vector<BuiltImage>> build(const BuildOptions& o) {
    auto recipes = TRY(load_recipes(o.recipes));
    std::vector<std::string> names = TRY(images_to_build(recipes, o));
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
        auto img = TRY(write_image(o.out, r.name, layers, config, c.epoch));
        img.seconds = util::seconds_since(start);
        log::info(k_log, "{}: {} {} ({:.1f} MB compressed){}", r.name, img.reference, img.manifest_digest,
                  static_cast<double>(img.compressed_size) / 1e6, img.cached ? ", all layers cached" : "");
        TRY_VOID(import_image(o, img));
        out.push_back(std::move(img));
    }
    return out;
}

}  // namespace nodectl::image

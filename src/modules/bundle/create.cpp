// `bundle create`: gathers the pieces (k3s release assets, the .deb closure and its index, OCI
// image archives, the profile with its includes), hashes each once, writes manifest.json and then
// streams the pieces into one pax tar. The pieces are already compressed, so the tar is not.
// Entries are sorted, owned by 0:0 and dated SOURCE_DATE_EPOCH (or 0): the same inputs give the
// same bytes. Every piece is hashed again while it is written, so a file that changed in between
// fails the run instead of producing a bundle that contradicts its own manifest. The file appears
// under its name only complete and synced (written as NAME.part, renamed).
#include "modules/bundle/bundle.hpp"
#include "modules/k3s/release.hpp"
#include "modules/bundle/detail.hpp"
#include "util/log.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/tar_writer.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nodectl::bundle {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_log = "bundle";

// One entry to write: a file on disk, or bytes made here (debs/Packages).
struct Staged {
    Piece piece;
    std::string source;  // file to copy; empty when `content` is the data
    std::string content;
    bool executable = false;
};

// A directory removed with everything in it when it goes out of scope.
class ScratchDir {
public:
    static Result<ScratchDir> make(const fs::path& parent, const std::string& prefix) {
        std::string pattern = (parent / (prefix + ".XXXXXX")).string();
        if (!::mkdtemp(pattern.data())) {
            return errno_error("cannot create a temporary dir in " + parent.string());
        }
        return ScratchDir(pattern);
    }
    ScratchDir(ScratchDir&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}
    ScratchDir& operator=(ScratchDir&&) = delete;
    ~ScratchDir() {
        if (!m_path.empty()) {
            std::error_code ec;
            fs::remove_all(m_path, ec);
        }
    }
    const std::string& path() const { return m_path; }

private:
    explicit ScratchDir(std::string path) : m_path(std::move(path)) {}
    std::string m_path;
};

Result<Staged> stage_file(const fs::path& source, std::string path, PieceKind kind) {
    std::error_code ec;
    auto st = fs::status(source, ec);
    if (ec || !fs::is_regular_file(st)) {
        return make_error(ErrorCode::io, source.string() + ": not a readable regular file");
    }
    Staged s;
    s.source = source.string();
    s.piece.path = std::move(path);
    s.piece.kind = kind;
    s.piece.size = fs::file_size(source, ec);
    s.piece.sha256 = util::sha256_file_hex(s.source);
    s.executable = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
    if (ec || s.piece.sha256.empty()) {
        return make_error(ErrorCode::io, source.string() + ": cannot read");
    }
    return s;
}

Staged stage_bytes(std::string path, std::string content, PieceKind kind) {
    Staged s;
    s.piece.path = std::move(path);
    s.piece.kind = kind;
    s.piece.size = content.size();
    s.piece.sha256 = util::sha256_hex(content);
    s.content = std::move(content);
    return s;
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.pop_back();
    }
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) {
        ++i;
    }
    return s.substr(i);
}

// k3s/<every file of the release dir>, after the release's own checksum file vouched for them.
Result<std::vector<Staged>> stage_k3s(const std::string& dir, Manifest& m) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return make_error(ErrorCode::io, "--k3s-dir " + dir + ": not a directory");
    }
    std::vector<fs::path> files;
    std::vector<std::string> archs;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (!e.is_regular_file()) {
            continue;
        }
        files.push_back(e.path());
        auto name = e.path().filename().string();
        if (name.starts_with("sha256sum-") && name.ends_with(".txt")) {
            archs.push_back(name.substr(10, name.size() - 14));
        }
    }
    if (ec) {
        return make_error(ErrorCode::io, "--k3s-dir " + dir + ": " + ec.message());
    }
    if (archs.size() != 1) {
        return make_error(ErrorCode::io, "--k3s-dir " + dir + ": needs exactly one sha256sum-<arch>.txt (found " +
                                             std::to_string(archs.size()) + "); a bundle holds one architecture");
    }
    auto release = k3s::release_from_dir(dir, archs[0]);
    if (!release) {
        return make_error(ErrorCode::io, "--k3s-dir " + dir + ": " + release.error().message);
    }
    m.k3s_arch = archs[0];
    m.k3s_version = release->version;
    if (auto v = util::read_file((fs::path(dir) / "version").string())) {
        m.k3s_version = trim(*v);
    }
    std::vector<Staged> out;
    for (const auto& f : files) {
        out.push_back(TRY(stage_file(f, "k3s/" + f.filename().string(), PieceKind::k3s)));
    }
    return out;
}

// profile/<path relative to the profile's folder>; when an include lies outside that folder,
// relative to the deepest folder holding them all, so include paths still resolve.
Result<std::vector<Staged>> stage_profile(const Profile& profile, const std::string& file, Manifest& m) {
    std::vector<fs::path> files;
    for (const auto& f : profile.files()) {
        files.push_back(fs::weakly_canonical(fs::absolute(f)));
    }
    fs::path main = fs::weakly_canonical(fs::absolute(file));
    fs::path root = main.parent_path();
    for (const auto& f : files) {
        while (!f.lexically_relative(root).empty() && *f.lexically_relative(root).begin() == "..") {
            root = root.parent_path();
        }
    }
    std::vector<Staged> out;
    std::set<std::string> seen;
    for (const auto& f : files) {
        std::string rel = "profile/" + f.lexically_relative(root).generic_string();
        if (!seen.insert(rel).second) {
            continue;
        }
        out.push_back(TRY(stage_file(f, rel, PieceKind::profile)));
    }
    m.profile = "profile/" + main.lexically_relative(root).generic_string();
    return out;
}

std::string os_release_codename() {
    auto text = util::read_file("/etc/os-release").value_or("");
    auto pos = text.find("VERSION_CODENAME=");
    if (pos == std::string::npos) {
        return {};
    }
    auto end = text.find('\n', pos);
    auto v = text.substr(pos + 17, end == std::string::npos ? std::string::npos : end - pos - 17);
    v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
    return v;
}

// The k3s name of an architecture and dpkg's name differ only for 32-bit ARM.
std::string dpkg_arch_of_k3s(const std::string& arch) {
    return arch == "arm" ? "armhf" : arch;
}

Result<std::vector<Staged>> stage_debs(const std::vector<std::string>& packages, const std::string& deb_dir,
                                       const std::string& apt_get, const fs::path& scratch_parent, Manifest& m,
                                       std::optional<ScratchDir>& scratch) {
    std::string dir = deb_dir;
    if (dir.empty()) {
        scratch.emplace(TRY(ScratchDir::make(scratch_parent, ".nodectl-bundle-debs")));
        dir = scratch->path();
        log::info(k_log, "downloading the dependency closure of {} package(s) with apt", packages.size());
        auto start = std::chrono::steady_clock::now();
        TRY_VOID(download_debs(packages, dir, apt_get));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        log::info(k_log, "apt download took {:.1f}s", static_cast<double>(ms.count()) / 1000.0);
    }
    std::vector<DebInfo> debs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".deb") {
            debs.push_back(TRY(read_deb(e.path().string())));
        }
    }
    if (ec) {
        return make_error(ErrorCode::io, dir + ": " + ec.message());
    }
    if (debs.empty()) {
        return make_error(ErrorCode::io, dir + ": no .deb files");
    }
    std::set<std::string> archs;
    std::map<std::string, std::string> names;  // flat-repo name -> source, to refuse two versions
    std::vector<Staged> out;
    for (const auto& d : debs) {
        if (d.architecture != "all") {
            archs.insert(d.architecture);
        }
        if (auto [it, fresh] = names.emplace(d.name, d.path); !fresh) {
            return make_error(ErrorCode::io,
                              "two .debs would both be debs/" + d.name + ": " + it->second + " and " + d.path);
        }
        Staged s;
        s.source = d.path;
        s.piece = {"debs/" + d.name, d.size, d.sha256, PieceKind::deb};
        out.push_back(std::move(s));
    }
    if (archs.size() > 1) {
        return make_error(ErrorCode::io, "the .debs mix architectures; a bundle holds one");
    }
    m.deb_arch = archs.empty() ? "all" : *archs.begin();
    if (m.has_k3s() && !archs.empty() && m.deb_arch != dpkg_arch_of_k3s(m.k3s_arch)) {
        return make_error(ErrorCode::io, "the .debs are " + m.deb_arch + " but k3s is " + m.k3s_arch +
                                             ": a bundle holds one architecture (apt downloads for this machine's)");
    }
    m.deb_release = os_release_codename();
    m.packages = packages;
    out.push_back(stage_bytes("debs/Packages", packages_index(std::move(debs)), PieceKind::index));
    return out;
}

util::TarEntry header(const std::string& path, uint64_t size, bool executable, int64_t mtime) {
    util::TarEntry e;
    e.path = path;
    e.mode = executable ? 0755 : 0644;
    e.size = size;
    e.mtime = mtime;
    return e;
}

Result<void> write_piece(util::TarWriter& tar, const Staged& s, int64_t mtime) {
    TRY_VOID(as_result(tar.add(header(s.piece.path, s.piece.size, s.executable, mtime)), ErrorCode::io));
    if (s.source.empty()) {
        return as_result(tar.data(s.content.data(), s.content.size()), ErrorCode::io);
    }
    std::ifstream in(s.source, std::ios::binary);
    if (!in) {
        return errno_error(s.source);
    }
    util::Sha256 sha;
    uint64_t total = 0;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        auto n = static_cast<size_t>(in.gcount());
        if (n == 0) {
            break;
        }
        total += n;
        if (total > s.piece.size) {
            break;
        }
        sha.update(buf.data(), n);
        TRY_VOID(as_result(tar.data(buf.data(), n), ErrorCode::io));
    }
    if (total != s.piece.size || sha.final_hex() != s.piece.sha256) {
        return make_error(ErrorCode::io, s.source + " changed while the bundle was being written");
    }
    return Ok{};
}

Result<void> write_archive(int fd, const std::string& part, const std::string& manifest,
                           const std::vector<Staged>& staged, int64_t mtime) {
    util::TarWriter tar;
    if (auto opened = tar.open_fd(fd); !opened) {
        return make_error(ErrorCode::io, part + ": " + opened.error());
    }
    TRY_VOID(as_result(tar.add(header(std::string(k_manifest_name), manifest.size(), false, mtime)), ErrorCode::io));
    TRY_VOID(as_result(tar.data(manifest.data(), manifest.size()), ErrorCode::io));
    for (const auto& s : staged) {
        TRY_VOID(write_piece(tar, s, mtime));
    }
    if (auto closed = tar.close(); !closed) {
        return make_error(ErrorCode::io, part + ": " + closed.error());
    }
    return Ok{};
}

}  // namespace

std::vector<std::string> packages_for_profile(const Profile& profile) {
    std::vector<std::string> out;
    auto add = [&](std::initializer_list<std::string_view> names) {
        for (auto n : names) {
            if (std::find(out.begin(), out.end(), n) == out.end()) {
                out.emplace_back(n);
            }
        }
    };
    const auto& t = profile.table();
    if (t.contains("base")) {
        for (const auto& p : profile.section("base").strings("packages")) {
            add({p});
        }
    }
    if (t.contains("harden")) {
        add({"sudo", "libpam-pwquality", "nftables", "auditd", "fail2ban", "python3-systemd", "unattended-upgrades",
             "systemd-timesyncd", "apparmor", "apparmor-utils", "aide", "aide-common"});
        // The hardening services step installs these too (by default libpam-tmpdir, debsums, ...).
        for (const auto& p : profile.section("harden").section("services").strings("extra_packages")) {
            add({p});
        }
    }
    if (t.contains("runtime") || t.contains("k3s")) {
        add({"containerd", "runc", "containernetworking-plugins"});
    }
    return out;
}

namespace {

// 1. Stage: every input as a piece (the profile and its files, k3s, images, the packages' .debs,
//    which are downloaded into `scratch`), recorded in the manifest's sections.
Result<std::vector<Staged>> stage_inputs(const CreateOptions& o, const fs::path& out, Manifest& m,
                                         std::optional<ScratchDir>& scratch) {
    std::vector<Staged> staged;
    auto append = [&](std::vector<Staged> more) { std::move(more.begin(), more.end(), std::back_inserter(staged)); };
    std::optional<Profile> profile;
    if (!o.profile.empty()) {
        profile.emplace(TRY(load_profile(o.profile)));
        append(TRY(stage_profile(*profile, o.profile, m)));
    }
    if (!o.k3s_dir.empty()) {
        append(TRY(stage_k3s(o.k3s_dir, m)));
    }
    for (const auto& image : o.images) {
        append({TRY(stage_file(image, "images/" + fs::path(image).filename().string(), PieceKind::image))});
    }
    std::vector<std::string> packages;
    if (o.packages) {
        packages = *o.packages;
    } else {
        packages = {"containerd", "runc", "containernetworking-plugins"};
        if (profile) {
            for (auto& p : packages_for_profile(*profile)) {
                if (std::find(packages.begin(), packages.end(), p) == packages.end()) {
                    packages.push_back(std::move(p));
                }
            }
        }
    }
    if (!packages.empty() || !o.deb_dir.empty()) {
        append(TRY(stage_debs(packages, o.deb_dir, o.apt_get, out.parent_path(), m, scratch)));
    }
    return staged;
}

// 2. List: the pieces sorted by path (the archive's order), each path once and safe to extract.
Result<void> list_pieces(std::vector<Staged>& staged, Manifest& m) {
    std::sort(staged.begin(), staged.end(),
              [](const Staged& a, const Staged& b) { return a.piece.path < b.piece.path; });
    for (size_t i = 1; i < staged.size(); ++i) {
        if (staged[i].piece.path == staged[i - 1].piece.path) {
            return make_error(ErrorCode::usage, "two inputs would both be " + staged[i].piece.path + " in the bundle");
        }
    }
    for (const auto& s : staged) {
        if (!detail::safe_relative_path(s.piece.path)) {
            return make_error(ErrorCode::usage, "cannot store '" + s.piece.path + "' in a bundle");
        }
        m.pieces.push_back(s.piece);
    }
    return Ok{};
}

// 3. Write: OUT.part, synced and closed (a failed write can show only at close, on NFS), renamed
//    to OUT, the directory synced; on failure no .part is left.
Result<void> write_bundle(const fs::path& out, const std::string& manifest, const std::vector<Staged>& staged,
                          int64_t mtime) {
    std::string part = out.string() + ".part";
    util::Fd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        return errno_error("cannot write " + part);
    }
    auto written = write_archive(fd.get(), part, manifest, staged, mtime);
    if (written && ::fsync(fd.get()) != 0) {
        written = errno_error("cannot sync " + part);
    }
    if (written && ::close(fd.release()) != 0) {
        written = errno_error("cannot write " + part);
    }
    fd.reset();
    if (written && ::rename(part.c_str(), out.c_str()) != 0) {
        written = errno_error("cannot rename " + part + " to " + out.string());
    }
    if (!written) {
        ::unlink(part.c_str());
        return written;
    }
    if (util::Fd dir(::open(out.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir) {
        (void)::fsync(dir.get());  // best effort: the bundle itself is complete and synced
    }
    return Ok{};
}

}  // namespace

Result<Manifest> create(const CreateOptions& o) {
    if (o.out.empty()) {
        return make_error(ErrorCode::usage, "no output file");
    }
    fs::path out = fs::absolute(o.out);
    Manifest m;
    m.nodectl_version = NODECTL_VERSION;
    int64_t epoch = util::source_date_epoch();
    m.created = util::format_utc(epoch >= 0 ? epoch : static_cast<int64_t>(std::time(nullptr)));
    std::optional<ScratchDir> scratch;  // the downloaded .debs live until the bundle is written
    auto staged = TRY(stage_inputs(o, out, m, scratch));
    TRY_VOID(list_pieces(staged, m));
    std::string manifest = detail::manifest_json(m);
    m.digest = util::sha256_hex(manifest);
    TRY_VOID(write_bundle(out, manifest, staged, epoch >= 0 ? epoch : 0));
    return m;
}

}  // namespace nodectl::bundle

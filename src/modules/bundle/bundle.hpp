// The offline bundle: one uncompressed pax tar that carries everything a node needs without a
// network (k3s release assets, the .deb closure with an apt index, OCI image archives, the
// profile). `manifest.json` comes first and lists every other entry with its size and sha256, so
// a bundle is verified in one streaming pass, and extracted only when everything matched.
#pragma once

#include "nodectl/config.hpp"
#include "nodectl/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::bundle {

inline constexpr int k_format_version = 1;
inline constexpr std::string_view k_manifest_name = "manifest.json";

enum class PieceKind { k3s, deb, image, profile, index };
std::string_view kind_name(PieceKind kind);

struct Piece {
    std::string path;  // inside the bundle, e.g. "debs/runc_1.1.5+ds1-1+deb12u1_amd64.deb"
    uint64_t size = 0;
    std::string sha256;  // lower-case hex
    PieceKind kind = PieceKind::deb;
};

struct Manifest {
    int format = k_format_version;
    std::string nodectl_version;
    std::string created;  // ISO 8601 UTC
    std::string k3s_version;  // empty without k3s (or when the release dir had no `version`)
    std::string k3s_arch;  // "amd64", "arm64", "arm"; empty without k3s
    std::string deb_arch;  // dpkg architecture of the .debs; empty without packages
    std::string deb_release;  // VERSION_CODENAME of the system apt resolved on
    std::vector<std::string> packages;  // the packages asked for (the closure is in pieces)
    std::string profile;  // bundle path of the main profile, e.g. "profile/site.toml"
    std::vector<Piece> pieces;  // every entry but manifest.json, sorted by path
    std::string digest;  // sha256 of manifest.json as stored; identifies the bundle

    bool has_k3s() const { return !k3s_arch.empty(); }
    // Bundle path of the k3s binary of the release ("k3s/k3s", "k3s/k3s-arm64", "k3s/k3s-armhf").
    std::optional<std::string> k3s_binary() const;
    // Bundle path of the airgap images archive, when the release dir had one.
    std::optional<std::string> k3s_airgap_images() const;
    // True when the bundle holds a flat apt repository: `deb [trusted=yes] file:/DIR/debs ./`.
    bool has_debs() const;
    std::vector<std::string> image_paths() const;
    const Piece* find(std::string_view path) const;
};

// The packages a node with this profile installs: base.packages, the hardening tools when
// [harden] is present, the container runtime when [runtime] or [k3s] is present. In order, once.
std::vector<std::string> packages_for_profile(const Profile& profile);

struct CreateOptions {
    std::string out;  // the bundle file; written as OUT.part, then renamed
    std::string profile;  // may be empty (library callers); the CLI requires one
    std::string k3s_dir;  // release-shaped dir: sha256sum-<arch>.txt, k3s[-arm64|-armhf], ...
    std::vector<std::string> images;  // OCI archives, stored as images/<basename>
    // Packages whose closure apt downloads; nullopt = containerd, runc, containernetworking-plugins
    // and packages_for_profile(). Empty = no packages.
    std::optional<std::vector<std::string>> packages;
    // Take the .debs from this dir instead of asking apt (already downloaded, or tests).
    std::string deb_dir;
    std::string apt_get = "apt-get";
};

// Builds the bundle. Entries are sorted, owned by 0:0 and dated SOURCE_DATE_EPOCH (or 0), so
// the same inputs with SOURCE_DATE_EPOCH set give the same bytes.
Result<Manifest> create(const CreateOptions& options);

// Reads the bundle once and checks every entry against the manifest. The error names the entry.
// An error about what the bundle holds (damaged, tampered, incomplete, not a bundle) has
// ErrorCode::damaged; a file that cannot be read or written at all, ErrorCode::io.
Result<Manifest> verify(const std::string& file);

// Verifies while extracting into a temporary dir beside dest_dir, and renames it into place only
// when everything matched; on failure nothing is left. A dest_dir that already holds this bundle
// (same manifest digest, every piece present with its size) is kept as it is.
Result<Manifest> extract(const std::string& file, const std::string& dest_dir);

// apt's part, separate so that it can be tested and reused.
// Downloads the dependency closure of `packages` into `dir` as if nothing were installed.
Result<void> download_debs(const std::vector<std::string>& packages, const std::string& dir,
                           const std::string& apt_get = "apt-get");

struct DebInfo {
    std::string path;  // where the .deb is now
    std::string name;  // PACKAGE_VERSION_ARCH.deb, epoch dropped: its name in a flat repo
    std::string control;  // the control paragraph, without its final newline
    std::string package, version, architecture;
    uint64_t size = 0;
    std::string sha256;
};

// Reads a .deb (an ar archive) and the `control` file inside its control.tar.{xz,zst,gz}.
Result<DebInfo> read_deb(const std::string& path);
// A flat-repository `Packages` index: each paragraph is the control file plus
// Filename: ./NAME, Size and SHA256, sorted by name. apt reads it with
// `deb [trusted=yes] file:/DIR ./` when every .deb sits in DIR under its `name`.
std::string packages_index(std::vector<DebInfo> debs);

}  // namespace nodectl::bundle

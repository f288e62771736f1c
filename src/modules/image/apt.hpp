// apt on the operator's machine, with its own lists, status and .deb cache (one per suite under
// CACHE/apt/): it resolves the package versions that enter a layer's cache key and downloads the
// .debs the builds install. Internal to the image module.
#pragma once

#include "nodectl/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nodectl::image::detail {

struct Apt {
    std::filesystem::path root;  // CACHE/apt/<suite>
    std::string suite;
    std::string mirror;

    std::string sources_line() const { return "deb " + mirror + " " + suite + " main"; }
    std::filesystem::path lists() const { return root / "lists"; }
    std::filesystem::path debs() const { return root / "debs"; }

    // apt-get with this cache's directories and `status` as the dpkg status file.
    std::vector<std::string> argv(const std::string& status) const;
    // The directories, sources.list and an empty status file.
    Result<void> prepare() const;
    Result<void> update() const;
    // The suite's signed index as fetched (InRelease, else Release); empty when absent.
    std::string release_text() const;
    // Package versions apt would install on an empty system: "name=version", sorted. The answer
    // depends only on the index, so it is remembered per (Release file, package set): an
    // unchanged archive costs no second resolution.
    Result<std::vector<std::string>> resolve(const std::vector<std::string>& packages) const;
    // The same, always asking apt.
    Result<std::vector<std::string>> resolve_now(const std::vector<std::string>& packages) const;
    // Downloads into debs() what installing `packages` on a system with dpkg status `status` needs.
    Result<void> download(const std::vector<std::string>& packages, const std::string& status) const;
    // The suite's Release date: the default epoch, so that a rebuild from the same archive state
    // gives the same timestamps without the user choosing one.
    int64_t release_date() const;
};

// What mmdebstrap installs for a variant, as apt patterns (for resolving versions).
std::vector<std::string> variant_set(const std::string& variant);

}  // namespace nodectl::image::detail

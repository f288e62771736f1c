// An image as OCI writes it: the config (with what an image inherits from its base), the layout
// OUT/NAME (blobs, manifest, index naming NAME:latest and NAME@DIGEST), the same layout as one
// tar OUT/NAME.oci.tar, and its import into containerd or k3s. Internal to the image module.
#pragma once

#include "modules/image/image.hpp"
#include "modules/image/layer.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace nodectl::image::detail {

// This machine's architecture as OCI names it (dpkg's amd64, arm64; i386 -> 386, armhf -> arm).
std::string oci_arch();

// The image config: `own` with what it leaves empty taken from `base` when `has_base` (a new
// entrypoint drops the base's cmd), PATH defaulted, one diff_id and history entry per layer,
// every date `epoch`.
nlohmann::json image_config(const ImageConfig& base, const ImageConfig& own, bool has_base,
                            const std::vector<Layer>& layers, int64_t epoch, const std::string& arch);

// Writes OUT_DIR/NAME (the layout, replaced whole) and OUT_DIR/NAME.oci.tar, dated `epoch`.
Result<BuiltImage> write_image(const std::string& out_dir, const std::string& name, const std::vector<Layer>& layers,
                               const nlohmann::json& config, int64_t epoch);

// --import: copies the archive into k3s's images directory or runs `ctr images import`.
Result<void> import_image(const BuildOptions& o, const BuiltImage& img);

}  // namespace nodectl::image::detail

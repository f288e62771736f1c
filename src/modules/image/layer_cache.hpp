// The build cache's layers: DIR/layer-gzip and DIR/layer-zstd, each with a .json entry that names
// the key it was built for, in a directory per recipe and key (CACHE/builds/NAME-KEY). Internal
// to the image module.
#pragma once

#include "modules/image/image.hpp"
#include "modules/image/layer.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace nodectl::image::detail {

// Where the layer blob in `comp` is kept in cache directory `dir`.
std::string cache_blob_path(const std::filesystem::path& dir, Compression comp);

// Records `l` (its blob already at cache_blob_path(dir, comp)) as the layer of `key`.
Result<void> cache_store(const std::filesystem::path& dir, const std::string& key, const Layer& l, Compression comp);

// The cached layer in `comp`; when only the other compression is cached, the tar is the same
// (same diff_id), so it is recompressed instead of rebuilt.
std::optional<Layer> cache_lookup(const std::filesystem::path& dir, const std::string& key, Compression comp);

}  // namespace nodectl::image::detail

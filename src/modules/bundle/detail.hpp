// What the bundle's files share but nodectl outside the bundle does not need.
#pragma once

#include "modules/bundle/bundle.hpp"

#include <string>
#include <string_view>

namespace nodectl::bundle::detail {

// manifest.json as stored: the same Manifest always gives the same bytes.
std::string manifest_json(const Manifest& manifest);
// Parses and checks manifest.json (format, kinds, digests, safe relative paths, no duplicates).
Result<Manifest> parse_manifest(std::string_view text);
// A path that is safe to create under a directory: relative, no "", "." or ".." component.
bool safe_relative_path(std::string_view path);

}  // namespace nodectl::bundle::detail

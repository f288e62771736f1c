// What decides a layer besides its base: the recipe's arguments, secrets and copied files, and
// the cache key they hash to. Internal to the image module.
#pragma once

#include "modules/image/image.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nodectl::image::detail {

struct Inputs {
    std::map<std::string, std::string> args;  // every declared argument, resolved
    std::map<std::string, std::string> secrets;  // given secrets this recipe declares: name -> file
};

// The recipe's arguments (given, else their defaults) and the given secrets it declares; a
// required secret that is not given is an error.
Result<Inputs> inputs_for(const Recipe& r, const BuildOptions& o);

// The resolved source of a [[files]] entry.
Result<std::filesystem::path> file_source(const Recipe& r, const RecipeFile& f, const Inputs& in);

// The layer's cache key: the sha256 of everything that decides its bytes (the builder's format
// version, the recipe's text, the base's key, suite, mirror, epoch, the resolved package
// `versions`, the arguments, the secrets' content hashes, and the content, modes and names of
// the copied files).
std::string key_of(const Recipe& r, const Inputs& in, const std::vector<std::string>& versions,
                   const std::string& base_key, const BuildOptions& o, int64_t epoch);

}  // namespace nodectl::image::detail

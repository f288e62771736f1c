// OCI images built from recipes (images/<name>/recipe.toml) without a container daemon.
//
// A base recipe becomes a Debian rootfs (mmdebstrap) and the one layer every image on it shares;
// an image recipe adds one application layer: what its packages, users, files and runs changed
// in that rootfs (an overlayfs upper directory, whiteouts for removals). Layers are written with
// libarchive in a fixed order and with fixed metadata, so the same inputs give the same digests.
#pragma once

#include "nodectl/result.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nodectl::image {

struct RecipeUser {
    std::string name;
    int64_t uid = 0;
    int64_t gid = 0;
    std::string home;
    bool system = false;
    std::string where;  // file:line:col of the [[users]] table
};

struct RecipeFile {
    std::string src;  // as written (may hold ${args.NAME})
    std::string dest;
    unsigned mode = 0644;
    std::string owner;  // numeric or a name in the image
    std::string group;
    std::string where;
};

struct RecipeRun {
    std::string command;
    std::vector<std::string> secrets;
    std::string when;  // "" or "args.NAME"
    std::string where;
};

struct RecipeArg {
    std::string default_value;
    std::string doc;
};

struct RecipeSecret {
    std::string doc;
    bool required = false;
};

struct ImageConfig {
    std::vector<std::string> entrypoint, cmd;
    std::map<std::string, std::string> env, labels;
    std::string workdir, user, stop_signal;
    std::vector<std::string> exposed_ports, volumes;
};

struct Recipe {
    std::string name;
    std::string file;  // path of recipe.toml
    std::string dir;  // its folder; files[].src is relative to it
    std::string suite;  // empty in an image recipe until resolved from its base
    std::string variant;  // base recipes only
    std::string base;  // empty: this recipe is a base
    std::vector<std::string> packages;
    std::vector<RecipeUser> users;
    std::vector<RecipeFile> files;
    std::vector<RecipeRun> runs;
    std::map<std::string, RecipeArg> args;
    std::map<std::string, RecipeSecret> secrets;
    ImageConfig config;
    std::string text;  // recipe.toml as read (part of the cache key)

    bool is_base() const { return base.empty(); }
};

// Reads and checks one recipe. Every problem is reported at once, each "file:line:col: reason"
// naming the key; unknown keys are errors.
Result<Recipe> load_recipe(const std::string& file);
// The recipes DIR/*/recipe.toml, sorted by name, bases resolved (suite inherited, no cycles,
// every base present). A problem in any of them fails the whole call.
Result<std::map<std::string, Recipe>> load_recipes(const std::string& dir);

enum class Compression { gzip, zstd };

struct BuildOptions {
    std::string recipes = "images";
    std::string out = "build/images";
    std::vector<std::string> names;  // empty with all = true
    bool all = false;
    std::map<std::string, std::string> args;  // --arg NAME=VALUE
    std::map<std::string, std::string> secrets;  // --secret NAME=FILE (paths, never contents)
    Compression compression = Compression::gzip;
    std::string mirror = "http://deb.debian.org/debian";
    std::string cache;  // built layers and base trees (builds/); default: cache_dir()/image
    std::string apt_cache;  // apt lists and downloaded .debs per suite; default: cache_dir()/image/apt
    bool no_cache = false;
    std::string import;  // "", "containerd", "containerd=SOCKET", "k3s"
    std::string ns = "k8s.io";  // containerd namespace of --import containerd
    std::string k3s_images_dir = "/var/lib/rancher/k3s/agent/images";
};

struct BuiltImage {
    std::string name;
    std::string reference;  // localhost/nodectl/NAME:latest
    std::string layout;  // OUT/NAME
    std::string archive;  // OUT/NAME.oci.tar
    std::string manifest_digest;  // sha256:...
    std::vector<std::string> layer_digests;
    uint64_t compressed_size = 0;  // sum of the layer blobs
    bool cached = false;  // every layer came from the cache
    double seconds = 0;
};

Result<std::vector<BuiltImage>> build(const BuildOptions& options);

// ${args.NAME} replaced by the argument's value; an unknown name sets `error` ("WHERE: ...").
std::string substitute_args(const std::string& text, const std::map<std::string, std::string>& values,
                            const std::string& where, std::string& error);

}  // namespace nodectl::image

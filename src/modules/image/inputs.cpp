#include "modules/image/inputs.hpp"

#include "util/digest.hpp"

#include <algorithm>
#include <string_view>

#include <sys/stat.h>

namespace nodectl::image::detail {

namespace fs = std::filesystem;

namespace {

// Bump when the builder writes different bytes for the same inputs: old cache entries then miss.
constexpr std::string_view k_format = "nodectl-image-2";

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

}  // namespace

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
            return make_error(ErrorCode::usage,
                              r.file + ": build secret '" + name + "' is required: --secret " + name + "=FILE");
        }
    }
    return in;
}

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

}  // namespace nodectl::image::detail

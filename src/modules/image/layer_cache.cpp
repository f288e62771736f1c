#include "modules/image/layer_cache.hpp"

#include "util/log.hpp"
#include "modules/image/common.hpp"
#include "util/file.hpp"
#include "util/json.hpp"

#include <nlohmann/json.hpp>

namespace nodectl::image::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string comp_name(Compression c) {
    return c == Compression::zstd ? "zstd" : "gzip";
}

// A layer's entry in the cache: DIR/layer-gzip(.json), DIR/layer-zstd(.json).
std::optional<Layer> read_entry(const fs::path& dir, const std::string& key, Compression comp) {
    std::string base = cache_blob_path(dir, comp);
    auto text = util::read_file(base + ".json");
    if (!text) {
        return std::nullopt;
    }
    try {
        auto parsed = util::parse_json(*text);
        if (!parsed) {
            return std::nullopt;
        }
        const json& j = *parsed;
        if (j.value("key", "") != key) {
            return std::nullopt;
        }
        Layer l;
        l.blob.digest = j.at("digest");
        l.blob.diff_id = j.at("diff_id");
        l.blob.size = j.at("size");
        l.blob.media_type = j.at("media_type");
        l.created_by = j.at("created_by");
        l.blob_path = base;
        l.cached = true;
        std::error_code ec;
        if (fs::file_size(l.blob_path, ec) != l.blob.size || ec) {
            return std::nullopt;
        }
        return l;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::string cache_blob_path(const fs::path& dir, Compression comp) {
    return (dir / ("layer-" + comp_name(comp))).string();
}

Result<void> cache_store(const fs::path& dir, const std::string& key, const Layer& l, Compression comp) {
    json j = {{"key", key},          {"digest", l.blob.digest},         {"diff_id", l.blob.diff_id},
              {"size", l.blob.size}, {"media_type", l.blob.media_type}, {"created_by", l.created_by}};
    std::string file = cache_blob_path(dir, comp) + ".json";
    TRY_VOID(as_result(util::write_file_atomic(file, util::json_text(j, 2) + "\n", 0644), ErrorCode::io));
    return Ok{};
}

std::optional<Layer> cache_lookup(const fs::path& dir, const std::string& key, Compression comp) {
    if (auto l = read_entry(dir, key, comp)) {
        return l;
    }
    Compression other = comp == Compression::zstd ? Compression::gzip : Compression::zstd;
    auto src = read_entry(dir, key, other);
    if (!src) {
        return std::nullopt;
    }
    std::string dest = cache_blob_path(dir, comp);
    auto blob = recompress(src->blob_path, dest, comp);
    if (!blob || blob->diff_id != src->blob.diff_id) {
        return std::nullopt;
    }
    Layer l = *src;
    l.blob = *blob;
    l.blob_path = dest;
    if (!cache_store(dir, key, l, comp)) {
        return std::nullopt;
    }
    log::info(k_log, "layer {} recompressed as {}", src->blob.digest.substr(7, 12), comp_name(comp));
    return l;
}

}  // namespace nodectl::image::detail

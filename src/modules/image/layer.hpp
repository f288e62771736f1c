// Layers: a directory tree as a reproducible, compressed tar (image/layer.cpp).
#pragma once

#include "modules/image/image.hpp"
#include "util/tar_writer.hpp"

#include <string>
#include <vector>

namespace nodectl::image {

enum class TreeKind {
    rootfs,  // a whole root file system: /dev, /proc, /sys, /run, /tmp are kept empty
    upper,  // an overlayfs upper directory: whiteouts (0/0 char devices, opaque dirs) become OCI whiteouts
};

struct LayerBlob {
    std::string digest;  // sha256:... of the compressed blob
    std::string diff_id;  // sha256:... of the uncompressed tar
    uint64_t size = 0;
    std::string media_type;
    uint64_t entries = 0;
};

// A layer as an image uses it: the blob, the file that holds it, its line in the image's history.
struct Layer {
    LayerBlob blob;
    std::string blob_path;
    std::string created_by;
    bool cached = false;  // taken from the build cache
};

// The tree's entries in the order and with the metadata they get in the layer: depth first,
// names in byte order, numeric owners, mtimes clamped to `epoch`, no atime/ctime, only the
// security.capability xattr, hard links as links to the first path. For an upper directory,
// `lower` (if given) is the tree below it: an opaque marker on a directory the lower tree does
// not have hides nothing and is left out.
std::vector<util::TarEntry> tree_entries(const std::string& dir, TreeKind kind, int64_t epoch,
                                         std::vector<std::string>* sources = nullptr, const std::string& lower = {});

// Writes the layer blob to `path` (replaced atomically) and returns its digests.
Result<LayerBlob> write_layer(const std::string& dir, TreeKind kind, int64_t epoch, Compression compression,
                              const std::string& path, const std::string& lower = {});

// The same tar in another compression (a cached layer asked for with --compression).
Result<LayerBlob> recompress(const std::string& from, const std::string& to, Compression compression);

// Removes what a build leaves that no image should carry: apt lists and caches, /var/log/*,
// ldconfig's aux-cache, debconf/dpkg -old files, the build's resolv.conf and policy-rc.d.
void clean_tree(const std::string& dir);

}  // namespace nodectl::image

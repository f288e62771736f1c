// The chroot stage of a build: one sh script that installs a recipe's packages, creates its users,
// copies its files and runs its commands in a tree (mmdebstrap's result for a base, an overlay
// over the base for an image), run in a private mount namespace. Internal to the image module.
#pragma once

#include "modules/image/apt.hpp"
#include "modules/image/image.hpp"
#include "modules/image/inputs.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace nodectl::image::detail {

struct Stage {
    std::string root;  // the tree to change (a merged overlay mount point, or a plain directory)
    std::string lower, upper, work;  // set: mount an overlay at root first
    std::vector<std::string> packages;
    const Apt* apt = nullptr;
};

// The script: mounts (overlay, /proc, /dev, /sys, /run, /tmp, resolv.conf), then the recipe's
// packages, users, files and runs in that order, each announced by an "@@ NAME: ..." line.
Result<std::string> stage_script(const Recipe& r, const Inputs& in, const Stage& s, int64_t epoch);

// Runs `script` (written to DIR/stage.sh, removed afterwards) under `unshare --mount`: every
// mount it makes disappears with it, even on failure.
Result<void> run_stage(const std::string& script, const std::string& dir, const std::string& label);

}  // namespace nodectl::image::detail

// Using a verified offline bundle on nodes: `apply/plan/join --bundle FILE`.
#pragma once

#include "modules/bundle/bundle.hpp"
#include "nodectl/module.hpp"

namespace nodectl::bundle {

constexpr const char* k_node_repo = "/var/lib/nodectl/bundle/debs";
constexpr const char* k_node_sources = "/var/lib/nodectl/bundle/sources.list";

// A bundle verified and unpacked on the operator's machine.
struct Opened {
    Manifest manifest;
    std::string dir;  // the unpacked bundle
    std::string k3s_dir() const { return manifest.has_k3s() ? dir + "/k3s" : ""; }
    std::string debs_dir() const { return manifest.has_debs() ? dir + "/debs" : ""; }
};

// Verifies and unpacks `file` under the cache (NODECTL_CACHE_DIR, else ~/.cache/nodectl), once
// per bundle; a bundle that fails verification is refused with the entry that failed.
Result<Opened> open(const std::string& file);

// Fills in what the modules need from the bundle (ModuleContext's bundle fields) and returns the
// steps that must run first on the host: the bundle's packages copied to the node as a local apt
// repository (only the files that differ), with a sources.list naming only it, so packages then
// install with no network. Nothing without a bundle.
StepList use_on_host(const Opened* bundle, ModuleContext& ctx);
// A host's whole step list: use_on_host's steps, then every module's but `except` (build_steps).
// `ctx` and `bundle` must outlive the steps.
Result<StepList> host_steps(const Opened* bundle, ModuleContext& ctx, std::string_view except = {});

}  // namespace nodectl::bundle

// The node side of an offline bundle: its packages become a local apt repository on the node,
// its k3s release replaces the download. Each file is sent only when the node's copy differs (by
// sha256), so a re-apply sends nothing.
#include "modules/bundle/use.hpp"

#include "util/cache.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <filesystem>
#include <map>
#include <set>

namespace nodectl::bundle {

namespace {

class UploadBundleRepo final : public Step {
public:
    explicit UploadBundleRepo(Opened bundle) : m_bundle(std::move(bundle)) {}
    std::string id() const override { return "bundle/packages"; }
    std::string title() const override { return "bundle packages on the node"; }

    Result<Plan> probe(Target& target) override {
        auto work = TRY(pending(target));
        Plan plan;
        if (!work.send.empty()) {
            uint64_t bytes = 0;
            for (const auto* p : work.send) {
                bytes += p->size;
            }
            plan.changes.push_back({"copy " + std::to_string(work.send.size()) + " package file(s) of the bundle (" +
                                        std::to_string(bytes / 1024) + " KiB) to " + k_node_repo,
                                    ""});
        }
        for (const auto& f : work.remove) {
            plan.changes.push_back({"remove " + std::string(k_node_repo) + "/" + f + " (not in this bundle)", ""});
        }
        if (work.sources_differ) {
            plan.changes.push_back({"write " + std::string(k_node_sources), ""});
        }
        return plan;
    }

    Result<void> apply(Target& target, const Plan&) override {
        auto work = TRY(pending(target));
        Command mk;
        mk.script = "mkdir -p " + std::string(k_node_repo);
        for (const auto& f : work.remove) {
            mk.script += "; rm -f " + shell_quote(std::string(k_node_repo) + "/" + f);
        }
        TRY(target.run_checked(mk, "preparing the bundle's repository"));
        for (const auto* p : work.send) {
            auto name = p->path.substr(5);  // "debs/"
            TRY_VOID(target.upload(m_bundle.dir + "/" + p->path,
                                   {std::string(k_node_repo) + "/" + name, "", 0644, "root", "root"}));
        }
        TRY_VOID(target.write_file({k_node_sources, sources(), 0644, "root", "root"}));
        log::info(target.name(), "bundle packages: {} file(s) sent", work.send.size());
        return Ok{};
    }

private:
    struct Work {
        std::vector<const Piece*> send;
        std::vector<std::string> remove;
        bool sources_differ = false;
    };
    static std::string sources() {
        return "# Written by nodectl: the offline bundle's packages\ndeb [trusted=yes] file:" +
               std::string(k_node_repo) + " ./\n";
    }
    Result<Work> pending(Target& target) {
        Command cmd;
        cmd.mutates = false;
        cmd.script = "cd " + std::string(k_node_repo) +
                     " 2>/dev/null && find . -maxdepth 1 -type f -printf '%f\\n' | sort | "
                     "xargs -r sha256sum; echo @@; cat " +
                     k_node_sources + " 2>/dev/null; true";
        auto r = TRY(target.run_checked(cmd, "reading the node's copy of the bundle packages"));
        auto at = r.out.find("@@\n");
        std::map<std::string, std::string> have;
        for (const auto& line : util::split_lines(r.out.substr(0, at == std::string::npos ? 0 : at))) {
            auto sp = line.find("  ");
            if (sp != std::string::npos) {
                have[line.substr(sp + 2)] = line.substr(0, sp);
            }
        }
        Work w;
        std::set<std::string> wanted;
        for (const auto& p : m_bundle.manifest.pieces) {
            if (!util::starts_with(p.path, "debs/")) {
                continue;
            }
            auto name = p.path.substr(5);
            wanted.insert(name);
            auto it = have.find(name);
            if (it == have.end() || it->second != p.sha256) {
                w.send.push_back(&p);
            }
        }
        for (const auto& [name, sum] : have) {
            if (!wanted.count(name)) {
                w.remove.push_back(name);
            }
        }
        w.sources_differ = at == std::string::npos || r.out.substr(at + 3) != sources();
        return w;
    }
    Opened m_bundle;
};

}  // namespace

Result<Opened> open(const std::string& file) {
    // Verified in full every time, even when an earlier run unpacked it (extract then only
    // compares sizes): a bundle damaged since then is refused, as the operator would expect.
    // The same bundle always unpacks to the same place, so a re-run reuses it.
    auto manifest = TRY(verify(file));
    Opened out;
    out.dir = cache_dir() + "/bundles/" + manifest.digest.substr(0, 16);
    std::error_code ec;
    std::filesystem::create_directories(cache_dir() + "/bundles", ec);
    out.manifest = TRY(extract(file, out.dir));
    return out;
}

StepList use_on_host(const Opened* bundle, ModuleContext& ctx) {
    StepList out;
    if (!bundle) {
        return out;
    }
    ctx.bundle_k3s_dir = bundle->k3s_dir();
    ctx.bundle_k3s_version = bundle->manifest.k3s_version;
    if (bundle->manifest.has_debs()) {
        ctx.bundle_apt_sources = k_node_sources;
        out.push_back(std::make_unique<UploadBundleRepo>(*bundle));
    }
    return out;
}

Result<StepList> host_steps(const Opened* bundle, ModuleContext& ctx, std::string_view except) {
    StepList out = use_on_host(bundle, ctx);
    for (auto& s : TRY(build_steps(ctx, except))) {
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace nodectl::bundle

// InstallK3sRelease: /usr/local/bin/k3s (plus kubectl/crictl/ctr links) and, when asked, the
// release's airgap images. The expected sha256 comes from the release's own sha256 file (fetched
// online into nodectl's cache, or from a verified bundle); a node whose binary already has that
// hash is left alone. Files are checked with OpenSSL on the operator's side before they are sent.
#include "modules/k3s/steps.hpp"

#include "util/cache.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace nodectl::k3s {

namespace {

// One round trip: the node's architecture, the installed hashes, and the link states.
constexpr const char* k_probe =
    "echo \"arch=$(uname -m)\"\n"
    "echo \"binary=$(sha256sum /usr/local/bin/k3s 2>/dev/null | cut -d' ' -f1)\"\n"
    "echo \"record=$(cat /var/lib/nodectl/k3s/release 2>/dev/null)\"\n"
    "for c in kubectl crictl ctr; do l=/usr/local/bin/$c; if [ \"$(readlink $l 2>/dev/null)\" = /usr/local/bin/k3s ]; then echo \"link=$c ok\"; "
    "elif [ -e $l ]; then echo \"link=$c other\"; elif p=$(command -v $c 2>/dev/null); then echo \"link=$c elsewhere $p\"; else echo \"link=$c missing\"; fi; done\n";

}  // namespace

Result<InstallK3sRelease::State> InstallK3sRelease::state(Target& target) {
    Command cmd;
    cmd.mutates = false;
    cmd.script = k_probe;
    if (m_settings.airgap_images) {
        cmd.script += "echo \"images=$(cat " + std::string(k_images_dir) +
                      "/k3s-airgap-images-*.tar.zst 2>/dev/null | sha256sum | cut -d' ' -f1)\"\n";
    }
    auto r = TRY(target.run_checked(cmd, "reading the installed k3s"));
    State st;
    std::string uname;
    for (const auto& line : util::split_lines(r.out)) {
        auto eq = line.find('=');
        auto key = line.substr(0, eq), value = eq == std::string::npos ? "" : util::trim(line.substr(eq + 1));
        if (key == "arch") {
            uname = value;
        } else if (key == "binary") {
            st.binary_sha256 = value;
        } else if (key == "record") {
            st.record = value;
        } else if (key == "images") {
            st.images_sha256 = value;
        } else if (key == "link" && value.ends_with(" missing")) {
            st.links_missing.push_back(value.substr(0, value.find(' ')));
        }
    }
    st.arch = arch_from_uname(uname);
    if (st.arch.empty()) {
        return make_error(ErrorCode::unsupported, "k3s has no release for this machine's architecture (" + uname + ")");
    }
    return st;
}

Result<Release> InstallK3sRelease::release(const std::string& arch) {
    if (m_release && m_release->arch == arch) {
        return *m_release;
    }
    if (!m_settings.release_dir.empty()) {
        m_release = TRY(release_from_dir(m_settings.release_dir, arch));
        if (m_release->version.empty()) {
            m_release->version = m_settings.version;  // a bundle's manifest says which release it is
        }
    } else {
        ReleaseRequest req;
        req.version = m_settings.version;
        req.channel = m_settings.channel;
        req.arch = arch;
        req.release_url = m_settings.release_url;
        req.channel_url = m_settings.channel_url;
        req.allow_insecure_http = m_settings.allow_insecure_http;
        req.airgap_images = m_settings.airgap_images;
        req.cache_dir = cache_dir() + "/k3s";
        m_release = TRY(fetch_release(req));
    }
    if (!m_settings.version.empty() && !m_release->version.empty() && m_release->version != m_settings.version) {
        return make_error(ErrorCode::config,
                          "the release found is " + m_release->version + ", but k3s.version is " + m_settings.version);
    }
    if (m_settings.airgap_images && m_release->airgap_images_path.empty()) {
        return make_error(ErrorCode::config, "k3s.airgap_images is on, but the release (" + m_release->version +
                                                 ") has no airgap images for " + arch);
    }
    return *m_release;
}

Result<Plan> InstallK3sRelease::probe(Target& target) {
    auto st = TRY(state(target));
    auto rel = TRY(release(st.arch));
    Plan plan;
    if (st.binary_sha256 != rel.binary_sha256) {
        plan.changes.push_back({(st.binary_sha256.empty() ? "install " : "replace ") + std::string(k_binary) +
                                    " with k3s " + rel.version + " (" + st.arch + ", sha256 " +
                                    rel.binary_sha256.substr(0, 12) + "…)",
                                ""});
    } else if (st.record != rel.version + " " + rel.binary_sha256) {
        plan.changes.push_back({"record the installed k3s release (" + rel.version + ")", ""});
    }
    for (const auto& l : st.links_missing) {
        plan.changes.push_back({"link /usr/local/bin/" + l + " -> k3s", ""});
    }
    if (m_settings.airgap_images && st.images_sha256 != rel.airgap_images_sha256) {
        plan.changes.push_back(
            {"install the airgap images of k3s " + rel.version + " into " + std::string(k_images_dir), ""});
    }
    return plan;
}

Result<void> InstallK3sRelease::apply(Target& target, const Plan&) {
    auto st = TRY(state(target));
    auto rel = TRY(release(st.arch));
    Command dirs;
    dirs.script = std::string("mkdir -p /usr/local/bin ") + k_images_dir;
    TRY(target.run_checked(dirs, "creating k3s's directories"));
    if (st.binary_sha256 != rel.binary_sha256) {
        log::info(target.name(), "installing k3s {} ({})", rel.version, st.arch);
        TRY_VOID(verify_cached_asset(rel.binary_path, rel.binary_sha256));
        TRY_VOID(target.upload(rel.binary_path, {k_binary, "", 0755, "root", "root"}));
    }
    if (m_settings.airgap_images && st.images_sha256 != rel.airgap_images_sha256) {
        log::info(target.name(), "installing the airgap images of k3s {}", rel.version);
        std::string name = rel.airgap_images_path.substr(rel.airgap_images_path.rfind('/') + 1);
        TRY_VOID(verify_cached_asset(rel.airgap_images_path, rel.airgap_images_sha256));
        TRY_VOID(
            target.upload(rel.airgap_images_path, {std::string(k_images_dir) + "/" + name, "", 0644, "root", "root"}));
    }
    std::string script = "set -e\nmkdir -p /var/lib/nodectl/k3s\necho " +
                         shell_quote(rel.version + " " + rel.binary_sha256) + " > " + k_release_record + "\n";
    // Like k3s's installer: a command that exists elsewhere (containerd's ctr) keeps its place.
    for (const auto& l : st.links_missing) {
        script += "ln -sf /usr/local/bin/k3s /usr/local/bin/" + l + "\n";
    }
    Command cmd;
    cmd.script = script;
    TRY(target.run_checked(cmd, "linking the k3s commands"));
    return Ok{};
}

}  // namespace nodectl::k3s

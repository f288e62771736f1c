// `nodectl cloud-init render`: #cloud-config user-data that writes the profile, installs a
// sha256-checked nodectl and runs `nodectl firstboot` from runcmd (so a failure shows in
// `cloud-init status`). Emitted with yaml-cpp; checked by `cloud-init schema` in the tests.
#include "modules/firstboot/firstboot.hpp"
#include "modules/firstboot/node_profile.hpp"
#include "nodectl/target.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace nodectl::firstboot {

namespace {

std::string base64(const std::string& data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) {
        return false;
    }
    for (char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

void file_entry(YAML::Emitter& y, const std::string& path, const std::string& content, const char* mode, bool b64) {
    y << YAML::BeginMap;
    y << YAML::Key << "path" << YAML::Value << path;
    y << YAML::Key << "owner" << YAML::Value << "root:root";
    y << YAML::Key << "permissions" << YAML::Value << YAML::SingleQuoted << mode;
    if (b64) {
        y << YAML::Key << "encoding" << YAML::Value << "b64";
        y << YAML::Key << "content" << YAML::Value << base64(content);
    } else {
        y << YAML::Key << "content" << YAML::Value << YAML::Literal << content;
    }
    y << YAML::EndMap;
}

// Downloads with whatever the image has (python3 is there wherever cloud-init is), checks the
// sha256 before anything is installed, and replaces the binary atomically.
std::string fetch_script(const std::string& url, const std::string& sha) {
    return "set -eu\n"
           "url=" +
           shell_quote(url) +
           "\n"
           "sum=" +
           sha +
           "\n"
           "tmp=$(mktemp /usr/local/bin/.nodectl.XXXXXX)\n"
           "trap 'rm -f \"$tmp\"' EXIT\n"
           "if command -v curl >/dev/null; then curl -fsS --retry 5 -o \"$tmp\" \"$url\"\n"
           "else python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \"$url\" \"$tmp\"; fi\n"
           "if ! echo \"$sum  $tmp\" | sha256sum -c --status; then\n"
           "  echo \"nodectl from $url: sha256 $(sha256sum \"$tmp\" | cut -d' ' -f1), expected $sum: refused\" >&2; exit 1\n"
           "fi\n"
           "chmod 755 \"$tmp\" && mv -f \"$tmp\" " +
           std::string(k_binary) +
           "\n"
           "trap - EXIT\n";
}

}  // namespace

Result<std::string> render_cloud_init(const RenderOptions& o) {
    if (!o.binary_preinstalled) {
        if (!util::starts_with(o.binary_url, "http://") && !util::starts_with(o.binary_url, "https://")) {
            return make_error(ErrorCode::usage, "--binary-url must be an http:// or https:// URL");
        }
        if (!is_hex64(o.binary_sha256)) {
            return make_error(ErrorCode::usage, "--binary-sha256 must be 64 hex digits (sha256sum of the binary)");
        }
    }
    auto profile = load_profile(o.profile);
    if (!profile) {
        return make_error(ErrorCode::config, profile.error().message);
    }
    auto np = TRY(node_profile(*profile, o.profile, o.inline_secrets));
    std::string sig_path = o.signature.empty() ? o.profile + ".sig" : o.signature;
    std::optional<std::string> sig;
    if (auto s = util::read_file(sig_path)) {
        if (!np.verbatim) {
            return make_error(ErrorCode::config, sig_path + " signs " + o.profile +
                                                     ", but the machine gets a rewritten profile (includes merged or "
                                                     "source files inlined), which the signature does not match; sign "
                                                     "one self-contained file");
        }
        sig = *s;
    } else if (!o.signature.empty()) {
        return make_error(ErrorCode::config, o.signature + ": " + std::strerror(errno));
    }

    YAML::Emitter y;
    y << YAML::BeginMap;
    y << YAML::Key << "write_files" << YAML::Value << YAML::BeginSeq;
    file_entry(y, k_cloud_init_profile, np.text, "0600", false);
    if (sig) {
        file_entry(y, std::string(k_cloud_init_profile) + ".sig", *sig, "0644", true);
    }
    for (const auto& [path, content] : np.secret_files) {
        file_entry(y, path, content, "0600", true);
    }
    y << YAML::EndSeq;
    y << YAML::Key << "runcmd" << YAML::Value << YAML::BeginSeq;
    if (!o.binary_preinstalled) {
        y << YAML::BeginSeq << "sh"
          << "-c" << YAML::Literal << fetch_script(o.binary_url, o.binary_sha256) << YAML::EndSeq;
    }
    y << YAML::Flow << YAML::BeginSeq << k_binary << "firstboot" << YAML::EndSeq;
    y << YAML::EndSeq;
    y << YAML::EndMap;
    if (!y.good()) {
        return make_error(ErrorCode::internal, "yaml-cpp: " + y.GetLastError());
    }

    std::string out = "#cloud-config\n";
    out += "# Rendered by nodectl " NODECTL_VERSION " from " + o.profile + ".\n";
    out += "# Writes the profile to " + std::string(k_cloud_init_profile) + ", " +
           (o.binary_preinstalled ? std::string("uses the preinstalled ") + k_binary
                                  : "installs nodectl from " + o.binary_url + " (sha256 checked)") +
           " and runs `nodectl firstboot`;\n# `cloud-init status` reports its result, `nodectl status` the details.\n";
    if (!np.references.empty()) {
        out += "# Secrets referenced, not included: the machine must get them another way:\n";
        for (const auto& r : np.references) {
            out += "#   " + r + "\n";
        }
    }
    if (o.inline_secrets && !np.secret_files.empty()) {
        out += "# WARNING: --inline-secrets: this user-data holds " + std::to_string(np.secret_files.size()) +
               " secret file(s); treat it as a secret.\n";
    }
    out += y.c_str();
    out += "\n";
    return out;
}

}  // namespace nodectl::firstboot

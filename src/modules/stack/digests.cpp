// Image references pinned by digest: the manifest digests `nodectl image build --out DIR` recorded
// in its OCI layouts (DIR/NAME/index.json, whose annotation io.containerd.image.name is the
// reference k3s's containerd knows the image by after importing DIR/NAME.oci.tar).
#include "modules/stack/stack.hpp"

#include "util/json.hpp"
#include "util/strings.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

namespace nodectl::stack {

namespace {

constexpr size_t k_max_index_bytes = 64 * 1024;
constexpr int k_max_layouts = 256;

bool digest_pinned(const std::string& ref) {
    return ref.find("@sha256:") != std::string::npos;
}

// The reference -> manifest digest map of every DIR/*/index.json (problems appended, never thrown).
std::map<std::string, std::string> recorded_digests(const std::string& dir, std::vector<std::string>& problems) {
    namespace fs = std::filesystem;
    static const std::regex k_digest("^sha256:[0-9a-f]{64}$");
    std::map<std::string, std::string> out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
        problems.push_back("cannot read " + dir + ": " + ec.message() +
                           " (images.digests_from: the --out of `nodectl image build`)");
        return out;
    }
    std::vector<fs::path> layouts;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) {
            break;
        }
        fs::path index = it->path() / "index.json";
        if (fs::is_regular_file(index, ec) && static_cast<int>(layouts.size()) < k_max_layouts) {
            layouts.push_back(index);
        }
    }
    std::sort(layouts.begin(), layouts.end());
    for (const auto& index : layouts) {
        std::ifstream in(index, std::ios::binary);
        std::string text(k_max_index_bytes + 1, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<size_t>(in.gcount()));
        if (text.size() > k_max_index_bytes) {
            problems.push_back(index.string() + ": larger than 64 KiB: not an index nodectl image build wrote");
            continue;
        }
        auto parsed = util::parse_json(text);
        if (!parsed || !parsed->is_object() || !parsed->contains("manifests") || !(*parsed)["manifests"].is_array()) {
            problems.push_back(index.string() + ": not an OCI image index (no manifests list)");
            continue;
        }
        const nlohmann::json& j = *parsed;
        for (const auto& m : j["manifests"]) {
            if (!m.is_object() || !m.contains("annotations") || !m["annotations"].is_object()) {
                continue;
            }
            const auto& a = m["annotations"];
            auto name = a.find("io.containerd.image.name");
            auto digest = m.find("digest");
            if (name == a.end() || !name->is_string() || digest == m.end() || !digest->is_string()) {
                continue;
            }
            if (!std::regex_match(digest->get<std::string>(), k_digest)) {
                problems.push_back(index.string() + ": the digest of " + name->get<std::string>() +
                                   " is not sha256:<64 hex digits>");
                continue;
            }
            out[name->get<std::string>()] = digest->get<std::string>();
        }
    }
    return out;
}

}  // namespace

Result<void> pin_images(const std::vector<std::string*>& refs, const std::string& digests_from) {
    std::vector<std::string> problems;
    auto recorded = recorded_digests(digests_from, problems);
    if (!problems.empty()) {
        return make_error(ErrorCode::config, util::join(problems, "\n"));
    }
    for (std::string* ref : refs) {
        if (digest_pinned(*ref)) {
            continue;
        }
        if (auto d = recorded.find(*ref); d != recorded.end()) {
            *ref += "@" + d->second;
        }
    }
    return Ok{};
}

std::vector<std::string> unpinned_images(const Site& site) {
    std::vector<std::string> out;
    const auto& i = site.images;
    for (const std::string* ref : {&i.magento, &i.varnish, &i.redis, &i.mariadb_master, &i.mariadb_replica, &i.backup,
                                   &i.mysqld_exporter, &i.redis_exporter, &i.varnish_exporter, &i.apache_exporter}) {
        bool exporter = ref == &i.mysqld_exporter || ref == &i.redis_exporter || ref == &i.varnish_exporter ||
                        ref == &i.apache_exporter;
        if ((ref == &i.backup && !site.backup.enabled) || (exporter && !site.monitored)) {
            continue;
        }
        if (!digest_pinned(*ref) && std::find(out.begin(), out.end(), *ref) == out.end()) {
            out.push_back(*ref);
        }
    }
    return out;
}

}  // namespace nodectl::stack

// manifest.json: the first entry of every bundle and the only thing a reader trusts before it
// has hashed the rest. It is written from a Manifest with a fixed key order, and parsed with
// every field checked, because extraction creates files at the paths it names.
#include "modules/bundle/detail.hpp"
#include "util/json.hpp"
#include "modules/k3s/release.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace nodectl::bundle {

namespace {

constexpr PieceKind k_kinds[] = {PieceKind::k3s, PieceKind::deb, PieceKind::image, PieceKind::profile,
                                 PieceKind::index};

std::optional<PieceKind> parse_kind(std::string_view name) {
    for (auto k : k_kinds) {
        if (kind_name(k) == name) {
            return k;
        }
    }
    return std::nullopt;
}

bool is_hex_digest(const std::string& s) {
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Error invalid(const std::string& why) {
    return make_error(ErrorCode::io, "manifest.json is not valid: " + why);
}

}  // namespace

std::string_view kind_name(PieceKind kind) {
    switch (kind) {
    case PieceKind::k3s: return "k3s";
    case PieceKind::deb: return "deb";
    case PieceKind::image: return "image";
    case PieceKind::profile: return "profile";
    case PieceKind::index: return "index";
    }
    return "unknown";
}

const Piece* Manifest::find(std::string_view path) const {
    for (const auto& p : pieces) {
        if (p.path == path) {
            return &p;
        }
    }
    return nullptr;
}

std::optional<std::string> Manifest::k3s_binary() const {
    std::string name = k3s::binary_name(k3s_arch);
    if (has_k3s() && find("k3s/" + name)) {
        return "k3s/" + name;
    }
    return std::nullopt;
}

std::optional<std::string> Manifest::k3s_airgap_images() const {
    std::string path = "k3s/" + k3s::airgap_images_name(k3s_arch);
    if (has_k3s() && find(path)) {
        return path;
    }
    return std::nullopt;
}

bool Manifest::has_debs() const {
    return find("debs/Packages") != nullptr;
}

std::vector<std::string> Manifest::image_paths() const {
    std::vector<std::string> out;
    for (const auto& p : pieces) {
        if (p.kind == PieceKind::image) {
            out.push_back(p.path);
        }
    }
    return out;
}

namespace detail {

bool safe_relative_path(std::string_view path) {
    if (path.empty() || path.size() > 1024 || path.front() == '/') {
        return false;
    }
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        auto part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") {
            return false;
        }
        start = end + 1;
    }
    return path.find('\0') == std::string_view::npos;
}

std::string manifest_json(const Manifest& m) {
    nlohmann::ordered_json j;
    j["format"] = m.format;
    j["nodectl_version"] = m.nodectl_version;
    j["created"] = m.created;
    if (m.has_k3s()) {
        j["k3s"] = {{"version", m.k3s_version}, {"arch", m.k3s_arch}};
    }
    if (!m.deb_arch.empty()) {
        j["debs"] = {{"arch", m.deb_arch}, {"release", m.deb_release}, {"packages", m.packages}};
    }
    if (!m.profile.empty()) {
        j["profile"] = m.profile;
    }
    j["pieces"] = nlohmann::ordered_json::array();
    for (const auto& p : m.pieces) {
        j["pieces"].push_back({{"path", p.path}, {"size", p.size}, {"sha256", p.sha256}, {"kind", kind_name(p.kind)}});
    }
    return util::json_text(j, 2) + "\n";
}

Result<Manifest> parse_manifest(std::string_view text) {
    auto parsed = util::parse_json(text);
    if (!parsed) {
        return invalid(parsed.error());
    }
    nlohmann::json& j = *parsed;
    Manifest m;
    try {
        if (!j.is_object() || !j.contains("format") || !j["format"].is_number_integer()) {
            return invalid("no integer 'format'");
        }
        m.format = j["format"].get<int>();
        if (m.format > k_format_version) {
            return invalid("format " + std::to_string(m.format) + " is newer than this nodectl reads (" +
                           std::to_string(k_format_version) + "); use a newer nodectl");
        }
        m.nodectl_version = j.value("nodectl_version", "");
        m.created = j.value("created", "");
        if (j.contains("k3s")) {
            m.k3s_version = j["k3s"].value("version", "");
            m.k3s_arch = j["k3s"].at("arch").get<std::string>();
            if (m.k3s_arch != "amd64" && m.k3s_arch != "arm64" && m.k3s_arch != "arm") {
                return invalid("unknown k3s arch '" + m.k3s_arch + "'");
            }
        }
        if (j.contains("debs")) {
            m.deb_arch = j["debs"].at("arch").get<std::string>();
            m.deb_release = j["debs"].value("release", "");
            m.packages = j["debs"].value("packages", std::vector<std::string>{});
        }
        m.profile = j.value("profile", "");
        if (!j.contains("pieces") || !j["pieces"].is_array()) {
            return invalid("no 'pieces' list");
        }
        std::set<std::string> seen;
        for (const auto& e : j["pieces"]) {
            Piece p;
            p.path = e.at("path").get<std::string>();
            p.size = e.at("size").get<uint64_t>();
            p.sha256 = e.at("sha256").get<std::string>();
            auto kind = parse_kind(e.at("kind").get<std::string>());
            if (!safe_relative_path(p.path) || p.path == k_manifest_name) {
                return invalid("unsafe or reserved path '" + p.path + "'");
            }
            if (!kind) {
                return invalid("piece '" + p.path + "' has an unknown kind");
            }
            if (!is_hex_digest(p.sha256)) {
                return invalid("piece '" + p.path + "' has no valid sha256");
            }
            if (!seen.insert(p.path).second) {
                return invalid("piece '" + p.path + "' is listed twice");
            }
            p.kind = *kind;
            m.pieces.push_back(std::move(p));
        }
    } catch (const nlohmann::json::exception& e) {
        return invalid(e.what());
    }
    if (!m.profile.empty() && !m.find(m.profile)) {
        return invalid("the profile '" + m.profile + "' is not one of the pieces");
    }
    return m;
}

}  // namespace detail

}  // namespace nodectl::bundle

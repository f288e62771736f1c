// The profile as a machine receives it (cloud-init user-data, a USB stick): one self-contained
// file. Includes are merged, `source` files of the operator's machine become content; secrets
// stay references unless the operator asks for them inline.
#include "modules/firstboot/node_profile.hpp"

#include "util/file.hpp"
#include "util/strings.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace nodectl::firstboot {

namespace {

std::string where(const toml::node& n) {
    const auto& s = n.source();
    return (s.path ? *s.path : std::string("?")) + ":" + std::to_string(s.begin.line) + ":" +
           std::to_string(s.begin.column);
}

// A secret value `{ file = ... }` / `{ env = ... }` found anywhere in the profile.
void collect_secret_refs(const toml::table& t, const std::string& prefix,
                         std::vector<std::pair<std::string, const toml::table*>>& out) {
    for (const auto& [k, v] : t) {
        std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
        if (const auto* sub = v.as_table()) {
            const auto* spec = find_key(ConfigFile::profile, key);
            if (spec && spec->type == ValueType::secret) {
                out.emplace_back(key, sub);
            } else {
                collect_secret_refs(*sub, key, out);
            }
        }
    }
}

}  // namespace

Result<NodeProfile> node_profile(const Profile& profile, const std::string& path, bool inline_secrets) {
    NodeProfile out;
    toml::table t = profile.table();
    bool rewritten = profile.files().size() > 1;
    // Positions come from the profile as loaded (a copied node forgets where it came from);
    // changes go to the copy.
    const auto* orig_files = profile.table().at_path("base.files").as_array();
    auto* files = t.at_path("base.files").as_array();
    for (size_t i = 0; orig_files && files && i < orig_files->size() && i < files->size(); ++i) {
        const auto* of = (*orig_files)[i].as_table();
        auto* ft = (*files)[i].as_table();
        if (!of || !ft) {
            continue;
        }
        bool sensitive = of->get_as<bool>("sensitive") && of->get_as<bool>("sensitive")->get();
        auto* dest = of->get_as<std::string>("path");
        std::string dest_path = dest ? dest->get() : "?";
        if (auto* content = of->get_as<std::string>("content"); content && sensitive && !inline_secrets) {
            return make_error(ErrorCode::config,
                              where(*content) + ": " + dest_path +
                                  " is sensitive and its content is written in the profile; it would end up in the "
                                  "machine's user-data. Pass --inline-secrets knowingly, or give it as a `source` "
                                  "file and provide that file on the machine");
        }
        auto* src = of->get_as<std::string>("source");
        if (!src) {
            continue;
        }
        rewritten = true;
        std::string from = src->get();
        if (sensitive && !inline_secrets) {
            // By reference: the machine must have the file at the same path.
            out.references.push_back(from + " (source of " + dest_path + ")");
            continue;
        }
        auto data = util::read_file(from);
        if (!data) {
            return make_error(ErrorCode::config, where(*src) + ": " + from + ": " + std::strerror(errno));
        }
        ft->erase("source");
        ft->insert_or_assign("content", *data);
    }
    std::vector<std::pair<std::string, const toml::table*>> refs;
    collect_secret_refs(profile.table(), "", refs);
    for (const auto& [key, ref] : refs) {
        if (auto f = ref->get_as<std::string>("file")) {
            if (inline_secrets) {
                SecretRef sr{f->get(), ""};
                auto value = util::read_file(sr.file);
                if (!value) {
                    return make_error(ErrorCode::config,
                                      where(*f) + ": secret " + sr.file + ": " + std::strerror(errno));
                }
                out.secret_files.emplace_back(sr.file, *value);
            } else {
                out.references.push_back(f->get() + " (" + key + ")");
            }
        } else if (auto env = ref->get_as<std::string>("env")) {
            out.references.push_back("environment variable " + env->get() + " (" + key +
                                     "): nodectl firstboot sees the unit's environment only; prefer { file = ... }");
        }
    }
    if (!rewritten) {
        auto text = util::read_file(path);
        if (!text) {
            return errno_error(path);
        }
        out.text = *text;
        out.verbatim = true;
        return out;
    }
    std::ostringstream o;
    o << "# " << path << " as rendered by nodectl: includes merged, source files inlined.\n";
    o << toml::toml_formatter(t) << "\n";
    out.text = o.str();
    // Proof that the machine will read it as the same settings: loaded from a private 0700 dir
    // (the text may hold inlined secrets), never from a guessable name in /tmp.
    const char* tmpdir = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/nodectl-render.XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
        return errno_error("mkdtemp " + tmpl);
    }
    struct RemoveDir {
        std::string dir;
        ~RemoveDir() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } remove_dir{tmpl};
    std::string tmp = tmpl + "/profile.toml";
    if (auto why = util::write_file_atomic(tmp, out.text, 0600); !why) {
        return make_error(ErrorCode::io, "writing the rendered profile: " + why.error());
    }
    auto again = load_profile(tmp);
    if (!again) {
        return make_error(ErrorCode::internal, "the rendered profile does not load again: " + again.error().message);
    }
    return out;
}

}  // namespace nodectl::firstboot

// The checks of first boot's input before anything changes: the configuration's signature, the
// profile, the files it pins, the bundle. The run itself is src/actions/firstboot.cpp.
#include "config/profile_text.hpp"
#include "util/log.hpp"
#include "modules/bundle/use.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace nodectl::firstboot {

namespace {

// A private 0700 directory, removed with everything in it when the last copy goes.
class PrivateDir {
public:
    static Result<std::shared_ptr<PrivateDir>> make(const std::string& parent) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        std::string tmpl = parent + "/firstboot-pinned.XXXXXX";
        if (!::mkdtemp(tmpl.data())) {
            return errno_error("mkdtemp in " + parent);
        }
        return std::shared_ptr<PrivateDir>(new PrivateDir(tmpl));
    }
    ~PrivateDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    const std::string& path() const { return m_path; }

private:
    explicit PrivateDir(std::string path) : m_path(std::move(path)) {}
    std::string m_path;
};

// Every `source` file must carry its sha256 pin; it is read once, checked, and used from a
// private copy, so the bytes applied are the bytes that matched the signed pin.
Result<Profile> use_pinned_sources(const Profile& profile, const std::string& shown, const std::string& parent,
                                   Checked& out) {
    const auto* files = profile.table().at_path("base.files").as_array();
    if (!files) {
        return profile;
    }
    toml::table t = profile.table();
    auto* copy = t.at_path("base.files").as_array();
    std::shared_ptr<PrivateDir> dir;
    for (size_t i = 0; i < files->size(); ++i) {
        const auto* ft = (*files)[i].as_table();
        auto* src = ft ? ft->get_as<std::string>("source") : nullptr;
        if (!src) {
            continue;
        }
        auto* pin = ft->get_as<std::string>("sha256");
        if (!pin) {
            return make_error(ErrorCode::config,
                              shown + ": [[base.files]] " + src->get() +
                                  " has no sha256 pin, and the signature covers only what the config "
                                  "pins; add sha256 = \"<sha256 of the file>\"");
        }
        auto data = util::read_file(src->get());
        if (!data) {
            return make_error(ErrorCode::config, src->get() + ": " + std::strerror(errno));
        }
        if (auto got = util::sha256_hex(*data); got != pin->get()) {
            return make_error(ErrorCode::config, src->get() + " has sha256 " + got + ", not the " + pin->get() +
                                                     " the signed config pins");
        }
        if (!dir) {
            dir = TRY(PrivateDir::make(parent));
            out.pinned = dir;
        }
        std::string local = dir->path() + "/" + std::to_string(i) + "-" + pin->get().substr(0, 16);
        TRY_VOID(as_result(util::write_file_atomic(local, *data, 0600), ErrorCode::io));
        *(*copy)[i].as_table()->get_as<std::string>("source") = local;
    }
    return Profile(std::move(t), profile.files(), profile.digest());
}

}  // namespace

Result<Checked> check_input(const Source& src, const CheckOptions& options, Status& status) {
    const std::string& bundle_override = options.bundle;
    Checked out;
    auto bytes = TRY(read_config(src));
    // A trust key that exists but cannot be read is an error, never taken for no key: that would
    // stop requiring a signature.
    auto key = TRY(as_result(util::read_file_if_exists(options.trust_key), ErrorCode::config));
    status.signature_required = key.has_value();
    if (key) {
        if (!bytes.signature) {
            return make_error(ErrorCode::config, "a signed config is required (" + options.trust_key +
                                                     " is installed) and " + src.shown +
                                                     ".sig does not exist; sign it "
                                                     "with `nodectl firstboot sign --key KEY " +
                                                     k_stick_config + "`");
        }
        if (auto v = verify_signature(*key, bytes.config, *bytes.signature); !v) {
            return make_error(ErrorCode::config,
                              src.shown + ".sig: " + v.error().message + " (" + options.trust_key + ")");
        }
        status.signature = "verified with " + options.trust_key;
    } else {
        status.signature = "not required";
    }
    auto profile = load_profile_text(src.config, bytes.config);
    if (!profile) {
        return make_error(ErrorCode::config, "the profile has errors:\n" + profile.error().message);
    }
    if (status.signature_required && profile->files().size() > 1) {
        return make_error(ErrorCode::config, src.shown + " uses extends/include, which its signature does not cover; "
                                                         "sign one self-contained file");
    }
    if (status.signature_required) {
        out.profile = TRY(use_pinned_sources(*profile, src.shown, options.private_parent, out));
    } else {
        out.profile = std::move(*profile);
    }

    std::string bundle_file = !bundle_override.empty() ? bundle_override : src.bundle;
    std::string shown =
        !bundle_override.empty() ? bundle_override : (src.bundle_shown.empty() ? src.bundle : src.bundle_shown);
    std::string pin = out.profile->section("firstboot").str("bundle_sha256");
    if (bundle_file.empty()) {
        if (!pin.empty()) {
            return make_error(ErrorCode::config,
                              src.shown + " pins the bundle " + pin.substr(0, 16) +
                                  "…, and there is none (bundle/*.bundle on the stick, or --bundle)");
        }
        return out;
    }
    status.bundle = shown;
    if (status.signature_required && pin.empty()) {
        return make_error(ErrorCode::config,
                          "the bundle " + shown +
                              " is refused: the signed config pins no bundle "
                              "(firstboot.bundle_sha256; `nodectl firstboot sign --bundle` writes it)");
    }
    log::info("firstboot", "verifying the bundle {}", shown);
    auto refused = [&](const std::string& why) {
        return make_error(ErrorCode::config, "the bundle " + shown + " is refused: " + why);
    };
    auto pinned = [&](const bundle::Manifest& m) { return pin.empty() || m.digest == pin; };
    // The pin is checked before anything is unpacked, and again on what open() unpacked (it
    // reads the file again).
    auto v = bundle::verify(bundle_file);
    if (!v) {
        return refused(v.error().message);
    }
    if (!pinned(*v)) {
        return refused("its manifest has sha256 " + v->digest + "; the config pins " + pin);
    }
    auto b = bundle::open(bundle_file);
    if (!b) {
        return refused(b.error().message);
    }
    if (!pinned(b->manifest)) {
        return refused("its manifest has sha256 " + b->manifest.digest + "; the config pins " + pin);
    }
    out.bundle = std::move(*b);
    status.bundle_digest = out.bundle->manifest.digest;
    return out;
}

}  // namespace nodectl::firstboot

// Ed25519 signatures over the configuration, with OpenSSL's one-shot EVP_DigestSign/Verify (Ed25519
// signs the message itself, no separate digest). Signature files are the 64 raw bytes that
// `openssl pkeyutl -sign -rawin` writes; their base64 is accepted too (handy in user-data).
#include "config/profile_text.hpp"
#include "config/validate.hpp"
#include "modules/bundle/bundle.hpp"
#include "modules/firstboot/firstboot.hpp"
#include "util/digest.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

namespace nodectl::firstboot {

namespace {

struct FreeKey {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct FreeCtx {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct FreeBio {
    void operator()(BIO* b) const { BIO_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, FreeKey>;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown OpenSSL error";
    if (e) {
        ERR_error_string_n(e, buf, sizeof buf);
    }
    ERR_clear_error();
    return buf;
}

Result<PkeyPtr> read_key(const std::string& pem, bool is_private) {
    std::unique_ptr<BIO, FreeBio> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (!k) {
        return make_error(ErrorCode::config, std::string("not a PEM ") + (is_private ? "private" : "public") +
                                                 " key (" + openssl_error() + ")");
    }
    PkeyPtr key(k);
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        return make_error(ErrorCode::config,
                          std::string("the ") + (is_private ? "private" : "public") +
                              " key is not an Ed25519 key (make one with `openssl genpkey -algorithm ed25519`)");
    }
    return key;
}

// 64 raw bytes as they are, or base64 text decoded to 64 bytes; anything else is not a signature.
std::optional<std::string> signature_bytes(const std::string& sig) {
    if (sig.size() == 64) {
        return sig;
    }
    std::string text;
    for (char c : sig) {
        if (c != '\n' && c != '\r' && c != ' ') {
            text += c;
        }
    }
    if (text.size() != 88) {  // base64 of 64 bytes
        return std::nullopt;
    }
    unsigned char out[66];
    int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n != 66) {  // 88 chars decode to 66 bytes, the last two being padding
        return std::nullopt;
    }
    return std::string(reinterpret_cast<char*>(out), 64);
}

}  // namespace

Result<void> check_public_key(const std::string& pem) {
    TRY(read_key(pem, false));
    return Ok{};
}

Result<void> verify_signature(const std::string& pem, const std::string& data, const std::string& sig) {
    auto key = TRY(read_key(pem, false));
    auto raw = signature_bytes(sig);
    if (!raw) {
        return make_error(ErrorCode::config, "the signature is not an Ed25519 signature (64 bytes, or their base64)");
    }
    std::unique_ptr<EVP_MD_CTX, FreeCtx> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
        return make_error(ErrorCode::internal, "EVP_DigestVerifyInit: " + openssl_error());
    }
    int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(raw->data()), raw->size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size());
    ERR_clear_error();
    if (ok != 1) {
        return make_error(ErrorCode::config, "the signature does not match the config and the trusted key");
    }
    return Ok{};
}

Result<std::string> sign(const std::string& pem, const std::string& data) {
    auto key = TRY(read_key(pem, true));
    std::unique_ptr<EVP_MD_CTX, FreeCtx> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
        return make_error(ErrorCode::internal, "EVP_DigestSignInit: " + openssl_error());
    }
    std::string sig(64, '\0');
    size_t len = sig.size();
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return make_error(ErrorCode::internal, "EVP_DigestSign: " + openssl_error());
    }
    sig.resize(len);
    return sig;
}

Result<std::string> pin_for_signing(const std::string& file, const std::string& bundle_file) {
    auto text = util::read_file(file);
    if (!text) {
        return make_error(ErrorCode::config, file + ": " + std::strerror(errno));
    }
    auto profile = load_profile_text(file, *text);
    if (!profile) {
        return make_error(ErrorCode::config, profile.error().message);
    }
    if (profile->files().size() > 1) {
        return make_error(ErrorCode::config, file + " uses extends/include, which a signature does not cover; sign one "
                                                    "self-contained file (`nodectl usb prepare` or `cloud-init render` "
                                                    "show the merged profile)");
    }
    std::vector<std::string> missing;
    if (const auto* files = profile->table().at_path("base.files").as_array()) {
        for (const auto& e : *files) {
            const auto* ft = e.as_table();
            auto* src = ft ? ft->get_as<std::string>("source") : nullptr;
            if (src && !ft->contains("sha256")) {
                missing.push_back(location(ft->source()) + ": add sha256 = \"" + util::sha256_file_hex(src->get()) +
                                  "\" (source " + src->get() + ")");
            }
        }
    }
    if (!missing.empty()) {
        return make_error(ErrorCode::config, "every `source` file must be pinned by its sha256 for the signature to "
                                             "cover it:\n" +
                                                 util::join(missing, "\n"));
    }
    if (bundle_file.empty()) {
        return std::move(*text);
    }
    auto m = bundle::verify(bundle_file);
    if (!m) {
        return make_error(ErrorCode::config, "the bundle " + bundle_file + " is refused: " + m.error().message);
    }
    std::string pin = profile->section("firstboot").str("bundle_sha256");
    if (pin == m->digest) {
        return std::move(*text);
    }
    if (!pin.empty() || profile->table().contains("firstboot")) {
        return make_error(ErrorCode::config, file + " has a [firstboot] table" +
                                                 (pin.empty() ? std::string() : " pinning the bundle " + pin) +
                                                 "; set bundle_sha256 = \"" + m->digest + "\" there for " +
                                                 bundle_file);
    }
    std::string updated = *text;
    if (!updated.empty() && updated.back() != '\n') {
        updated += '\n';
    }
    updated += "\n# Written by `nodectl firstboot sign --bundle`: the only bundle a machine uses with this config\n"
               "[firstboot]\nbundle_sha256 = \"" +
               m->digest + "\"\n";
    auto again = load_profile_text(file, updated);
    if (!again || again->section("firstboot").str("bundle_sha256") != m->digest) {
        return make_error(ErrorCode::internal, file + ": the pinned profile does not load again" +
                                                   (again ? std::string() : ": " + again.error().message));
    }
    struct stat st {};
    unsigned mode = ::stat(file.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    TRY_VOID(as_result(util::write_file_atomic(file, updated, mode), ErrorCode::io));
    return updated;
}

}  // namespace nodectl::firstboot

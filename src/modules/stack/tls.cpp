// A site's self-signed TLS pair (made once, kept on the server node), and the check of a pair read
// back from the node: the node is not trusted to hand back what nodectl stored, so a pair is used
// only when both PEMs parse, are small, and the key is the certificate's.
#include "modules/stack/stack.hpp"

#include "util/text.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace nodectl::stack {

namespace {

template <auto F>
struct Deleter {
    template <class T>
    void operator()(T* p) const {
        F(p);
    }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using TlsKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Bio read_bio(const std::string& pem) {
    return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

Result<TlsPair> make_self_signed(const std::vector<std::string>& hosts, int days) {
    auto fail = [](const char* what) {
        return make_error(ErrorCode::internal, std::string("making the self-signed certificate: ") + what);
    };
    if (hosts.empty()) {
        return fail("no host name");
    }
    TlsKey key(EVP_EC_gen("P-256"));
    Cert cert(X509_new());
    if (!key || !cert) {
        return fail("no key");
    }
    std::string serial = util::random_hex(16);
    BIGNUM* bn = nullptr;
    if (BN_hex2bn(&bn, serial.c_str()) == 0) {
        return fail("serial");
    }
    ASN1_INTEGER* asn1_serial = BN_to_ASN1_INTEGER(bn, nullptr);
    BN_free(bn);
    X509_set_serialNumber(cert.get(), asn1_serial);
    ASN1_INTEGER_free(asn1_serial);
    X509_set_version(cert.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * days);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hosts.front().c_str()),
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("nodectl self-signed"),
                               -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    std::string san;
    for (const auto& h : hosts) {
        san += (san.empty() ? "DNS:" : ",DNS:") + h;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    const std::pair<int, std::string> extensions[] = {{NID_subject_alt_name, san},
                                                      {NID_basic_constraints, "critical,CA:FALSE"},
                                                      {NID_key_usage, "critical,digitalSignature"},
                                                      {NID_ext_key_usage, "serverAuth"}};
    for (const auto& [nid, value] : extensions) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        if (!ext) {
            return fail("extension");
        }
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
        return fail("signing");
    }
    Bio cert_out(BIO_new(BIO_s_mem()));
    Bio key_out(BIO_new(BIO_s_mem()));
    if (!cert_out || !key_out || PEM_write_bio_X509(cert_out.get(), cert.get()) != 1 ||
        PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        return fail("PEM");
    }
    return TlsPair{bio_text(cert_out.get()), bio_text(key_out.get())};
}

bool tls_pair_valid(const TlsPair& pair) {
    constexpr size_t k_max = 64 * 1024;
    if (pair.cert_pem.empty() || pair.key_pem.empty() || pair.cert_pem.size() > k_max || pair.key_pem.size() > k_max) {
        return false;
    }
    auto cert_in = read_bio(pair.cert_pem);
    auto key_in = read_bio(pair.key_pem);
    if (!cert_in || !key_in) {
        return false;
    }
    Cert cert(PEM_read_bio_X509(cert_in.get(), nullptr, nullptr, nullptr));
    TlsKey key(PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
    return cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
}

}  // namespace nodectl::stack

// What the first-boot unit tests share: an Ed25519 key pair made by OpenSSL, as PEM.
#pragma once

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>
#include <utility>

namespace nodectl::testing {

// A fresh Ed25519 key pair: {private key PEM, public key PEM}.
inline std::pair<std::string, std::string> ed25519_pem() {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    REQUIRE(k);
    BIO* priv = BIO_new(BIO_s_mem());
    BIO* pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_bio_PUBKEY(pub, k);
    char* p = nullptr;
    long n = BIO_get_mem_data(priv, &p);
    std::string a(p, static_cast<size_t>(n));
    n = BIO_get_mem_data(pub, &p);
    std::string b(p, static_cast<size_t>(n));
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(k);
    return {a, b};
}

}  // namespace nodectl::testing

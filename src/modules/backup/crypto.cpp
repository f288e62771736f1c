// AES-256-GCM in authenticated chunks (format in detail.hpp and ARCHITECTURE.md), through
// OpenSSL's EVP interface. GCM authenticates each chunk on its own, so a reader checks a chunk
// before it passes a byte on, and memory stays at one chunk whatever the archive's size.
#include "modules/backup/detail.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

#include <sys/stat.h>

namespace nodectl::backup {

namespace {

constexpr char k_magic[8] = {'N', 'D', 'C', 'T', 'L', 'B', 'K', '1'};
constexpr size_t k_header_size = 8 + 4 + 16 + 16;
constexpr size_t k_tag = 16;
constexpr size_t k_max_chunk = 64u << 20;

void put_u32(unsigned char* p, uint32_t v) {
    p[0] = static_cast<unsigned char>(v >> 24);
    p[1] = static_cast<unsigned char>(v >> 16);
    p[2] = static_cast<unsigned char>(v >> 8);
    p[3] = static_cast<unsigned char>(v);
}
uint32_t get_u32(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
void put_u64(unsigned char* p, uint64_t v) {
    put_u32(p, static_cast<uint32_t>(v >> 32));
    put_u32(p + 4, static_cast<uint32_t>(v));
}

struct FileKeys {
    Key key{};
    std::array<unsigned char, 16> check{};
};

Result<FileKeys> derive(const Key& master, const unsigned char* file_id) {
    FileKeys out;
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (!kdf) {
        return make_error(ErrorCode::internal, "OpenSSL has no HKDF");
    }
    EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    char digest[] = "SHA256";
    char info[] = "nodectl backup v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(master.data()), master.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<unsigned char*>(file_id), 16),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info - 1),
        OSSL_PARAM_construct_end(),
    };
    int r = EVP_KDF_derive(kctx, out.key.data(), out.key.size(), params);
    EVP_KDF_CTX_free(kctx);
    if (r != 1) {
        return make_error(ErrorCode::internal, "HKDF failed");
    }
    unsigned char mac[32];
    unsigned int mac_len = sizeof mac;
    static const char k_check[] = "key-check";
    if (!HMAC(EVP_sha256(), out.key.data(), static_cast<int>(out.key.size()),
              reinterpret_cast<const unsigned char*>(k_check), sizeof k_check - 1, mac, &mac_len)) {
        return make_error(ErrorCode::internal, "HMAC failed");
    }
    std::memcpy(out.check.data(), mac, out.check.size());
    OPENSSL_cleanse(mac, sizeof mac);
    return out;
}

class Gcm {
public:
    Gcm() : m_ctx(EVP_CIPHER_CTX_new()) {}
    ~Gcm() { EVP_CIPHER_CTX_free(m_ctx); }
    Gcm(const Gcm&) = delete;
    Gcm& operator=(const Gcm&) = delete;

    // Seals (encrypt) or opens (decrypt) one chunk; false when the tag does not match.
    bool run(bool encrypt, const Key& key, uint64_t index, const unsigned char* aad, size_t aad_len,
             const unsigned char* in, size_t n, unsigned char* out, unsigned char* tag) {
        unsigned char nonce[12] = {};
        put_u64(nonce, index);
        EVP_CIPHER_CTX_reset(m_ctx);
        if (EVP_CipherInit_ex(m_ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1 ||
            EVP_CIPHER_CTX_ctrl(m_ctx, EVP_CTRL_GCM_SET_IVLEN, sizeof nonce, nullptr) != 1 ||
            EVP_CipherInit_ex(m_ctx, nullptr, nullptr, key.data(), nonce, encrypt ? 1 : 0) != 1) {
            return false;
        }
        int len = 0;
        if (EVP_CipherUpdate(m_ctx, nullptr, &len, aad, static_cast<int>(aad_len)) != 1) {
            return false;
        }
        if (n > 0 && EVP_CipherUpdate(m_ctx, out, &len, in, static_cast<int>(n)) != 1) {
            return false;
        }
        if (!encrypt && EVP_CIPHER_CTX_ctrl(m_ctx, EVP_CTRL_GCM_SET_TAG, k_tag, tag) != 1) {
            return false;
        }
        if (EVP_CipherFinal_ex(m_ctx, out + len, &len) != 1) {
            return false;
        }
        if (encrypt && EVP_CIPHER_CTX_ctrl(m_ctx, EVP_CTRL_GCM_GET_TAG, k_tag, tag) != 1) {
            return false;
        }
        return true;
    }

private:
    EVP_CIPHER_CTX* m_ctx;
};

class EncryptingSink : public Sink {
public:
    EncryptingSink(const Key& key, Sink& out, size_t chunk) : m_master(key), m_out(out), m_chunk(chunk) {
        m_plain.reserve(chunk);
        m_cipher.resize(5 + chunk + k_tag);
    }
    ~EncryptingSink() override { OPENSSL_cleanse(m_keys.key.data(), m_keys.key.size()); }

    Result<void> write(const char* data, size_t size) override {
        TRY_VOID(start());
        while (size > 0) {
            // A full chunk is sealed only once more data follows: the last one carries the flag.
            if (m_plain.size() == m_chunk) {
                TRY_VOID(seal(false));
            }
            size_t take = std::min(size, m_chunk - m_plain.size());
            m_plain.insert(m_plain.end(), data, data + take);
            data += take;
            size -= take;
        }
        return Ok{};
    }

    Result<void> close() override {
        TRY_VOID(start());
        TRY_VOID(seal(true));
        return m_out.close();
    }

private:
    Result<void> start() {
        if (m_started) {
            return Ok{};
        }
        m_started = true;
        unsigned char* h = m_header.data();
        std::memcpy(h, k_magic, 8);
        put_u32(h + 8, static_cast<uint32_t>(m_chunk));
        if (RAND_bytes(h + 12, 16) != 1) {
            return make_error(ErrorCode::internal, "no random bytes for the file id");
        }
        m_keys = TRY(derive(m_master, h + 12));
        std::memcpy(h + 28, m_keys.check.data(), 16);
        return m_out.write(reinterpret_cast<const char*>(h), k_header_size);
    }

    Result<void> seal(bool final) {
        unsigned char aad[k_header_size + 9];
        std::memcpy(aad, m_header.data(), k_header_size);
        put_u64(aad + k_header_size, m_index);
        aad[k_header_size + 8] = final ? 1 : 0;
        unsigned char* c = m_cipher.data();
        c[0] = final ? 1 : 0;
        put_u32(c + 1, static_cast<uint32_t>(m_plain.size()));
        if (!m_gcm.run(true, m_keys.key, m_index, aad, sizeof aad, m_plain.data(), m_plain.size(), c + 5,
                       c + 5 + m_plain.size())) {
            return make_error(ErrorCode::internal, "AES-256-GCM encryption failed");
        }
        ++m_index;
        size_t n = 5 + m_plain.size() + k_tag;
        m_plain.clear();
        return m_out.write(reinterpret_cast<const char*>(c), n);
    }

    Key m_master;
    FileKeys m_keys;
    Sink& m_out;
    size_t m_chunk;
    std::array<unsigned char, k_header_size> m_header{};
    std::vector<unsigned char> m_plain, m_cipher;
    uint64_t m_index = 0;
    bool m_started = false;
    Gcm m_gcm;
};

// Reads exactly n bytes unless the source ends; returns how many were read.
Result<size_t> read_full(Source& in, unsigned char* p, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t r = TRY(in.read(reinterpret_cast<char*>(p) + got, n - got));
        if (r == 0) {
            break;
        }
        got += r;
    }
    return got;
}

class DecryptingSource : public Source {
public:
    DecryptingSource(const Key& key, Source& in) : m_master(key), m_in(in) {}
    ~DecryptingSource() override { OPENSSL_cleanse(m_keys.key.data(), m_keys.key.size()); }

    Result<size_t> read(char* buf, size_t size) override {
        if (!m_started) {
            TRY_VOID(start());
        }
        while (m_pos == m_plain.size()) {
            if (m_final_seen) {
                unsigned char extra;
                if (TRY(read_full(m_in, &extra, 1)) != 0) {
                    return damaged("encrypted archive: data after the final chunk (" + std::to_string(m_index) +
                                   " chunks)");
                }
                return size_t{0};
            }
            TRY_VOID(next_chunk());
        }
        size_t n = std::min(size, m_plain.size() - m_pos);
        std::memcpy(buf, m_plain.data() + m_pos, n);
        m_pos += n;
        return n;
    }

private:
    Result<void> start() {
        m_started = true;
        size_t got = TRY(read_full(m_in, m_header.data(), k_header_size));
        if (got < k_header_size || std::memcmp(m_header.data(), k_magic, 8) != 0) {
            return damaged("not an encrypted nodectl archive (no NDCTLBK1 header)");
        }
        m_chunk = get_u32(m_header.data() + 8);
        if (m_chunk == 0 || m_chunk > k_max_chunk) {
            return damaged("encrypted archive: implausible chunk size " + std::to_string(m_chunk));
        }
        m_keys = TRY(derive(m_master, m_header.data() + 12));
        if (CRYPTO_memcmp(m_keys.check.data(), m_header.data() + 28, 16) != 0) {
            return make_error(ErrorCode::auth,
                              "wrong encryption key: the archive was encrypted with another key (key check failed)");
        }
        m_cipher.resize(m_chunk + k_tag);
        m_plain.reserve(m_chunk);
        return Ok{};
    }

    Result<void> next_chunk() {
        unsigned char frame[5];
        size_t got = TRY(read_full(m_in, frame, 5));
        if (got == 0) {
            return damaged("encrypted archive is truncated: it ends after chunk " + std::to_string(m_index) +
                           " without the final chunk");
        }
        if (got < 5) {
            return damaged("encrypted archive is truncated inside chunk " + std::to_string(m_index));
        }
        bool final = frame[0] == 1;
        uint32_t len = get_u32(frame + 1);
        if (frame[0] > 1 || len > m_chunk || (!final && len != m_chunk)) {
            return damaged("encrypted archive: chunk " + std::to_string(m_index) + " has a damaged frame");
        }
        got = TRY(read_full(m_in, m_cipher.data(), len + k_tag));
        if (got < len + k_tag) {
            return damaged("encrypted archive is truncated inside chunk " + std::to_string(m_index));
        }
        unsigned char aad[k_header_size + 9];
        std::memcpy(aad, m_header.data(), k_header_size);
        put_u64(aad + k_header_size, m_index);
        aad[k_header_size + 8] = final ? 1 : 0;
        m_plain.resize(len);
        if (!m_gcm.run(false, m_keys.key, m_index, aad, sizeof aad, m_cipher.data(), len, m_plain.data(),
                       m_cipher.data() + len)) {
            return damaged("encrypted archive: chunk " + std::to_string(m_index) +
                           " failed authentication (damaged, reordered or replaced)");
        }
        ++m_index;
        m_pos = 0;
        m_final_seen = final;
        return Ok{};
    }

    Key m_master;
    FileKeys m_keys;
    Source& m_in;
    std::array<unsigned char, k_header_size> m_header{};
    uint32_t m_chunk = 0;
    std::vector<unsigned char> m_cipher, m_plain;
    size_t m_pos = 0;
    uint64_t m_index = 0;
    bool m_started = false;
    bool m_final_seen = false;
    Gcm m_gcm;
};

}  // namespace

Error damaged(const std::string& what) {
    return make_error(ErrorCode::damaged, what);
}

Result<Key> load_key(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return make_error(ErrorCode::config, "encryption key file " + path + ": " + std::strerror(errno));
    }
    if ((st.st_mode & 077) != 0) {
        return make_error(ErrorCode::config, "encryption key file " + path + " is readable by group or others (mode " +
                                                 util::octal(st.st_mode & 07777) + "); chmod 600 it");
    }
    auto text = util::read_file(path);
    if (!text) {
        return make_error(ErrorCode::config, "cannot read encryption key file " + path + ": " + std::strerror(errno));
    }
    Key key{};
    std::string s = *text;
    if (s.size() == 32) {
        std::memcpy(key.data(), s.data(), 32);
        OPENSSL_cleanse(s.data(), s.size());
        return key;
    }
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.pop_back();
    }
    if (s.size() != 64) {
        return make_error(ErrorCode::config,
                          "encryption key file " + path +
                              " must hold 32 bytes, raw or as 64 hex digits (e.g. `openssl rand -hex 32`)");
    }
    for (size_t i = 0; i < 32; ++i) {
        int hi = util::hex_value(s[2 * i]), lo = util::hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return make_error(ErrorCode::config, "encryption key file " + path + " holds a non-hex character");
        }
        key[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    OPENSSL_cleanse(s.data(), s.size());
    return key;
}

std::unique_ptr<Sink> encrypting_sink(const Key& key, Sink& out, size_t chunk_size) {
    return std::make_unique<EncryptingSink>(key, out, chunk_size);
}

std::unique_ptr<Source> decrypting_source(const Key& key, Source& in) {
    return std::make_unique<DecryptingSource>(key, in);
}

}  // namespace nodectl::backup

// Digests through OpenSSL. Knows nothing of nodectl.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace util {

// Incremental sha256, for data that streams through once (archives being written or read).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Lower-case hex digest of everything given so far; the object starts afresh afterwards.
    std::string final_hex();

private:
    struct Free {
        void operator()(evp_md_ctx_st* ctx) const;
    };
    std::unique_ptr<evp_md_ctx_st, Free> m_ctx;
};

// Lower-case hex sha256 of the bytes.
std::string sha256_hex(std::string_view data);
// Lower-case hex sha256 of a file's contents; empty string when it cannot be read.
[[nodiscard]] std::string sha256_file_hex(const std::string& path);

}  // namespace util

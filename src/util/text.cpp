#include "util/text.hpp"

#include <openssl/rand.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace util {

std::optional<uint64_t> parse_uint(std::string_view s, UintFormat format) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, format.base);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > format.max) {
        return std::nullopt;
    }
    return v;
}

std::optional<int64_t> parse_int(std::string_view s, int64_t min, int64_t max) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
        return std::nullopt;
    }
    return v;
}

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    auto escape = [&](unsigned char c) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
    };
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            escape(c);
        } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
            escape(c);
            escape(static_cast<unsigned char>(s[++i]));
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

PrintableBuf::int_type PrintableBuf::overflow(int_type c) {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
        m_pending.push_back(traits_type::to_char_type(c));
        if (m_pending.size() >= 4096) {
            sync();
        }
    }
    return traits_type::not_eof(c);
}

std::streamsize PrintableBuf::xsputn(const char* s, std::streamsize n) {
    m_pending.append(s, static_cast<size_t>(n));
    if (m_pending.size() >= 4096) {
        sync();
    }
    return n;
}

int PrintableBuf::sync() {
    if (!m_pending.empty()) {
        std::string text = printable(m_pending);
        m_pending.clear();
        if (m_out->sputn(text.data(), static_cast<std::streamsize>(text.size())) !=
            static_cast<std::streamsize>(text.size())) {
            return -1;
        }
    }
    return m_out->pubsync();
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
        std::abort();
    }
    std::string out;
    for (unsigned char b : raw) {
        out += "0123456789abcdef"[b >> 4];
        out += "0123456789abcdef"[b & 15];
    }
    return out;
}

}  // namespace util

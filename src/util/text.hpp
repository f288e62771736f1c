// Text from outside (a host's output): parsed without exceptions, printed without surprises.
// Knows nothing of nodectl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <streambuf>
#include <string>
#include <string_view>

namespace util {

// How parse_uint reads a number: its largest accepted value and its base.
struct UintFormat {
    uint64_t max = UINT64_MAX;
    int base = 10;
};
// The whole of `s` as an unsigned number (digits of `format.base` only: no sign, spaces, prefix or
// unit) no larger than `format.max`; nullopt for anything else, overflow included. The one way
// nodectl reads a number from text, trusted or not (a host's output, a server's header): it never
// throws, so odd output cannot end a runner thread. Example: parse_uint(mode, {.max = 07777, .base = 8}).
[[nodiscard]] std::optional<uint64_t> parse_uint(std::string_view s, UintFormat format = {});
// The same for a number that may be negative ("-" then digits), between `min` and `max`.
[[nodiscard]] std::optional<int64_t> parse_int(std::string_view s, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
// `s` safe to print on a terminal: control characters (C0 but newline and tab, DEL, and C1 as
// UTF-8) become \xHH, so text a host sent cannot move the cursor, retitle the window or hide lines.
std::string printable(std::string_view s);
// A stream buffer that passes everything written to it through printable() on its way to `out`
// (at every flush: std::cerr flushes after each insertion). Installed on a stream, it makes all
// of that stream's text printable, whichever code wrote it.
class PrintableBuf final : public std::streambuf {
public:
    explicit PrintableBuf(std::streambuf* out) : m_out(out) {}
    ~PrintableBuf() override { sync(); }

protected:
    int_type overflow(int_type c) override;
    std::streamsize xsputn(const char* s, std::streamsize n) override;
    int sync() override;

private:
    std::streambuf* m_out;
    std::string m_pending;
};
// `bytes` random bytes (OpenSSL's generator) as lower-case hex: names and markers nobody can guess.
// Aborts when the generator has no entropy: nothing sensible can go on without it.
std::string random_hex(std::size_t bytes);

}  // namespace util

// String helpers and digests.
#include "test_support.hpp"

#include "util/digest.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

using nodectl::testing::TempDir;

TEST_CASE("levenshtein: edit distance") {
    CHECK(util::levenshtein("", "") == 0);
    CHECK(util::levenshtein("abc", "") == 3);
    CHECK(util::levenshtein("", "abc") == 3);
    CHECK(util::levenshtein("hostname", "hostname") == 0);
    CHECK(util::levenshtein("hostnme", "hostname") == 1);  // deletion
    CHECK(util::levenshtein("hostnamee", "hostname") == 1);  // insertion
    CHECK(util::levenshtein("hostnane", "hostname") == 1);  // substitution
    CHECK(util::levenshtein("kitten", "sitting") == 3);
    CHECK(util::levenshtein("flaw", "lawn") == 2);
    CHECK(util::levenshtein("sitting", "kitten") == util::levenshtein("kitten", "sitting"));
}

TEST_CASE("closest: suggests a plausible typo, nothing for noise") {
    std::vector<std::string> keys = {"hostname", "timezone", "packages", "packages_absent", "files"};
    CHECK(util::closest("hostnme", keys) == "hostname");
    CHECK(util::closest("packges", keys) == "packages");
    CHECK(util::closest("package_absent", keys) == "packages_absent");
    CHECK(util::closest("fils", keys) == "files");
    CHECK(util::closest("zzzzzzzz", keys).empty());
    CHECK(util::closest("user", keys).empty());
    CHECK(util::closest("hostname", {}).empty());
}

TEST_CASE("split, split_lines, trim, join, starts_with, octal") {
    CHECK(util::split("a|b||c", '|') == std::vector<std::string>{"a", "b", "", "c"});
    CHECK(util::split("", '|') == std::vector<std::string>{""});
    CHECK(util::split_lines("a\nb\n") == std::vector<std::string>{"a", "b"});
    CHECK(util::split_lines("a\nb") == std::vector<std::string>{"a", "b"});
    CHECK(util::split_lines("a\n\nb\n") == std::vector<std::string>{"a", "", "b"});
    CHECK(util::split_lines("").empty());
    CHECK(util::trim(" \t x y \r\n") == "x y");
    CHECK(util::trim(" \n ").empty());
    CHECK(util::join({"a", "b", "c"}, ", ") == "a, b, c");
    CHECK(util::join({}, ", ").empty());
    CHECK(util::starts_with("base.files", "base."));
    CHECK_FALSE(util::starts_with("bas", "base"));
    CHECK(util::octal(0644) == "0644");
    CHECK(util::octal(0600) == "0600");
    CHECK(util::octal(04755) == "4755");
}

TEST_CASE("sha256: of bytes and of a file") {
    CHECK(util::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(util::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    TempDir dir;
    std::string big(200000, 'x');  // more than one read buffer
    std::string path = dir.write("f", big);
    CHECK(util::sha256_file_hex(path) == util::sha256_hex(big));
    CHECK(util::sha256_file_hex(dir.write("abc", "abc")) == util::sha256_hex("abc"));
    CHECK(util::sha256_file_hex("/nonexistent/nodectl-unit/f").empty());
}

TEST_CASE("printable: terminal control sequences from a host are shown, not obeyed") {
    CHECK(util::printable("plain text\n\tindented") == "plain text\n\tindented");
    CHECK(util::printable("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07");
    CHECK(util::printable("a\rb\x7f") == "a\\x0db\\x7f");
    CHECK(util::printable("csi \xc2\x9b"
                          "31m, not \xc3\xa9") == "csi \\xc2\\x9b31m, not \xc3\xa9");
}

TEST_CASE("parse_uint: digits only, in range, never throws") {
    CHECK(util::parse_uint("644", {.base = 8}) == std::optional<uint64_t>(0644));
    CHECK(util::parse_uint("18446744073709551615") == std::optional<uint64_t>(18446744073709551615ull));
    CHECK_FALSE(util::parse_uint("18446744073709551616").has_value());
    CHECK_FALSE(util::parse_uint("9", {.base = 8}).has_value());
    CHECK_FALSE(util::parse_uint("").has_value());
    CHECK_FALSE(util::parse_uint("-1").has_value());
    CHECK_FALSE(util::parse_uint("12 ").has_value());
}

// Text that std::stoul/stoi/stoll turned into an exception (out_of_range, invalid_argument) or
// into a wrong number: parse_uint and parse_int refuse it, and never throw.
TEST_CASE("parse_uint/parse_int: garbage and overflow from a host are refused, never thrown") {
    const char* garbage[] = {"", " ", "abc", "0x1f", "+5", " 5", "5\n", "1e3", "12abc", "-", "--1", "\xff"};
    for (const char* s : garbage) {
        CAPTURE(s);
        CHECK_NOTHROW((void)util::parse_uint(s));
        CHECK_FALSE(util::parse_uint(s).has_value());
        CHECK_FALSE(util::parse_int(s).has_value());
    }
    CHECK_THROWS_AS((void)std::stoul("abc"), std::invalid_argument);  // what the old code did
    CHECK_THROWS_AS((void)std::stoi("99999999999"), std::out_of_range);  // a port, a size, an index
    CHECK_THROWS_AS((void)std::stoul("99999999999999999999"), std::out_of_range);
    CHECK(std::stoull("-1") == UINT64_MAX);  // a sign accepted: wrong
    CHECK_FALSE(util::parse_uint("-1").has_value());
    CHECK_FALSE(util::parse_uint("99999999999999999999").has_value());
    CHECK_FALSE(util::parse_int("99999999999999999999").has_value());
    CHECK_FALSE(util::parse_int("-99999999999999999999").has_value());
}

TEST_CASE("parse_uint/parse_int: bounds and bases") {
    CHECK(util::parse_uint("65535", {.max = 65535}) == std::optional<uint64_t>(65535));
    CHECK_FALSE(util::parse_uint("65536", {.max = 65535}).has_value());
    CHECK(util::parse_uint("7777", {.max = 07777, .base = 8}) == std::optional<uint64_t>(07777));
    CHECK_FALSE(util::parse_uint("10000", {.max = 07777, .base = 8}).has_value());
    CHECK(util::parse_uint("10FFFF", {.max = 0x10FFFF, .base = 16}) == std::optional<uint64_t>(0x10FFFF));
    CHECK_FALSE(util::parse_uint("110000", {.max = 0x10FFFF, .base = 16}).has_value());
    CHECK(util::parse_uint("007") == std::optional<uint64_t>(7));
    CHECK(util::parse_int("-42") == std::optional<int64_t>(-42));
    CHECK(util::parse_int("42", 0, 42) == std::optional<int64_t>(42));
    CHECK_FALSE(util::parse_int("43", 0, 42).has_value());
    CHECK_FALSE(util::parse_int("-1", 0, 42).has_value());
    CHECK(util::parse_int("-9223372036854775808") == std::optional<int64_t>(INT64_MIN));
}

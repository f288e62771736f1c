// String helpers and digests.
#include "test_support.hpp"

#include "util/digest.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

#include <doctest/doctest.h>

using nodectl::testing::TempDir;

TEST_CASE("levenshtein: edit distance") {
    CHECK(util::levenshtein("", "") == 0);
    CHECK(util::levenshtein("abc", "") == 3);
    CHECK(util::levenshtein("", "abc") == 3);
    CHECK(util::levenshtein("hostname", "hostname") == 0);
    CHECK(util::levenshtein("hostnme", "hostname") == 1);   // deletion
    CHECK(util::levenshtein("hostnamee", "hostname") == 1); // insertion
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
    CHECK(util::printable("csi \xc2\x9b" "31m, not \xc3\xa9") == "csi \\xc2\\x9b31m, not \xc3\xa9");
}

TEST_CASE("parse_unsigned: digits only, in range, never throws") {
    CHECK(util::parse_unsigned("644", 8) == std::optional<uint64_t>(0644));
    CHECK(util::parse_unsigned("18446744073709551615") == std::optional<uint64_t>(18446744073709551615ull));
    CHECK_FALSE(util::parse_unsigned("18446744073709551616").has_value());
    CHECK_FALSE(util::parse_unsigned("9", 8).has_value());
    CHECK_FALSE(util::parse_unsigned("").has_value());
    CHECK_FALSE(util::parse_unsigned("-1").has_value());
    CHECK_FALSE(util::parse_unsigned("12 ").has_value());
}


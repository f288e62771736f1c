// unified_diff: the diffs plans show for file contents, checked against what `diff -u` prints.
#include "util/diff.hpp"

#include <doctest/doctest.h>

#include <string>

using util::unified_diff;

namespace {

// "1\n2\n...\nN\n"
std::string numbered(int n) {
    std::string out;
    for (int i = 1; i <= n; ++i) {
        out += std::to_string(i) + "\n";
    }
    return out;
}

std::string replace_line(std::string text, const std::string& line, const std::string& with) {
    auto pos = text.find("\n" + line + "\n");
    REQUIRE(pos != std::string::npos);
    return text.replace(pos + 1, line.size(), with);
}

}  // namespace

TEST_CASE("unified_diff: equal texts give an empty diff") {
    CHECK(unified_diff("", "", "a", "b").empty());
    CHECK(unified_diff("same\ntext\n", "same\ntext\n", "a", "b").empty());
}

TEST_CASE("unified_diff: one changed line shows -/+ with its context and a header") {
    CHECK(unified_diff("a\nb\nc\n", "a\nB\nc\n", "/etc/x", "/etc/x (planned)") ==
          "--- /etc/x\n+++ /etc/x (planned)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
}

TEST_CASE("unified_diff: hunk line numbers with three lines of context") {
    std::string old_text = numbered(20);
    std::string new_text = replace_line(old_text, "10", "ten");
    CHECK(unified_diff(old_text, new_text, "a", "b") ==
          "--- a\n+++ b\n@@ -7,7 +7,7 @@\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n");
}

TEST_CASE("unified_diff: line numbers after an insertion earlier in the file") {
    std::string old_text = numbered(20);
    std::string new_text = "0\n" + replace_line(old_text, "15", "fifteen");
    CHECK(
        unified_diff(old_text, new_text, "a", "b") ==
        "--- a\n+++ b\n@@ -1,3 +1,4 @@\n+0\n 1\n 2\n 3\n@@ -12,7 +13,7 @@\n 12\n 13\n 14\n-15\n+fifteen\n 16\n 17\n 18\n");
}

TEST_CASE("unified_diff: deletions are printed before additions") {
    CHECK(unified_diff("x\ny\n", "p\nq\n", "a", "b") == "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-x\n-y\n+p\n+q\n");
    CHECK(unified_diff("keep\nold1\nold2\nkeep2\n", "keep\nnew1\nkeep2\n", "a", "b") ==
          "--- a\n+++ b\n@@ -1,4 +1,3 @@\n keep\n-old1\n-old2\n+new1\n keep2\n");
}

TEST_CASE("unified_diff: a new file and a deleted file") {
    CHECK(unified_diff("", "one\ntwo\n", "/dev/null", "/etc/x") ==
          "--- /dev/null\n+++ /etc/x\n@@ -0,0 +1,2 @@\n+one\n+two\n");
    CHECK(unified_diff("one\n", "", "/etc/x", "/dev/null") == "--- /etc/x\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-one\n");
}

TEST_CASE("unified_diff: changes close together share a hunk, changes far apart get their own") {
    std::string old_text = numbered(30);
    // 6 unchanged lines between the changes (4..9): one hunk, as diff -u does.
    std::string near = replace_line(replace_line(old_text, "3", "three"), "10", "ten");
    std::string d = unified_diff(old_text, near, "a", "b");
    CHECK(d ==
          "--- a\n+++ b\n@@ -1,13 +1,13 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n");

    // 7 unchanged lines between them (4..10): two hunks.
    std::string far = replace_line(replace_line(old_text, "3", "three"), "11", "eleven");
    std::string d2 = unified_diff(old_text, far, "a", "b");
    CHECK(d2 == "--- a\n+++ b\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n"
                "@@ -8,7 +8,7 @@\n 8\n 9\n 10\n-11\n+eleven\n 12\n 13\n 14\n");
}

TEST_CASE("unified_diff: a missing newline at the end is marked") {
    std::string d = unified_diff("a\nb", "a\nc", "x", "y");
    CHECK(d.find("-b\n+c\n") != std::string::npos);
    CHECK(d.find("\\ No newline at end of file\n") != std::string::npos);
    // Adding the final newline is a change, and shows as one.
    CHECK_FALSE(unified_diff("a\nb", "a\nb\n", "x", "y").empty());
}

TEST_CASE("unified_diff: binary content is summarized, not diffed") {
    std::string old_bin("\x7f"
                        "ELF\0\1\2",
                        7);
    std::string new_bin("\x7f"
                        "ELF\0\1\2\3\4",
                        9);
    CHECK(unified_diff(old_bin, new_bin, "/usr/bin/x", "/usr/bin/x (planned)") ==
          "--- /usr/bin/x\n+++ /usr/bin/x (planned)\nbinary content differs (7 -> 9 bytes)\n");
    CHECK(unified_diff("text\n", new_bin, "a", "b").find("binary content differs (5 -> 9 bytes)") != std::string::npos);
}

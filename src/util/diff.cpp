#include "util/diff.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <vector>

namespace util {

namespace {

constexpr size_t k_context = 3;
// The LCS table is lines(old) x lines(new); past this many cells a plan shows sizes instead.
constexpr size_t k_max_cells = 16 * 1024 * 1024;

struct Edit {
    char op;  // ' ', '-', '+'
    std::string line;
};

std::vector<Edit> edit_script(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    // Trim the common prefix and suffix first: plans usually change a few lines of a file.
    size_t pre = 0;
    while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) {
        ++pre;
    }
    size_t suf = 0;
    while (suf < a.size() - pre && suf < b.size() - pre && a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) {
        ++suf;
    }
    size_t n = a.size() - pre - suf;
    size_t m = b.size() - pre - suf;
    std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;) {
        for (size_t j = m; j-- > 0;) {
            lcs[i][j] = a[pre + i] == b[pre + j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
        }
    }
    std::vector<Edit> out;
    for (size_t i = 0; i < pre; ++i) {
        out.push_back({' ', a[i]});
    }
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[pre + i] == b[pre + j]) {
            out.push_back({' ', a[pre + i]});
            ++i;
            ++j;
        } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
            out.push_back({'-', a[pre + i]});  // deletions first, as diff -u prints them
            ++i;
        } else {
            out.push_back({'+', b[pre + j]});
            ++j;
        }
    }
    for (size_t k = a.size() - suf; k < a.size(); ++k) {
        out.push_back({' ', a[k]});
    }
    return out;
}

}  // namespace

std::string unified_diff(std::string_view old_text, std::string_view new_text, std::string_view old_label,
                         std::string_view new_label) {
    if (old_text == new_text) {
        return {};
    }
    std::string header = "--- " + std::string(old_label) + "\n+++ " + std::string(new_label) + "\n";
    if (old_text.find('\0') != std::string_view::npos || new_text.find('\0') != std::string_view::npos) {
        return header + "binary content differs (" + std::to_string(old_text.size()) + " -> " +
               std::to_string(new_text.size()) + " bytes)\n";
    }
    auto a = split_lines(old_text);
    auto b = split_lines(new_text);
    if (static_cast<double>(a.size()) * static_cast<double>(b.size()) > k_max_cells) {
        return header + "content differs (" + std::to_string(a.size()) + " -> " + std::to_string(b.size()) +
               " lines, too large to diff)\n";
    }
    auto edits = edit_script(a, b);

    std::string out = header;
    bool missing_newline_old = !old_text.empty() && old_text.back() != '\n';
    bool missing_newline_new = !new_text.empty() && new_text.back() != '\n';
    size_t k = 0;
    while (k < edits.size()) {
        // Find the next change, then grow a hunk while changes are within 2*context lines.
        while (k < edits.size() && edits[k].op == ' ') {
            ++k;
        }
        if (k == edits.size()) {
            break;
        }
        size_t start = k >= k_context ? k - k_context : 0;
        size_t end = k;
        while (end < edits.size()) {
            size_t next = end;
            while (next < edits.size() && edits[next].op != ' ') {
                ++next;
            }
            size_t gap = next;
            while (gap < edits.size() && edits[gap].op == ' ') {
                ++gap;
            }
            if (gap < edits.size() && gap - next <= 2 * k_context) {
                end = gap;
                continue;
            }
            end = std::min(next + k_context, edits.size());
            break;
        }
        // Line numbers of the hunk in both files.
        size_t old_line = 1, new_line = 1;
        for (size_t x = 0; x < start; ++x) {
            old_line += edits[x].op != '+';
            new_line += edits[x].op != '-';
        }
        size_t old_count = 0, new_count = 0;
        std::string body;
        for (size_t x = start; x < end; ++x) {
            old_count += edits[x].op != '+';
            new_count += edits[x].op != '-';
            body += edits[x].op;
            body += edits[x].line;
            body += '\n';
        }
        out += "@@ -" + std::to_string(old_count ? old_line : old_line - 1) + "," + std::to_string(old_count) + " +" +
               std::to_string(new_count ? new_line : new_line - 1) + "," + std::to_string(new_count) + " @@\n" + body;
        k = end;
    }
    if (missing_newline_old || missing_newline_new) {
        out += "\\ No newline at end of file\n";
    }
    return out;
}

}  // namespace util

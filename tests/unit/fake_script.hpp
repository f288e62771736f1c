// How FakeTarget reads the scripts nodectl sends: split into words the way sh does, arguments
// checked to be quoted exactly as shell_quote() quotes them, and systemctl scripts taken back to
// the host::UnitOp they were rendered from.
#pragma once

#include "host/services.hpp"
#include "nodectl/target.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodectl::testing {

// A word of a shell script: its value, and the text it was written as.
struct ShellWord {
    std::string text;
    std::string raw;
};

// Splits a fragment of a script into words the way sh does for the quoting our scripts use
// (single quotes, backslash); nullopt on an unterminated quote.
inline std::optional<std::vector<ShellWord>> shell_words(std::string_view s) {
    std::vector<ShellWord> out;
    ShellWord cur;
    bool in_word = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\'') {
            size_t end = s.find('\'', i + 1);
            if (end == std::string_view::npos) {
                return std::nullopt;
            }
            cur.text.append(s.substr(i + 1, end - i - 1));
            cur.raw.append(s.substr(i, end - i + 1));
            in_word = true;
            i = end;
        } else if (c == '\\' && i + 1 < s.size()) {
            cur.text += s[i + 1];
            cur.raw.append(s.substr(i, 2));
            in_word = true;
            ++i;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                out.push_back(std::move(cur));
                cur = {};
                in_word = false;
            }
        } else {
            cur.text += c;
            cur.raw += c;
            in_word = true;
        }
    }
    if (in_word) {
        out.push_back(std::move(cur));
    }
    return out;
}

// Words of script[from, to) where every word must be one argument quoted by shell_quote().
inline std::optional<std::vector<std::string>> quoted_args(const std::string& script, size_t from, size_t to) {
    if (from == std::string::npos || to == std::string::npos || to < from) {
        return std::nullopt;
    }
    auto words = shell_words(std::string_view(script).substr(from, to - from));
    if (!words) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& w : *words) {
        if (w.raw != shell_quote(w.text)) {
            return std::nullopt;
        }
        out.push_back(w.text);
    }
    return out;
}

// The operation a `systemctl VERB [--now] [--quiet] [--no-block] 'UNIT'... [2>/dev/null || true]`
// script stands for, when the script is exactly what host::UnitOp::script() renders for it.
inline std::optional<host::UnitOp> parse_unit_op(const std::string& script) {
    auto words = shell_words(script);
    if (!words || words->size() < 2 || (*words)[0].raw != "systemctl") {
        return std::nullopt;
    }
    host::UnitOp op{host::UnitVerb::daemon_reload, {}, {}};
    bool known = false;
    for (auto v :
         {host::UnitVerb::daemon_reload, host::UnitVerb::enable, host::UnitVerb::disable, host::UnitVerb::start,
          host::UnitVerb::stop, host::UnitVerb::restart, host::UnitVerb::reload, host::UnitVerb::reset_failed}) {
        if ((*words)[1].raw == host::verb_word(v)) {
            op.verb = v;
            known = true;
        }
    }
    for (size_t i = 2; known && i < words->size(); ++i) {
        const std::string& w = (*words)[i].raw;
        op.flags.now |= w == "--now";
        op.flags.quiet |= w == "--quiet";
        op.flags.no_block |= w == "--no-block";
        op.flags.ignore_failure |= w == "||";
        if (!w.starts_with("--") && w != "2>/dev/null" && w != "||" && w != "true") {
            op.units.push_back((*words)[i].text);
        }
    }
    if (!known || op.script() != script) {
        return std::nullopt;
    }
    return op;
}

}  // namespace nodectl::testing

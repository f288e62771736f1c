#include "host/controls.hpp"

#include "util/strings.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <set>

namespace nodectl::host {

namespace {

constexpr std::string_view k_mark = "@@nodectl-control ";
constexpr std::string_view k_na_mark = "@@nodectl-na ";

std::set<std::string> items_of(const std::string& list) {
    std::set<std::string> out;
    for (auto& s : util::split(list, ',')) {
        auto t = util::trim(s);
        if (!t.empty()) {
            out.insert(t);
        }
    }
    return out;
}

}  // namespace

Expect equals(std::string value) {
    return {value, [value](const std::string& s) { return s == value; }};
}

Expect same_set(std::vector<std::string> items) {
    std::set<std::string> want(items.begin(), items.end());
    return {util::join(items, ","), [want](const std::string& s) { return items_of(s) == want; }};
}

Expect at_least(long value) {
    return {">= " + std::to_string(value), [value](const std::string& s) {
                auto n = util::parse_int(s);
                return n && *n >= value;
            }};
}

Expect at_most(long value) {
    return {"<= " + std::to_string(value), [value](const std::string& s) {
                auto n = util::parse_int(s);
                return n && *n <= value;
            }};
}

Expect one_of(std::vector<std::string> values) {
    return {"one of " + util::join(values, ", "),
            [values](const std::string& s) { return std::find(values.begin(), values.end(), s) != values.end(); }};
}

Expect empty_output(std::string meaning) {
    return {std::move(meaning), [](const std::string& s) { return s.empty(); }};
}

Result<std::vector<ControlResult>> evaluate(Target& target, const std::string& prelude,
                                            const std::vector<Control>& controls) {
    std::string script = prelude + "\n";
    for (size_t i = 0; i < controls.size(); ++i) {
        script += "echo '" + std::string(k_mark) + std::to_string(i) + "'\n( " + controls[i].observe +
                  "\n) 2>/dev/null\necho\necho '" + std::string(k_na_mark) + std::to_string(i) + "'\n";
        if (!controls[i].not_applicable.empty()) {
            script += "( " + controls[i].not_applicable + "\n) 2>/dev/null\n";
        }
    }
    script += "exit 0\n";
    Command cmd;
    cmd.script = script;
    cmd.mutates = false;
    cmd.timeout = std::chrono::seconds(120);
    auto r = TRY(target.run_checked(cmd, "evaluating controls"));
    return parse_control_output(controls, r.out);
}

std::vector<ControlResult> parse_control_output(const std::vector<Control>& controls, const std::string& text) {
    std::vector<std::string> observed(controls.size()), na(controls.size());
    std::vector<bool> seen(controls.size(), false);
    std::string* into = nullptr;
    for (const auto& line : util::split_lines(text)) {
        if (util::starts_with(line, k_mark) || util::starts_with(line, k_na_mark)) {
            bool is_na = util::starts_with(line, k_na_mark);
            auto idx = util::parse_int(line.substr(is_na ? k_na_mark.size() : k_mark.size()));
            if (idx && *idx >= 0 && static_cast<size_t>(*idx) < controls.size()) {
                into = is_na ? &na[*idx] : &observed[*idx];
                seen[*idx] = true;
                continue;
            }
        }
        if (into) {
            *into += line + "\n";
        }
    }
    std::vector<ControlResult> out;
    for (size_t i = 0; i < controls.size(); ++i) {
        const auto& c = controls[i];
        ControlResult res;
        res.id = c.id;
        res.title = c.title;
        res.expected = c.expect.text;
        res.observed = util::trim(observed[i]);
        auto reason = util::trim(na[i]);
        if (!seen[i]) {
            res.status = ControlStatus::fail;
            res.reason = "the host printed nothing for this control";
        } else if (!reason.empty()) {
            res.status = ControlStatus::not_applicable;
            res.reason = reason;
        } else {
            res.status = c.expect.passes(res.observed) ? ControlStatus::pass : ControlStatus::fail;
        }
        out.push_back(std::move(res));
    }
    return out;
}

}  // namespace nodectl::host

// Edits of files that belong to the distribution (login.defs, fstab, moduli, aide.conf): each
// changes only its own lines and is idempotent, edit(edit(x)) == edit(x).
#include "modules/harden/groups.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <sstream>

namespace nodectl::harden {

std::string set_line(const std::string& current, const std::string& prefix, const std::string& line) {
    std::string out;
    bool done = false;
    for (const auto& l : util::split_lines(current)) {
        if (!util::starts_with(l, prefix)) {
            out += l + "\n";
        } else if (!done) {
            out += line + "\n";
            done = true;
        }
    }
    return done ? out : out + line + "\n";
}

std::string edit_login_defs(const std::string& current,
                            const std::vector<std::pair<std::string, std::string>>& values) {
    std::vector<bool> done(values.size(), false);
    std::string out;
    for (const auto& line : util::split_lines(current)) {
        auto t = util::trim(line);
        auto key = t.substr(0, t.find_first_of(" \t"));
        auto it = std::find_if(values.begin(), values.end(), [&](const auto& kv) { return kv.first == key; });
        if (t.empty() || t[0] == '#' || it == values.end()) {
            out += line + "\n";
            continue;
        }
        size_t i = static_cast<size_t>(it - values.begin());
        if (!done[i]) {
            out += key + "\t" + it->second + "\n";
            done[i] = true;
        } else {
            out += "# " + line + "  (duplicate, disabled by nodectl)\n";
        }
    }
    for (size_t i = 0; i < values.size(); ++i) {
        if (!done[i]) {
            out += values[i].first + "\t" + values[i].second + "\n";
        }
    }
    return out;
}

std::string set_fstab_entries(const std::string& current, const std::vector<std::string>& entries) {
    auto mount_point = [](const std::string& line) {
        std::istringstream fields(line);
        std::string device, where;
        fields >> device >> where;
        return device.empty() || device[0] == '#' ? std::string() : where;
    };
    std::vector<bool> done(entries.size(), false);
    std::string out;
    for (const auto& line : util::split_lines(current)) {
        auto where = mount_point(line);
        size_t i = 0;
        while (i < entries.size() && (where.empty() || mount_point(entries[i]) != where)) {
            ++i;
        }
        if (i == entries.size()) {
            out += line + "\n";
        } else if (!done[i]) {
            out += entries[i] + "\n";
            done[i] = true;
        }
    }
    for (size_t i = 0; i < entries.size(); ++i) {
        if (!done[i]) {
            out += entries[i] + "\n";
        }
    }
    return out;
}

std::string filter_moduli(const std::string& current) {
    std::string out;
    for (const auto& line : util::split_lines(current)) {
        auto f = util::split(line, ' ');
        bool entry = !line.empty() && line[0] != '#' && f.size() >= 7;
        if (!entry || std::atol(f[4].c_str()) >= 3071) {
            out += line + "\n";
        }
    }
    return out;
}

}  // namespace nodectl::harden

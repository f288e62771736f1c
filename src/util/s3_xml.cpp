#include "util/s3_xml.hpp"

#include "util/s3.hpp"
#include "util/text.hpp"

namespace util::s3 {

namespace xml {

std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        std::size_t semi = s.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            out += s[i];
            continue;
        }
        std::string_view ent = s.substr(i + 1, semi - i - 1);
        unsigned long cp = 0;
        bool numeric = false;
        if (ent == "amp") {
            out += '&';
        } else if (ent == "lt") {
            out += '<';
        } else if (ent == "gt") {
            out += '>';
        } else if (ent == "quot") {
            out += '"';
        } else if (ent == "apos") {
            out += '\'';
        } else if (ent.size() > 1 && ent[0] == '#') {
            numeric = true;
            const bool hex = ent[1] == 'x' || ent[1] == 'X';
            // A code point Unicode has (up to U+10FFFF); anything else stays as it was written.
            auto n = parse_uint(ent.substr(hex ? 2 : 1), {.max = 0x10FFFF, .base = hex ? 16 : 10});
            if (!n) {
                out += s[i];
                continue;
            }
            cp = static_cast<unsigned long>(*n);
        } else {
            out += s[i];
            continue;
        }
        if (numeric) {  // UTF-8 encode the code point
            if (cp < 0x80) {
                out += static_cast<char>(cp);
            } else if (cp < 0x800) {
                out += static_cast<char>(0xC0 | (cp >> 6));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out += static_cast<char>(0xE0 | (cp >> 12));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
                out += static_cast<char>(0xF0 | (cp >> 18));
                out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            }
        }
        i = semi;
    }
    return out;
}

std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

std::vector<std::string_view> all(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> out;
    std::string open = "<" + std::string(tag);
    std::string close = "</" + std::string(tag) + ">";
    std::size_t pos = 0;
    while ((pos = xml.find(open, pos)) != std::string_view::npos) {
        std::size_t after = pos + open.size();
        if (after >= xml.size()) {
            break;
        }
        char c = xml[after];
        if (c != '>' && c != ' ' && c != '/') {  // <KeyMarker> is not <Key>
            pos = after;
            continue;
        }
        std::size_t gt = xml.find('>', after);
        if (gt == std::string_view::npos) {
            break;
        }
        if (xml[gt - 1] == '/') {
            out.emplace_back();
            pos = gt + 1;
            continue;
        }
        std::size_t end = xml.find(close, gt + 1);
        if (end == std::string_view::npos) {
            break;
        }
        out.push_back(xml.substr(gt + 1, end - gt - 1));
        pos = end + close.size();
    }
    return out;
}

std::string text(std::string_view xml, std::string_view tag) {
    auto found = all(xml, tag);
    return found.empty() ? std::string() : unescape(found.front());
}

}  // namespace xml

namespace detail {
std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag) {
    std::vector<std::string> out;
    for (auto v : xml::all(xml, tag)) {
        out.push_back(xml::unescape(v));
    }
    return out;
}
}  // namespace detail

}  // namespace util::s3

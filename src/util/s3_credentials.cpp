// S3 credentials from a file or the environment (util/s3.hpp). The secret is never put in a message.
#include "util/s3.hpp"
#include "util/strings.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace util::s3 {

namespace {

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        return v.substr(1, v.size() - 2);
    }
    return v;
}

}  // namespace

Outcome<Credentials> credentials_from_file(const std::string& path, std::string* warning, const std::string& profile) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return Failure{path + ": " + std::strerror(errno)};
    }
    std::ifstream in(path);
    if (!in) {
        return Failure{path + ": cannot be read: " + std::strerror(errno)};
    }
    if (warning) {
        warning->clear();
        if (st.st_mode & 077) {
            *warning = path + " holds S3 credentials but has mode " + octal(st.st_mode & 07777) +
                       "; make it 0600 (chmod 600 " + path + ")";
        }
    }
    Credentials c;
    std::string line, section;
    bool in_profile = true, any_section = false;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') {
            continue;
        }
        if (t.front() == '[' && t.back() == ']') {
            section = trim(t.substr(1, t.size() - 2));
            if (section.rfind("profile ", 0) == 0) {
                section = trim(section.substr(8));
            }
            any_section = true;
            in_profile = section == profile;
            continue;
        }
        std::size_t eq = t.find('=');
        if (eq == std::string::npos) {
            // s3fs's passwd format: ACCESS:SECRET or BUCKET:ACCESS:SECRET
            auto first = t.find(':');
            auto last = t.rfind(':');
            if (first != std::string::npos && !any_section) {
                c.access_key_id = first == last ? t.substr(0, first) : t.substr(first + 1, last - first - 1);
                c.secret_access_key = t.substr(last + 1);
                continue;
            }
            return Failure{path + ":" + std::to_string(number) + ": expected KEY = VALUE, [section] or ACCESS:SECRET"};
        }
        if (!in_profile) {
            continue;
        }
        std::string k = to_lower(trim(t.substr(0, eq)));
        if (k.rfind("export ", 0) == 0) {
            k = trim(k.substr(7));
        }
        std::string v = unquote(trim(t.substr(eq + 1)));
        if (k == "aws_access_key_id") {
            c.access_key_id = v;
        } else if (k == "aws_secret_access_key") {
            c.secret_access_key = v;
        } else if (k == "aws_session_token") {
            c.session_token = v;
        }
    }
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
        return Failure{path + ": no access key id and secret access key" +
                       (any_section ? " in section [" + profile + "]" : std::string())};
    }
    return c;
}

Outcome<Credentials> credentials_from_environment() {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    const char* token = std::getenv("AWS_SESSION_TOKEN");
    if (!id || !*id || !secret || !*secret) {
        return Failure{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set"};
    }
    Credentials out;
    out.access_key_id = id;
    out.secret_access_key = secret;
    out.session_token = token ? token : "";
    return out;
}

}  // namespace util::s3

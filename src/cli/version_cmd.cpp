#include "cli/cli.hpp"
#include "util/json.hpp"

#include <archive.h>
#include <curl/curl.h>
#include <libssh/libssh.h>
#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace nodectl::cli {

int run_version(CLI::App&, Context& ctx) {
    nlohmann::json j = {
        {"nodectl", NODECTL_VERSION},
        {"libssh", ssh_version(0)},
        {"libcurl", curl_version_info(CURLVERSION_NOW)->version},
        {"libarchive", archive_version_details()},
        {"openssl", OpenSSL_version(OPENSSL_VERSION)},
        {"toml++",
         std::to_string(TOML_LIB_MAJOR) + "." + std::to_string(TOML_LIB_MINOR) + "." + std::to_string(TOML_LIB_PATCH)},
    };
    if (ctx.global.json) {
        std::cout << util::json_text(j, 2) << "\n";
        return k_exit_ok;
    }
    std::cout << "nodectl " << NODECTL_VERSION << "\n";
    for (auto& [k, v] : j.items()) {
        if (k != "nodectl") {
            std::cout << "  " << k << ": " << v.get<std::string>() << "\n";
        }
    }
    return k_exit_ok;
}

}  // namespace nodectl::cli

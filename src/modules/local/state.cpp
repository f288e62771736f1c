// env.json and the lock of the state directory.
#include "modules/local/detail.hpp"

#include "util/file.hpp"
#include "util/json.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <utility>

#include <sys/stat.h>

namespace fs = std::filesystem;

namespace nodectl::local::detail {

namespace {

nlohmann::json env_json(const Environment& e) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : e.nodes) {
        nodes.push_back({{"name", n.name}, {"address", n.address}});
    }
    nlohmann::json publish = nlohmann::json::array();
    for (const auto& p : e.publish) {
        publish.push_back(p.text());
    }
    return {{"name", e.name},         {"subnet", e.subnet}, {"bridge", e.bridge}, {"gateway", e.gateway},
            {"suite", e.suite},       {"rootfs", e.rootfs}, {"memory", e.memory}, {"cpus", e.cpus},
            {"launcher", e.launcher}, {"nodes", nodes},     {"publish", publish}, {"kubeconfig", e.kubeconfig},
            {"vars", e.vars}};
}

}  // namespace

Result<void> save(const Environment& e) {
    return as_result(util::write_file_atomic(e.dir + "/env.json", util::json_text(env_json(e), 2) + "\n", 0600),
                     ErrorCode::io);
}

Result<util::FileLock> lock_state(const std::string& root) {
    std::error_code ec;
    fs::create_directories(root, ec);
    ::chmod(root.c_str(), 0700);
    return as_result(util::FileLock::take(root + "/.lock", 0600, util::FileLock::Wait::yes), ErrorCode::io);
}

Result<Environment> from_json(const std::string& dir) {
    auto text = util::read_file(dir + "/env.json");
    if (!text) {
        return make_error(ErrorCode::io, text.error());
    }
    auto parsed = util::parse_json(*text);
    if (!parsed) {
        return make_error(ErrorCode::io, dir + "/env.json: " + parsed.error());
    }
    try {
        const nlohmann::json& j = *parsed;  // .at() and get<>() below throw on a missing or mistyped field
        Environment e;
        e.dir = dir;
        e.name = j.at("name").get<std::string>();
        e.subnet = j.at("subnet").get<std::string>();
        e.bridge = j.at("bridge").get<std::string>();
        e.gateway = j.at("gateway").get<std::string>();
        e.suite = j.at("suite").get<std::string>();
        e.rootfs = j.at("rootfs").get<std::string>();
        e.memory = j.at("memory").get<std::string>();
        e.cpus = j.at("cpus").get<std::string>();
        e.launcher = j.at("launcher").get<std::string>();
        for (const auto& n : j.at("nodes")) {
            e.nodes.push_back({n.at("name").get<std::string>(), n.at("address").get<std::string>()});
        }
        e.kubeconfig = j.value("kubeconfig", "");
        e.vars = j.value("vars", std::map<std::string, std::string>{});
        for (const auto& p : j.value("publish", nlohmann::json::array())) {
            e.publish.push_back(TRY(parse_publish(p.get<std::string>())));
        }
        if (!valid_name(e.name) || e.bridge != bridge_name(e.name)) {
            return make_error(ErrorCode::io, dir + "/env.json does not describe an environment nodectl made");
        }
        return e;
    } catch (const std::exception& ex) {
        return make_error(ErrorCode::io, dir + "/env.json: " + ex.what());
    }
}

}  // namespace nodectl::local::detail

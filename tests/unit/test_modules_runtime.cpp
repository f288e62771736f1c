#include "modules/runtime/runtime.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>
#include <toml++/toml.h>

using namespace nodectl;

TEST_CASE("runtime: config.toml parses back with the profile's values") {
    runtime::ContainerdSettings s;
    s.systemd_cgroup = true;
    s.sandbox_image = "registry.local:5000/pause:3.9";
    s.snapshotter = "native";
    auto text = runtime::render_config(s);
    auto t = toml::parse(text);
    CHECK(t["version"].value<int64_t>() == 2);
    auto cri = t["plugins"]["io.containerd.grpc.v1.cri"];
    CHECK(cri["sandbox_image"].value<std::string>() == "registry.local:5000/pause:3.9");
    CHECK(cri["containerd"]["snapshotter"].value<std::string>() == "native");
    CHECK(cri["containerd"]["runtimes"]["runc"]["runtime_type"].value<std::string>() == "io.containerd.runc.v2");
    CHECK(cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].value<bool>() == true);
    CHECK(cri["registry"]["config_path"].value<std::string>() == "/etc/containerd/certs.d");
    CHECK(cri["cni"]["bin_dir"].value<std::string>() == "/usr/lib/cni");

    s.systemd_cgroup = false;
    auto t2 = toml::parse(runtime::render_config(s));
    CHECK(t2["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"]
              .value<bool>() == false);
}

TEST_CASE("runtime: a mirror's hosts.toml names the registry's server and each endpoint") {
    runtime::Mirror m{"docker.io", {"http://127.0.0.1:5000", "https://mirror.test"}};
    auto t = toml::parse(runtime::render_hosts_toml(m));
    CHECK(t["server"].value<std::string>() == "https://registry-1.docker.io");
    CHECK(t["host"]["http://127.0.0.1:5000"]["capabilities"].as_array()->size() == 2);
    CHECK(t["host"]["https://mirror.test"]["capabilities"][0].value<std::string>() == "pull");
    runtime::Mirror other{"registry.local:5000", {"http://127.0.0.1:5001"}};
    CHECK(toml::parse(runtime::render_hosts_toml(other))["server"].value<std::string>() ==
          "https://registry.local:5000");
}

TEST_CASE("runtime: profile keys become the step's files; auto detects the cgroup driver on the host") {
    auto profile = testing::profile_from(R"(
[runtime]
sandbox_image = "registry.k8s.io/pause:3.9"
[[runtime.mirrors]]
registry = "docker.io"
endpoints = ["http://127.0.0.1:5000"]
)");
    auto spec = runtime::containerd_group(profile.section("runtime"));
    REQUIRE(spec.files.size() == 2);
    CHECK(spec.files[0].path == "/etc/containerd/config.toml");
    CHECK(spec.files[1].path == "/etc/containerd/certs.d/docker.io/hosts.toml");
    CHECK(static_cast<bool>(spec.prepare));  // "auto" (the default) is decided on the host

    auto fixed = testing::profile_from("[runtime]\ncgroup_driver = \"systemd\"\n");
    auto spec2 = runtime::containerd_group(fixed.section("runtime"));
    CHECK(spec2.files[0].content.find("SystemdCgroup = true") != std::string::npos);
}

TEST_CASE("runtime: a bad snapshotter or mirror is a profile error with file:line") {
    auto r = testing::try_profile("[runtime]\nsnapshotter = \"aufs\"\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find(":2:") != std::string::npos);
    CHECK(r.error().message.find("snapshotter") != std::string::npos);
    auto m =
        testing::try_profile("[runtime]\n[[runtime.mirrors]]\nregistry = \"docker.io\"\nendpoints = [\"ftp://x\"]\n");
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().message.find("endpoints") != std::string::npos);
}

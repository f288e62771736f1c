// SshTarget against a real sshd on loopback (root's login on this machine, files only in a
// temporary directory). The SFTP temp file of an upload is created O_EXCL, 0600, under a name
// nobody can predict, so a link planted by a node's user is never written through (the
// sftp-server logs every open, flags and mode).
#include "target/ssh_target.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>

using namespace nodectl;
using nodectl::testing::read_text;
namespace fs = std::filesystem;

namespace {

void spit(const std::string& path, const std::string& data, mode_t mode = 0644) {
    std::ofstream(path, std::ios::binary) << data;
    ::chmod(path.c_str(), mode);
}

// An sshd on a free loopback port that lets root in with a key made here; its sftp-server starts
// in `home` and logs to `sftp_log`. Stopped and removed on destruction.
struct LoopbackSshd {
    std::string dir, home, sftp_log, key, known_hosts, ssh_config;
    int port = 0;
    bool up = false;

    LoopbackSshd() {
        std::string t = fs::temp_directory_path().string() + "/nodectl-sshd-XXXXXX";
        REQUIRE(::mkdtemp(t.data()));
        dir = t;
        home = dir + "/home";
        fs::create_directories(home);
        sftp_log = dir + "/sftp.log";
        key = dir + "/client_key";
        known_hosts = dir + "/known_hosts";
        ssh_config = dir + "/ssh_config";
        spit(ssh_config, "");
        if (!fs::exists("/usr/sbin/sshd") || !fs::exists("/usr/lib/openssh/sftp-server") || ::geteuid() != 0) {
            return;
        }
        std::string q = "'" + dir + "'";
        REQUIRE(
            std::system(("ssh-keygen -q -t ed25519 -N '' -f " + q + "/host_key && ssh-keygen -q -t ed25519 -N '' -f " +
                         q + "/client_key && cp " + q + "/client_key.pub " + q + "/authorized_keys")
                            .c_str()) == 0);
        spit(dir + "/sftp-server.sh",
             "#!/bin/sh\nexec /usr/lib/openssh/sftp-server -d '" + home + "' -l VERBOSE -e 2>>'" + sftp_log + "'\n",
             0755);
        for (int attempt = 0; attempt < 5 && !up; ++attempt) {
            port = 20000 + static_cast<int>((::getpid() * 7 + attempt * 7919) % 30000);
            spit(dir + "/sshd_config",
                 "Port " + std::to_string(port) + "\nListenAddress 127.0.0.1\nHostKey " + dir +
                     "/host_key\nAuthorizedKeysFile " + dir + "/authorized_keys\nPidFile " + dir +
                     "/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                     "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nSubsystem sftp " +
                     dir + "/sftp-server.sh\n");
            fs::create_directories("/run/sshd");
            if (std::system(("/usr/sbin/sshd -f " + q + "/sshd_config -E " + q + "/sshd.log").c_str()) != 0) {
                continue;
            }
            for (int i = 0; i < 50 && !up; ++i) {
                up = read_text(dir + "/sshd.log").find("Server listening") != std::string::npos;
                if (read_text(dir + "/sshd.log").find("Bind to port") != std::string::npos) {
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            if (!up) {
                stop();
            }
        }
        std::string host_key = read_text(dir + "/host_key.pub");
        host_key = host_key.substr(0, host_key.rfind(' '));  // drop the comment
        spit(known_hosts, "[127.0.0.1]:" + std::to_string(port) + " " + host_key + "\n");
    }
    void stop() {
        std::string pid = read_text(dir + "/sshd.pid");
        if (!pid.empty()) {
            ::kill(static_cast<pid_t>(std::stol(pid)), SIGTERM);
            fs::remove(dir + "/sshd.pid");
        }
        // An sshd stopped before it wrote its pid file (it was not up in time) is found by its
        // config file, which is this fixture's own: none may outlive the test.
        // ([-] keeps the pattern from matching the shell that runs pkill.)
        (void)std::system(("pkill -TERM -f -- '[-]f " + dir + "/sshd_config' 2>/dev/null").c_str());
    }
    ~LoopbackSshd() {
        stop();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

HostSpec loopback_host(const LoopbackSshd& sshd) {
    HostSpec host;
    host.name = host.address = "127.0.0.1";
    host.port = sshd.port;
    host.user = "root";
    host.identity = sshd.key;
    return host;
}

SshOptions loopback_options(const LoopbackSshd& sshd) {
    SshOptions options;
    options.known_hosts = sshd.known_hosts;
    options.ssh_config = sshd.ssh_config;
    return options;
}

}  // namespace

TEST_CASE(
    "SFTP upload: the temp file on the node is new (O_EXCL), 0600, unpredictable; a planted link is not followed") {
    LoopbackSshd sshd;
    if (!sshd.up) {
        MESSAGE("no sshd on loopback here (needs root and openssh-server): case skipped");
        return;
    }
    auto target = SshTarget::connect(loopback_host(sshd), loopback_options(sshd));
    REQUIRE_MESSAGE(target, (target ? "" : target.error().message));

    std::string local = sshd.dir + "/payload", dest = sshd.dir + "/dest", victim = sshd.dir + "/victim";
    spit(local, "payload\n");
    spit(victim, "victim\n");
    // What a node's user could plant if the name were predictable: every name derived from this
    // process and the destination (the old scheme was pid + a hash of the destination path).
    std::string planted = sshd.home + "/.nodectl-upload-" + std::to_string(::getpid()) + "-" +
                          std::to_string(std::hash<std::string>{}(dest) % 100000);
    REQUIRE(::symlink(victim.c_str(), planted.c_str()) == 0);

    for (int round = 0; round < 2; ++round) {
        REQUIRE_MESSAGE((*target)->upload(local, {dest, "", 0640, "root", "root"}), "upload " << round);
    }
    CHECK(read_text(victim) == "victim\n");  // never written through the planted link
    CHECK(read_text(dest) == "payload\n");
    struct stat st {};
    REQUIRE(::stat(dest.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);

    // The server's own log of the opens: a new file each time, 0600, under a fresh random name.
    std::string log = read_text(sshd.sftp_log);
    std::regex open_line(R"re(open "([^"]*\.nodectl-upload-[^"]*)" flags (\S+) mode (0\d+))re");
    std::vector<std::string> names;
    for (std::sregex_iterator it(log.begin(), log.end(), open_line), end; it != end; ++it) {
        INFO((*it)[0].str());
        names.push_back((*it)[1].str());
        CHECK((*it)[2].str().find("EXCL") != std::string::npos);
        CHECK((*it)[2].str().find("TRUNC") == std::string::npos);
        CHECK((*it)[3].str() == "0600");
        CHECK(std::regex_search(names.back(), std::regex(R"(/\.nodectl-upload-[0-9a-f]{16}$)")));
    }
    REQUIRE(names.size() == 2);
    CHECK(names[0] != names[1]);
    // Nothing left behind but the planted link.
    int left = 0;
    for (const auto& e : fs::directory_iterator(sshd.home)) {
        left += e.path().filename().string().starts_with(".nodectl-upload-") ? 1 : 0;
    }
    CHECK(left == 1);
}

TEST_CASE("known_hosts_line_fingerprint: plain, [host]:port and hashed entries; anything else is no key") {
    // A key made for this test with ssh-keygen (its private half was never kept); the hashed line is
    // `ssh-keygen -H` of the plain one for node1.test.
    const std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAXERwtiDkTRJcvVGRcnZviuLP/gXWOnlU8R0/xxzxEI";
    const std::string fp = "ssh-ed25519 SHA256:qTExHfF+kQrOpE9FmvFexSxW3ZJ5sAZqY47ILtX0VbE";
    const std::string hashed = "|1|H5iRpMbSeu6XttAGwL+TeT5vA+Y=|CF7MOaw3Qr436vbxG7pLe/dhcaA= " + key;
    CHECK(nodectl::known_hosts_line_fingerprint("node1.test,192.0.2.11 " + key, "node1.test") == fp);
    CHECK(nodectl::known_hosts_line_fingerprint("[node2.test]:2222 " + key, "[node2.test]:2222") == fp);
    CHECK(nodectl::known_hosts_line_fingerprint(hashed, "node1.test") == fp);
    CHECK_FALSE(nodectl::known_hosts_line_fingerprint(hashed, "node2.test"));
    CHECK_FALSE(nodectl::known_hosts_line_fingerprint("node2.test " + key, "node1.test"));
    for (const std::string& line :
         {"# node1.test " + key, "@revoked node1.test " + key, std::string("node1.test"),
          std::string("node1.test ssh-ed25519 AAAA"), std::string("node1.test ssh-ed25519 !!!"),
          "|1|H5iRpMbSeu6XttAGwL+TeT5vA+Y=|CF7MOaw3Qr436vbxG7pLe/dhcaA " + key, "|1|||| " + key,
          std::string("node1.test no-such-type ") + key.substr(12)}) {
        CHECK_FALSE(nodectl::known_hosts_line_fingerprint(line, "node1.test"));
    }
}

// tests/integration/data/release_server.py as a child process for one test: started by the
// constructor (which waits for the port it prints), killed by the destructor. Listens on 127.0.0.1.
#pragma once

#include "util/http.hpp"
#include "util/strings.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace nodectl::testing {

class ReleaseServer {
public:
    // `args` follow the script name: --root DIR, --channel NAME=VERSION, --truncate-first N, ...
    explicit ReleaseServer(const std::vector<std::string>& args) {
        int out[2];
        if (::pipe(out) != 0) {
            throw std::runtime_error("pipe failed");
        }
        std::vector<std::string> argv = {"python3",
                                         std::string(NODECTL_SOURCE_DIR) + "/tests/integration/data/release_server.py"};
        argv.insert(argv.end(), args.begin(), args.end());
        m_pid = ::fork();
        if (m_pid < 0) {
            throw std::runtime_error("fork failed");
        }
        if (m_pid == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            ::close(out[1]);
            std::vector<char*> cargs;
            for (auto& a : argv) {
                cargs.push_back(a.data());
            }
            cargs.push_back(nullptr);
            ::execvp(cargs[0], cargs.data());
            ::_exit(127);
        }
        ::close(out[1]);
        m_out = out[0];
        std::string line;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (line.find('\n') == std::string::npos) {
            if (std::chrono::steady_clock::now() > deadline) {
                stop();
                throw std::runtime_error("release_server.py printed no port");
            }
            pollfd fd = {m_out, POLLIN, 0};
            if (::poll(&fd, 1, 200) > 0) {
                char buf[64];
                ssize_t n = ::read(m_out, buf, sizeof buf);
                if (n <= 0) {
                    stop();
                    throw std::runtime_error("release_server.py exited before printing its port");
                }
                line.append(buf, static_cast<size_t>(n));
            }
        }
        m_port = std::atoi(line.c_str());
        if (m_port <= 0) {
            stop();
            throw std::runtime_error("release_server.py printed no port: " + line);
        }
    }
    ~ReleaseServer() { stop(); }
    ReleaseServer(const ReleaseServer&) = delete;
    ReleaseServer& operator=(const ReleaseServer&) = delete;

    int port() const { return m_port; }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }

    // Requests the server answered so far (its /_stats endpoint does not count itself); -1 when
    // the stats cannot be read.
    int total_requests() const { return count("total"); }
    // Requests for one raw path, as sent ("/releases/download/v1.31.4%2Bk3s1/k3s"); -1 as above.
    int requests(const std::string& path) const { return count(path); }

    void stop() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGTERM);
            int status = 0;
            ::waitpid(m_pid, &status, 0);
            m_pid = -1;
        }
        if (m_out >= 0) {
            ::close(m_out);
            m_out = -1;
        }
    }

private:
    int count(const std::string& key) const {
        util::HttpOptions once;
        once.attempts = 1;
        auto r = util::fetch_text(url("/_stats"), once);
        if (!r) {
            return -1;
        }
        for (const auto& line : util::split_lines(r->body)) {
            if (key == "total" && util::starts_with(line, "total ")) {
                return std::atoi(line.c_str() + 6);
            }
            auto space = line.find(' ');
            if (key != "total" && space != std::string::npos && line.substr(space + 1) == key) {
                return std::atoi(line.c_str());
            }
        }
        return key == "total" ? -1 : 0;
    }

    pid_t m_pid = -1;
    int m_out = -1;
    int m_port = 0;
};

// The k3s version the tests' release trees (srv/<version>/) serve.
inline const std::string k_release_version = "v1.31.4+k3s1";

// Short backoff and time-outs: every test talks to 127.0.0.1 only.
inline util::HttpOptions fast_http(int attempts = 4) {
    util::HttpOptions o;
    o.attempts = attempts;
    o.initial_backoff = std::chrono::milliseconds(10);
    o.max_backoff = std::chrono::milliseconds(50);
    o.connect_timeout_seconds = 5;
    o.low_speed_time_seconds = 5;
    o.redirect_protocols = "http,https";  // the server is plain http on loopback
    return o;
}

}  // namespace nodectl::testing

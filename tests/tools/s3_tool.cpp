// nodectl_s3_tool: a test-only driver of util::s3 for tests/integration/test_s3.sh (not installed,
// not a nodectl command). Credentials come from --credentials FILE or the environment
// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never from argv.
//
//   nodectl_s3_tool [options] put KEY          stdin -> KEY, streamed (multipart when > one part)
//   nodectl_s3_tool [options] put-small KEY    stdin -> KEY, one PUT from memory
//   nodectl_s3_tool [options] get KEY          KEY -> stdout
//   nodectl_s3_tool [options] head KEY         "size etag"
//   nodectl_s3_tool [options] ls PREFIX        "key size" lines, every page
//   nodectl_s3_tool [options] rm KEY
//   nodectl_s3_tool [options] uploads PREFIX   "key upload-id" lines of open multipart uploads
//   nodectl_s3_tool [options] abort KEY ID
//   nodectl_s3_tool [options] put-many PREFIX N   N small objects PREFIX00000.. (one client, sequential)
//   --fail-after BYTES (put): the source "fails" after BYTES: abort() instead of finish(), exit 3
// Options: --endpoint URL --bucket B --region R --path-style --storage-class C --parallel N
//          --part-size BYTES --size-hint BYTES --attempts N --backoff-ms MS --credentials FILE
//          --low-speed-time S (a request that moves less than 1 byte/s for S seconds is aborted)
// Exit 0 ok, 1 failure (message on stderr), 2 usage.
#include "util/s3.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

int usage(const std::string& why) {
    std::cerr << "nodectl_s3_tool: " << why << " (see the comment at the top of tests/tools/s3_tool.cpp)\n";
    return 2;
}

// 0, or 1 with the error on stderr.
template <class T>
int report(const util::s3::Outcome<T>& st) {
    if (!st) {
        std::cerr << "error: " << st.error().message << "\n";
        return 1;
    }
    return 0;
}

// The options and the command's words; exits with usage() on a malformed command line.
struct Invocation {
    util::s3::Config config;
    std::string credentials_file;
    std::uint64_t size_hint = 0;
    std::uint64_t fail_after = 0;
    std::vector<std::string> args;
};

Invocation parse(int argc, char** argv) {
    Invocation in;
    util::s3::Config& config = in.config;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::exit(usage(a + " needs a value"));
            }
            return argv[++i];
        };
        if (a == "--endpoint") {
            config.endpoint = value();
        } else if (a == "--bucket") {
            config.bucket = value();
        } else if (a == "--region") {
            config.region = value();
        } else if (a == "--path-style") {
            config.path_style = true;
        } else if (a == "--storage-class") {
            config.storage_class = value();
        } else if (a == "--parallel") {
            config.parallel_parts = std::stoi(value());
        } else if (a == "--part-size") {
            config.min_part_size = std::stoull(value());
        } else if (a == "--size-hint") {
            in.size_hint = std::stoull(value());
        } else if (a == "--fail-after") {
            in.fail_after = std::stoull(value());
        } else if (a == "--attempts") {
            config.attempts = std::stoi(value());
        } else if (a == "--backoff-ms") {
            config.initial_backoff = std::chrono::milliseconds(std::stoll(value()));
        } else if (a == "--low-speed-time") {
            config.low_speed_time_seconds = std::stol(value());
        } else if (a == "--credentials") {
            in.credentials_file = value();
        } else if (a.size() > 1 && a[0] == '-') {
            std::exit(usage("unknown option " + a));
        } else {
            in.args.push_back(a);
        }
    }
    if (in.args.empty()) {
        std::exit(usage("no command"));
    }
    return in;
}

// put KEY: stdin streamed to KEY (with --fail-after, abort() once that many bytes were read).
int put(util::s3::Client& client, const Invocation& in) {
    auto up = client.upload(in.args[1], in.size_hint);
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::read(0, buf.data(), buf.size());
        if (n < 0) {
            std::cerr << "error: reading stdin: " << std::strerror(errno) << "\n";
            up->abort();
            return 1;
        }
        if (n == 0) {
            break;
        }
        if (in.fail_after > 0 && up->bytes_written() + static_cast<std::uint64_t>(n) > in.fail_after) {
            up->abort();
            std::cerr << "source failed after " << up->bytes_written()
                      << " bytes; upload aborted, parts=" << up->parts() << "\n";
            return 3;
        }
        if (auto st = up->write(buf.data(), static_cast<std::size_t>(n)); !st) {
            return report(st);
        }
    }
    auto st = up->finish();
    std::cerr << "bytes=" << up->bytes_written() << " parts=" << up->parts() << "\n";
    return report(st);
}

int run(util::s3::Client& client, const Invocation& in) {
    const auto& args = in.args;
    const std::string& cmd = args[0];
    auto need = [&](std::size_t n) { return args.size() == n + 1; };
    if (cmd == "put" && need(1)) {
        return put(client, in);
    }
    if (cmd == "put-small" && need(1)) {
        std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        return report(client.put(args[1], body));
    }
    if (cmd == "get" && need(1)) {
        return report(
            client.get(args[1], [](const char* d, std::size_t n) { return std::fwrite(d, 1, n, stdout) == n; }));
    }
    if (cmd == "head" && need(1)) {
        auto info = client.head(args[1]);
        if (info) {
            std::cout << info->size << " " << info->etag << "\n";
        }
        return report(info);
    }
    if (cmd == "ls" && need(1)) {
        auto objects = client.list(args[1]);
        for (const auto& o : objects.value_or(std::vector<util::s3::ObjectInfo>{})) {
            std::cout << o.key << " " << o.size << "\n";
        }
        return report(objects);
    }
    if (cmd == "rm" && need(1)) {
        return report(client.remove(args[1]));
    }
    if (cmd == "uploads" && need(1)) {
        auto uploads = client.list_uploads(args[1]);
        for (const auto& u : uploads.value_or(std::vector<util::s3::UploadInfo>{})) {
            std::cout << u.key << " " << u.upload_id << "\n";
        }
        return report(uploads);
    }
    if (cmd == "put-many" && need(2)) {
        int n = std::stoi(args[2]);
        for (int i = 0; i < n; ++i) {
            char name[16];
            std::snprintf(name, sizeof name, "%05d", i);
            if (auto st = client.put(args[1] + name, std::string(name) + "\n"); !st) {
                return report(st);
            }
        }
        return 0;
    }
    if (cmd == "abort" && need(2)) {
        return report(client.abort_upload(args[1], args[2]));
    }
    return usage("unknown command or wrong arguments: " + cmd);
}

}  // namespace

int main(int argc, char** argv) {
    Invocation in = parse(argc, argv);
    std::string warning;
    auto credentials = in.credentials_file.empty() ? util::s3::credentials_from_environment()
                                                   : util::s3::credentials_from_file(in.credentials_file, &warning);
    if (!warning.empty()) {
        std::cerr << "warning: " << warning << "\n";
    }
    if (!credentials) {
        return report(credentials);
    }
    in.config.credentials = *credentials;
    in.config.log = [](const std::string& line) { std::cerr << "retry: " << line << "\n"; };
    util::s3::Client client(in.config);
    return run(client, in);
}

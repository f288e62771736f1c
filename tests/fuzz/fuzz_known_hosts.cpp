// known_hosts: the file the operator keeps, which also holds every key a host offered on first
// contact (--accept-new-host-key). Each line is read for two host patterns, plain and [host]:port;
// the corpus holds plain and hashed (ssh-keygen -H) entries for them, so the fuzzer starts from
// lines that match and reaches the key decoding (libssh) behind the hostname and HMAC checks.
#include "fuzz_input.hpp"
#include "target/ssh_target.hpp"
#include "util/strings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    for (const auto& line : util::split_lines(fuzz::text(data, size))) {
        for (const char* pattern : {"node1.test", "[node2.test]:2222"}) {
            (void)nodectl::known_hosts_line_fingerprint(line, pattern);
        }
    }
    return 0;
}

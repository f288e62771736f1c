// What a host prints back to nodectl's probes: a host that lies or whose output is cut must fail
// with an error naming the command, never end the process. The first byte chooses the parser (a
// letter of k_parsers below; any other byte is taken modulo their number), the rest is the output.
#include "fuzz_input.hpp"
#include "host/controls.hpp"
#include "host/files.hpp"
#include "host/packages.hpp"
#include "host/services.hpp"
#include "modules/harden/groups.hpp"
#include "modules/k3s/release.hpp"
#include "nodectl/target.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace {

// s: Target::stat (`stat -c '%F|%a|%U|%G|%s'`, readlink)
// f: host::file_state (`stat -c '%a %U %G'`, `sha256sum`)
// r: host::read_files (`stat -c 'F %a %U %G %s'` + content, or N, for three paths)
// d: host::installed_packages (`dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n'`)
// u: host::unit_states (`systemctl is-enabled`, `systemctl is-active`)
// c: host::evaluate's output (controls over `sshd -T` values, `stat -c %a`, ...) and the predicates
// q: harden::choose_ssh_algorithms (`ssh -Q kex|cipher|mac|key-sig`)
// m: harden::filter_moduli (/etc/ssh/moduli)
// k: k3s::parse_sha256sums (a release's sha256sum-<arch>.txt)
// a: host::AptProgress (`apt-get install`'s stdout, in pieces)
constexpr std::string_view k_parsers = "sfrducqmka";

const std::vector<nodectl::host::Control>& sshd_controls() {
    using namespace nodectl::host;
    static const std::vector<Control> controls = [] {
        std::vector<Control> c;
        auto add = [&c](std::string id, Expect e) { c.push_back({id, id, "v " + id, std::move(e), ""}); };
        add("permitrootlogin", equals("no"));
        add("passwordauthentication", equals("no"));
        add("kexalgorithms", same_set({"sntrup761x25519-sha512@openssh.com", "curve25519-sha256"}));
        add("ciphers", same_set({"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"}));
        add("macs", same_set({"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"}));
        add("maxauthtries", at_most(3));
        add("logingracetime", at_most(30));
        add("x11forwarding", equals("no"));
        add("allowgroups", equals("sshusers"));
        add("rsa_host_key_bits", at_least(4096));
        add("config_mode", equals("600"));
        add("loglevel", one_of({"VERBOSE", "INFO"}));
        add("empty_passwords", empty_output("no accounts with empty passwords"));
        return c;
    }();
    return controls;
}

void feed_apt(std::string_view text) {
    using Clock = nodectl::host::AptProgress::Clock;
    Clock::time_point t{};
    nodectl::host::AptProgress progress(t, std::chrono::seconds(10));
    // Pieces of varying size, as a channel delivers them, 7 s apart (so reports are due).
    size_t piece = 1;
    for (size_t pos = 0; pos < text.size(); pos += piece, piece = piece * 3 % 61 + 1) {
        t += std::chrono::seconds(7);
        (void)progress.feed(text.substr(pos, piece), t);
    }
    (void)progress.feed("", t + std::chrono::seconds(30));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    auto which = k_parsers.find(static_cast<char>(data[0]));
    char parser = k_parsers[which != std::string_view::npos ? which : data[0] % k_parsers.size()];
    std::string out(fuzz::text(data + 1, size - 1));
    switch (parser) {
    case 's': (void)nodectl::parse_stat_output("/etc/x", out); break;
    case 'f': (void)nodectl::host::parse_file_state("/etc/x", out); break;
    case 'r': (void)nodectl::host::parse_read_files({"/etc/a", "/etc/b", "/etc/c"}, out); break;
    case 'd': (void)nodectl::host::parse_installed_packages(out); break;
    case 'u': (void)nodectl::host::parse_unit_states(out); break;
    case 'c':
        (void)nodectl::host::parse_control_output(sshd_controls(), out);
        for (const auto& c : sshd_controls()) {
            (void)c.expect.passes(out);
        }
        break;
    case 'q': (void)nodectl::harden::choose_ssh_algorithms(nodectl::harden::wanted_ssh_algorithms(), out); break;
    case 'm': (void)nodectl::harden::filter_moduli(out); break;
    case 'k': (void)nodectl::k3s::parse_sha256sums(out); break;
    case 'a': feed_apt(out); break;
    }
    return 0;
}

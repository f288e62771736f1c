// sshd hardening: one drop-in that sorts before every other (sshd keeps the first value it reads,
// so it beats e.g. 50-cloud-init.conf's PasswordAuthentication yes), algorithms after ssh-audit's
// OpenSSH 9.x hardening guide, ed25519 + RSA 4096 host keys only, moduli >= 3071 bits, and the
// login banner. Guarded: sshd -t before reload, a fresh login after, a rollback timer meanwhile.
#include "modules/harden/groups.hpp"

#include "util/log.hpp"
#include "host/services.hpp"
#include "util/digest.hpp"
#include "util/strings.hpp"

#include <map>
#include <set>

namespace nodectl::harden {

namespace {

constexpr const char* k_dropin = "/etc/ssh/sshd_config.d/00-nodectl-hardening.conf";

// `ssh -Q` (openssh-server depends on openssh-client of the same version and build) lists what
// this OpenSSH supports; sshd has no such query. key-sig, not key: rsa-sha2-* are signatures.
constexpr const char* k_query_algorithms =
    "command -v ssh >/dev/null 2>&1 || exit 3\n"
    "for q in kex cipher mac key-sig; do echo \"== $q\"; ssh -Q \"$q\" || exit 4; done";

std::vector<std::string> allow_groups(const ConfigView& ssh) {
    return ssh.strings("allow_groups");
}

// The values `sshd -T` must show, as it prints them (lower-case keys), but the algorithm lists.
std::vector<std::pair<std::string, std::string>> option_values(const ConfigView& ssh) {
    auto root = ssh.str("permit_root_login");
    return {
        {"permitrootlogin", root == "no" ? "no" : "without-password"},
        {"passwordauthentication", "no"},
        {"kbdinteractiveauthentication", "no"},
        {"permitemptypasswords", "no"},
        {"pubkeyauthentication", "yes"},
        {"hostbasedauthentication", "no"},
        {"ignorerhosts", "yes"},
        {"maxauthtries", std::to_string(ssh.integer("max_auth_tries"))},
        {"logingracetime", std::to_string(ssh.integer("login_grace_time"))},
        {"maxstartups", ssh.str("max_startups")},
        {"maxsessions", std::to_string(ssh.integer("max_sessions"))},
        {"clientaliveinterval", std::to_string(ssh.integer("client_alive_interval"))},
        {"clientalivecountmax", std::to_string(ssh.integer("client_alive_count_max"))},
        {"tcpkeepalive", "no"},
        {"usedns", "no"},
        {"strictmodes", "yes"},
        {"printlastlog", "yes"},
        {"x11forwarding", "no"},
        {"allowagentforwarding", "no"},
        {"allowtcpforwarding", "no"},
        {"allowstreamlocalforwarding", "no"},
        {"permittunnel", "no"},
        {"permituserenvironment", "no"},
        {"gatewayports", "no"},
        {"compression", "no"},
        {"loglevel", "VERBOSE"},
        {"banner", "/etc/issue.net"},
    };
}

std::vector<std::pair<std::string, std::string>> algorithm_values(const SshAlgorithms& a) {
    return {
        {"kexalgorithms", util::join(a.kex, ",")},
        {"ciphers", util::join(a.ciphers, ",")},
        {"macs", util::join(a.macs, ",")},
        {"hostkeyalgorithms", util::join(a.host_key_algorithms, ",")},
    };
}

// The options of the drop-in after the algorithm lines.
std::string dropin_options(const ConfigView& ssh) {
    auto groups = allow_groups(ssh);
    std::string out = "PermitRootLogin " + ssh.str("permit_root_login") +
                      "\n"
                      "PasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\n"
                      "PermitEmptyPasswords no\n"
                      "PubkeyAuthentication yes\n"
                      "HostbasedAuthentication no\n"
                      "IgnoreRhosts yes\n";
    if (!groups.empty()) {
        out += "AllowGroups " + util::join(groups, " ") + "\n";
    }
    out += "MaxAuthTries " + std::to_string(ssh.integer("max_auth_tries")) + "\n" + "LoginGraceTime " +
           std::to_string(ssh.integer("login_grace_time")) + "\n" + "MaxStartups " + ssh.str("max_startups") + "\n" +
           "MaxSessions " + std::to_string(ssh.integer("max_sessions")) + "\n" + "ClientAliveInterval " +
           std::to_string(ssh.integer("client_alive_interval")) + "\n" + "ClientAliveCountMax " +
           std::to_string(ssh.integer("client_alive_count_max")) + "\n" +
           "TCPKeepAlive no\n"
           "UseDNS no\n"
           "StrictModes yes\n"
           "PrintLastLog yes\n"
           "X11Forwarding no\n"
           "AllowAgentForwarding no\n"
           "AllowTcpForwarding no\n"
           "AllowStreamLocalForwarding no\n"
           "PermitTunnel no\n"
           "PermitUserEnvironment no\n"
           "GatewayPorts no\n"
           "Compression no\n"
           "LogLevel VERBOSE\n"
           "Banner /etc/issue.net\n";
    return out;
}

std::string render_dropin(const SshAlgorithms& a, const std::string& options) {
    return "# Managed by nodectl (harden.ssh): changes here are replaced on the next apply.\n"
           "# sshd keeps the first value it reads; this file sorts before the other drop-ins so its values win.\n"
           "HostKey /etc/ssh/ssh_host_ed25519_key\n"
           "HostKey /etc/ssh/ssh_host_rsa_key\n"
           "KexAlgorithms " +
           util::join(a.kex, ",") +
           "\n"
           "Ciphers " +
           util::join(a.ciphers, ",") +
           "\n"
           "MACs " +
           util::join(a.macs, ",") +
           "\n"
           "HostKeyAlgorithms " +
           util::join(a.host_key_algorithms, ",") + "\n" + options;
}

std::string banner_text(const ConfigView& ssh) {
    auto text = ssh.str("banner");
    return text.ends_with("\n") ? text : text + "\n";
}

// `v KEY`: the value(s) of KEY in $T (the output of `sshd -T`), several on one line. Shell
// built-ins only: the drift asks for 33 keys, and a pipeline each cost ~130 ms of the node's CPU.
constexpr const char* k_value_of =
    "v() { r=; while IFS= read -r l; do case $l in \"$1 \"*) r=\"${r:+$r }${l#\"$1 \"}\";; esac; done <<NODECTL_SSHD_T\n"
    "$T\nNODECTL_SSHD_T\nprintf '%s' \"$r\"; }";

// Prints nothing when the host keys are as wanted; used both as drift and as the fixer's guard.
constexpr const char* k_host_key_drift = R"sh(cd /etc/ssh
for t in ecdsa dsa; do if [ -e ssh_host_${t}_key ]; then echo "remove the $t host key"; fi; done
[ -s ssh_host_ed25519_key ] || echo "generate an ed25519 host key"
bits=$(ssh-keygen -l -f ssh_host_rsa_key 2>/dev/null | awk '{print $1}')
[ "${bits:-0}" -ge 4096 ] || echo "RSA host key: ${bits:-none} bits -> new 4096-bit key (clients that pinned the old RSA key must update known_hosts; the ed25519 key is kept)"
)sh";

constexpr const char* k_host_key_fix = R"sh(set -e
cd /etc/ssh
rm -f ssh_host_ecdsa_key ssh_host_ecdsa_key.pub ssh_host_dsa_key ssh_host_dsa_key.pub
if [ ! -s ssh_host_ed25519_key ]; then rm -f ssh_host_ed25519_key.pub; ssh-keygen -q -t ed25519 -N '' -f ssh_host_ed25519_key; fi
bits=$(ssh-keygen -l -f ssh_host_rsa_key 2>/dev/null | awk '{print $1}')
if [ "${bits:-0}" -lt 4096 ]; then rm -f ssh_host_rsa_key ssh_host_rsa_key.pub; ssh-keygen -q -t rsa -b 4096 -N '' -f ssh_host_rsa_key; fi
chown root:root ssh_host_*; chmod 600 ssh_host_*_key; chmod 644 ssh_host_*_key.pub
)sh";

}  // namespace

SshAlgorithms wanted_ssh_algorithms() {
    return {
        {"sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
         "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"},
        {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr",
         "aes192-ctr", "aes128-ctr"},
        {"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"},
        {"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"},
    };
}

Result<SshAlgorithmChoice> choose_ssh_algorithms(const SshAlgorithms& wanted, const std::string& query_output) {
    // "== kex" starts the list of `ssh -Q kex`, and so on.
    std::map<std::string, std::set<std::string>> offered;
    std::string section;
    for (const auto& raw : util::split_lines(query_output)) {
        auto line = util::trim(raw);
        if (line.starts_with("== ")) {
            section = line.substr(3);
            offered[section];
        } else if (!line.empty() && !section.empty()) {
            offered[section].insert(line);
        }
    }
    SshAlgorithmChoice out;
    struct List {
        const char* option;
        const char* query;
        const std::vector<std::string>& want;
        std::vector<std::string>& kept;
    };
    for (const List& l :
         {List{"KexAlgorithms", "kex", wanted.kex, out.kept.kex},
          List{"Ciphers", "cipher", wanted.ciphers, out.kept.ciphers}, List{"MACs", "mac", wanted.macs, out.kept.macs},
          List{"HostKeyAlgorithms", "key-sig", wanted.host_key_algorithms, out.kept.host_key_algorithms}}) {
        auto it = offered.find(l.query);
        if (it == offered.end()) {
            return make_error(ErrorCode::command, std::string("the host's OpenSSH did not list its ") + l.query +
                                                      " algorithms (ssh -Q " + l.query + ")");
        }
        std::vector<std::string> dropped;
        for (const auto& a : l.want) {
            (it->second.count(a) ? l.kept : dropped).push_back(a);
        }
        if (l.kept.empty()) {
            return make_error(ErrorCode::command, std::string("the host's OpenSSH supports none of the ") + l.option +
                                                      " nodectl allows (" + util::join(l.want, ",") +
                                                      "): update openssh-server on the host, or turn [harden.ssh] off");
        }
        if (!dropped.empty()) {
            out.left_out.push_back(std::string(l.option) + " " + util::join(dropped, ","));
        }
    }
    return out;
}

std::string render_sshd_dropin(const ConfigView& ssh, const Settings&, const SshAlgorithms& algorithms) {
    return render_dropin(algorithms, dropin_options(ssh));
}

namespace {

// The parts of the group that depend on the algorithm lists: the drop-in, the drift probe (which
// compares `sshd -T` once the drop-in is in place) and the controls.
void set_algorithm_parts(ConfigSetSpec& spec, const SshAlgorithms& algorithms, const std::string& options,
                         std::vector<std::pair<std::string, std::string>> values,
                         const std::vector<std::string>& groups) {
    auto dropin = render_dropin(algorithms, options);
    spec.files[0].content = dropin;
    auto lists = algorithm_values(algorithms);
    values.insert(values.end(), lists.begin(), lists.end());
    // Effective values are compared only once the drop-in is in place: before that the file diff
    // says it all. Afterwards a difference means another file read earlier overrides ours.
    std::string effective =
        "T=$(sshd -T 2>&1) || { echo \"sshd -T fails: $T\"; exit 0; }\n" + std::string(k_value_of) + "\n";
    auto wanted = values;
    if (!groups.empty()) {
        wanted.emplace_back("allowgroups", util::join(groups, " "));
    }
    for (const auto& [k, v] : wanted) {
        effective += "[ \"$(v " + k + ")\" = " + shell_quote(v) + " ] || echo \"sshd effective " + k + " is '$(v " + k +
                     ")', wanted '" + v + "': a file sshd reads earlier sets it\"\n";
    }
    spec.drift = std::string(k_host_key_drift) + "if [ \"$(sha256sum < " + k_dropin +
                 " 2>/dev/null | cut -c1-64)\" = " + util::sha256_hex(dropin) + " ]; then\n" + effective + "fi\n";

    spec.controls.clear();
    for (const auto& [k, v] : values) {
        host::Control c;
        c.id = "ssh." + k;
        c.title = "sshd " + k;
        c.observe = "v " + k;
        bool is_list = k == "kexalgorithms" || k == "ciphers" || k == "macs" || k == "hostkeyalgorithms";
        if (is_list) {
            c.expect = host::same_set(util::split(v, ','));
        } else if (k == "maxauthtries" || k == "logingracetime" || k == "maxsessions" || k == "clientalivecountmax") {
            c.expect = host::at_most(std::atol(v.c_str()));
        } else {
            c.expect = host::equals(v);
        }
        c.not_applicable = "command -v sshd >/dev/null || echo 'sshd is not installed'";
        spec.controls.push_back(std::move(c));
    }
    if (!groups.empty()) {
        spec.controls.push_back({"ssh.allowgroups", "only these groups may log in", "v allowgroups",
                                 host::equals(util::join(groups, " ")), ""});
    }
    spec.controls.push_back(
        {"ssh.host_keys", "host keys: ed25519 and RSA only",
         "ls /etc/ssh/ | sed -n 's/^ssh_host_\\(.*\\)_key$/\\1/p' | sort | tr '\\n' ',' | sed 's/,$//'",
         host::same_set({"ed25519", "rsa"}), ""});
    spec.controls.push_back({"ssh.rsa_host_key_bits", "RSA host key size",
                             "ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key | awk '{print $1}'", host::at_least(4096),
                             ""});
    spec.controls.push_back({"ssh.moduli_min_bits", "smallest DH group-exchange modulus (bits - 1)",
                             "awk '$1 !~ /^#/ && NF >= 7 { print $5 }' /etc/ssh/moduli | sort -n | head -n 1",
                             host::at_least(3071), ""});
    spec.controls.push_back(
        {"ssh.service", "sshd is running", host::units::active_state("ssh.service"), host::equals("active"), ""});
}

}  // namespace

ConfigSetSpec sshd_group(const ConfigView& ssh, const Settings& s) {
    ConfigSetSpec spec;
    spec.id = "harden/sshd";
    spec.title = "sshd hardening";
    spec.enabled = ssh.boolean("enabled");
    spec.files = {
        {k_dropin, "", nullptr, 0644},
        {"/etc/issue.net", banner_text(ssh), nullptr, 0644},
        {"/etc/issue", banner_text(ssh), nullptr, 0644},
        {"/etc/ssh/moduli", "", filter_moduli, 0644},
    };
    auto options = dropin_options(ssh);
    auto values = option_values(ssh);
    auto groups = allow_groups(ssh);
    set_algorithm_parts(spec, wanted_ssh_algorithms(), options, values, groups);
    // The algorithm lists are cut down to what the host's OpenSSH supports (Debian 11's 8.4 has
    // no sntrup761x25519), keeping nodectl's order; what was left out is said in the output.
    spec.prepare = [options, values, groups](Target& target, ConfigSetSpec& sp) -> Result<void> {
        if (!sp.enabled) {
            return Ok{};
        }
        Command cmd;
        cmd.script = k_query_algorithms;
        cmd.mutates = false;
        auto r = TRY(target.run(cmd));
        if (r.exit_code == 3) {
            log::warn(target.name(),
                      "{}: no ssh client on the host to ask which algorithms its OpenSSH supports; "
                      "writing nodectl's full lists",
                      sp.title);
            return Ok{};
        }
        if (r.exit_code != 0) {
            return make_error(ErrorCode::command,
                              "asking the host's OpenSSH which algorithms it supports failed (exit " +
                                  std::to_string(r.exit_code) + "): " + util::trim(r.err));
        }
        auto choice = TRY(choose_ssh_algorithms(wanted_ssh_algorithms(), r.out));
        for (const auto& line : choice.left_out) {
            log::warn(target.name(), "{}: left out, the host's OpenSSH does not support them: {}", sp.title, line);
        }
        set_algorithm_parts(sp, choice.kept, options, values, groups);
        return Ok{};
    };
    spec.post_write = k_host_key_fix;
    spec.validate =
        "grep -Eqi '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\\.d/\\*\\.conf' /etc/ssh/sshd_config || "
        "{ echo '/etc/ssh/sshd_config does not Include /etc/ssh/sshd_config.d/*.conf, so the drop-in would be ignored' >&2; exit 1; }\n"
        "sshd -t";
    // Debian's unit is ssh.service; other systems call it sshd.service.
    spec.activate = host::units::reload({"ssh.service"}).script() + " 2>/dev/null || " +
                    host::units::reload({"sshd.service"}).script();
    spec.restore_activate = spec.activate;
    spec.deactivate = spec.activate;
    spec.also_back_up = {"/etc/ssh/ssh_host_*"};
    spec.guard = true;
    spec.fresh_login_as_when_root = s.root_login_disabled ? s.admin_user : "";
    spec.rollback_after = s.rollback_after;
    spec.controls_prelude = "T=$(sshd -T 2>/dev/null)\n" + std::string(k_value_of);
    return spec;
}

}  // namespace nodectl::harden

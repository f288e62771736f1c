#!/usr/bin/env bash
# Debian 13 (trixie): the main paths on one booted trixie node (OpenSSH 10 with sshd-session,
# systemd 257, deb822 apt sources). The other suites boot Debian 12; this one builds and boots a
# trixie rootfs (`nodectl local rootfs --suite trixie`) and runs, in this order:
#   containerd from [runtime]: apply, re-apply without change, check;
#   k3s server configuration (start = false) from a release served on loopback, as in test_k3s.sh;
#   the backup timer and one backup run under its unit (static binary, as in test_backup_node.sh);
#   the full hardening: apply as root, a fresh login as admin, check with no drift, a re-run as
#   admin that changes nothing, and what a client sees (root and passwords refused).
# Debian 11 (bullseye) is best effort: test_bullseye.sh (see docs/releases.md).
export NODECTL_TEST_SUITE=trixie
source "$(dirname "$0")/lib.sh"

serve_k3s_release
VERSION=$K3S_VERSION
export NODECTL_CACHE_DIR=$WORK/cache
T0=$SECONDS
took() { echo "      $1 took $((SECONDS - T0)) s"; T0=$SECONDS; }

nodes_up 1 198.18.13
N=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
SSH=(ssh -F /dev/null -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=5)

node 1 '. /etc/os-release; echo "$VERSION_CODENAME"; ssh -V 2>&1; systemctl --version | head -n1' >"$WORK/release.out" 2>&1
contains "the node runs Debian 13 (trixie)" "$WORK/release.out" '^trixie$'
contains "  ... with OpenSSH 10" "$WORK/release.out" '^OpenSSH_10\.'
echo "      node: $(tr '\n' ' ' <"$WORK/release.out")"
took "building (if absent) and booting the trixie node"

# --- containerd -------------------------------------------------------------------------------
cat >"$WORK/runtime.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[runtime]
snapshotter = "native"
T
nodectl apply -p "$WORK/runtime.toml" "root@$N" "${KH[@]}" >"$WORK/rt1.out" 2>&1
expect_rc_out "runtime: apply installs and configures containerd" 0 $? "$WORK/rt1.out"
node 1 'ctr plugins ls' >"$WORK/plugins" 2>&1
contains "runtime: the CRI plugin loaded nodectl's config" "$WORK/plugins" 'io.containerd.grpc.v1 +cri +[^ ]+ +ok'
nodectl apply -p "$WORK/runtime.toml" "root@$N" "${KH[@]}" >"$WORK/rt2.out" 2>&1
expect_rc_out "runtime: re-apply" 0 $? "$WORK/rt2.out"
contains "runtime: re-apply changes nothing" "$WORK/rt2.out" ' 0 changed'
nodectl check -p "$WORK/runtime.toml" "root@$N" "${KH[@]}" >"$WORK/rtc.out" 2>&1
expect_rc_out "runtime: check passes" 0 $? "$WORK/rtc.out"
took "the runtime part"

# --- k3s configuration, up to where the binary would run ----------------------------------------
cat >"$WORK/k3s.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[k3s]
$K3S_FROM_TEST_RELEASE
tls_san = ["$N"]
disable = ["traefik"]
start = false
T
nodectl apply -p "$WORK/k3s.toml" "root@$N" "${KH[@]}" >"$WORK/k1.out" 2>&1
expect_rc_out "k3s: apply installs k3s (start = false)" 0 $? "$WORK/k1.out"
check "k3s: binary installed with the release's sha256" test "$(node 1 sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$WANT_SHA"
node 1 'systemd-analyze verify /etc/systemd/system/k3s.service 2>&1; echo rc=$?' >"$WORK/k3s-verify"
contains "k3s: the unit passes systemd 257's systemd-analyze verify" "$WORK/k3s-verify" '^rc=0$'
node 1 stat -c "'%a %n'" /etc/rancher/k3s/config.yaml /etc/rancher/k3s/token >"$WORK/k3s-modes"
check "k3s: config and token are 0600" test "$(grep -c '^600 ' "$WORK/k3s-modes")" = 2
nodectl apply -p "$WORK/k3s.toml" "root@$N" "${KH[@]}" >"$WORK/k2.out" 2>&1
expect_rc_out "k3s: re-apply" 0 $? "$WORK/k2.out"
contains "k3s: re-apply changes nothing" "$WORK/k2.out" ' 0 changed'
took "the k3s part"

# --- backup timer and one run under its unit ----------------------------------------------------
export NODECTL_STATIC_BIN=${NODECTL_STATIC_BIN:-$SRC/build/static/nodectl}
if [ -x "$NODECTL_STATIC_BIN" ]; then
  node 1 'mkdir -p /srv/site /var/backups/nodectl && echo hello >/srv/site/a.txt'
  site_backup trixie 'schedule = "*-*-* 03:15:00"' >"$WORK/backup.toml"
  nodectl apply -p "$WORK/backup.toml" "root@$N" "${KH[@]}" >"$WORK/b1.out" 2>&1
  expect_rc_out "backup: apply installs the binary and the units" 0 $? "$WORK/b1.out"
  node 1 'systemd-analyze verify /etc/systemd/system/nodectl-backup.service /etc/systemd/system/nodectl-backup.timer' >"$WORK/bverify" 2>&1
  expect_rc_out "backup: the units pass systemd-analyze verify" 0 $? "$WORK/bverify"
  node 1 'systemctl start nodectl-backup.service' >"$WORK/bstart.out" 2>&1
  expect_rc_out "backup: systemctl start nodectl-backup.service succeeds" 0 $? "$WORK/bstart.out"
  node 1 'nodectl backup verify "$(ls /var/backups/nodectl | sed s/.tar.zst//)"' >"$WORK/bv.out" 2>&1
  expect_rc_out "backup: the archive verifies on the node" 0 $? "$WORK/bv.out"
  took "the backup part"
else
  echo "note: no static binary ($NODECTL_STATIC_BIN): the backup part is left out"
fi

# --- the full hardening -------------------------------------------------------------------------
write_hardening_profile "$WORK/hard.toml" with-aide
nodectl apply -p "$WORK/hard.toml" "root@$N" "${KH[@]}" >"$WORK/h1.out" 2>"$WORK/h1.err"
rc=$?
cat "$WORK/h1.out" >>"$WORK/h1.err"
expect_rc_out "harden: first apply" 0 $rc "$WORK/h1.err"
contains_text "harden: sshd's fresh login was proven as admin" "$WORK/h1.err" "checking that a fresh login as admin still works"
took "the first hardening apply"
ADMIN=(-p "$WORK/hard.toml" "${KH[@]}" --sudo nopasswd "admin@$N")
nodectl check "${ADMIN[@]}" >"$WORK/hc.out" 2>&1
expect_rc_out "harden: check passes" 0 $? "$WORK/hc.out"
contains "harden: check finds no drift" "$WORK/hc.out" ": [0-9]+ passed, 0 failed, [0-9]+ not applicable"
nodectl apply "${ADMIN[@]}" >"$WORK/h2.out" 2>&1
expect_rc_out "harden: re-run as admin" 0 $? "$WORK/h2.out"
contains "harden: re-run changes nothing" "$WORK/h2.out" "$N: 0 changed, [0-9]+ unchanged"
took "hardening check and re-run"
"${SSH[@]}" "root@$N" true 2>/dev/null
check "harden: root login is refused" test $? -ne 0
# OpenSSH 10 logs failed logins from sshd-session, not sshd: fail2ban's jail must still see them.
f2b_counted() {
  "${SSH[@]}" "admin@$N" 'sudo -n fail2ban-client status sshd' >"$WORK/f2b.out" 2>&1
  grep -Eq 'Total failed:[[:space:]]+[1-9]' "$WORK/f2b.out"
}
wait_until 20 "fail2ban's sshd jail to count the refused login" f2b_counted
contains "harden: fail2ban's sshd jail counted the refused root login (logged by sshd-session)" "$WORK/f2b.out" 'Total failed:[[:space:]]+[1-9]'
"${SSH[@]}" -o BatchMode=no -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no \
  -o NumberOfPasswordPrompts=1 "admin@$N" true </dev/null 2>"$WORK/pw.err"
contains "harden: the server offers public keys only" "$WORK/pw.err" "Permission denied \\(publickey\\)"
"${SSH[@]}" -o KexAlgorithms=ecdh-sha2-nistp256 "admin@$N" true 2>"$WORK/kex.err"
contains "harden: a client limited to ecdh-sha2-nistp256 fails on the key exchange" "$WORK/kex.err" "no matching key exchange method"
"${SSH[@]}" "admin@$N" 'sudo -n sshd -T 2>/dev/null | grep -E "^(kexalgorithms|hostkeyalgorithms) "' >"$WORK/sshdT" 2>&1
contains "harden: sshd runs the drop-in's algorithms" "$WORK/sshdT" '^kexalgorithms sntrup761x25519-sha512@openssh.com,'

finish

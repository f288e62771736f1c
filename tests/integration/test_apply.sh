#!/usr/bin/env bash
# apply over SSH to 2 real nodes in parallel; a second run changes nothing; check/plan see drift.
source "$(dirname "$0")/lib.sh"
nodes_up 2 198.18.1
use_site_profile

echo "# first apply, both nodes in parallel"
nodectl apply -p "$WORK/site.toml" -i "$INV" "${KH[@]}" --parallel 2 >"$WORK/a1.out" 2>"$WORK/a1.err"
expect_rc "first apply succeeds" 0 $?
contains "node1 reports changes" "$WORK/a1.out" '^== node1: [1-9][0-9]* changed'
contains "node2 reports changes" "$WORK/a1.out" '^== node2: [1-9][0-9]* changed'
contains "summary says 2 ok" "$WORK/a1.out" 'Summary: 2 hosts, 2 ok, 0 failed'
contains "log lines carry the host name" "$WORK/a1.err" ' node1: '
lacks "a sensitive file's content is never printed (stdout)" "$WORK/a1.out" 'token-value-that-must-not-be-printed'
lacks "a sensitive file's content is never printed (stderr)" "$WORK/a1.err" 'token-value-that-must-not-be-printed'

for i in 1 2; do
  check "node$i: hostname set" test "$(node $i hostname)" = "web-$i"
  check "node$i: /etc/hostname written" test "$(node $i cat /etc/hostname)" = "web-$i"
  check "node$i: motd content" test "$(node $i cat /etc/motd)" = "Managed by nodectl. Host node$i."
  check "node$i: timezone link" test "$(node $i readlink /etc/localtime)" = "/usr/share/zoneinfo/Europe/Berlin"
  check "node$i: package installed through the apt proxy" node $i dpkg-query -W less
  check "node$i: apt proxy drop-in" node $i "grep -q '$NODECTL_TEST_APT_PROXY' /etc/apt/apt.conf.d/01nodectl-proxy"
  check "node$i: hosts block" node $i "grep -qx '198.18.0.1 apt-cache' /etc/hosts"
  check "node$i: unit disabled" test "$(node $i systemctl is-enabled e2scrub_reap.service)" = disabled
  check "node$i: uploaded file (SFTP) content" test "$(node $i cat /etc/nodectl-test/uploaded.conf)" = "$(cat "$DATA/uploaded.conf")"
  check "node$i: uploaded file owner/mode" test "$(node $i "stat -c '%a %U %G' /etc/nodectl-test/uploaded.conf")" = "640 root adm"
  check "node$i: secret file 0600" test "$(node $i stat -c '%a' /etc/nodectl-test/token)" = "600"
  check "node$i: no temporary files left" test -z "$(node $i "find /etc /root -name '.nodectl*'")"
  check "node$i: journal says complete" node $i "grep -q '\"state\": \"complete\"' /var/lib/nodectl/journal.json"
  check "node$i: journal is 0600" test "$(node $i stat -c '%a' /var/lib/nodectl/journal.json)" = "600"
done

echo "# second apply changes nothing and restarts nothing"
before_ssh=$(node 1 systemctl show -p ActiveEnterTimestampMonotonic ssh.service)
motd_before=$(node 1 "stat -c '%i %Y' /etc/motd")
nodectl --json apply -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/a2.json" 2>"$WORK/a2.err"
expect_rc "second apply succeeds" 0 $?
check "second apply: every step unchanged on both hosts" python3 -c "
import json,sys
r=json.load(open('$WORK/a2.json'))
assert len(r['hosts'])==2, r
bad=[(h['host'],s['id'],s['status']) for h in r['hosts'] for s in h['steps'] if s['status']!='unchanged']
assert not bad, bad
assert all(h['ok'] for h in r['hosts'])
"
check "second apply: /etc/motd not rewritten (same inode and mtime)" test "$(node 1 "stat -c '%i %Y' /etc/motd")" = "$motd_before"
check "second apply: sshd not restarted" test "$(node 1 systemctl show -p ActiveEnterTimestampMonotonic ssh.service)" = "$before_ssh"

echo "# check and plan see drift"
nodectl check -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/c1.out" 2>&1
expect_rc "check on converged hosts" 0 $?
node 2 'echo drift > /etc/motd'
nodectl check -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/c2.out" 2>&1
expect_rc "check finds drift" 7 $?
contains "check names the drifted file, as a failed control" "$WORK/c2.out" 'FAIL +base/file:/etc/motd: update content of /etc/motd'
nodectl plan -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/p1.out" 2>&1
expect_rc "plan with drift" 0 $?
contains "plan shows a unified diff" "$WORK/p1.out" '^ +-drift$'
contains "plan diff has the new line" "$WORK/p1.out" '^ +\+Managed by nodectl. Host node2.$'
contains "plan: node1 has nothing to change" "$WORK/p1.out" '^== node1: 0 to change'
check "plan left the drift in place" test "$(node 2 cat /etc/motd)" = drift

echo "# hosts given on the command line, and one failing host does not stop the other"
nodectl apply -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@${ADDRS[1]}" "root@198.18.1.250:22" \
  --connect-timeout 3 >"$WORK/a3.out" 2>"$WORK/a3.err"
expect_rc "one host unreachable: partial failure" 4 $?
contains "unreachable host reported" "$WORK/a3.out" '198.18.1.250: cannot connect'
check "the reachable host was fixed anyway" test "$(node 2 cat /etc/motd)" = "Hello from ${ADDRS[1]}."

echo "# what a host sends back: invalid UTF-8 and terminal escapes"
node 2 "printf 'bad \\377\\376 bytes \\033]0;pwned\\007 \\033[2J\\n' > /etc/motd"
nodectl --json plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@${ADDRS[1]}" >"$WORK/p2.json" 2>"$WORK/p2.err"
expect_rc_out "plan --json with invalid UTF-8 in a host's file" 0 $? "$WORK/p2.err"
check "the JSON parses, with U+FFFD for the bad bytes" python3 -c "
import json; r=json.load(open('$WORK/p2.json')); assert '\ufffd' in json.dumps(r, ensure_ascii=False), r"
nodectl plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@${ADDRS[1]}" >"$WORK/p3.out" 2>&1
expect_rc "plan (text) of the same file" 0 $?
check "no escape character reaches the terminal" test "$(grep -c $'\033' "$WORK/p3.out")" = 0
contains_text "the escape is shown as text" "$WORK/p3.out" '\x1b]0;pwned\x07'
finish

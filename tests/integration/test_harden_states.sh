#!/usr/bin/env bash
# Hardening from the starting states a real host has, on booted Debian 12 nodes:
#   node 1: cloud-init's 50-cloud-init.conf turning password logins on, an /etc/nftables.conf of
#           the admin's own (starting with `flush ruleset`, as Debian's does), and Docker-like
#           tables (ip nat, ip filter) loaded live; a full hardening apply.
#   node 2: Docker-like tables, then a firewall that locks SSH out: the rollback must not take
#           the other tables with it.
source "$(dirname "$0")/lib.sh"
nodes_up 2 198.18.14
A=${ADDRS[0]}
B=${ADDRS[1]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
ID=(--identity "$NODECTL_TEST_KEY")
SSH=(ssh -F /dev/null -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=5)
node_admin() { "${SSH[@]}" "admin@$A" "sudo -n sh -c $(printf '%q' "$1")"; }

# What Docker (iptables-nft) leaves in the kernel: tables no file describes.
DOCKER_TABLES='table ip nat {
  chain DOCKER { }
  chain POSTROUTING { type nat hook postrouting priority srcnat; policy accept; oifname != "docker0" ip saddr 198.19.17.0/24 counter masquerade; }
  chain PREROUTING { type nat hook prerouting priority dstnat; policy accept; fib daddr type local counter jump DOCKER; }
}
table ip filter {
  chain DOCKER-USER { counter return; }
  chain FORWARD { type filter hook forward priority filter; policy drop; counter jump DOCKER-USER; }
}'
ADMIN_CONF='#!/usr/sbin/nft -f
flush ruleset
table inet admin {
  chain input {
    type filter hook input priority filter + 10; policy accept;
    tcp dport 8080 accept comment "admin: the app"
  }
}'
# Node 1's root cannot log in once it is hardened: the admin reads its tables then (docker_tables admin).
docker_tables() {
  local list='nft list table ip nat; nft list table ip filter'
  # (the admin's ssh prints the login banner on stderr: only the remote side's output counts)
  if [ "$1" = admin ]; then node_admin "$list 2>&1" 2>/dev/null; else node "$1" "$list" 2>&1; fi |
    sed 's/counter packets [0-9]* bytes [0-9]*/counter/'
}

for i in 1 2; do
  node "$i" "printf 'Acquire::http::Proxy \"%s\";\n' $NODECTL_TEST_APT_PROXY >/etc/apt/apt.conf.d/01proxy &&
             apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables >/dev/null"
  check "node $i: nftables installed for the starting state" node "$i" 'command -v nft >/dev/null'
done

echo "# node 1's starting state"
node 1 'printf "PasswordAuthentication yes\n" >/etc/ssh/sshd_config.d/50-cloud-init.conf && systemctl reload ssh'
# sshd re-executes itself on reload: for a moment nothing listens on port 22 (bounded wait).
wait_until 20 "node 1's sshd after its reload" node 1 true
check "sshd allows passwords before hardening (cloud-init's file wins over the test's own)" \
  test "$(node 1 'sshd -T | grep ^passwordauthentication')" = "passwordauthentication yes"
printf '%s\n' "$ADMIN_CONF" | node 1 'cat >/etc/nftables.conf && nft -f /etc/nftables.conf'
printf '%s\n' "$DOCKER_TABLES" | node 1 'nft -f -'
docker_tables 1 >"$WORK/docker1.before"
check "Docker-like tables are loaded" grep -q 'masquerade' "$WORK/docker1.before"

write_hardening_profile "$WORK/hard.toml"
"$NODECTL" plan -p "$WORK/hard.toml" "${KH[@]}" "${ID[@]}" "root@$A" >"$WORK/plan.out" 2>&1
expect_rc_out "plan" 0 $? "$WORK/plan.out"
contains_text "plan says the admin's /etc/nftables.conf is kept" "$WORK/plan.out" "/etc/nftables.conf holds rules of the admin's: kept"
contains_text "  ... and shows the include it adds" "$WORK/plan.out" '+include "/etc/nodectl/nftables.nft"'
"$NODECTL" apply -p "$WORK/hard.toml" "${KH[@]}" "${ID[@]}" "root@$A" >"$WORK/apply.out" 2>&1
expect_rc_out "hardening apply" 0 $? "$WORK/apply.out"

echo "# cloud-init's PasswordAuthentication yes loses to nodectl's drop-in"
check "sshd -T: passwordauthentication no" test "$(node_admin 'sshd -T | grep ^passwordauthentication')" = "passwordauthentication no"
check "  ... with 50-cloud-init.conf left in place" node_admin 'grep -q "PasswordAuthentication yes" /etc/ssh/sshd_config.d/50-cloud-init.conf'
"${SSH[@]}" -o BatchMode=no -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no \
  -o NumberOfPasswordPrompts=1 "admin@$A" true </dev/null 2>"$WORK/pw.err"
contains "  ... and the server offers public keys only" "$WORK/pw.err" "Permission denied \\(publickey\\)"

echo "# the admin's /etc/nftables.conf is kept, and includes nodectl's table"
node_admin 'cat /etc/nftables.conf' >"$WORK/conf.after"
check "the admin's rules are still in /etc/nftables.conf" grep -qF 'tcp dport 8080 accept comment "admin: the app"' "$WORK/conf.after"
contains_text "  ... which includes nodectl's table" "$WORK/conf.after" 'include "/etc/nodectl/nftables.nft"'
check "nodectl's table is in /etc/nodectl/nftables.nft" node_admin 'grep -q "^table inet nodectl {" /etc/nodectl/nftables.nft'
check "the admin's table is still loaded" node_admin 'nft list table inet admin >/dev/null'
check "nodectl's table is loaded" node_admin 'nft list table inet nodectl >/dev/null'

echo "# Docker's tables are left alone"
docker_tables admin >"$WORK/docker1.after"
check "ip nat and ip filter are as before the apply" cmp -s "$WORK/docker1.before" "$WORK/docker1.after"

"$NODECTL" check -p "$WORK/hard.toml" "${KH[@]}" "${ID[@]}" --sudo nopasswd "admin@$A" >"$WORK/check.out" 2>&1
expect_rc_out "check passes" 0 $? "$WORK/check.out"
"$NODECTL" apply -p "$WORK/hard.toml" "${KH[@]}" "${ID[@]}" --sudo nopasswd "admin@$A" >"$WORK/apply2.out" 2>&1
contains "a re-apply changes nothing" "$WORK/apply2.out" "$A: 0 changed, [0-9]+ unchanged"
check "  ... and includes nodectl's table once" test "$(node_admin 'grep -c "^include" /etc/nftables.conf')" = 1

echo "# at boot nftables.service loads the admin's file, and nodectl's table with it"
node_admin 'systemctl restart nftables.service'
check "after a restart of nftables.service: the admin's table" node_admin 'nft list table inet admin >/dev/null'
check "  ... and nodectl's, as persisted" node_admin 'nft list table inet nodectl | grep -q "comment \"nodectl "'
"$NODECTL" check -p "$WORK/hard.toml" "${KH[@]}" "${ID[@]}" --sudo nopasswd "admin@$A" >"$WORK/check2.out" 2>&1
expect_rc_out "check passes after the reload" 0 $? "$WORK/check2.out"

echo "# node 2: a firewall that locks SSH out is rolled back without touching Docker's tables"
printf '%s\n' "$DOCKER_TABLES" | node 2 'nft -f -'
docker_tables 2 >"$WORK/docker2.before"
harden_only firewall "rollback_seconds = 40" "ssh_port = 2222" >"$WORK/lockout-fw.toml"
"$NODECTL" apply -p "$WORK/lockout-fw.toml" "${KH[@]}" "${ID[@]}" "root@$B" >"$WORK/lock.out" 2>&1
expect_rc_out "the firewall that drops ssh is refused" 5 $? "$WORK/lock.out"
contains_text "  ... and rolled back" "$WORK/lock.out" "the previous files are back in place and active"
check "root still logs in to node 2" node 2 true
docker_tables 2 >"$WORK/docker2.after"
check "ip nat and ip filter survived the rollback" cmp -s "$WORK/docker2.before" "$WORK/docker2.after"
check "no nodectl table is left" node 2 '! nft list table inet nodectl >/dev/null 2>&1'

echo "# node 2: the same firewall with the right port keeps Docker's tables too"
sed -i 's/^ssh_port = 2222$/ssh_port = 22/' "$WORK/lockout-fw.toml"
"$NODECTL" apply -p "$WORK/lockout-fw.toml" "${KH[@]}" "${ID[@]}" "root@$B" >"$WORK/fw.out" 2>&1
expect_rc_out "firewall apply" 0 $? "$WORK/fw.out"
docker_tables 2 >"$WORK/docker2.after2"
check "ip nat and ip filter are as before" cmp -s "$WORK/docker2.before" "$WORK/docker2.after2"

finish

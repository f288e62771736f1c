#!/usr/bin/env bash
# Hardening a node that already has k3s's own firewall rules, on one booted Debian 12 node.
# Before hardening, the rules k3s's kube-proxy, kube-router and flannel install are made with the
# real `iptables`/`ip6tables` (iptables-nft: tables ip filter, ip nat, ip6 filter) and one native
# nft table as kube-proxy's nftables mode makes: chains KUBE-FIREWALL, KUBE-ROUTER-INPUT,
# KUBE-ROUTER-FORWARD, KUBE-SERVICES, KUBE-NODEPORTS, FLANNEL-POSTRTG, CNI-HOSTPORT-DNAT, and a
# NodePort-like DNAT (port 30022 to the node's sshd). Then the hardened profile of a k3s server
# (role k3s-server) is applied, checked and re-applied. After each step the k3s rules are exactly
# as before (nodectl replaces only its own table, never `flush ruleset`) and still work: a client
# reaches sshd through the NodePort DNAT, and the chains' counters move. The hardening converges:
# check passes, and a re-apply changes nothing (neither in nodectl's state nor in k3s's rules).
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.15
N=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
SSH=(ssh -F /dev/null -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
# as USER on the node (root before hardening, the admin with sudo after: root cannot log in then)
USER_=root
on_node() {
  if [ "$USER_" = root ]; then node 1 "$1"; else "${SSH[@]}" "admin@$N" "sudo -n sh -c $(printf '%q' "$1")" 2>/dev/null; fi
}
# k3s's rules as iptables-save/nft print them, without counters (they are compared, not counted)
k3s_rules() {
  on_node 'iptables-save; ip6tables-save; nft list table inet kube-proxy' |
    grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[-]/; s/counter packets [0-9]+ bytes [0-9]+/counter/'
}
# packets a chain's first rule counted
chain_packets() { on_node "iptables -t $1 -L $2 -v -x -n" | awk 'NR == 3 { print $1 }'; }
# ssh to the node's sshd through the NodePort-like DNAT (port 30022)
via_nodeport() { "${SSH[@]}" -o HostKeyAlias="$N" -p 30022 "$1@$N" true; }

node 1 "printf 'Acquire::http::Proxy \"%s\";\n' $NODECTL_TEST_APT_PROXY >/etc/apt/apt.conf.d/01proxy &&
         apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables nftables >/dev/null &&
         rm /etc/apt/apt.conf.d/01proxy"
check "iptables (iptables-nft) and nftables installed for the starting state" node 1 'iptables -V | grep -q nf_tables && command -v nft >/dev/null'

echo "# k3s's rules, made with the real iptables, ip6tables and nft (pod network 198.19.42.0/24, services 198.19.43.0/24)"
node 1 'set -e
iptables -N KUBE-FIREWALL
iptables -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
iptables -A INPUT -j KUBE-FIREWALL
iptables -A OUTPUT -j KUBE-FIREWALL
iptables -N KUBE-ROUTER-INPUT
iptables -I INPUT 1 -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
iptables -A KUBE-ROUTER-INPUT -p tcp --dport 22 -m comment --comment "k3s test: ssh reached the node" -j RETURN
iptables -A KUBE-ROUTER-INPUT -d 198.19.43.0/24 -m comment --comment "allow traffic to primary cluster IP range" -j RETURN
iptables -N KUBE-ROUTER-FORWARD
iptables -I FORWARD 1 -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD
iptables -A FORWARD -s 198.19.42.0/24 -m comment --comment "flanneld forward" -j ACCEPT
iptables -A FORWARD -d 198.19.42.0/24 -m comment --comment "flanneld forward" -j ACCEPT
iptables -t nat -N KUBE-SERVICES
iptables -t nat -N KUBE-NODEPORTS
iptables -t nat -N CNI-HOSTPORT-DNAT
iptables -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -t nat -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
iptables -t nat -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
iptables -t nat -A KUBE-NODEPORTS -p tcp --dport 30022 -m comment --comment "default/ssh:ssh" -j DNAT --to-destination '"$N"':22
iptables -t nat -N FLANNEL-POSTRTG
iptables -t nat -A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
iptables -t nat -A FLANNEL-POSTRTG -s 198.19.42.0/24 -d 198.19.42.0/24 -m comment --comment "flanneld masq" -j RETURN
iptables -t nat -A FLANNEL-POSTRTG -s 198.19.42.0/24 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
ip6tables -N KUBE-FIREWALL
ip6tables -A INPUT -j KUBE-FIREWALL
ip6tables -A KUBE-FIREWALL -m conntrack --ctstate INVALID -j DROP
nft -f - <<EOF
table inet kube-proxy {
  comment "rules for kube-proxy"
  set cluster-ips { type ipv4_addr; elements = { 198.19.43.10 } }
  chain services { }
  chain filter-input { type filter hook input priority -110; policy accept; ct state new counter jump services; }
}
EOF'
k3s_rules >"$WORK/k3s.before"
contains "k3s's chains are in ip filter" "$WORK/k3s.before" '^:KUBE-ROUTER-INPUT '
contains "  ... and the NodePort DNAT in ip nat" "$WORK/k3s.before" 'KUBE-NODEPORTS .*--dport 30022 .*-j DNAT'
check "a client reaches sshd through the NodePort DNAT" via_nodeport root
P0=$(chain_packets nat KUBE-NODEPORTS)
check "  ... counted by KUBE-NODEPORTS ($P0 packets)" test "${P0:-0}" -ge 1

write_hardening_profile "$WORK/hard.toml"
sed -i 's/^\[harden\]$/[harden]\nrole = "k3s-server"/' "$WORK/hard.toml"
printf '\n[harden.firewall]\ncluster_networks = ["%s.0/24"]\n' "${N%.*}" >>"$WORK/hard.toml"
nodectl apply -p "$WORK/hard.toml" "root@$N" "${KH[@]}" >"$WORK/apply1.out" 2>&1
expect_rc_out "hardening apply (role k3s-server) on the node with k3s's rules" 0 $? "$WORK/apply1.out"
USER_=admin

# after_step NAME: k3s's rules are as before and still work.
after_step() {
  k3s_rules >"$WORK/k3s.$1"
  if cmp -s "$WORK/k3s.before" "$WORK/k3s.$1"; then pass "$1: k3s's rules are exactly as before"
  else fail "$1: k3s's rules changed:"; diff "$WORK/k3s.before" "$WORK/k3s.$1" | head -20 | sed 's/^/      | /'; fi
  local p0 p1 r0 r1
  p0=$(chain_packets nat KUBE-NODEPORTS); r0=$(chain_packets filter KUBE-ROUTER-INPUT)
  check "$1: a client still reaches sshd through the NodePort DNAT" via_nodeport admin
  p1=$(chain_packets nat KUBE-NODEPORTS); r1=$(chain_packets filter KUBE-ROUTER-INPUT)
  check "$1: ... which KUBE-NODEPORTS counted ($p0 -> $p1)" test "${p1:-0}" -gt "${p0:-0}"
  check "$1: ... and KUBE-ROUTER-INPUT too ($r0 -> $r1)" test "${r1:-0}" -gt "${r0:-0}"
  on_node 'nft list tables' >"$WORK/tables.$1"
  contains "$1: nodectl's table is loaded beside them" "$WORK/tables.$1" '^table inet nodectl$'
}
after_step "after the apply"

ADMIN=(-p "$WORK/hard.toml" "${KH[@]}" --sudo nopasswd "admin@$N")
nodectl check "${ADMIN[@]}" >"$WORK/check.out" 2>&1
expect_rc_out "check passes" 0 $? "$WORK/check.out"
contains "  ... with no failed control" "$WORK/check.out" ": [0-9]+ passed, 0 failed"
nodectl apply "${ADMIN[@]}" >"$WORK/apply2.out" 2>&1
expect_rc_out "re-apply" 0 $? "$WORK/apply2.out"
contains "  ... changes nothing" "$WORK/apply2.out" "$N: 0 changed, [0-9]+ unchanged"
after_step "after the re-apply"

# A changed firewall (a profile rule more) replaces nodectl's table live: only that table.
printf '[[harden.firewall.rules]]\nproto = "tcp"\nport = "8443"\ncomment = "k3s test: one more"\n' >>"$WORK/hard.toml"
nodectl apply "${ADMIN[@]}" >"$WORK/apply3.out" 2>&1
expect_rc_out "apply of a changed firewall" 0 $? "$WORK/apply3.out"
contains "  ... which changes the firewall group only" "$WORK/apply3.out" "$N: 1 changed"
after_step "after the firewall changed"
finish

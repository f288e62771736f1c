#!/usr/bin/env bash
# Kernel hardening from the starting states a real machine has: IPv4 forwarding on (any machine
# with Docker, Podman, libvirt or k3s; a node's network namespace inherits it) and off. Changing
# forwarding makes the kernel reset accept_redirects on every interface, so the forwarding keys
# must be written first: live, at a re-apply after something turned forwarding on again, and by
# systemd-sysctl at boot (the order of the sysctl.d file).
#
# The nodes are booted with SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 so that sysctl values take effect.
# net.* values are the nodes' own (their network namespaces); kernel.*, fs.*, dev.* and vm.* are
# this machine's kernel: the suite puts back the ones it can, and this machine's ip_forward, at
# exit. Run it on a throw-away machine (as CI and the dev VM are).
source "$(dirname "$0")/lib.sh"

# This machine's values, put back at exit (kernel.unprivileged_bpf_disabled = 1 and
# kernel.kexec_load_disabled = 1 cannot be undone before a reboot; they are left).
MACHINE_KEYS="net.ipv4.ip_forward kernel.kptr_restrict kernel.dmesg_restrict kernel.yama.ptrace_scope kernel.core_uses_pid
  kernel.ctrl-alt-del dev.tty.ldisc_autoload net.core.bpf_jit_harden kernel.sysrq kernel.randomize_va_space
  kernel.perf_event_paranoid fs.protected_hardlinks fs.protected_symlinks fs.protected_fifos fs.protected_regular
  fs.suid_dumpable"
MACHINE_SAVED=()
for k in $MACHINE_KEYS; do
  p=/proc/sys/${k//.//}
  if [ -r "$p" ]; then MACHINE_SAVED+=("$k=$(cat "$p")"); fi
done
restore_machine() {
  local kv
  for kv in "${MACHINE_SAVED[@]}"; do sysctl -q -w "$kv" >/dev/null 2>&1 || true; done
}
trap 'rc=$?; restore_machine; (exit $rc); cleanup' EXIT
MACHINE_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)

echo "# boot two nodes while this machine forwards (as a machine with Docker does)"
sysctl -q -w net.ipv4.ip_forward=1
export SYSTEMD_NSPAWN_API_VFS_WRITABLE=1
nodes_up 2 198.18.12
unset SYSTEMD_NSPAWN_API_VFS_WRITABLE
sysctl -q -w net.ipv4.ip_forward="$MACHINE_FORWARD"   # the nodes keep their own copy
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
A=${ADDRS[0]}   # starts with forwarding on
B=${ADDRS[1]}   # starts with forwarding off

harden_only kernel >"$WORK/kernel.toml"
live() { node "$1" "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/accept_redirects | tr '\n' ' '"; }
check_kernel() {  # check_kernel NAME ADDR: nodectl check passes, accept_redirects among its passes
  "$NODECTL" check -p "$WORK/kernel.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$2" >"$WORK/check-$1.out" 2>&1
  expect_rc_out "$1: check passes" 0 $? "$WORK/check-$1.out"
  contains_text "  ... accept_redirects is checked, and passes" "$WORK/check-$1.out" "PASS  kernel.sysctl.net.ipv4.conf.all.accept_redirects"
  contains_text "  ... ip_forward is checked, and passes" "$WORK/check-$1.out" "PASS  kernel.sysctl.net.ipv4.ip_forward"
}
apply_kernel() {  # apply_kernel NAME ADDR
  "$NODECTL" apply -p "$WORK/kernel.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$2" >"$WORK/apply-$1.out" 2>&1
  expect_rc_out "$1: apply" 0 $? "$WORK/apply-$1.out"
  lacks "  ... and the host does not differ afterwards" "$WORK/apply-$1.out" "still differs"
}

echo "# starting state: forwarding on"
check "node 1 inherited forwarding on (ip_forward 1, accept_redirects 0)" test "$(live 1)" = "1 0 "
check "node 1's /proc/sys/net is writable" node 1 'test -w /proc/sys/net/ipv4/conf/all/accept_redirects'
apply_kernel "forwarding on" "$A"
check "node 1 now: forwarding off, accept_redirects 0" test "$(live 1)" = "0 0 "
check_kernel "forwarding on" "$A"

echo "# starting state: forwarding off"
node 2 'sysctl -q -w net.ipv4.ip_forward=0'
check "node 2 starts with forwarding off (accept_redirects 1, the kernel's value then)" test "$(live 2)" = "0 1 "
apply_kernel "forwarding off" "$B"
check "node 2 now: forwarding off, accept_redirects 0" test "$(live 2)" = "0 0 "
check_kernel "forwarding off" "$B"

echo "# forwarding turned on again later (a container runtime starting): a re-apply fixes both"
node 1 'sysctl -q -w net.ipv4.ip_forward=1'
"$NODECTL" plan -p "$WORK/kernel.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$A" >"$WORK/replan.out" 2>&1
contains_text "plan shows the live difference" "$WORK/replan.out" "sysctl net.ipv4.ip_forward: 1 -> 0"
apply_kernel "re-apply" "$A"
check_kernel "re-apply" "$A"

echo "# at boot: systemd-sysctl applies the file in its order, from forwarding on"
node 1 'sysctl -q -w net.ipv4.ip_forward=1 && sysctl -q -w net.ipv4.conf.all.accept_redirects=0'
node 1 '/lib/systemd/systemd-sysctl'
check "after systemd-sysctl: forwarding off, accept_redirects 0" test "$(live 1)" = "0 0 "
check_kernel "systemd-sysctl" "$A"

finish

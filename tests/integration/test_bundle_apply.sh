#!/usr/bin/env bash
# Installing from an offline bundle needs no network: a booted node with no apt proxy and no
# default route gets containerd (the bundle's .debs, as a local apt repository) and the k3s binary
# (the bundle's release, as described in test_k3s.sh: a stand-in, never started) from
# `apply --bundle`; a re-apply sends nothing; a tampered bundle is refused before any host is touched.
# Prints the install times from the bundle and, for comparison, via apt through the proxy.
source "$(dirname "$0")/lib.sh"

VERSION=v1.30.6+k3s1
REL=$WORK/k3s-release
mkdir -p "$REL"
printf '#!/bin/sh\necho "stand-in for k3s in nodectl tests: not a k3s binary" >&2\nexit 1\n' >"$REL/k3s"
(cd "$REL" && sha256sum k3s >sha256sum-amd64.txt && echo "$VERSION" >version)

cat >"$WORK/offline.toml" <<'T'
[runtime]
snapshotter = "native"
[k3s]
version = "v1.30.6+k3s1"
use_system_containerd = true
start = false
T
export NODECTL_CACHE_DIR=$WORK/cache
B=$WORK/site.bundle
nodectl bundle create -p "$WORK/offline.toml" --k3s-dir "$REL" --packages containerd,runc,containernetworking-plugins \
  --out "$B" >"$WORK/create.out" 2>&1
expect_rc_out "bundle create (runtime packages + k3s release)" 0 $? "$WORK/create.out"
echo "     bundle size: $(stat -c %s "$B") bytes"

nodes_up 2 198.18.45
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
check "node 1 has no default route (offline)" test -z "$(node 1 ip -4 route show default)"
check "node 1 has no apt proxy (offline)" test -z "$(node 1 'ls /etc/apt/apt.conf.d/ | grep -i proxy')"

t0=$(date +%s%N)
nodectl apply -p "$WORK/offline.toml" --bundle "$B" "root@${ADDRS[0]}" "${KH[@]}" >"$WORK/a1.out" 2>&1
rc=$?
t1=$(date +%s%N)
expect_rc_out "offline apply from the bundle" 0 $rc "$WORK/a1.out"
echo "     runtime + k3s install from the bundle: $(( (t1 - t0) / 1000000 )) ms"
contains "packages came from the bundle" "$WORK/a1.out" 'install containerd runc containernetworking-plugins \(from the bundle\)'
node 1 'dpkg-query -W -f="\${Status}" containerd runc containernetworking-plugins' >"$WORK/pkgs"
contains "containerd, runc and the CNI plugins installed with no network" "$WORK/pkgs" '^(install ok installed){3}$'
check "k3s binary from the bundle" test "$(node 1 sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$(sha256sum "$REL/k3s" | cut -d' ' -f1)"
contains "the report says a default route was added for k3s" "$WORK/a1.out" 'on-link default route'
node 1 cat /etc/rancher/k3s/config.yaml >"$WORK/config.yaml"
contains "k3s uses the system containerd" "$WORK/config.yaml" '^container-runtime-endpoint: unix:///run/containerd/containerd.sock$'

t0=$(date +%s%N)
nodectl apply -p "$WORK/offline.toml" --bundle "$B" "root@${ADDRS[0]}" "${KH[@]}" >"$WORK/a2.out" 2>&1
rc=$?
t1=$(date +%s%N)
expect_rc_out "re-apply from the bundle" 0 $rc "$WORK/a2.out"
echo "     no-change re-apply: $(( (t1 - t0) / 1000000 )) ms"
contains "re-apply changes nothing and sends nothing" "$WORK/a2.out" ' 0 changed'

# One byte of a .deb changed: refused before anything is done on node 2.
cp "$B" "$WORK/tampered.bundle"
off=$(( $(grep -abo 'debs/containerd_' "$WORK/tampered.bundle" | tail -n1 | cut -d: -f1) + 100000 ))
printf '\x5a' | dd of="$WORK/tampered.bundle" bs=1 seek="$off" conv=notrunc status=none
nodectl apply -p "$WORK/offline.toml" --bundle "$WORK/tampered.bundle" "root@${ADDRS[1]}" "${KH[@]}" >"$WORK/t.out" 2>&1
expect_rc_out "a tampered bundle is refused" 3 $? "$WORK/t.out"
contains "the refusal names the bundle and the entry" "$WORK/t.out" 'refused: .*debs/'
check "nothing was done on the node" node 2 'test ! -e /usr/local/bin/k3s && ! dpkg-query -W containerd >/dev/null 2>&1'

# For comparison: the same runtime via apt through the proxy (warm apt-cacher-ng cache).
printf '[base]\napt_proxy = "%s"\n' "$NODECTL_TEST_APT_PROXY" >"$WORK/online.toml"
sed -n '/^\[runtime\]/,/^$/p' "$WORK/offline.toml" | sed '/^\[k3s\]/,$d' >>"$WORK/online.toml"
t0=$(date +%s%N)
nodectl apply -p "$WORK/online.toml" "root@${ADDRS[1]}" "${KH[@]}" >"$WORK/o.out" 2>&1
rc=$?
t1=$(date +%s%N)
expect_rc_out "the same runtime via apt" 0 $rc "$WORK/o.out"
echo "     runtime install via apt (proxy): $(( (t1 - t0) / 1000000 )) ms"

finish

#!/usr/bin/env bash
# containerd from [runtime]: the configuration nodectl renders runs a real container on this host
# (containerd started by hand: the host has no systemd), and `nodectl apply` gives a booted node a
# containerd that runs a container (loaded with `nodectl local load`), restarts only when its
# configuration changes, and passes check.
# The image is made here from busybox-static (tests/integration/lib_oci.sh).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_oci.sh"
source "$(dirname "$0")/lib_ctrd.sh"

for p in containerd runc busybox-static; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || { echo "missing $p (scripts/setup.sh)"; exit 1; }
done
make_busybox_oci "$WORK/busybox.tar" localhost/nodectl-busybox:test || { echo "cannot build the test image"; exit 1; }

# --- 1. this host: nodectl's config, real containerd + runc ------------------------------------
cat >"$WORK/host.toml" <<'T'
[runtime]
snapshotter = "overlayfs"
[[runtime.mirrors]]
registry = "docker.io"
endpoints = ["http://127.0.0.1:5000"]
T
nodectl runtime config -p "$WORK/host.toml" >"$WORK/config.toml"
expect_rc "runtime config renders" 0 $?
contains "rendered config uses the overlayfs snapshotter" "$WORK/config.toml" 'snapshotter = "overlayfs"'
# This host is not run by systemd on cgroup v2: the cgroupfs driver is the right one.
contains "cgroup driver detected for this host (cgroupfs)" "$WORK/config.toml" 'SystemdCgroup = false'
trap 'rc=$?; ctrd_stop; (exit $rc); cleanup' EXIT
ctrd_start "$WORK/config.toml"
ctr_ plugins ls >"$WORK/plugins" 2>&1
contains "host: the CRI plugin accepts nodectl's config" "$WORK/plugins" 'io.containerd.grpc.v1 +cri +[^ ]+ +ok'
ctr_ images import "$WORK/busybox.tar" >/dev/null 2>&1
ctr_ run --rm --net-host localhost/nodectl-busybox:test t1 /bin/busybox echo hello-from-host \
  >"$WORK/run.out" 2>&1
contains_text "host: a container ran under containerd + runc" "$WORK/run.out" "hello-from-host"
ctrd_stop

# --- 2. a booted node: apply, container, idempotency, check -----------------------------------
# runc inside an nspawn node needs keyctl (nspawn's seccomp filter blocks it) and writable cgroup
# controllers (nspawn mounts them read-only); both only for this test machine's nested setup.
export SYSTEMD_SECCOMP=0
nodes_up 1 198.18.44
N=${ADDRS[0]}
node 1 'for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
          [ -d /sys/fs/cgroup/$c ] && mount -o remount,bind,rw /sys/fs/cgroup/$c; done; true'
cleanup_cgroups() {
  nodes_down
  for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    for d in default system.slice; do
      [ -d /sys/fs/cgroup/$c/$d ] && find /sys/fs/cgroup/$c/$d -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  true
}
trap 'rc=$?; cleanup_cgroups; (exit $rc); cleanup' EXIT
cat >"$WORK/node.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[runtime]
# the node's root is itself an overlayfs: containerd's overlayfs snapshotter cannot sit on it
snapshotter = "native"
T
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply1.out" 2>&1
expect_rc "node: first apply installs and configures containerd" 0 $?
node 1 'dpkg-query -W -f="\${Status}" containerd runc containernetworking-plugins' >"$WORK/pkgs"
contains "node: packages installed" "$WORK/pkgs" '^(install ok installed){3}$'
node 1 cat /etc/containerd/config.toml >"$WORK/node-config.toml"
contains "node: config has the profile's snapshotter" "$WORK/node-config.toml" 'snapshotter = "native"'
contains "node: CRI may not touch oom_score_adj inside a container" "$WORK/node-config.toml" 'restrict_oom_score_adj = true'
node 1 'ctr plugins ls' >"$WORK/node-plugins" 2>&1
contains "node: the CRI plugin loaded" "$WORK/node-plugins" 'io.containerd.grpc.v1 +cri +[^ ]+ +ok'
pid1=$(node 1 systemctl show -p MainPID --value containerd)

# `nodectl local load` (as `kind load`): the archive over SSH into the node's containerd, namespace
# k8s.io (the CRI's), unpacked with the snapshotter the node's config names.
cp "$WORK/busybox.tar" "$WORK/busybox.oci.tar"
"$NODECTL" local load "$ENV_NAME" "$WORK/busybox.oci.tar" >"$WORK/load.out" 2>&1
expect_rc_out "node: nodectl local load" 0 $? "$WORK/load.out"
contains "  ... says where it went" "$WORK/load.out" "$ENV_NAME-1: 1 image archive\(s\) loaded into containerd"
node 1 'ctr -n k8s.io images ls -q; ctr -n k8s.io snapshots --snapshotter native ls | wc -l; ls /var/lib/nodectl/images' \
  >"$WORK/load-ls.out" 2>&1
contains "  ... the image is in the k8s.io namespace" "$WORK/load-ls.out" '^localhost/nodectl-busybox:test$'
contains "  ... unpacked with the native snapshotter (a layer snapshot)" "$WORK/load-ls.out" '^[2-9]$'
lacks "  ... and its upload removed" "$WORK/load-ls.out" 'busybox'"\.oci"
node 1 'ctr -n k8s.io run --rm --net-host --snapshotter native localhost/nodectl-busybox:test t1 /bin/busybox echo hello-from-node' \
  >"$WORK/node-run.out" 2>&1
contains_text "node: a container ran under the configured containerd" "$WORK/node-run.out" "hello-from-node"
"$NODECTL" local load "$ENV_NAME" "$WORK/busybox.tar.gz" >"$WORK/load2.out" 2>&1
expect_rc_out "node: local load of a missing file is refused" 2 $? "$WORK/load2.out"

nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply2.out" 2>&1
expect_rc "node: second apply" 0 $?
contains "node: second apply changes nothing" "$WORK/apply2.out" '0 changed'
pid2=$(node 1 systemctl show -p MainPID --value containerd)
check "node: unchanged config, no restart (pid $pid1 = $pid2)" test "$pid1" = "$pid2" -a "$pid1" != 0

nodectl check -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/check.out" 2>&1
expect_rc "node: check passes" 0 $?
contains "node: check reports the socket control" "$WORK/check.out" 'PASS.*runtime.socket'

sed -i 's/^snapshotter = "native"/snapshotter = "native"\nsandbox_image = "localhost\/nodectl-pause:1"/' "$WORK/node.toml"
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply3.out" 2>&1
expect_rc "node: changed config applies" 0 $?
pid3=$(node 1 systemctl show -p MainPID --value containerd)
check "node: changed config restarts containerd ($pid2 -> $pid3)" test "$pid3" != "$pid2" -a "$pid3" != 0
node 1 'ctr -n k8s.io run --rm --net-host --snapshotter native localhost/nodectl-busybox:test t2 /bin/busybox echo again' >"$WORK/node-run2.out" 2>&1
contains_text "node: containers still run after the restart" "$WORK/node-run2.out" "again"

finish

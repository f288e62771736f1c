# lib_ctrd.sh - a containerd of the test's own and the stack images in it (after lib.sh).
#
#   source tests/integration/lib_ctrd.sh
#   build_stack_images IMAGE...     nodectl image build into $OUT (build/test-images or
#                                   NODECTL_TEST_IMAGES_OUT), cache in the test cache; the magento
#                                   image gets the stand-in project, nodectl the static binary
#                                   ($NODECTL_STATIC_BIN, default build/static/nodectl)
#   ctrd_start [CONFIG]             containerd with root/state/socket in $WORK/ctrd (C), its own
#                                   session, CONFIG (default: no CRI plugin); namespace NS
#                                   (nodectl-<suite>-PID); ctr_ ARGS... uses both; returns 1 (with
#                                   containerd's log) when its socket is not there within 20 s
#   ctrd_import IMAGE...            ctr images import $OUT/IMAGE.oci.tar (a check each)
#   task_running NAME               the task NAME runs (ctr task ls says RUNNING)
#   ctrd_stop                       containerd stopped; this run's shims, mounts, runc state and
#                                   cgroups removed (containers must have been stopped before)
# (wait_until and free_port come from lib.sh, sourced first)
OUT=${NODECTL_TEST_IMAGES_OUT:-$SRC/build/test-images}
NS=nodectl-$(basename "$0" .sh)-$$
C=$WORK/ctrd
CTRD=""

ctr_() { ctr -a "$C/sock" -n "$NS" "$@"; }
task_running() { ctr_ task ls 2>/dev/null | awk -v n="$1" '$1 == n && $3 == "RUNNING" {r = 1} END {exit !r}'; }

build_stack_images() {
  # The build cache and downloaded .debs live in the test cache (like the node rootfs), never in
  # root's ~/.cache; a later run (or test_image_build's apt cache) makes the build warm.
  local cache=${NODECTL_TEST_CACHE:-$SRC/build/testcache} plain=() i t0=$(date +%s)
  local args=(--recipes "$SRC/images" --out "$OUT" --cache "$cache/images" --apt-cache "$cache/image-apt")
  mkdir -p "$cache/images" "$cache/image-apt"
  for i in "$@"; do
    case $i in magento | nodectl) ;; *) plain+=("$i") ;; esac
  done
  if [ ${#plain[@]} -gt 0 ]; then
    nodectl image build "${plain[@]}" "${args[@]}" >"$WORK/build.out" 2>&1
    expect_rc_out "nodectl image build ${plain[*]}" 0 $? "$WORK/build.out"
  fi
  for i in "$@"; do
    case $i in
      magento)
        nodectl image build magento "${args[@]}" --arg "project_dir=$DATA/magento-app" >"$WORK/build-magento.out" 2>&1
        expect_rc_out "nodectl image build magento --arg project_dir=(the stand-in project)" 0 $? "$WORK/build-magento.out" ;;
      nodectl)
        local bin=${NODECTL_STATIC_BIN:-$SRC/build/static/nodectl}
        if ! file -L "$bin" 2>/dev/null | grep -q 'statically linked'; then
          fail "no static nodectl at $bin (scripts/build.sh static, or NODECTL_STATIC_BIN=PATH)"
          continue
        fi
        nodectl image build nodectl "${args[@]}" --arg "binary=$bin" >"$WORK/build-nodectl.out" 2>&1
        expect_rc_out "nodectl image build nodectl --arg binary=(the static binary)" 0 $? "$WORK/build-nodectl.out" ;;
    esac
  done
  echo "# images built in $(($(date +%s) - t0)) s"
}

ctrd_start() {
  local config=${1:-$C/config.toml}
  mkdir -p "$C"
  [ $# -gt 0 ] || cat >"$config" <<'T'
version = 2
# no CRI (no Kubernetes): images, snapshots, tasks only
disabled_plugins = ["io.containerd.grpc.v1.cri"]
T
  # Its own session: a Ctrl-C (or timeout's signal to the process group) must not kill containerd
  # before the exit trap has stopped the containers through it.
  setsid containerd --config "$config" --root "$C/root" --state "$C/state" --address "$C/sock" >"$C/log" 2>&1 &
  CTRD=$!
  wait_until 20 "containerd's socket $C/sock" test -S "$C/sock" || { echo "containerd did not start:"; cat "$C/log"; return 1; }
}

ctrd_import() {
  local n
  for n in "$@"; do
    ctr_ images import "$OUT/$n.oci.tar" >"$WORK/import-$n.out" 2>&1
    expect_rc_out "ctr images import $n.oci.tar" 0 $? "$WORK/import-$n.out"
  done
  ctr_ images ls -q >"$WORK/images.ls"
  for n in "$@"; do
    contains_text "containerd has localhost/nodectl/$n:latest" "$WORK/images.ls" "localhost/nodectl/$n:latest"
  done
}

ctrd_stop() {
  if [ -n "$CTRD" ]; then
    kill "$CTRD" 2>/dev/null
    wait "$CTRD" 2>/dev/null
    CTRD=""
  fi
  # Last resort, if containerd died first: this run's shims (they name this run's socket) and
  # their containers, by pid.
  local shim child m d
  for shim in $(pgrep -f -- "-address $C/sock" 2>/dev/null); do
    for child in $(ps -o pid= --ppid "$shim" 2>/dev/null); do kill -9 "$child" 2>/dev/null; done
    kill -9 "$shim" 2>/dev/null
  done
  for m in $(awk -v d="$C/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
  rm -rf "/run/containerd/runc/$NS"
  for d in /sys/fs/cgroup/*/"$NS"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  true
}

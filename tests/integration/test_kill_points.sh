#!/usr/bin/env bash
# Sudden death at random moments of a first hardening apply (profiles' full [harden], packages
# through the apt proxy) on a booted Debian 12 node: `nodectl apply` gets SIGKILL at a random time
# in the first NODECTL_TEST_KILL_WINDOW seconds (default 35), on a fresh node each time. After each kill:
#   no file under /etc is half written: each one the apply changed holds either the node's
#     original content or the content the converged run leaves, and no temporary file of an
#     atomic write is left behind;
#   the journal is whole JSON and tells the truth: "running" for a cut run (or "complete");
#   the next run takes the lock (no stale lock), converges, and the one after changes nothing;
#   `check` as the admin user passes.
# NODECTL_TEST_KILL_POINTS kill points (default 1 in CI, a new moment every run; docs/testing.md
# gives the longer local run), NODECTL_TEST_SEED picks the moments (printed, so a failing run can
# be repeated).
# Subnet 198.18.55.0/24.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kill_points.sh"

kill_points_init 1

fresh_node() {
  nodes_down
  nodes_up 1 198.18.55
  N=${ADDRS[0]}
  ARGS=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
  UPPER=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME/nodes/1/upper
  LOWER=$(cat "$WORK/rootfs.path")
  write_hardening_profile "$WORK/hard.toml"   # the admin's key is the new environment's
}

# The kill moments are spread over the first WINDOW seconds of the apply. With AIDE off (as here)
# a whole first hardening apply takes about 40 s alone on this 2-core machine with a warm apt cache,
# 60 to 120 s with a cold one or under CI's load; most of it is the packages.
WINDOW=${NODECTL_TEST_KILL_WINDOW:-35}

cuts=0
for k in $(seq 1 "$KILLS"); do
  fresh_node
  delay=$(kill_moment "$WINDOW")
  # The files this apply writes itself: what its plan on the fresh node names (create, update,
  # edit, restore /etc/...).
  "$NODECTL" --json plan -p "$WORK/hard.toml" "root@$N" "${ARGS[@]}" >"$WORK/plan$k.json" 2>"$WORK/plan$k.err"
  managed_from_plan "$WORK/plan$k.json" >"$WORK/managed$k"
  check "kill point $k: the plan names the files the apply writes ($(wc -l <"$WORK/managed$k"))" test -s "$WORK/managed$k"
  # The binary itself, not lib.sh's nodectl function: $! must be nodectl's own pid.
  "$NODECTL" apply -p "$WORK/hard.toml" "root@$N" "${ARGS[@]}" >"$WORK/cut$k.out" 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -KILL "$pid" 2>/dev/null; then
    cut="cut at $delay s"
    cuts=$((cuts + 1))
  else
    # The whole apply took less than the moment: the later moments are drawn from before it.
    cut="finished before $delay s (the window is $delay s from now on)"
    WINDOW=$delay
  fi
  wait "$pid" 2>/dev/null
  echo "# kill point $k: $cut"
  sleep 2   # the node's side of the cut connection ends (sshd hangs up on it)
  at_the_cut $k
  node 1 cat /var/lib/nodectl/journal.json >"$WORK/journal$k.json" 2>/dev/null
  journal_whole "$WORK/journal$k.json" >"$WORK/journal$k.out"
  expect_rc_out "kill point $k: the journal is whole JSON and says running or complete" 0 $? "$WORK/journal$k.out"

  nodectl apply -p "$WORK/hard.toml" "root@$N" "${ARGS[@]}" >"$WORK/rerun$k.out" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q "authentication as 'root'" "$WORK/rerun$k.out"; then
    # Root's login is gone already (the cut came after the sshd step): the admin goes on.
    nodectl apply -p "$WORK/hard.toml" "admin@$N" --sudo nopasswd "${ARGS[@]}" >>"$WORK/rerun$k.out" 2>&1
    rc=$?
  fi
  expect_rc_out "kill point $k: the next run converges (no stale lock)" 0 $rc "$WORK/rerun$k.out"
  nodectl apply -p "$WORK/hard.toml" "admin@$N" --sudo nopasswd "${ARGS[@]}" >"$WORK/again$k.out" 2>&1
  expect_rc_out "kill point $k: the run after changes nothing" 0 $? "$WORK/again$k.out"
  contains "  ... 0 changed" "$WORK/again$k.out" ": 0 changed"
  nodectl check -p "$WORK/hard.toml" "admin@$N" --sudo nopasswd "${ARGS[@]}" >"$WORK/check$k.out" 2>&1
  expect_rc_out "kill point $k: check passes" 0 $? "$WORK/check$k.out"

  # Old or new: each file the apply writes holds, as the cut left it, the node's original (the
  # rootfs, or what its package shipped: dpkg's md5sums) or what the converged runs left; no
  # temporary file of nodectl's atomic writes is left anywhere below /etc. (dpkg's own
  # .dpkg-new files are its atomic writes in flight, renamed by the dpkg that finishes them.)
  # (dpkg's records are read from the node's disk on this machine: root's login is gone once the
  # apply converged, and the test's ssh is root's, so asking dpkg on the node would get nothing.)
  no_half_written $k
done
echo "# $cuts of $KILLS runs were cut (the others finished before their moment and were checked whole)"
finish

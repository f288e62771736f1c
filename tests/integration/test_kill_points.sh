#!/usr/bin/env bash
# Sudden death at random moments of a first hardening apply (profiles' full [harden], packages
# through the apt proxy) on a booted Debian 12 node: `nodectl apply` gets SIGKILL at a random time
# in the first NODECTL_TEST_KILL_WINDOW seconds (default 90), on a fresh node each time. After each kill:
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

KILLS=${NODECTL_TEST_KILL_POINTS:-1}
SEED=${NODECTL_TEST_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
echo "# $KILLS kill points, seed $SEED (NODECTL_TEST_SEED=$SEED repeats them)"

fresh_node() {
  nodes_down
  nodes_up 1 198.18.55
  N=${ADDRS[0]}
  ARGS=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
  UPPER=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME/nodes/1/upper
  LOWER=$(cat "$WORK/rootfs.path")
  write_hardening_profile "$WORK/hard.toml"   # the admin's key is the new environment's
}

# The kill moments are spread over the first WINDOW seconds of the apply (on this 2-core machine a
# whole first hardening apply takes 100 to 330 s, most of it the packages).
WINDOW=${NODECTL_TEST_KILL_WINDOW:-90}

# files_of DIR: "PATH SHA256" of every regular file below DIR/etc, paths relative to DIR.
files_of() { (cd "$1" && find etc -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum | awk '{print $2, $1}'); }

for k in $(seq 1 "$KILLS"); do
  fresh_node
  delay=$(echo "scale=1; 1 + ($RANDOM % 1000) * ($WINDOW - 1) / 1000" | bc)
  # The binary itself, not lib.sh's nodectl function: $! must be nodectl's own pid.
  "$NODECTL" apply -p "$WORK/hard.toml" "root@$N" "${ARGS[@]}" >"$WORK/cut$k.out" 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -KILL "$pid" 2>/dev/null; then cut="cut at $delay s"; else cut="finished before $delay s"; fi
  wait "$pid" 2>/dev/null
  echo "# kill point $k: $cut"
  sleep 2   # the node's side of the cut connection ends (sshd hangs up on it)
  files_of "$UPPER" >"$WORK/at-cut$k"
  node 1 cat /var/lib/nodectl/journal.json >"$WORK/journal$k.json" 2>/dev/null
  python3 - "$WORK/journal$k.json" >"$WORK/journal$k.out" 2>&1 <<'PY'
import json, sys
try:
    text = open(sys.argv[1]).read()
except OSError:
    text = ""
if not text:
    print("no journal yet")  # cut before the first step finished
    sys.exit(0)
j = json.loads(text)
assert j["state"] in ("running", "complete"), j["state"]
assert all(v in ("done", "failed") for v in j["steps"].values()), j["steps"]
print("journal whole:", j["state"], len(j["steps"]), "steps")
PY
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

  # Old or new: every file below /etc that the cut left must be the original (the rootfs) or what
  # the converged runs left; none may be a temporary file of an atomic write.
  files_of "$UPPER" >"$WORK/final$k"
  python3 - "$WORK/at-cut$k" "$WORK/final$k" "$LOWER" >"$WORK/oldnew$k.out" 2>&1 <<'PY'
import hashlib, os, sys
cut = dict(l.split() for l in open(sys.argv[1]) if l.strip())
final = dict(l.split() for l in open(sys.argv[2]) if l.strip())
lower = sys.argv[3]
bad = []
for path, digest in cut.items():
    if os.path.basename(path).startswith(".nodectl."):
        bad.append(path + ": a temporary file of an atomic write was left")
        continue
    if final.get(path) == digest:
        continue
    original = os.path.join(lower, path)
    if os.path.isfile(original) and not os.path.islink(original):
        if hashlib.sha256(open(original, "rb").read()).hexdigest() == digest:
            continue
    bad.append(path + ": neither the original nor the converged content")
for path in final:
    if os.path.basename(path).startswith(".nodectl."):
        bad.append(path + ": a temporary file of an atomic write is still there after convergence")
print("\n".join(bad) if bad else "every file is old or new")
sys.exit(1 if bad else 0)
PY
  expect_rc_out "kill point $k: no file below /etc is half written" 0 $? "$WORK/oldnew$k.out"
done
finish

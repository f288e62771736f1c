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

# The kill moments are spread over the first WINDOW seconds of the apply. With AIDE off (as here)
# a whole first hardening apply takes about 40 s alone on this 2-core machine with a warm apt cache,
# 60 to 120 s with a cold one or under CI's load; most of it is the packages.
WINDOW=${NODECTL_TEST_KILL_WINDOW:-35}

# files_of DIR: "PATH SHA256 MD5" of every regular file below DIR/etc (read from this machine, links
# not followed), paths relative to DIR.
files_of() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for dirpath, dirs, files in os.walk(os.path.join(root, "etc")):
    for name in sorted(files):
        p = os.path.join(dirpath, name)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        data = open(p, "rb").read()
        print(os.path.relpath(p, root), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
PY
}

cuts=0
for k in $(seq 1 "$KILLS"); do
  fresh_node
  # The remainder in the shell: bc's % under scale=1 is not an integer remainder (it kept every
  # moment below 10 s).
  r=$((RANDOM % 1000))
  delay=$(echo "scale=1; 1 + $r * ($WINDOW - 1) / 1000" | bc)
  # The files this apply writes itself: what its plan on the fresh node names (create, update,
  # edit, restore /etc/...).
  "$NODECTL" --json plan -p "$WORK/hard.toml" "root@$N" "${ARGS[@]}" >"$WORK/plan$k.json" 2>"$WORK/plan$k.err"
  python3 - "$WORK/plan$k.json" >"$WORK/managed$k" <<'PY'
import json, re, sys
paths = set()
for host in json.load(open(sys.argv[1]))["hosts"]:
    for step in host["steps"]:
        for c in step["changes"]:
            m = re.match(r"(?:create|update|edit|restore) (/etc/\S+)", c["summary"])
            if m:
                paths.add(m.group(1).lstrip("/"))
print("\n".join(sorted(paths)))
PY
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
  files_of "$UPPER" >"$WORK/at-cut$k"
  # A copy of the files the apply manages, as the cut left them: shown when one is neither old nor new.
  mkdir -p "$WORK/at-cut$k.d"
  (cd "$UPPER" && while read -r f; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then cp --parents -p "$f" "$WORK/at-cut$k.d/"; fi
  done <"$WORK/managed$k") 2>/dev/null
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

  # Old or new: each file the apply writes holds, as the cut left it, the node's original (the
  # rootfs, or what its package shipped: dpkg's md5sums) or what the converged runs left; no
  # temporary file of nodectl's atomic writes is left anywhere below /etc. (dpkg's own
  # .dpkg-new files are its atomic writes in flight, renamed by the dpkg that finishes them.)
  files_of "$UPPER" >"$WORK/final$k"
  # dpkg's records read from the node's disk on this machine: root's login is gone once the apply
  # converged (and the test's ssh is root's), so asking dpkg on the node would get nothing.
  # ucf's hashfile too: files a maintainer script installs through ucf (unattended-upgrades'
  # 20auto-upgrades, from debconf) are the package's content as much as a conffile is.
  { cat "$UPPER/var/lib/dpkg/status" 2>/dev/null || cat "$LOWER/var/lib/dpkg/status"
    cat "$LOWER"/var/lib/dpkg/info/*.md5sums "$UPPER"/var/lib/dpkg/info/*.md5sums
    cat "$UPPER/var/lib/ucf/hashfile" "$LOWER/var/lib/ucf/hashfile"; } >"$WORK/dpkg$k" 2>/dev/null
  python3 - "$WORK/at-cut$k" "$WORK/final$k" "$LOWER" "$WORK/managed$k" "$WORK/dpkg$k" "$WORK/at-cut$k.d" >"$WORK/oldnew$k.out" 2>&1 <<'PY'
import hashlib, os, sys
def table(f):
    return {l.split()[0]: l.split()[1:] for l in open(f) if l.strip()}
cut, final = table(sys.argv[1]), table(sys.argv[2])
lower = sys.argv[3]
managed = {l.strip() for l in open(sys.argv[4]) if l.strip()}
shipped = {}  # path -> the md5s dpkg records for what its packages shipped there
for line in open(sys.argv[5], errors="replace"):   # dpkg's status (Conffiles), *.md5sums, ucf's hashfile
    f = line.split()
    if len(f) >= 2 and len(f[0]) == 32 and not f[0].startswith("/"):      # *.md5sums, hashfile: MD5 path
        shipped.setdefault(f[1].lstrip("/"), set()).add(f[0])
    elif len(f) >= 2 and f[0].startswith("/") and len(f[1]) == 32:       # status' Conffiles: " /path MD5"
        shipped.setdefault(f[0].lstrip("/"), set()).add(f[1])
bad = []
for path in list(cut) + list(final):
    if os.path.basename(path).startswith(".nodectl."):
        bad.append(path + ": a temporary file of an atomic write was left")
checked = 0
for path in sorted(managed & set(cut)):
    checked += 1
    sha, md5 = cut[path]
    original = os.path.join(lower, path)
    old = os.path.isfile(original) and hashlib.sha256(open(original, "rb").read()).hexdigest() == sha
    if not (old or md5 in shipped.get(path, ()) or final.get(path, [None])[0] == sha):
        bad.append(path + ": neither the original nor the converged content (sha256 " + sha[:12] + ")")
        try:
            head = open(os.path.join(sys.argv[6], path), errors="replace").read().splitlines()[:6]
            bad.extend("    at the cut: " + line for line in head)
        except OSError:
            pass
print("\n".join(bad) if bad else "%d of the apply's files were on the node at the cut: each old or new" % checked)
sys.exit(1 if bad else 0)
PY
  expect_rc_out "kill point $k: no file below /etc is half written" 0 $? "$WORK/oldnew$k.out"
  sed -n '1s/^/     (/; 1s/$/)/p' "$WORK/oldnew$k.out"
done
echo "# $cuts of $KILLS runs were cut (the others finished before their moment and were checked whole)"
finish

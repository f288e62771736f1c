# The kill-point suites' common parts (source after lib.sh): the random moments, and the oracle
# for "every file the cut run was writing holds either its old or its new content".
#   kill_points_init DEFAULT        KILLS (NODECTL_TEST_KILL_POINTS, else DEFAULT) and SEED
#                                   (NODECTL_TEST_SEED, else new; printed), RANDOM seeded with it
#   kill_moment WINDOW              a random moment in 1..WINDOW s, one decimal (from RANDOM)
#   files_of DIR                    "PATH SHA256 MD5" of every regular file below DIR/etc (read
#                                   from this machine, links not followed), paths relative to DIR
#   managed_from_plan PLAN.json     the /etc files a plan (`nodectl --json plan`) says the run
#                                   writes (create, update, edit, restore), relative, sorted
#   keep_managed ROOT MANAGED DEST  copies those files as ROOT holds them into DEST (shown when
#                                   one is neither old nor new)
#   journal_whole JOURNAL.json      the journal is whole JSON and says running or complete
#                                   (no file: cut before it was written); prints what it found
#   dpkg_records UPPER LOWER        what dpkg and ucf record of the packages' shipped files (the
#                                   node's status, *.md5sums, ucf's hashfile), read from disk
#   old_or_new AT_CUT FINAL LOWER MANAGED DPKG AT_CUT_DIR
#                                   every managed file in AT_CUT (files_of at the cut) is the
#                                   original (LOWER, the rootfs; or what a package shipped) or
#                                   what FINAL (files_of after convergence) holds, and no
#                                   temporary file of an atomic write (.nodectl.*) is left in
#                                   either; prints the verdict, exit 1 when a file is neither
#   at_the_cut K                    for kill point K (UPPER: the node's upper dir; WORK/managedK):
#                                   files_of at the cut (WORK/at-cutK) and a copy of the managed files
#   no_half_written K               once the node converged: old_or_new for point K, as a check

kill_points_init() {
  KILLS=${NODECTL_TEST_KILL_POINTS:-$1}
  SEED=${NODECTL_TEST_SEED:-$(($(date +%s) % 100000))}
  RANDOM=$SEED
  echo "# $KILLS kill points, seed $SEED (NODECTL_TEST_SEED=$SEED repeats them)"
}

# The remainder in the shell: bc's % under scale=1 is not an integer remainder (it kept every
# moment below 10 s).
kill_moment() {
  local r=$((RANDOM % 1000))
  echo "scale=1; 1 + $r * ($1 - 1) / 1000" | bc
}

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

managed_from_plan() {
  python3 - "$1" <<'PY'
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
}

keep_managed() {
  mkdir -p "$3"
  (cd "$1" && while read -r f; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then cp --parents -p "$f" "$3/"; fi
  done <"$2") 2>/dev/null
}

journal_whole() {
  python3 - "$1" 2>&1 <<'PY'
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
}

# ucf's hashfile too: files a maintainer script installs through ucf (unattended-upgrades'
# 20auto-upgrades, from debconf) are the package's content as much as a conffile is.
dpkg_records() {
  { cat "$1/var/lib/dpkg/status" 2>/dev/null || cat "$2/var/lib/dpkg/status"
    cat "$2"/var/lib/dpkg/info/*.md5sums "$1"/var/lib/dpkg/info/*.md5sums
    cat "$1/var/lib/ucf/hashfile" "$2/var/lib/ucf/hashfile"; } 2>/dev/null
}

old_or_new() {
  python3 - "$@" 2>&1 <<'PY'
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
print("\n".join(bad) if bad else "%d of the run's files were on the node at the cut: each old or new" % checked)
sys.exit(1 if bad else 0)
PY
}

at_the_cut() {
  files_of "$UPPER" >"$WORK/at-cut$1"
  keep_managed "$UPPER" "$WORK/managed$1" "$WORK/at-cut$1.d"
}

no_half_written() {
  local k=$1
  files_of "$UPPER" >"$WORK/final$k"
  dpkg_records "$UPPER" "$LOWER" >"$WORK/dpkg$k"
  old_or_new "$WORK/at-cut$k" "$WORK/final$k" "$LOWER" "$WORK/managed$k" "$WORK/dpkg$k" "$WORK/at-cut$k.d" >"$WORK/oldnew$k.out"
  expect_rc_out "kill point $k: no file below /etc is half written" 0 $? "$WORK/oldnew$k.out"
  sed -n '1s/^/     (/; 1s/$/)/p' "$WORK/oldnew$k.out"
}

#!/usr/bin/env bash
# Benchmarks first boot on real booted nodes: the time from nodectl-firstboot.service starting to
# "done" for a hardening profile provisioned from an offline bundle on a stick (no network), and
# the overhead of resuming after a power cut in the middle. Results: docs/benchmarks.md.
#
#   scripts/bench/firstboot.sh [CLEAN_RUNS] [CUT_RUNS]     (as root; default 3 and 2)
#   CUT_AFTER=S: the power cut comes S seconds after the bundle's packages reached the node
#   (default 15: in the middle of the hardening packages' dpkg run)
#
# Each run needs a fresh machine (first boot happens once), so each run is its own node. The
# stick is an ext4 image labelled NODECTL (this machine's kernel cannot mount FAT; see docs/firstboot.md),
# bound into the node as a loop device. Service times are systemd's own timestamps
# (ExecMainStartTimestampMonotonic / ExecMainExitTimestampMonotonic); the nodes share this
# machine's kernel, so their monotonic clock is the host's.
# Traffic goes only to the test nodes this script boots (198.18.82.0/24) and to loopback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLEAN=${1:-3}
CUT=${2:-2}
N=$((CLEAN + CUT))
cd "$REPO"
NODECTL=${NODECTL:-$(scripts/build.sh dynamic | tail -n 1)}
BIN=${NODECTL_STATIC_BIN:-$REPO/build/static/nodectl}
OUT=$(mktemp -d /tmp/nodectl-bench-fb.XXXXXX)
NEED_LIBS=0
if [ ! -x "$BIN" ]; then
  echo "# no static binary: using the dynamic one, stripped, with its libraries installed on the nodes"
  strip -o "$OUT/nodectl" "$NODECTL"; BIN=$OUT/nodectl; NEED_LIBS=1
fi
SRC=$REPO
WORK=$OUT
source scripts/lib/nodes.sh
LOOPS=()
finish() {
  nodes_down
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap finish EXIT
mono() { python3 -c 'import time; print(int(time.monotonic() * 1e6))'; }

echo "# the hardening profile and its bundle"
ssh-keygen -q -t ed25519 -N '' -f "$OUT/admin" -C bench-admin
cat >"$OUT/nodectl.toml" <<EOF
# first boot benchmark: hardening, packages from the bundle, no network
[base]
timezone = "Etc/UTC"
[harden]
role = "standalone"
[harden.ssh]
permit_root_login = "prohibit-password"
allow_groups = ["ssh-users", "root"]
[harden.accounts]
admin_user = "admin"
admin_keys = ["$(cat "$OUT/admin.pub")"]
EOF
export NODECTL_CACHE_DIR=$OUT/cache
mkdir -p "$OUT/stick/bundle"
# The packages the hardening steps install, named explicitly so the bundle is the same whatever
# bundle create's default list becomes (it missed harden.services.extra_packages until this issue).
PKGS=libpam-pwquality,nftables,auditd,fail2ban,python3-systemd,unattended-upgrades,systemd-timesyncd,apparmor
PKGS=$PKGS,apparmor-utils,aide,aide-common,libpam-tmpdir,apt-listchanges,apt-show-versions,debsums,sysstat
"$NODECTL" bundle create -p "$OUT/nodectl.toml" --packages "$PKGS" --out "$OUT/stick/bundle/site.bundle" >"$OUT/bundle.out"
cp "$OUT/nodectl.toml" "$OUT/stick/"
bundle_mb=$(( $(stat -c %s "$OUT/stick/bundle/site.bundle") / 1000000 ))
echo "  bundle: $bundle_mb MB"

nodes_up "$N" 198.18.82
pid_of() { local v="NODECTL_TEST_PID_$1"; echo "${!v}"; }
root_of() { local v="NODECTL_TEST_ROOT_$1"; echo "${!v}"; }
echo "# installing the unit and the binary on $N nodes"
for i in $(seq 1 "$N"); do
  if [ $NEED_LIBS = 1 ]; then
    node "$i" "echo 'Acquire::http::Proxy \"$NODECTL_TEST_APT_PROXY\";' >/etc/apt/apt.conf.d/00b && apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssh-4 libcurl4 libarchive13 libyaml-cpp0.7 >/dev/null &&
      rm /etc/apt/apt.conf.d/00b"
  fi
  node "$i" "cat >/root/nodectl && chmod 755 /root/nodectl && /root/nodectl firstboot install >/dev/null" <"$BIN"
  mkfs.ext4 -q -L NODECTL -d "$OUT/stick" "$OUT/stick$i.img" $((bundle_mb + 64))M >/dev/null
  LOOPS+=("$(losetup -f --show "$OUT/stick$i.img")")
done

boot_with_stick() {  # boot_with_stick I: power the node off, boot it with its stick
  kill -KILL "$(pid_of "$1")"; sleep 1
  node_start "$1" --bind "${LOOPS[$(($1 - 1))]}"
}
service_times() {  # service_times I: "START DONE" (monotonic usec): activating -> active (oneshot finished)
  node "$1" systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic nodectl-firstboot.service |
    awk -F= '/^InactiveExit/ {s=$2} /^ActiveEnter/ {e=$2} END {print s, e}'
}

echo "# clean runs"
: >"$OUT/clean.txt"
for i in $(seq 1 "$CLEAN"); do
  boot_with_stick "$i"
  node "$i" nodectl status --wait --timeout 900 >"$OUT/status$i.txt" || { cat "$OUT/status$i.txt"; exit 1; }
  read -r s e <<<"$(service_times "$i")"
  [ "${s:-0}" -gt 0 ] && [ "${e:-0}" -gt "$s" ] || { echo "no service timestamps from node $i" >&2; exit 1; }
  echo "$(( (e - s) / 1000 ))" >>"$OUT/clean.txt"
  cp "$(root_of "$i")/var/lib/nodectl/firstboot.json" "$OUT/clean$i.json"
  echo "  node $i: $(( (e - s) / 1000 )) ms"
done

echo "# runs with a power cut ${CUT_AFTER:-15} s after the bundle's packages are on the node (in the package install)"
: >"$OUT/cut.txt"
for i in $(seq $((CLEAN + 1)) "$N"); do
  boot_with_stick "$i"
  R=$(root_of "$i")
  until grep -q '"bundle/packages": "done"' "$R/var/lib/nodectl/journal.json" 2>/dev/null; do sleep 0.05; done
  read -r s1 _ <<<"$(service_times "$i")"
  sleep "${CUT_AFTER:-15}"
  cut=$(mono)
  kill -KILL "$(pid_of "$i")"
  sleep 1
  node_start "$i" --bind "${LOOPS[$((i - 1))]}"
  node "$i" nodectl status --wait --timeout 900 >"$OUT/status$i.txt" || { cat "$OUT/status$i.txt"; exit 1; }
  read -r s2 e2 <<<"$(service_times "$i")"
  [ "${s2:-0}" -gt 0 ] && [ "${e2:-0}" -gt "$s2" ] || { echo "no service timestamps from node $i" >&2; exit 1; }
  cp "$R/var/lib/nodectl/firstboot.json" "$OUT/cut$i.json"
  skipped=$(jq '[.attempts[-1].steps[] | select(.result == "done (resumed)")] | length' "$OUT/cut$i.json")
  echo "$(( (cut - s1) / 1000 )) $(( (e2 - s2) / 1000 )) $skipped" >>"$OUT/cut.txt"
  echo "  node $i: before the cut $(( (cut - s1) / 1000 )) ms, after the reboot $(( (e2 - s2) / 1000 )) ms, $skipped steps skipped"
done

python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
clean = [int(x) for x in open(os.path.join(out, "clean.txt")).read().split()]
cuts = [tuple(map(int, l.split())) for l in open(os.path.join(out, "cut.txt")) if l.strip()]
med = statistics.median(clean)
steps = json.load(open(os.path.join(out, "clean1.json")))["attempts"][-1]["steps"]
print()
print(f"steps: {len(steps)}; slowest: " + ", ".join(f"{s['id']} {s['seconds']:.1f} s" for s in sorted(steps, key=lambda s: -s['seconds'])[:3]))
print("| measure | result |")
print("|---|---|")
print(f"| service start to done, clean (median of {len(clean)}) | {med/1000:.1f} s (min {min(clean)/1000:.1f}, max {max(clean)/1000:.1f}) |")
for before, after, skipped in cuts:
    total = before + after
    print(f"| power cut after {before/1000:.1f} s, then after the reboot | {after/1000:.1f} s ({skipped} steps done (resumed)); "
          f"both together {total/1000:.1f} s = {total/med:.2f} x clean, overhead {(total-med)/1000:+.1f} s |")
PY

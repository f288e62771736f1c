#!/usr/bin/env bash
# `nodectl stack render` time and manifest size for a profile of 1 and of N sites (default 20),
# with real secrets (files 0600, --out) and to stdout (placeholders). Results: docs/benchmarks.md.
#
#   scripts/bench/stack_render.sh [SITES] [RUNS]     (default 20 sites, 10 runs per case)
#
# No node, no network: the renderer reads the profile and the secret files only.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SITES=${1:-20}
RUNS=${2:-10}
NODECTL=${NODECTL:-$REPO/build/nodectl}
[ -x "$NODECTL" ] || NODECTL=$(cd "$REPO" && scripts/build.sh dynamic | tail -n 1)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
umask 077
for s in db repl redis crypt s3; do openssl rand -hex 16 | tr -d '\n' >"$W/$s"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/tls.key" -out "$W/tls.crt" \
  -days 2 -subj /CN=bench.test 2>/dev/null

profile() {  # profile N: N sites
  local i
  for i in $(seq 1 "$1"); do
    cat <<T
[[stack.sites]]
name = "shop$i"
hosts = ["shop$i.test", "www.shop$i.test"]
purge_acl = ["198.19.0.0/16"]  # the test range; on a real k3s cluster, its pod network
media_host_path = "/srv/shop$i/media"
search_endpoint = "http://opensearch.search.svc.cluster.local:9200"
tls = { cert_file = "$W/tls.crt", key = { file = "$W/tls.key" } }
replicas = { varnish = 2, mariadb_replicas = 1 }
autoscaling = { min = 2, max = 6 }
secrets = { db_password = { file = "$W/db" }, replication_password = { file = "$W/repl" }, redis_password = { file = "$W/redis" }, crypt_key = { file = "$W/crypt" } }
backup = { schedule = "30 2 * * *", endpoint = "https://s3.example.net", bucket = "backups", credentials = { file = "$W/s3" } }
T
  done
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ms() { python3 -c 'import sys, time, subprocess; t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(f"{(time.perf_counter() - t) * 1000:.1f}")' "$@"; }

echo "nodectl: $NODECTL ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)); $RUNS runs per case, median"
printf '%-6s %-14s %12s %12s %14s %10s\n' sites mode "time ms" "objects" "bytes" "bytes/site"
for n in 1 "$SITES"; do
  profile "$n" >"$W/p$n.toml"
  for mode in out stdout; do
    for r in $(seq "$RUNS"); do
      rm -rf "$W/out"
      if [ "$mode" = out ]; then ms "$NODECTL" stack render -p "$W/p$n.toml" --out "$W/out"
      else ms "$NODECTL" stack render -p "$W/p$n.toml"; fi
    done >"$W/times"
    if [ "$mode" = out ]; then
      bytes=$(cat "$W"/out/*.yaml | wc -c)
      objects=$(cat "$W"/out/*.yaml | grep -c '^---' || true)
    else
      "$NODECTL" stack render -p "$W/p$n.toml" >"$W/stdout.yaml"
      bytes=$(wc -c <"$W/stdout.yaml")
      objects=$(grep -c '^---' "$W/stdout.yaml" || true)
    fi
    printf '%-6s %-14s %12s %12s %14s %10s\n' "$n" "$mode" "$(median <"$W/times")" "$objects" "$bytes" "$((bytes / n))"
  done
done

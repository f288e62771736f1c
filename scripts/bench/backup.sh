#!/usr/bin/env bash
# Backup benchmark, side by side in one run, to one s3rver on loopback:
#   nodectl backup run    (mariadb-dump + files -> tar+zstd-3 stream -> S3 multipart)
#   pipeline              mariadb-dump | zstd -3 | aws s3 cp -   and   tar | zstd -3 | aws s3 cp -
#   restic                restic backup (files) + restic backup --stdin (the dump), to a local repo
#                         (s3rver 3.7 breaks restic 0.14's reads; see below)
#   nodectl-base          (only with NODECTL_BASE=/path/to/another/nodectl) the same run by another
#                         build, e.g. main's, for a before/after in the same run
# Data: a MariaDB database of about DB_MB MiB of dump text and FILES_MB MiB of files (a copy of
# /usr/lib/x86_64-linux-gnu, real binaries). Wall time, throughput (source bytes / wall) and peak
# RSS (GNU time -v; for a pipeline, the largest process of it) per run; medians of RUNS runs, the
# tools interleaved in each run; the load average before each run. nodectl runs with
# --log-level debug: the stage times of its median run are printed, and zstd's speed inside it
# (bytes per second of the compressing thread's CPU time) next to zstd's own on the same bytes
# (`zstd -b3`, and `zstd -3 --single-thread` per second of CPU time).
# Usage: scripts/bench/backup.sh [RUNS]   (env DB_MB=512 FILES_MB=512 THREADS=1 NODECTL_BASE=)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
NODECTL=${NODECTL:-$REPO/build/nodectl}
RUNS=${1:-3}
DB_MB=${DB_MB:-512}
FILES_MB=${FILES_MB:-512}
THREADS=${THREADS:-1}
NODECTL_BASE=${NODECTL_BASE:-}
S3RVER=/opt/nodectl-test/s3rver/node_modules/.bin/s3rver
AWS=/usr/bin/aws
W=$(mktemp -d /tmp/nodectl-bench-backup.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# MariaDB
DBP=$(free_port)
mariadb-install-db --no-defaults --user=root --datadir="$W/db" --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
mariadbd --no-defaults --user=root --datadir="$W/db" --socket="$W/db.sock" --port="$DBP" --bind-address=127.0.0.1 \
  --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=256M --log-error="$W/db.err" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 150); do mariadb --no-defaults -S "$W/db.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
rows=$((DB_MB * 1024 * 1024 / 600))
echo "generating ${DB_MB} MiB of rows ($rows) ..." >&2
mariadb --no-defaults -S "$W/db.sock" -uroot <<SQL
CREATE DATABASE bench;
USE bench;
CREATE TABLE bench.t (id INT PRIMARY KEY, a VARCHAR(200), b TEXT, c INT, d DATETIME) ENGINE=InnoDB;
INSERT INTO bench.t SELECT seq, CONCAT('customer ', seq, ' ', MD5(seq)), CONCAT(REPEAT(CONCAT(SHA2(seq, 256), ' order line '), 4), seq),
  seq % 1000, '2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_$rows;
SQL
printf '[client]\nuser=root\nsocket=%s\n' "$W/db.sock" >"$W/my.cnf"
# files
mkdir -p "$W/files"
echo "copying ${FILES_MB} MiB of files ..." >&2
( cd /usr/lib/x86_64-linux-gnu && find . -type f -size +1k -print0 | head -z -n 100000 |
  python3 -c '
import sys, os, shutil
limit = int(sys.argv[1]) << 20; total = 0
for p in sys.stdin.buffer.read().split(b"\0"):
    if not p or total >= limit: continue
    try: s = os.path.getsize(p)
    except OSError: continue
    d = os.path.join(sys.argv[2].encode(), p); os.makedirs(os.path.dirname(d), exist_ok=True)
    shutil.copyfile(p, d); total += s
' "$FILES_MB" "$W/files" )
SRC_BYTES=$(( $(mariadb-dump --defaults-extra-file="$W/my.cnf" --single-transaction --hex-blob bench | wc -c) + $(du -sb "$W/files" | cut -f1) ))
echo "source: $SRC_BYTES bytes (dump + files)" >&2

# s3rver
S3P=$(free_port)
mkdir -p "$W/s3"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$W/s3" -a 127.0.0.1 -p "$S3P" --configure-bucket bench >"$W/s3.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3P/" && break; sleep 0.1; done
export HOME=$W/home AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
mkdir -p "$HOME/.aws"; printf '[default]\ns3 =\n  addressing_style = path\n' >"$HOME/.aws/config"
cat >"$W/p.toml" <<EOF
[backup]
name = "bench"
compression_level = 3
compression_threads = $THREADS
[backup.mariadb]
socket = "$W/db.sock"
databases = ["bench"]
[[backup.files]]
path = "$W/files"
[[backup.targets]]
name = "s3"
type = "s3"
endpoint = "http://127.0.0.1:$S3P"
bucket = "bench"
prefix = "nodectl/"
path_style = true
EOF
# restic 0.14 inits a repository on s3rver 3.7 but then cannot read its config back from it
# ("Fatal: Unmarshal: invalid character 'b' after top-level value", s3rver's answer to its ranged
# GET): restic writes to a local repository on the same disk instead, which favours restic.
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$W/restic-repo
restic init >/dev/null

measure() {  # measure NAME CMD... -> "NAME wall_s rss_kb cpu_s" in results; stderr kept as err-NAME-RUN
  local name=$1; shift
  /usr/bin/time -v -o "$W/time" "$@" >"$W/out" 2>"$W/err" || { echo "$name failed:" >&2; tail -5 "$W/err" >&2; return 1; }
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$W/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time")
  cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {print s}' "$W/time")
  echo "$name $wall $rss $cpu" >>"$W/results"
  cp "$W/err" "$W/err-$name-$(grep -c "^$name " "$W/results")"
}
pipeline() {
  mariadb-dump --defaults-extra-file="$W/my.cnf" --single-transaction --routines --events --triggers --hex-blob bench |
    zstd -3 -q -T"$THREADS" | "$AWS" --endpoint-url "http://127.0.0.1:$S3P" s3 cp - "s3://bench/pipe/$1.sql.zst" --only-show-errors
  tar -C "$W/files" -cf - . | zstd -3 -q -T"$THREADS" |
    "$AWS" --endpoint-url "http://127.0.0.1:$S3P" s3 cp - "s3://bench/pipe/$1.files.tar.zst" --only-show-errors
}
export -f pipeline; export W S3P AWS THREADS
resticrun() {
  restic backup -q --compression auto "$W/files" >/dev/null
  mariadb-dump --defaults-extra-file="$W/my.cnf" --single-transaction --routines --events --triggers --hex-blob bench |
    restic backup -q --stdin --stdin-filename bench.sql >/dev/null
}
export -f resticrun
for i in $(seq "$RUNS"); do
  echo "run $i/$RUNS (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  cut -d' ' -f1 /proc/loadavg >>"$W/loads"
  measure nodectl "$NODECTL" --log-level debug backup -p "$W/p.toml" run --no-prune
  sleep 1
  measure pipeline bash -c "pipeline $i"
  if [ -n "$NODECTL_BASE" ]; then
    sleep 1
    measure nodectl-base "$NODECTL_BASE" backup -p "$W/p.toml" run --no-prune
  fi
  measure restic bash -c resticrun
done
cut -d' ' -f1 /proc/loadavg >>"$W/loads"
# zstd's own speed on this machine, on the same bytes (in memory, no I/O): the compression ceiling
mariadb-dump --defaults-extra-file="$W/my.cnf" --single-transaction --hex-blob bench >"$W/dump.sql"
tar -C "$W/files" -cf "$W/files.tar" .
for f in dump.sql files.tar; do
  zstd -b3 -q "$W/$f" 2>&1 | tr '\r' '\n' | tail -1 >>"$W/zstd-bench" || true
  zstd -b3 -T2 -q "$W/$f" 2>&1 | tr '\r' '\n' | tail -1 >>"$W/zstd-bench" || true
done
zstd_cpu_speed() {  # MB of input per second of zstd's CPU time (user + sys), one thread
  /usr/bin/time -f '%U %S' -o "$W/zt" zstd -3 -q --single-thread -c "$@" >/dev/null
  awk -v b="$(cat "$@" | wc -c)" '{printf "%.1f", b / ($1 + $2) / 1e6}' "$W/zt"
}
echo
echo "source bytes: $SRC_BYTES (dump $(stat -c %s "$W/dump.sql"), files $(du -sb "$W/files" | cut -f1)); runs: $RUNS; zstd threads: $THREADS"
echo "load average (1 min) before each run and at the end: $(tr '\n' ' ' <"$W/loads")"
# cpu s: user + system time of the tool and the children it waited for (mariadb-dump, zstd, tar,
# aws), not of mariadbd or s3rver: what it costs a busy machine.
printf '%-13s %10s %12s %14s %8s\n' tool "wall s" "MB/s" "peak RSS MiB" "cpu s"
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for t in nodectl pipeline nodectl-base restic; do
  grep -q "^$t " "$W/results" || continue
  w=$(awk -v t=$t '$1==t {print $2}' "$W/results" | median)
  r=$(awk -v t=$t '$1==t {print $3}' "$W/results" | median)
  c=$(awk -v t=$t '$1==t {print $4}' "$W/results" | median)
  awk -v t=$t -v w="$w" -v r="$r" -v c="$c" -v b="$SRC_BYTES" 'BEGIN {printf "%-13s %10.2f %12.1f %14.1f %8.2f\n", t, w, b/w/1e6, r/1024, c}'
done
nw=$(awk '$1=="nodectl" {print $2}' "$W/results" | median)
pw=$(awk '$1=="pipeline" {print $2}' "$W/results" | median)
awk -v n="$nw" -v p="$pw" 'BEGIN {printf "nodectl vs pipeline: %.2fx the speed (pipeline wall / nodectl wall, medians)\n", p/n}'
echo "per run (wall s, peak RSS KiB, cpu s):"; sed 's/^/  /' "$W/results"
# The stage times of nodectl's median run (the run whose wall time is the median, or the nearest).
mrun=$(awk -v m="$nw" '$1=="nodectl" {n++; d=($2>m)?$2-m:m-$2; if (best=="" || d<best) {best=d; r=n}} END {print r}' "$W/results")
echo "nodectl stage times, run $mrun:"
sed -n 's/^.*debug backup: //p' "$W/err-nodectl-$mrun" | grep -v '^target\|^writing' | sed 's/^/  /'
echo "archive sizes: nodectl $(du -sb "$W/s3/bench/nodectl" 2>/dev/null | cut -f1) (all runs), pipeline $(du -sb "$W/s3/bench/pipe" 2>/dev/null | cut -f1) (all runs), restic $(du -sb "$W/restic-repo" 2>/dev/null | cut -f1) (deduplicated local repo)"
echo "zstd -b3 on the dump, then the files as one tar (1 thread, then 2):"; sed 's/^/  /' "$W/zstd-bench"
# Both as one figure, as nodectl compresses them: all bytes / the time 1 thread takes for each.
awk -v d="$(stat -c %s "$W/dump.sql")" -v f="$(stat -c %s "$W/files.tar")" '
  {for (i = 1; i < NF; i++) if ($(i+1) == "MB/s") {s[NR] = $i; break}}
  END {printf "zstd -b3, 1 thread, dump and files together: %.1f MB/s\n", (d + f) / 1e6 / (d / 1e6 / s[1] + f / 1e6 / s[3])}' "$W/zstd-bench"
echo "zstd -3 --single-thread per second of its CPU time: dump $(zstd_cpu_speed "$W/dump.sql") MB/s, files (tar) $(zstd_cpu_speed "$W/files.tar") MB/s, both $(zstd_cpu_speed "$W/dump.sql" "$W/files.tar") MB/s"

#!/usr/bin/env bash
# util::s3's streaming multipart upload against `aws s3 cp -` (Debian's awscli), side by side,
# to one s3rver on loopback: RUNS uploads of SIZE_MB of random data from a pipe each, wall time
# (median) and peak RSS (max). Usage: scripts/bench/s3_upload.sh [RUNS] [SIZE_MB]
# Needs build/nodectl_s3_tool (scripts/build.sh dynamic), s3rver and awscli (scripts/setup.sh).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-5}
SIZE=${2:-200}
TOOL=$REPO/build/nodectl_s3_tool
S3RVER=/opt/nodectl-test/s3rver/node_modules/.bin/s3rver
W=$(mktemp -d /tmp/nodectl-bench-s3.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -s -d "$W/data" -a 127.0.0.1 -p "$PORT" --configure-bucket bench &
S3PID=$!
trap 'kill $S3PID 2>/dev/null; wait $S3PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
head -c $((SIZE << 20)) /dev/urandom >"$W/input"
export HOME=$W/home AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
mkdir -p "$HOME/.aws"
printf '[default]\ns3 =\n    addressing_style = path\n' >"$HOME/.aws/config"
measure() {   # NAME COMMAND...: prints "seconds max_rss_kb" per run
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$W/t" bash -c "$* < '$W/input' > /dev/null 2>&1"
    echo "$name $(cat "$W/t")"
  done
}
{
  measure nodectl "'$TOOL' --endpoint http://127.0.0.1:$PORT --bucket bench --path-style put bench/n.bin"
  measure awscli "/usr/bin/aws --endpoint-url http://127.0.0.1:$PORT s3 cp - s3://bench/a.bin"
} >"$W/results"
python3 - "$W/results" "$SIZE" <<'P'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2])
print("| upload of %d MiB from a pipe to s3rver | median wall | throughput | peak RSS |" % size)
print("|---|---:|---:|---:|")
for name in ("nodectl", "awscli"):
    t = [float(r[1]) for r in rows if r[0] == name]
    m = [int(r[2]) for r in rows if r[0] == name]
    med = statistics.median(t)
    print("| %s | %.2f s | %.0f MiB/s | %.1f MiB |" % (
        "nodectl_s3_tool put (util::s3, 2 parts in flight, 8 MiB)" if name == "nodectl" else "aws s3 cp - (awscli 2.9)",
        med, size / med, max(m) / 1024))
P

#!/usr/bin/env bash
# Slow and broken links, with the real peers: a booted Debian node's sshd reached through a TCP
# proxy on loopback that stalls or resets the link on command (data/faulty_link.py), and s3rver
# behind an HTTP proxy on loopback that answers slowly or resets (data/faulty_s3.py).
#   SSH: a peer that accepts and says nothing fails the connect within --connect-timeout; a link
#     that stalls while a command waits (dpkg's lock held on the node) and one that is reset fail
#     the host in bounded time with a message naming the host and the command; an SFTP upload
#     whose link is reset or stalls mid-transfer fails clearly, and the destination keeps its old
#     content (nothing partial in its place); each time the next run, over a good link, converges.
#   S3 (nodectl_s3_tool, util::s3): an answer slower than the low-speed limit is retried, then
#     fails naming the request, in bounded time; one within the limit is waited for, not retried;
#     resets before and after the store saw a request (PUT, UploadPart, CompleteMultipartUpload,
#     DELETE) and a GET cut mid-body are retried where that is safe and the object is byte-identical;
#     a reset on every try fails after the attempts, naming the request.
# Every nodectl run here is under `timeout 300`: an exit by that timeout is a hang, and fails.
# Subnet 198.18.57.0/24.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_services.sh"

S3TOOL=${S3TOOL:-$(dirname "$NODECTL")/nodectl_s3_tool}
[ -x "$S3TOOL" ] || { echo "missing $S3TOOL (scripts/build.sh dynamic)"; exit 1; }

LINK_PID="" S3P_PID=""
links_cleanup() {
  local rc=$?
  [ -n "$LINK_PID" ] && kill "$LINK_PID" 2>/dev/null
  [ -n "$S3P_PID" ] && kill "$S3P_PID" 2>/dev/null
  stop_services
  (exit $rc)
  cleanup
}
trap links_cleanup EXIT

# bounded OUT ARGS...: nodectl ARGS under `timeout 300`, output in OUT; sets RC and ELAPSED.
bounded() {
  local out=$1 t0=$SECONDS
  shift
  timeout 300 "$@" >"$out" 2>&1
  RC=$?
  ELAPSED=$((SECONDS - t0))
}
# not_hung DESCRIPTION: the last bounded run ended by itself, with an error.
not_hung() {
  if [ "$RC" = 124 ]; then fail "$1: still running after 300 s (killed by timeout)"
  elif [ "$RC" = 0 ]; then fail "$1: exit 0, wanted a failure"
  else pass "$1 (exit $RC after $ELAPSED s)"; fi
}

# ------------------------------------------------------------------ SSH through the link proxy
nodes_up 1 198.18.57
A=${ADDRS[0]}
coproc LINK { exec python3 "$DATA/faulty_link.py" --to "$A:22" 2>>"$WORK/link.log"; }
LINK_PID=$LINK_PID
read -r _ LPORT <&"${LINK[0]}"
# ask COPROC WORDS...: one command line to a fault proxy running as COPROC, its one-line answer.
ask() {
  local -n co=$1
  local reply
  shift
  echo "$*" >&"${co[1]}"
  read -r reply <&"${co[0]}"
  echo "$reply"
}
link() { [ "$(ask LINK "$@")" = ok ] || echo "faulty_link: $* refused" >&2; }
# The node's host key under the proxy's address, and the node as "far-node" behind it.
awk -v a="$A" -v p="[127.0.0.1]:$LPORT" '$1 == a { $1 = p; print }' "$NODECTL_TEST_KNOWN_HOSTS" >"$WORK/known_hosts"
cat >"$WORK/inv.toml" <<EOF
[[hosts]]
name = "far-node"
address = "127.0.0.1"
port = $LPORT
identity = "$NODECTL_TEST_KEY"
EOF
RUN=(-i "$WORK/inv.toml" --known-hosts "$WORK/known_hosts" --connect-timeout 3)

bounded "$WORK/ok.out" "$NODECTL" plan -p "$DATA/motd.toml" "${RUN[@]}"
expect_rc_out "through the proxy, a plan works" 0 "$RC" "$WORK/ok.out"

echo "# a peer that accepts and then says nothing"
link stall
bounded "$WORK/mute.out" "$NODECTL" plan -p "$DATA/motd.toml" "${RUN[@]}"
not_hung "a mute peer fails the connect"
contains "... saying it timed out connecting to far-node's address" "$WORK/mute.out" "cannot connect to root@127.0.0.1:$LPORT: Timeout connecting"
link drop
link pass

# A command that waits without a word: the package step waits for dpkg's lock, held on the node.
cat >"$WORK/pkg.toml" <<EOF
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
packages = ["tree"]
EOF
# dpkg's frontend lock as apt takes it (an fcntl lock: flock(1) would not stop apt), by perl
# (Essential on Debian); returns once /proc/locks shows it held.
hold_dpkg() {
  node 1 "setsid perl -MFcntl -e 'open(my \$f, \">>\", \"/var/lib/dpkg/lock-frontend\") or die;
            my \$l = pack(\"ssx4qqix4\", F_WRLCK, 0, 0, 0, 0); fcntl(\$f, F_SETLKW, \$l) or die; sleep 600' </dev/null >/dev/null 2>&1 &
          echo \$! >/run/dpkg-holder
          for i in \$(seq 100); do grep -q \"POSIX *ADVISORY *WRITE *\$(cat /run/dpkg-holder) \" /proc/locks && exit 0; sleep 0.1; done
          exit 1" || fail "the node's dpkg lock could not be taken"
}
release_dpkg() { node 1 'kill $(cat /run/dpkg-holder) 2>/dev/null; true'; }
# apply_then FAULT: an apply of pkg.toml; once apt-get waits for the lock on the node, the link gets FAULT.
apply_then() {
  hold_dpkg
  timeout 300 "$NODECTL" apply -p "$WORK/pkg.toml" "${RUN[@]}" >"$WORK/$1.out" 2>&1 &
  local pid=$! t0=$SECONDS
  WAIT_STEP=0.1 wait_until 120 "apt-get on node 1" node 1 pgrep -x apt-get
  sleep 2   # past `apt-get update` (a second here): install waits for the lock
  link "$1"
  wait "$pid"
  RC=$?
  ELAPSED=$((SECONDS - t0))
}

echo "# the link stalls while a command waits"
apply_then stall
not_hung "a stalled link fails the host"
contains "... naming the command, the host, and saying the link stalled" "$WORK/stall.out" \
  "apt-get install 'tree': no answer from far-node within 3 s: the link or the host stalled"
link drop   # the path is back: the dead link is reset, and sshd ends its session and the host lock
link pass
release_dpkg
bounded "$WORK/stall-next.out" "$NODECTL" apply -p "$WORK/pkg.toml" "${RUN[@]}"
expect_rc_out "after the stall, the next run converges" 0 "$RC" "$WORK/stall-next.out"

echo "# the link is reset while a command waits"
# (the apt-get the stalled run started on the node may still be finishing: wait for its lock)
node 1 'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 remove -y -qq tree >/dev/null' ||
  fail "removing tree again on the node"
apply_then drop
not_hung "a reset link fails the host"
contains "... naming the command, the host, and saying the connection was lost" "$WORK/drop.out" \
  "apt-get install 'tree': lost the connection to far-node"
link pass
release_dpkg
bounded "$WORK/drop-next.out" "$NODECTL" apply -p "$WORK/pkg.toml" "${RUN[@]}"
expect_rc_out "after the reset, the next run converges" 0 "$RC" "$WORK/drop-next.out"

# An upload of 24 MB over SFTP; the destination holds an old content.
head -c 24000000 /dev/urandom >"$WORK/big.bin"
NEW_SHA=$(sha256sum <"$WORK/big.bin" | cut -d' ' -f1)
printf '[[base.files]]\npath = "/var/tmp/links/big.bin"\nsource = "big.bin"\n' >"$WORK/upload.toml"
node 1 'mkdir -p /var/tmp/links && echo old >/var/tmp/links/big.bin'
OLD_SHA=$(node 1 sha256sum /var/tmp/links/big.bin | cut -d' ' -f1)
upload_fault() {  # upload_fault NAME FAULT: the upload with FAULT set on the link, then the checks
  link "$2"
  bounded "$WORK/$1.out" "$NODECTL" apply -p "$WORK/upload.toml" "${RUN[@]}"
  not_hung "$1: the upload fails"
  contains "$1: ... naming the host" "$WORK/$1.out" 'far-node'
  contains "$1: ... and the upload" "$WORK/$1.out" 'SFTP|upload'
  check "$1: the destination holds its old content" test "$(node 1 sha256sum /var/tmp/links/big.bin | cut -d' ' -f1)" = "$OLD_SHA"
  check "$1: nothing else in the destination's directory (no partial file)" test "$(node 1 ls -A /var/tmp/links)" = big.bin
  link drop
  link pass
}
echo "# an SFTP upload whose link is reset mid-transfer"
upload_fault sftp-reset "drop-at 8000000"
contains "sftp-reset: ... saying the connection was lost" "$WORK/sftp-reset.out" 'lost|disconnected|closed|reset'
echo "# an SFTP upload whose link stalls mid-transfer"
upload_fault sftp-stall "stall-at 8000000"
contains "sftp-stall: ... saying it stalled" "$WORK/sftp-stall.out" 'stalled'
node 1 'ls -A /root' >"$WORK/home-before"
check "each broken upload left its partial file in the login user's home (the link was gone)" \
  test "$(grep -c '^\.nodectl-upload-' "$WORK/home-before")" = 2
node 1 'touch -d "-1 hour" /root/.nodectl-upload-*'   # as if those runs were an hour ago
bounded "$WORK/upload-next.out" "$NODECTL" apply -p "$WORK/upload.toml" "${RUN[@]}"
expect_rc_out "after the broken uploads, the next run converges" 0 "$RC" "$WORK/upload-next.out"
check "... and the destination is the new content" test "$(node 1 sha256sum /var/tmp/links/big.bin | cut -d' ' -f1)" = "$NEW_SHA"
node 1 'ls -A /root' >"$WORK/home"
lacks "... and the next upload removed the partial files older than 10 minutes" "$WORK/home" '^\.nodectl-upload-'

# ------------------------------------------------------------------ S3 through the HTTP proxy
kill "$LINK_PID"; wait "$LINK_PID" 2>/dev/null; LINK_PID=""   # bash holds one coprocess at a time
start_s3rver "$WORK/s3rver" test
coproc S3P { exec python3 "$DATA/faulty_s3.py" --to "127.0.0.1:$S3PORT" 2>>"$WORK/s3proxy.log"; }
S3P_PID=$S3P_PID
read -r _ PPORT <&"${S3P[0]}"
s3f() { ask S3P "$@"; }
rule() { [ "$(s3f rule "$@")" = ok ] || echo "faulty_s3: rule $* refused" >&2; }
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
S3=("$S3TOOL" --endpoint "http://127.0.0.1:$PPORT" --bucket test --path-style --attempts 3 --backoff-ms 200)

echo "# S3: slow answers"
rule slow PUT '^/test/slow/ok' 1 3
bounded "$WORK/slow-ok.out" "${S3[@]}" --low-speed-time 10 put-small slow/ok <<<small
expect_rc_out "an answer 3 s late, within the low-speed limit (10 s): waited for" 0 "$RC" "$WORK/slow-ok.out"
check "... and not retried (one request)" test "$(s3f count PUT '^/test/slow/ok')" = 1
rule slow PUT '^/test/slow/stuck' 3 20
bounded "$WORK/slow-stuck.out" "${S3[@]}" --low-speed-time 2 put-small slow/stuck <<<small
not_hung "answers 20 s late with a 2 s low-speed limit: the request fails"
contains "... naming the request, after 3 attempts" "$WORK/slow-stuck.out" '^error: S3 PUT s3://test/slow/stuck: .*\(after 3 attempts\)$'
check "... three requests were made" test "$(s3f count PUT '^/test/slow/stuck')" = 3

echo "# S3: resets"
rule reset-before PUT '^/test/reset/put' 1
bounded "$WORK/reset-put.out" "${S3[@]}" put-small reset/put <<<"put once"
expect_rc_out "a PUT reset before the store saw it is retried and succeeds" 0 "$RC" "$WORK/reset-put.out"
contains "... after a retry" "$WORK/reset-put.out" '^retry: S3 PUT s3://test/reset/put: .*reset by peer; retrying in'
check "... and the object is there" test "$("${S3[@]}" get reset/put)" = "put once"

head -c 20000000 /dev/urandom >"$WORK/multi.bin"
MULTI_SHA=$(sha256sum <"$WORK/multi.bin" | cut -d' ' -f1)
rule reset-after PUT '^/test/reset/part\?.*partNumber=2' 1
bounded "$WORK/reset-part.out" "${S3[@]}" --part-size 5242880 put reset/part <"$WORK/multi.bin"
expect_rc_out "an UploadPart answered by a reset after the store took it is sent again: the upload succeeds" 0 "$RC" "$WORK/reset-part.out"
check "... and the object is byte-identical" test "$("${S3[@]}" get reset/part | sha256sum | cut -d' ' -f1)" = "$MULTI_SHA"

rule reset-after POST '^/test/reset/complete\?.*uploadId' 1
bounded "$WORK/reset-complete.out" "${S3[@]}" --part-size 5242880 put reset/complete <"$WORK/multi.bin"
expect_rc_out "a CompleteMultipartUpload answered by a reset after the store completed it: the upload succeeds" 0 "$RC" "$WORK/reset-complete.out"
contains "... saying the store had completed it before its answer was lost" "$WORK/reset-complete.out" \
  '^retry: S3 CompleteMultipartUpload s3://test/reset/complete: .*the store completed it before its answer was lost$'
check "... and the object is byte-identical" test "$("${S3[@]}" get reset/complete | sha256sum | cut -d' ' -f1)" = "$MULTI_SHA"

rule cut GET '^/test/reset/part$' 1 1000000
before=$(s3f count GET '^/test/reset/part$')
timeout 300 "${S3[@]}" get reset/part >"$WORK/cut.bin" 2>"$WORK/cut.err"
expect_rc_out "a GET cut after 1 MB" 0 $? "$WORK/cut.err"
check "... resumes: the object arrives byte-identical" test "$(sha256sum <"$WORK/cut.bin" | cut -d' ' -f1)" = "$MULTI_SHA"
check "... in two requests" test $(($(s3f count GET '^/test/reset/part$') - before)) = 2

rule reset-after DELETE '^/test/reset/put$' 1
bounded "$WORK/reset-delete.out" "${S3[@]}" rm reset/put
expect_rc_out "a DELETE answered by a reset after the store deleted: retried, succeeds" 0 "$RC" "$WORK/reset-delete.out"

rule reset-before PUT '^/test/reset/always' 99
bounded "$WORK/reset-always.out" "${S3[@]}" put-small reset/always <<<never
not_hung "a PUT reset on every try fails"
contains "... naming the request, after 3 attempts" "$WORK/reset-always.out" '^error: S3 PUT s3://test/reset/always: .*reset by peer \(after 3 attempts\)$'

finish

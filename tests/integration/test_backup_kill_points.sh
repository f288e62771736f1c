#!/usr/bin/env bash
# Sudden death of `nodectl backup run`: SIGKILL at NODECTL_TEST_BACKUP_KILLS (default 10) random
# moments of a run that dumps a real MariaDB (mariadbd on loopback) and a file tree to a directory
# target and to S3 (s3rver). After each kill:
#   every archive `backup list` shows, on either target, passes `backup verify` (a cut run leaves
#     nothing that list calls good);
#   the next run is not stopped by a lock, exits 0 and adds exactly one good archive to each target;
#   the directory holds nothing but the listed archives once that run is done (the killed run's
#     hidden partial file is removed), and no MariaDB option file (the password) was ever on disk.
# NODECTL_TEST_SEED picks the moments (printed, so a failing run can be repeated).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_services.sh"

for t in mariadbd mariadb-install-db mariadb; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/setup.sh)"; exit 1; }
done

KILLS=${NODECTL_TEST_BACKUP_KILLS:-10}
SEED=${NODECTL_TEST_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
echo "# $KILLS kill points, seed $SEED (NODECTL_TEST_SEED=$SEED repeats them)"

trap 'rc=$?; stop_services; (exit $rc); cleanup' EXIT
chmod 755 "$WORK"

# --- MariaDB with a database of a few MB, a file tree, s3rver ------------------------------------
DBPW="Db-pw-$(openssl rand -hex 12)"
start_mariadb A "$DBPW"
DB_PORT=$DB_PORT_A
MYSQL_PWD=$DBPW mariadb --no-defaults -S "$WORK/db-A/sock" -uroot <<SQL || { echo "cannot fill MariaDB"; exit 1; }
CREATE DATABASE shop;
USE shop;
CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(64));
INSERT INTO orders SELECT seq, MD5(seq) FROM seq_1_to_100000;
SQL
printf '%s' "$DBPW" >"$WORK/db.pw"
chmod 600 "$WORK/db.pw"
mkdir -p "$WORK/site/media"
for i in 1 2 3 4; do head -c 8000000 /dev/urandom >"$WORK/site/media/photo$i.jpg"; done
mkdir -p "$WORK/dir"
start_s3rver "$WORK/s3rver"
# nodectl's TMPDIR, where a run could leave a file behind. Set after the services start: mariadbd
# and s3rver keep temporary files of their own in theirs, which are not nodectl's to answer for.
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"
{
  cat <<EOF
[backup]
name = "web1"
chunk_mib = 1
[backup.mariadb]
host = "127.0.0.1"
port = $DB_PORT
password = { file = "$WORK/db.pw" }
[[backup.files]]
path = "$WORK/site"
[[backup.targets]]
name = "dir"
path = "$WORK/dir"
min_free_mib = 1
EOF
  s3_target nodes/web1/
} >"$WORK/p.toml"
bk() { "$NODECTL" backup -p "$WORK/p.toml" "$@"; }

# listed TARGET: the archive ids `backup list` shows on TARGET, one per line.
listed() { "$NODECTL" --json backup -p "$WORK/p.toml" list --target "$1" 2>/dev/null | jq -r '.[].id' | sort; }
# all_listed_verify: every archive on either target passes verify; prints how many there were.
all_listed_verify() {
  local t id n=0
  for t in dir s3; do
    for id in $(listed "$t"); do
      bk verify "$id" --target "$t" >"$WORK/verify.out" 2>&1 || { echo "verify $id on $t failed:"; cat "$WORK/verify.out"; return 1; }
      n=$((n + 1))
    done
  done
  echo "$n"
}

# --- a whole run, timed: the kill moments are spread over its length ----------------------------
T0=$(date +%s.%N)
bk run >"$WORK/run0.out" 2>&1
expect_rc_out "a whole backup run to the directory and S3" 0 $? "$WORK/run0.out"
RUN_MS=$(python3 -c "import time; print(int((time.time() - $T0) * 1000))")
echo "# a whole run takes $RUN_MS ms; kills fall in (50 ms, that)"
check "list -> verify works on the first archive (2 = one per target)" test "$(all_listed_verify)" = 2

# One kill while mariadb-dump runs (the moment the credentials are in use): they are in a memory
# file the dump reads as /dev/fd/N, so nothing holds them on disk, before or after the kill.
"$NODECTL" backup -p "$WORK/p.toml" run >"$WORK/run-dump.out" 2>&1 &
pid=$!
# Its command line is read as soon as it is seen: the reading thread drains the dump at once, so a
# small dump may be gone a few milliseconds later.
dump_seen() {
  dump=$(pgrep -P "$pid" -x mariadb-dump)
  [ -n "$dump" ] && tr '\0' ' ' <"/proc/$dump/cmdline" >"$WORK/dump-cmdline" 2>/dev/null && [ -s "$WORK/dump-cmdline" ] && return 0
  dump=""
  return 1
}
WAIT_STEP=0.005 wait_until 10 "run $pid's mariadb-dump" dump_seen
ls -A "$TMPDIR" >"$WORK/tmpdir-during-dump"
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "a run was killed while its mariadb-dump ran (pid ${dump:-none})" test -n "$dump"
contains "... the dump read its credentials from /dev/fd/N" "$WORK/dump-cmdline" '--defaults-extra-file=/dev/fd/[0-9]+ '
check "... and no file was in TMPDIR while it ran" test ! -s "$WORK/tmpdir-during-dump"
sed 's/^/      | /' "$WORK/tmpdir-during-dump"
[ -n "$dump" ] && kill -9 "$dump" 2>/dev/null   # the orphaned dump, if it still runs

converged=0
for k in $(seq "$KILLS"); do
  ms=$((50 + RANDOM % (RUN_MS > 100 ? RUN_MS - 50 : 50)))
  before_dir=$(listed dir | wc -l) before_s3=$(listed s3 | wc -l)
  "$NODECTL" backup -p "$WORK/p.toml" run >"$WORK/run-k$k.out" 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  n=$(all_listed_verify) || { fail "kill $k (at $ms ms): an archive that list shows does not verify"; continue; }
  # The next run: no stale lock, exits 0, one more good archive per target.
  bk run >"$WORK/run-after-k$k.out" 2>&1
  rc=$?
  after_dir=$(listed dir | wc -l) after_s3=$(listed s3 | wc -l)
  # The killed run may have finished a target before the kill: then it counts too.
  grow_dir=$((after_dir - before_dir)) grow_s3=$((after_s3 - before_s3))
  extra=$(find "$WORK/dir" -mindepth 1 ! -name 'web1-*.tar.zst' | wc -l)
  if [ "$rc" = 0 ] && [ "$grow_dir" -ge 1 ] && [ "$grow_dir" -le 2 ] && [ "$grow_s3" -ge 1 ] && [ "$grow_s3" -le 2 ] &&
    [ "$extra" = 0 ] && all_listed_verify >/dev/null; then
    converged=$((converged + 1))
    pass "kill $k at $ms ms: $n listed archives verify; the next run exits 0 (+$grow_dir dir, +$grow_s3 s3), nothing else in the directory"
  else
    fail "kill $k at $ms ms: next run exit $rc, dir +$grow_dir, s3 +$grow_s3, $extra other files in the directory:"
    sed 's/^/      | /' "$WORK/run-after-k$k.out" | tail -8
    find "$WORK/dir" -mindepth 1 ! -name 'web1-*.tar.zst' | sed 's/^/      | /'
  fi
done
echo "# $converged of $KILLS kill points converged"
check "no MariaDB option file or dump was left in TMPDIR by the killed runs" test -z "$(ls -A "$TMPDIR")"
ls -A "$TMPDIR" | sed 's/^/      | /'
finish

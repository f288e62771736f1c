#!/usr/bin/env bash
# A run killed with SIGKILL leaves no stale lock; the next run resumes from the journal and converges.
# While a run holds a host, a second run is refused.
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.5
A=${ADDRS[0]}
ARGS=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY" "root@$A")
N=200
{
  for i in $(seq 1 $N); do
    printf '[[base.files]]\npath = "/srv/many/file-%03d"\ncontent = "file %d of %d\\n"\n\n' "$i" "$i" "$N"
  done
} >"$WORK/many.toml"

"$NODECTL" apply -p "$WORK/many.toml" "${ARGS[@]}" >"$WORK/1.out" 2>"$WORK/1.err" &
pid=$!
# Wait (bounded) until the run has finished some steps, then kill it without warning.
steps_done() {
  done_steps=$(node 1 "grep -c '\"done\"' /var/lib/nodectl/journal.json 2>/dev/null" || true)
  [ "${done_steps:-0}" -ge "$1" ]
}
WAIT_STEP=0.1 wait_until 60 "20 steps done in the node's journal" steps_done 20
check "the run was still going when we looked (${done_steps:-0} steps done)" kill -0 $pid

"$NODECTL" apply -p "$WORK/many.toml" "${ARGS[@]}" >"$WORK/busy.out" 2>&1
expect_rc "a second run while the first holds the lock is refused" 5 $?
contains "it says another run holds the lock, and whose" "$WORK/busy.out" 'another nodectl run holds /var/lib/nodectl/lock \(run [0-9a-f]+ by [^ ]+@[^ ]+ started'

kill -9 $pid
wait $pid 2>/dev/null
check "journal of the killed run still says running" node 1 "grep -q '\"state\": \"running\"' /var/lib/nodectl/journal.json"
written=$(node 1 "ls /srv/many | wc -l")
check "the killed run had written some files but not all ($written)" test "$written" -gt 0 -a "$written" -lt $N

"$NODECTL" --json apply -p "$WORK/many.toml" "${ARGS[@]}" >"$WORK/2.json" 2>"$WORK/2.err"
expect_rc "the re-run succeeds (no stale lock)" 0 $?
check "the re-run resumed the interrupted run and skipped its finished steps" python3 -c "
import json
r = json.load(open('$WORK/2.json'))['hosts'][0]
assert r['resumed_run'], r['resumed_run']
st = [s['status'] for s in r['steps']]
assert st.count('done (resumed)') >= 20, st.count('done (resumed)')
assert st.count('failed') == 0
assert st.count('done (resumed)') + st.count('changed') + st.count('unchanged') == $N
"
check "every file is there with the right content" test "$(node 1 "cat /srv/many/file-*" | wc -l)" = $N
check "file 200 content" test "$(node 1 cat /srv/many/file-200)" = "file 200 of $N"
check "journal says complete" node 1 "grep -q '\"state\": \"complete\"' /var/lib/nodectl/journal.json"

"$NODECTL" apply -p "$WORK/many.toml" "${ARGS[@]}" >"$WORK/3.out" 2>&1
expect_rc "third run" 0 $?
contains "third run changes nothing and resumes nothing" "$WORK/3.out" "^== $A: 0 changed, $N unchanged \\([0-9.]+s\\)$"
sleep 1
check "no lock holder process is left on the node" node 1 "! pgrep -x cat"
finish

#!/usr/bin/env bash
# First boot killed with SIGKILL at random moments: on a fresh booted Debian 12 node each time,
# `nodectl firstboot` (a hardening profile with packages through the apt proxy, AIDE off, and a
# few [base] settings, from cloud-init's path) gets SIGKILL at a random time in its first
# NODECTL_TEST_KILL_WINDOW seconds (default 60; a whole first boot takes 18 to 60 s on the 2-core
# machine). Odd points start it as nodectl-firstboot.service and kill its main process (systemd
# then stops what it started: apt or dpkg are cut too); even points start it by hand, as
# cloud-init's runcmd would, and kill nodectl alone (what it started goes on to its end). After
# each kill:
#   no lock is left (firstboot.lock and the host lock are free), `nodectl status` says
#     interrupted, the journal is whole JSON and says running or complete;
#   the next first boot (the unit started again, or by hand) converges: status done,
#     firstboot.done written; the record tells the truth: the cut attempt has no end, is marked
#     interrupted (error and the step that was cut), the next one resumes its run when its
#     journal said running;
#   `check --local` passes and `apply --local` afterwards changes nothing;
#   no file below /etc is half written: each one the plan names holds the node's original, what
#     its package shipped, or the converged content; no temporary file of an atomic write is left.
# A first boot that ends before its moment shrinks the window to that moment, and is checked whole.
# NODECTL_TEST_KILL_POINTS kill points (default 3; docs/testing.md gives the 10-point local run),
# NODECTL_TEST_SEED picks the moments (printed), NODECTL_TEST_KILL_BUDGET (default 900 s): no new
# kill point starts after that many seconds. Subnet 198.18.56.0/24.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kill_points.sh"

kill_points_init 3
WINDOW=${NODECTL_TEST_KILL_WINDOW:-60}
BUDGET=${NODECTL_TEST_KILL_BUDGET:-900}
node_binary

# in_node CMD: CMD by the node's sh in all of node 1's namespaces, from this machine: the hardened
# sshd refuses root, and a by-hand first boot started this way can be killed by its pid here.
in_node() {
  nsenter -t "$NODECTL_TEST_PID_1" -a -r -w -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 sh -c "$*"
}

fresh_node() {
  nodes_down
  nodes_up 1 198.18.56
  UPPER=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME/nodes/1/upper
  LOWER=$(cat "$WORK/rootfs.path")
  write_hardening_profile "$WORK/profile.toml"
  # A few [base] settings of a first boot besides the apt proxy, and a file of its own.
  sed -i "/^apt_proxy = /a timezone = \"Europe/Berlin\"\nhosts_entries = [\"$NODECTL_TEST_GATEWAY gateway\"]\npackages = [\"tree\"]" \
    "$WORK/profile.toml"
  printf '\n[[base.files]]\npath = "/etc/motd"\ncontent = "provisioned by nodectl firstboot\\n"\n' >>"$WORK/profile.toml"
  put_nodectl 1
  node 1 "/root/nodectl firstboot install && mkdir -p /etc/nodectl && cat >/etc/nodectl/profile.toml" \
    <"$WORK/profile.toml" >"$WORK/install.out" 2>&1 || { fail "firstboot install"; cat "$WORK/install.out"; }
}

cuts=0
T0=$SECONDS
for k in $(seq 1 "$KILLS"); do
  if [ $((SECONDS - T0)) -ge "$BUDGET" ]; then
    echo "# the budget of $BUDGET s is spent: no kill point after $((k - 1))"
    KILLS=$((k - 1))
    break
  fi
  fresh_node
  delay=$(kill_moment "$WINDOW")
  # The files this first boot writes itself: what the plan of its profile on the fresh node names.
  in_node nodectl --json plan --local -p /etc/nodectl/profile.toml >"$WORK/plan$k.json" 2>"$WORK/plan$k.err"
  managed_from_plan "$WORK/plan$k.json" >"$WORK/managed$k"
  check "kill point $k: the plan names the files first boot writes ($(wc -l <"$WORK/managed$k"))" test -s "$WORK/managed$k"

  if [ $((k % 2)) = 1 ]; then
    how="the unit"
    in_node systemctl start --no-block nodectl-firstboot.service
    sleep "$delay"
    in_node systemctl kill --kill-whom=main --signal=SIGKILL nodectl-firstboot.service 2>/dev/null
    # systemd stops the rest of the unit (apt, dpkg) once its main process is gone.
    for _ in $(seq 1 300); do
      case $(in_node systemctl is-active nodectl-firstboot.service) in activating|deactivating) sleep 0.1 ;; *) break ;; esac
    done
    check "kill point $k: no process of the unit is left (no apt-get, no dpkg)" in_node '! pgrep -x "apt-get|dpkg|http"'
  else
    how="by hand"
    pid=$(in_node 'nodectl firstboot </dev/null >/root/firstboot-cut.log 2>&1 & echo $!')
    sleep "$delay"
    in_node "kill -KILL $pid" 2>/dev/null
  fi
  if in_node test -e /var/lib/nodectl/firstboot.done; then
    cut=0
    echo "# kill point $k ($how): finished before $delay s (the window is $delay s from now on)"
    WINDOW=$delay
  else
    cut=1
    cuts=$((cuts + 1))
    echo "# kill point $k ($how): cut at $delay s"
  fi
  at_the_cut $k
  in_node cat /var/lib/nodectl/journal.json >"$WORK/journal$k.json" 2>/dev/null
  journal_whole "$WORK/journal$k.json" >"$WORK/journal$k.out"
  expect_rc_out "kill point $k: the journal is whole JSON and says running or complete" 0 $? "$WORK/journal$k.out"
  cut_run=$(jq -r '.run_id // empty' "$WORK/journal$k.json" 2>/dev/null)
  cut_state=$(jq -r '.state // empty' "$WORK/journal$k.json" 2>/dev/null)
  in_node 'flock -n /var/lib/nodectl/firstboot.lock true && flock -n /var/lib/nodectl/lock true' >"$WORK/locks$k.out" 2>&1
  expect_rc_out "kill point $k: no lock is left (firstboot.lock and the host lock are free)" 0 $? "$WORK/locks$k.out"
  if [ $cut = 1 ]; then
    in_node nodectl status >"$WORK/status-cut$k.out" 2>&1
    expect_rc_out "kill point $k: status after the cut: running or interrupted" 10 $? "$WORK/status-cut$k.out"
    contains "kill point $k: ... and it says interrupted (nobody holds the lock)" "$WORK/status-cut$k.out" '^firstboot: interrupted'
  fi

  # The next first boot: the unit again (as at the next boot) or by hand again.
  if [ "$how" = "the unit" ]; then
    in_node timeout 900 systemctl start nodectl-firstboot.service >"$WORK/next$k.out" 2>&1
  else
    in_node timeout 900 nodectl firstboot >"$WORK/next$k.out" 2>&1
  fi
  in_node nodectl status >"$WORK/status$k.out" 2>&1
  expect_rc_out "kill point $k: the next first boot converges: status done" 0 $? "$WORK/status$k.out"
  check "kill point $k: firstboot.done written" in_node test -s /var/lib/nodectl/firstboot.done
  in_node cat /var/lib/nodectl/firstboot.json >"$WORK/fb$k.json"
  if [ $cut = 1 ]; then
    python3 - "$WORK/fb$k.json" "$cut_run" "$cut_state" >"$WORK/record$k.out" 2>&1 <<'PY'
import json, sys
fb, cut_run, cut_state = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
attempts = fb["attempts"]
assert fb["state"] == "done" and not fb["error"], (fb["state"], fb["error"])
assert len(attempts) == 2, "%d attempts" % len(attempts)
cut, last = attempts
assert not cut["finished"], "the cut attempt has an end: " + cut["finished"]
assert cut["error"].startswith("interrupted"), "the cut attempt's error: %r" % cut["error"]
results = [s["result"] for s in cut["steps"]]
assert results.count("interrupted") <= 1, results
assert "failed" not in results, results
assert last["finished"] and not last["error"], last
assert all(s["result"] not in ("failed", "not run") for s in last["steps"]), last["steps"]
if cut_state == "running":
    assert last["resumed_run"] == cut_run, "resumed %r, the cut run was %r" % (last["resumed_run"], cut_run)
    resumed = [s["id"] for s in last["steps"] if s["result"] == "done (resumed)"]
    print("the cut attempt is marked interrupted; the next one resumed run", cut_run, "with", len(resumed), "steps done before")
else:
    print("the cut attempt is marked interrupted (cut before its journal said running); the next one ran afresh")
PY
    expect_rc_out "kill point $k: the record tells the truth (cut attempt interrupted, the next one resumed it)" 0 $? "$WORK/record$k.out"
    sed -n '1s/^/     (/; 1s/$/)/p' "$WORK/record$k.out"
    in_node nodectl status >"$WORK/report$k.out" 2>&1
    contains "kill point $k: the report shows attempt 1 as interrupted" "$WORK/report$k.out" '^attempt 1: started [^,]*, interrupted'
  fi
  in_node nodectl check --local -p /etc/nodectl/profile.toml >"$WORK/check$k.out" 2>&1
  expect_rc_out "kill point $k: check passes" 0 $? "$WORK/check$k.out"
  in_node nodectl apply --local -p /etc/nodectl/profile.toml >"$WORK/again$k.out" 2>&1
  expect_rc_out "kill point $k: apply afterwards" 0 $? "$WORK/again$k.out"
  contains "kill point $k: ... changes nothing" "$WORK/again$k.out" ": 0 changed"

  no_half_written $k
done
echo "# $cuts of $KILLS first boots were cut (the others finished before their moment and were checked whole)"
finish

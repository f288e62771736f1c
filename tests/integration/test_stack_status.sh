#!/usr/bin/env bash
# `nodectl stack status` against a booted Debian node over real SSH.
#
# No k3s binary can run on the machines this runs on. The node's `k3s` is a stand-in script that
# prints fixture JSON (tests/data/k8s-status: hand-written in the shape of the Kubernetes API, see
# its README) for the one read-only call nodectl makes, and records its arguments. What is real:
# SSH, the command nodectl runs on the node, the transfer and size bound of the output, the
# parsing, the report, the exit codes. What is NOT verified: that a real k3s's kubectl prints what
# the fixtures say for a real cluster.
source "$(dirname "$0")/lib.sh"
FIX=$SRC/tests/data/k8s-status

nodes_up 1 198.18.32
A=${ADDRS[0]}
CONN=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")

node 1 "cat >/usr/local/bin/k3s && chmod 0755 /usr/local/bin/k3s" <<'EOF_K3S'
#!/bin/sh
# stand-in for k3s in nodectl tests: not a k3s binary. Prints /root/k3s-status.json for kubectl get.
echo "$*" >>/root/k3s-calls
[ "$1 $2" = "kubectl get" ] || { echo "stand-in k3s: unexpected arguments: $*" >&2; exit 1; }
if [ -e /root/k3s-fail ]; then
  echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2
  exit 1
fi
exec cat /root/k3s-status.json
EOF_K3S
use_fixture() { node 1 "cat >/root/k3s-status.json" <"$FIX/$1"; }

echo "# a ready site"
use_fixture ready.json
nodectl stack status "root@$A" "${CONN[@]}" -p "$SRC/profiles/stack.toml" >"$WORK/ready.out" 2>"$WORK/ready.err"
expect_rc_out "stack status of a ready site" 0 $? "$WORK/ready.err"
contains_text "site reported ready" "$WORK/ready.out" "site shop: ready"
contains_text "pods ready/total and restarts" "$WORK/ready.out" "pods     7/7 ready, 1 restarts"
contains_text "HPA current/desired/max" "$WORK/ready.out" "hpa      magento: 2 current, 2 desired, 6 max"
contains_text "ingress hosts" "$WORK/ready.out" "ingress  shop.example.org, www.shop.example.org"
node 1 cat /root/k3s-calls >"$WORK/calls"
check "one read-only kubectl call, exactly as documented" \
  test "$(cat "$WORK/calls")" = "kubectl get pods,hpa,ingress -A -l app.kubernetes.io/managed-by=nodectl -o json"

echo "# --json"
nodectl --json stack status "root@$A" "${CONN[@]}" >"$WORK/ready.json" 2>"$WORK/json.err"
expect_rc_out "stack status --json" 0 $? "$WORK/json.err"
check "--json: site shop ready with 7 pods and 2 ingress hosts" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sites"]
assert len(s) == 1 and s[0]["name"] == "shop" and s[0]["ready"] is True, s
assert s[0]["pods"] == {"ready": 7, "total": 7, "restarts": 1, "not_ready": []}, s[0]["pods"]
assert s[0]["hpa"] == [{"name": "magento", "current": 2, "desired": 2, "max": 6}], s[0]["hpa"]
assert s[0]["ingress_hosts"] == ["shop.example.org", "www.shop.example.org"]' "$WORK/ready.json"

echo "# the server from an inventory (role server)"
cat >"$WORK/inv.toml" <<T
[defaults]
identity = "$NODECTL_TEST_KEY"
[[hosts]]
name = "k3s-server"
address = "$A"
roles = ["server"]
T
nodectl stack status -i "$WORK/inv.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" >"$WORK/inv.out" 2>"$WORK/inv.err"
expect_rc_out "stack status -i INVENTORY (its server)" 0 $? "$WORK/inv.err"
contains_text "inventory: site shop ready" "$WORK/inv.out" "site shop: ready"

echo "# not ready: exit 6, the pods named"
use_fixture not-ready.json
nodectl stack status "root@$A" "${CONN[@]}" -p "$SRC/profiles/stack.toml" >"$WORK/nr.out" 2>"$WORK/nr.err"
expect_rc_out "stack status of a site that is not ready" 6 $? "$WORK/nr.err"
contains_text "NOT READY reported" "$WORK/nr.out" "site shop: NOT READY"
contains_text "unready pods named" "$WORK/nr.out" "not ready: magento-7d9f8c6b5-fghij, mariadb-replica-0"
contains_text "other site not in the profile reported" "$WORK/nr.out" "site blog: ready (not in the profile)"

echo "# hostile output: no control character reaches the terminal"
use_fixture hostile.json
nodectl stack status "root@$A" "${CONN[@]}" >"$WORK/hostile.out" 2>"$WORK/hostile.err"
expect_rc_out "stack status of hostile JSON" 6 $? "$WORK/hostile.err"
lacks "no ESC or BEL in the report" "$WORK/hostile.out" $'[\x1b\x07]'
contains_text "escape sequences shown escaped" "$WORK/hostile.out" 'evil\x1b]0;owned\x07'
contains_text "numbers out of range shown as unknown" "$WORK/hostile.out" "magento: ? current, ? desired, ? max"

echo "# failures: kubectl fails, output too large (12 MiB, transferred bounded by head -c), no k3s"
node 1 touch /root/k3s-fail
nodectl stack status "root@$A" "${CONN[@]}" >"$WORK/fail.out" 2>"$WORK/fail.err"
expect_rc_out "kubectl failing" 5 $? "$WORK/fail.err"
contains_text "kubectl's error shown" "$WORK/fail.err" "(exit 1): The connection to the server 127.0.0.1:6443 was refused"
node 1 rm /root/k3s-fail
node 1 "head -c 34000000 /dev/zero | tr '\\0' ' ' >/root/k3s-status.json"
nodectl stack status "root@$A" "${CONN[@]}" >"$WORK/big.out" 2>"$WORK/big.err"
expect_rc_out "33 MB of output" 5 $? "$WORK/big.err"
contains_text "too large refused" "$WORK/big.err" "larger than 12 MiB: refused"
node 1 rm /usr/local/bin/k3s
nodectl stack status "root@$A" "${CONN[@]}" >"$WORK/nok3s.out" 2>"$WORK/nok3s.err"
expect_rc_out "no k3s on the node" 5 $? "$WORK/nok3s.err"
contains_text "no k3s explained" "$WORK/nok3s.err" ": is it the k3s server node?"
nodectl stack status >"$WORK/usage.out" 2>&1
expect_rc_out "no server named" 2 $? "$WORK/usage.out"

finish

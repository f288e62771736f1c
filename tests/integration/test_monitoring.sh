#!/usr/bin/env bash
# [monitoring] on a booted Debian 12 node: a dry run changes nothing; `apply` installs Debian's
# prometheus-node-exporter listening on the node's address only, with its textfile collector on
# the directory `nodectl backup` writes its metrics to; this machine fetches /metrics and finds the
# node's metrics and the backup's (after a backup run by the timer's service); a re-apply changes
# nothing; `check` passes, and reports drift after the ARGS file is changed by hand. Then with
# nodectl's firewall on ([harden], only its firewall group) and allow_from = [this machine's /32]:
# /metrics answers from there and not from a second address of this machine outside allow_from,
# from which SSH still answers; `check` passes and a re-apply changes nothing.
# Uses the static binary (scripts/build.sh static, or NODECTL_STATIC_BIN), which [backup] puts on the node.
source "$(dirname "$0")/lib.sh"

# Without the static build, the dynamic one runs on the node with its libraries from apt.
node_binary
export NODECTL_STATIC_BIN=$NODE_BIN   # what [backup] puts on the node

nodes_up 1 198.18.40
N=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
node_libs 1
node 1 'mkdir -p /srv/site /var/backups/nodectl && echo hello >/srv/site/a.txt'
cat >"$WORK/mon.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"

$(site_backup node1 'metrics_file = "/var/lib/nodectl-metrics/backup.prom"')

[monitoring]
listen_address = "\${host.address}"
T

nodectl profile validate "$WORK/mon.toml" >"$WORK/validate.out" 2>&1
expect_rc_out "profile validate takes listen_address = \${host.address}" 0 $? "$WORK/validate.out"

echo "# a dry run on the fresh node"
node 1 'ls /etc/default; systemctl list-unit-files --no-pager | grep -c . ' >"$WORK/before"
nodectl apply --dry-run -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/plan.out" 2>&1
expect_rc_out "apply --dry-run" 0 $? "$WORK/plan.out"
contains "... plans the package" "$WORK/plan.out" 'prometheus-node-exporter'
contains "... and the ARGS file" "$WORK/plan.out" 'ARGS="--web.listen-address=198\.18\.40\.[0-9]+:9100 --collector\.textfile\.directory=/var/lib/nodectl-metrics"'
node 1 'ls /etc/default; systemctl list-unit-files --no-pager | grep -c . ' >"$WORK/after"
check "... and changes nothing on the node" cmp -s "$WORK/before" "$WORK/after"

echo "# apply"
nodectl apply -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/apply1.out" 2>&1
expect_rc_out "apply installs and starts the node exporter" 0 $? "$WORK/apply1.out"
lacks "... and the host does not differ afterwards" "$WORK/apply1.out" "still differs"
node 1 'systemctl start nodectl-backup.service' >"$WORK/backup.out" 2>&1
expect_rc_out "a backup run (nodectl-backup.service) writes its metrics" 0 $? "$WORK/backup.out"
curl -sS --max-time 10 "http://$N:9100/metrics" >"$WORK/metrics" 2>&1
expect_rc_out "this machine fetches http://$N:9100/metrics" 0 $? "$WORK/metrics"
contains "node metrics are served" "$WORK/metrics" '^node_filesystem_avail_bytes\{'
contains "... the node exporter's own build info" "$WORK/metrics" '^node_exporter_build_info\{'
contains "the backup's textfile metric is served" "$WORK/metrics" '^nodectl_backup_last_outcome\{target="local"\} 1$'
contains "... with its last success time" "$WORK/metrics" '^nodectl_backup_last_success_timestamp_seconds\{target="local"\} [1-9][0-9.e+]*$'
contains "the textfile collector read it without error" "$WORK/metrics" '^node_textfile_scrape_error 0$'
node 1 'ss -Hltn "sport = :9100"' >"$WORK/ss.out" 2>&1
contains "it listens on the node's address" "$WORK/ss.out" "$N:9100"
lacks "... and nowhere else" "$WORK/ss.out" '(\*|0\.0\.0\.0|\[::\]|127\.0\.0\.1):9100'

echo "# re-apply, check"
node 1 'systemctl show -p MainPID --value prometheus-node-exporter.service' >"$WORK/pid1"
nodectl apply -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/apply2.out" 2>&1
expect_rc_out "a re-apply" 0 $? "$WORK/apply2.out"
contains "... changes nothing" "$WORK/apply2.out" '(^|[^0-9])0 changed'
node 1 'systemctl show -p MainPID --value prometheus-node-exporter.service' >"$WORK/pid2"
check "... and does not restart the exporter" cmp -s "$WORK/pid1" "$WORK/pid2"
nodectl check -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/check1.out" 2>&1
expect_rc_out "check passes" 0 $? "$WORK/check1.out"
for c in monitoring.node_exporter monitoring.arguments monitoring.listen monitoring.textfile_directory; do
  contains_text "  ... $c passes" "$WORK/check1.out" "PASS  $c"
done

echo "# the ARGS file changed by hand"
node 1 "sed -i 's/^ARGS=.*/ARGS=\"\"/' /etc/default/prometheus-node-exporter && systemctl restart prometheus-node-exporter.service"
nodectl check -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/check2.out" 2>&1
expect_rc_out "check fails" 7 $? "$WORK/check2.out"
contains "... on the file" "$WORK/check2.out" 'FAIL +monitoring/node_exporter'
contains "... on the exporter's arguments" "$WORK/check2.out" 'FAIL +monitoring\.arguments'
contains "... and on where it listens" "$WORK/check2.out" 'FAIL +monitoring\.listen'
nodectl apply -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/apply3.out" 2>&1
expect_rc_out "apply puts it back" 0 $? "$WORK/apply3.out"
nodectl check -p "$WORK/mon.toml" "root@$N" "${KH[@]}" >"$WORK/check3.out" 2>&1
expect_rc_out "check passes again" 0 $? "$WORK/check3.out"
curl -sS --max-time 10 "http://$N:9100/metrics" >"$WORK/metrics3" 2>&1
contains "the backup metric is served again" "$WORK/metrics3" '^nodectl_backup_last_outcome\{target="local"\} 1$'

echo "# nodectl's firewall on: the exporter's port answers only allow_from"
# IN (the bridge's address, this machine's usual source) is allow_from; OUT, a second address on
# the bridge (removed at exit), is not. The same probes from both, so each can fail.
IN=$NODECTL_TEST_GATEWAY OUT=$ENV_SUBNET.200
BR=$(ip -o -4 addr show | awk -v a="$IN/24" '$4 == a { print $2; exit }')
mon_cleanup() { local rc=$?; [ -n "${OUT_ADDED:-}" ] && ip addr del "$OUT/32" dev "$BR" 2>/dev/null; (exit $rc); cleanup; }
trap mon_cleanup EXIT
ip addr add "$OUT/32" dev "$BR" && OUT_ADDED=1
# http_from SRC: the HTTP status of /metrics fetched from SRC (000: no answer within 3 s).
http_from() { curl -s -o /dev/null -w '%{http_code}' --interface "$1" --connect-timeout 3 --max-time 6 "http://$N:9100/metrics"; }
ssh_from() { ssh -F /dev/null -b "$1" -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS" \
  -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ConnectTimeout=4 -o LogLevel=ERROR "root@$N" true; }
check "before the firewall, /metrics answers 200 from $OUT too" test "$(http_from "$OUT")" = 200
cp "$WORK/mon.toml" "$WORK/fw.toml"
# allow_from is appended to [monitoring], the last table of mon.toml; only the firewall group of
# [harden] is on.
printf 'allow_from = ["%s/32"]\n\n' "$IN" >>"$WORK/fw.toml"
harden_only firewall "rollback_seconds = 60" >>"$WORK/fw.toml"
nodectl apply -p "$WORK/fw.toml" "root@$N" "${KH[@]}" >"$WORK/fw1.out" 2>&1
expect_rc_out "apply with the firewall on" 0 $? "$WORK/fw1.out"
lacks "... and the host does not differ afterwards" "$WORK/fw1.out" "still differs"
check "/metrics answers 200 from $IN (in allow_from)" test "$(http_from "$IN")" = 200
check "... and not from $OUT (outside allow_from)" test "$(http_from "$OUT")" = 000
check "... while SSH answers from $OUT (the address is not dead)" ssh_from "$OUT"
nodectl check -p "$WORK/fw.toml" "root@$N" "${KH[@]}" >"$WORK/fw-check.out" 2>&1
expect_rc_out "check passes" 0 $? "$WORK/fw-check.out"
contains_text "... the firewall's controls too" "$WORK/fw-check.out" "PASS  firewall.table_loaded"
nodectl apply -p "$WORK/fw.toml" "root@$N" "${KH[@]}" >"$WORK/fw2.out" 2>&1
expect_rc_out "a re-apply" 0 $? "$WORK/fw2.out"
contains "... changes nothing" "$WORK/fw2.out" '(^|[^0-9])0 changed'
finish

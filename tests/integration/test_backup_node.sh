#!/usr/bin/env bash
# The backup timer on a booted Debian node: `nodectl apply` with [backup] puts the static nodectl
# binary, the profile and nodectl-backup.{service,timer} on the node; systemd lists the timer, and
# `systemctl start nodectl-backup.service` runs a files-only backup to a directory on the node
# under the unit's sandbox. A re-apply changes nothing; `enabled = false` removes the timer.
# Needs the static binary (scripts/build.sh static, or NODECTL_STATIC_BIN). The node is of the
# release NODECTL_TEST_SUITE names (Debian 12 by default; test_trixie_node.sh runs this suite on
# Debian 13), on subnet NODECTL_BACKUP_NODE_SUBNET (default 198.18.65).
source "$(dirname "$0")/lib.sh"

# Without the static build, the dynamic one runs on the node with its libraries from apt.
node_binary
export NODECTL_STATIC_BIN=$NODE_BIN   # what [backup] puts on the node

nodes_up 1 "${NODECTL_BACKUP_NODE_SUBNET:-198.18.65}"
N=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
node_libs 1
node 1 'mkdir -p /srv/site/sub /var/backups/nodectl && echo hello >/srv/site/a.txt && head -c 100000 /dev/urandom >/srv/site/sub/b.bin'
site_backup node1 'schedule = "*-*-* 03:15:00"
randomized_delay = "10min"
metrics_file = "/var/lib/nodectl-metrics/backup.prom"' "keep_last = 3" >"$WORK/node.toml"
node 1 'mkdir -p /var/lib/nodectl-metrics'
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply1.out" 2>&1
expect_rc_out "apply installs the binary, the profile and the backup units" 0 $? "$WORK/apply1.out"
node 1 'sha256sum </usr/local/bin/nodectl' >"$WORK/node.sha"
check "the node's /usr/local/bin/nodectl is the static binary" test "$(cut -d' ' -f1 "$WORK/node.sha")" = "$(sha256sum <"$NODECTL_STATIC_BIN" | cut -d' ' -f1)"
node 1 'stat -c %a /etc/nodectl/profile.toml' >"$WORK/pmode"
contains "the profile on the node is 0600" "$WORK/pmode" '^600$'
node 1 'systemd-analyze verify /etc/systemd/system/nodectl-backup.service /etc/systemd/system/nodectl-backup.timer' >"$WORK/verify.out" 2>&1
expect_rc_out "the units pass systemd-analyze verify on the node" 0 $? "$WORK/verify.out"
node 1 'systemctl list-timers --all --no-pager' >"$WORK/timers.out" 2>&1
contains "systemctl list-timers shows nodectl-backup.timer" "$WORK/timers.out" 'nodectl-backup\.timer +nodectl-backup\.service'
node 1 'systemctl show -p TimersCalendar -p Persistent -p RandomizedDelayUSec nodectl-backup.timer' >"$WORK/timer.show"
contains "OnCalendar from the profile" "$WORK/timer.show" 'OnCalendar=.*03:15:00'
contains "Persistent=yes" "$WORK/timer.show" '^Persistent=yes'
contains "RandomizedDelaySec from the profile" "$WORK/timer.show" "^RandomizedDelayUSec=10min$"
node 1 'systemctl start nodectl-backup.service' >"$WORK/start.out" 2>&1
expect_rc_out "systemctl start nodectl-backup.service succeeds" 0 $? "$WORK/start.out"
node 1 'ls /var/backups/nodectl' >"$WORK/ls.out"
contains "an archive is in the directory target" "$WORK/ls.out" '^node1-[0-9]{8}T[0-9]{6}Z\.tar\.zst$'
node 1 'nodectl backup verify "$(ls /var/backups/nodectl | sed s/.tar.zst//)"' >"$WORK/nv.out" 2>&1
expect_rc_out "the archive verifies on the node" 0 $? "$WORK/nv.out"
node 1 'cat /var/lib/nodectl-metrics/backup.prom' >"$WORK/prom"
contains "metrics written through the sandbox's ReadWritePaths" "$WORK/prom" '^nodectl_backup_last_outcome\{target="local"\} 1$'
node 1 'systemctl show -p Nice -p IOSchedulingClass -p ProtectSystem -p NoNewPrivileges -p PrivateTmp nodectl-backup.service' >"$WORK/svc.show"
contains "low priority and sandboxed" "$WORK/svc.show" 'ProtectSystem=strict'
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply2.out" 2>&1
expect_rc_out "a re-apply" 0 $? "$WORK/apply2.out"
contains "... changes nothing" "$WORK/apply2.out" '(^|[^0-9])0 changed'
sed -i 's/^name = "node1"/enabled = false\nname = "node1"/' "$WORK/node.toml"
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply3.out" 2>&1
expect_rc_out "enabled = false" 0 $? "$WORK/apply3.out"
node 1 'systemctl list-timers --all --no-pager; ls /etc/systemd/system/nodectl-backup.timer 2>&1' >"$WORK/timers3.out" 2>&1
lacks "... removes the timer" "$WORK/timers3.out" 'nodectl-backup\.timer +nodectl'
contains "... and the timer unit file is gone" "$WORK/timers3.out" "nodectl-backup.timer.*No such file"
finish

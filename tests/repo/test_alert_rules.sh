#!/usr/bin/env bash
# The alert rules (monitoring/rules/nodectl.rules.yml): `promtool check rules`, then their unit
# tests (`promtool test rules`), then one planted mistake per alert (a threshold, a duration, a
# comparison, a label) that the unit tests must catch: a test file that still passes with the
# mistake in place tests nothing. Run by ctest (repo/alert_rules). Needs promtool (package prometheus).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RULES=$REPO/monitoring/rules
command -v promtool >/dev/null || { echo "test_alert_rules: promtool is missing (apt-get install prometheus; scripts/setup.sh)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/nodectl-rules.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail=0

if ! promtool check rules "$RULES/nodectl.rules.yml" >"$WORK/check.out" 2>&1; then
  echo "FAIL - promtool check rules:"; cat "$WORK/check.out"; fail=1
else
  echo "ok   - promtool check rules: $(grep -o '[0-9]* rules found' "$WORK/check.out")"
fi
if ! (cd "$RULES" && promtool test rules nodectl.rules.test.yml) >"$WORK/test.out" 2>&1; then
  echo "FAIL - promtool test rules:"; cat "$WORK/test.out"; fail=1
else
  echo "ok   - promtool test rules: every alert's cases pass"
fi

# alert|text in the rules|planted replacement (the text must occur exactly once)
mutations=$(cat <<'M'
BackupTooOld|> 26 * 3600|> 27 * 3600
BackupFailed|nodectl_backup_last_outcome == 0|nodectl_backup_last_outcome < 0
MariaDBDown|mysql_up == 0|mysql_up < 0
RedisDown|redis_up == 0|redis_up < 0
ReplicaNotRunning| or mysql_slave_status_slave_sql_running == 0|
ReplicaLagging|seconds_behind_master > 300|seconds_behind_master > 299
VarnishHitRatioCollapsed|) < 0.5|) < 0.6
HighServerErrorRate|> 0.05|> 0.06
HPAAtMaximum|_current_replicas\n            >= on|_current_replicas\n            > on
TLSCertificateExpiringSoon|(probe_ssl_earliest_cert_expiry - time()) < 14 * 86400|(probe_ssl_earliest_cert_expiry - time()) < 15 * 86400
DiskAlmostFull|}) > 85|}) > 86
NodeExporterDown|up{job="node"} == 0|up == 0
M
)
while IFS='|' read -r alert from to; do
  [ -n "$alert" ] || continue
  mkdir -p "$WORK/m"
  cp "$RULES/nodectl.rules.test.yml" "$WORK/m/"
  if ! python3 - "$RULES/nodectl.rules.yml" "$WORK/m/nodectl.rules.yml" "$from" "$to" <<'PY'
import sys
src, dst, old, new = sys.argv[1], sys.argv[2], sys.argv[3].replace("\\n", "\n"), sys.argv[4].replace("\\n", "\n")
text = open(src).read()
if text.count(old) != 1:
    sys.exit("'%s' occurs %d times in the rules, not once" % (old, text.count(old)))
open(dst, "w").write(text.replace(old, new))
PY
  then
    echo "FAIL - $alert: the planted mistake does not apply (rules changed? update this list)"; fail=1; continue
  fi
  if (cd "$WORK/m" && promtool test rules nodectl.rules.test.yml) >"$WORK/m.out" 2>&1; then
    echo "FAIL - $alert: the unit tests still pass with '$from' planted as '$to'"; fail=1
  elif grep -q "alertname: $alert," "$WORK/m.out"; then
    echo "ok   - $alert: planting '$to' for '$from' fails its unit test"
  else
    echo "FAIL - $alert: the planted mistake failed another alert's test, not its own:"; sed 's/^/      | /' "$WORK/m.out" | head -20; fail=1
  fi
done <<<"$mutations"
[ "$fail" = 0 ] && echo "test_alert_rules: ok"
exit "$fail"

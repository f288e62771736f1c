#!/usr/bin/env bash
# plan and apply --dry-run leave a node byte-identical.
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.2
use_site_profile

snapshot() {
  node 1 "find /etc -xdev -printf '%p %m %u %g %s %l\n' | sort; find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum;
          hostname; ls -d /var/lib/nodectl 2>&1; dpkg-query -W -f='\${Package} \${Version}\n'; systemctl is-enabled e2scrub_reap.service"
}
snapshot >"$WORK/before"
check "snapshot is not empty" test "$(wc -l <"$WORK/before")" -gt 100

nodectl apply --dry-run -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/dry.out" 2>&1
expect_rc "apply --dry-run" 0 $?
contains "dry run shows what would change" "$WORK/dry.out" '^== node1: [1-9][0-9]* to change'
contains "dry run shows a diff" "$WORK/dry.out" '^ +\+\+\+ /etc/motd \(planned\)'
nodectl plan -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >"$WORK/plan.out" 2>&1
expect_rc "plan" 0 $?
check "plan and apply --dry-run print the same plan" diff <(grep -v '^== ' "$WORK/dry.out" | grep -v info) <(grep -v '^== ' "$WORK/plan.out" | grep -v info)
snapshot >"$WORK/after"
check "node is byte-identical after plan and --dry-run" diff "$WORK/before" "$WORK/after"
contains "no journal or lock was created" "$WORK/after" 'cannot access .*/var/lib/nodectl'

# the same plan, then a real apply, proves the snapshot would have seen the change
nodectl apply -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >/dev/null 2>&1
expect_rc "real apply" 0 $?
snapshot >"$WORK/applied"
check "a real apply changes the snapshot" bash -c "! diff -q '$WORK/before' '$WORK/applied' >/dev/null"
finish

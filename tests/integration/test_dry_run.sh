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

# Audit: a mount point went unquoted into a probe, so `plan` ran code on the node (and, with
# --local, as whoever ran it). A hostile `where` must run nothing: on the node, nor here as an
# unprivileged user.
PWNED=/tmp/nodectl-plan-pwned
printf 'AK:SK\n' >"$WORK/s3.creds"
chmod 600 "$WORK/s3.creds"
hostile_profile() {  # hostile_profile FILE PWNED_PATH
  cat >"$1" <<T
[[mounts.s3fs]]
bucket = "media"
where = "/mnt/m';touch $2;'"
credentials = { file = "$WORK/s3.creds" }
start = true
T
}
hostile_profile "$WORK/hostile.toml" "$PWNED"
node 1 "rm -f $PWNED"
nodectl plan -p "$WORK/hostile.toml" -i "$INV" "${KH[@]}" >"$WORK/hostile.out" 2>&1
node 1 "test -e $PWNED && echo created || echo absent" >"$WORK/pwned" 2>&1
contains "plan with a hostile mount point runs nothing on the node" "$WORK/pwned" '^absent$'
contains "the hostile mount point is refused with its key" "$WORK/hostile.out" "'mounts.s3fs\[\]\.where' must be"
LOCAL_DIR=$(mktemp -d /tmp/nodectl-plan-local.XXXXXX)
chmod 755 "$LOCAL_DIR"
cp "$NODECTL" "$LOCAL_DIR/nodectl"
hostile_profile "$LOCAL_DIR/hostile.toml" "$LOCAL_DIR/pwned"
cp "$WORK/s3.creds" "$LOCAL_DIR/s3.creds"
sed -i "s|$WORK/s3.creds|$LOCAL_DIR/s3.creds|" "$LOCAL_DIR/hostile.toml"
chown -R nobody "$LOCAL_DIR"
chmod 777 "$LOCAL_DIR"
(cd "$LOCAL_DIR" && setpriv --reuid=nobody --regid=nogroup --clear-groups ./nodectl plan -p hostile.toml --local) >"$WORK/hostile-local.out" 2>&1
check "plan --local as an unprivileged user with a hostile mount point creates no file" test ! -e "$LOCAL_DIR/pwned"
contains "... and says why it refuses the profile" "$WORK/hostile-local.out" "'mounts.s3fs\[\]\.where' must be"
rm -rf "$LOCAL_DIR"

# the same plan, then a real apply, proves the snapshot would have seen the change
nodectl apply -p "$WORK/site.toml" -i "$INV" "${KH[@]}" >/dev/null 2>&1
expect_rc "real apply" 0 $?
snapshot >"$WORK/applied"
check "a real apply changes the snapshot" bash -c "! diff -q '$WORK/before' '$WORK/applied' >/dev/null"
finish

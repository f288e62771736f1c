#!/usr/bin/env bash
# [mounts] on a booted Debian node: `nodectl apply` installs nfs-common, s3fs and fuse3, writes the
# NFS .mount + .automount and the s3fs .mount (systemd-analyze verify on the node), enables and
# (would start) the automount, writes the s3fs credentials 0600 and never shows them; a second apply
# changes nothing. Then the s3fs unit nodectl generated is mounted for real through FUSE on this
# host (the test nodes have no /dev/fuse) against s3rver listening on the node bridge's address,
# with the unit's What= and Options= verbatim (only Where= and the passwd file's path point into
# the test's temp dir): a file written through the mount is read back by awscli, and one put by
# awscli is visible in the mount.
# Not verified: a real NFS mount (this kernel has no NFS client) and starting the automount
# (systemd in an nspawn container does not support automount units): the units are verified and
# enabled, no share is mounted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_services.sh"

for t in "$S3RVER" "$AWS" /usr/bin/s3fs /sbin/mount.fuse3; do
  [ -x "$t" ] || { echo "missing $t (scripts/setup.sh)"; exit 1; }
done
[ -c /dev/fuse ] || { echo "no /dev/fuse on this host"; exit 1; }

SUBNET=198.18.61
nodes_up 1 "$SUBNET"
N=${ADDRS[0]}
BRIDGE=$SUBNET.1
S3ADDR=$BRIDGE      # s3rver listens where the node would reach it
S3PORT=$(free_port) # in the profile before s3rver starts
MNT=$WORK/mnt
stop_all() {
  mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
  stop_services
}
trap 'rc=$?; stop_all; (exit $rc); cleanup' EXIT

# --- 1. apply on the node ----------------------------------------------------------------------
SECRET="S3RVER:S3RVER"
printf '%s\n' "$SECRET" >"$WORK/s3fs.creds"
chmod 600 "$WORK/s3fs.creds"
cat >"$WORK/node.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"

[[mounts.nfs]]
what = "$BRIDGE:/export/backup"
where = "/mnt/backup"
idle_timeout = 300
# systemd inside an nspawn container does not support automount units ("not supported on this
# system"): the units are installed and enabled, not started.
start = false

[[mounts.s3fs]]
bucket = "media"
where = "/var/www/media"
url = "http://$BRIDGE:$S3PORT"
path_style = true
use_cache = "/var/cache/s3fs-media"
stat_cache_expire = 120
max_stat_cache_size = 5000
allow_other = true
credentials = { file = "$WORK/s3fs.creds" }
# The test nodes have no /dev/fuse: the unit is installed and enabled, mounted on this host below.
start = false
T
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
nodectl plan -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/plan.out" 2>&1
expect_rc_out "plan" 0 $? "$WORK/plan.out"
contains "plan: the credentials file is created, content not shown" "$WORK/plan.out" 'create /etc/nodectl/s3fs/var-www-media.passwd \(holds a secret'
contains "plan: the automount unit, with its diff" "$WORK/plan.out" 'TimeoutIdleSec=300'
lacks "plan: no secret" "$WORK/plan.out" 'S3RVER'
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply1.out" 2>&1
expect_rc_out "first apply" 0 $? "$WORK/apply1.out"
lacks "apply output: no secret" "$WORK/apply1.out" 'S3RVER'
node 1 'dpkg-query -W -f="\${Status}\n" nfs-common s3fs fuse3' >"$WORK/pkgs"
check "nfs-common, s3fs and fuse3 installed" test "$(grep -c 'install ok installed' "$WORK/pkgs")" = 3
node 1 'systemd-analyze verify /etc/systemd/system/mnt-backup.mount /etc/systemd/system/mnt-backup.automount /etc/systemd/system/var-www-media.mount 2>&1 | grep -v "^$" || true' >"$WORK/verify" 2>&1
lacks "systemd-analyze verify on the node accepts the three units" "$WORK/verify" 'mnt-backup|var-www-media'
node 1 'systemctl is-enabled mnt-backup.automount' >"$WORK/auto" 2>&1
contains "the NFS automount is enabled" "$WORK/auto" '^enabled$'
node 1 'readlink /etc/systemd/system/remote-fs.target.wants/mnt-backup.automount' >"$WORK/wants" 2>&1
contains "... wanted by remote-fs.target" "$WORK/wants" '/etc/systemd/system/mnt-backup.automount'
node 1 'systemctl is-enabled var-www-media.mount' >"$WORK/s3unit" 2>&1
contains "the s3fs mount unit is enabled" "$WORK/s3unit" '^enabled$'
node 1 'systemctl show -p Before mnt-backup.mount mnt-backup.automount' >"$WORK/before"
check "both NFS units are ordered before nodectl-backup.service" test "$(grep -c 'nodectl-backup.service' "$WORK/before")" = 2
node 1 'test -d /mnt/backup && echo present' >"$WORK/mp" 2>&1
contains "the mount point exists" "$WORK/mp" '^present$'
node 1 'stat -c "%a %U" /etc/nodectl/s3fs/var-www-media.passwd /etc/nodectl/s3fs; cat /etc/nodectl/s3fs/var-www-media.passwd' >"$WORK/pw"
contains "credentials file 0600 root" "$WORK/pw" '^600 root$'
contains "... in a 0700 directory" "$WORK/pw" '^700 root$'
contains_text "... holding the secret's value" "$WORK/pw" "$SECRET"
node 1 'find / -xdev -perm -o=r -type f 2>/dev/null | grep -v "^/proc" | xargs grep -l "S3RVER:S3RVER" 2>/dev/null || true' >"$WORK/leak"
check "no world-readable file on the node holds the secret" test ! -s "$WORK/leak"
nodectl apply -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/apply2.out" 2>&1
expect_rc_out "second apply" 0 $? "$WORK/apply2.out"
contains "second apply changes nothing" "$WORK/apply2.out" '0 changed'
nodectl check -p "$WORK/node.toml" "root@$N" "${KH[@]}" >"$WORK/check.out" 2>&1
contains "check: the automount control passes" "$WORK/check.out" 'PASS.*mounts.nfs:/mnt/backup'
contains "check: the credentials mode control passes" "$WORK/check.out" 'PASS.*mounts.s3fs_passwd:/var/www/media'

# --- 2. the generated s3fs unit, mounted through FUSE on this host -----------------------------
node 1 cat /etc/systemd/system/var-www-media.mount >"$WORK/var-www-media.mount"
WHAT=$(sed -n 's/^What=//p' "$WORK/var-www-media.mount")
OPTS=$(sed -n 's/^Options=//p' "$WORK/var-www-media.mount")
TYPE=$(sed -n 's/^Type=//p' "$WORK/var-www-media.mount")
contains_text "the unit's options carry the profile's settings" "$WORK/var-www-media.mount" \
  "Options=_netdev,passwd_file=/etc/nodectl/s3fs/var-www-media.passwd,url=http://$BRIDGE:$S3PORT,use_path_request_style,use_cache=/var/cache/s3fs-media,stat_cache_expire=120,max_stat_cache_size=5000,allow_other"
mkdir -p "$MNT" "$WORK/cache"
install -m 0600 /dev/null "$WORK/passwd"
node 1 cat /etc/nodectl/s3fs/var-www-media.passwd >"$WORK/passwd"
start_s3rver "$WORK/s3rver" media
# What systemd runs for the unit: mount -t TYPE WHAT WHERE -o OPTIONS (Where and the two local
# paths moved into the temp dir).
LOCAL_OPTS=${OPTS//\/etc\/nodectl\/s3fs\/var-www-media.passwd/$WORK/passwd}
LOCAL_OPTS=${LOCAL_OPTS//\/var\/cache\/s3fs-media/$WORK/cache}
timeout 30 mount -t "$TYPE" -o "$LOCAL_OPTS" "$WHAT" "$MNT" >"$WORK/mount.out" 2>&1
expect_rc_out "s3fs mounts the bucket with nodectl's options ($TYPE)" 0 $? "$WORK/mount.out"
findmnt -n -o FSTYPE "$MNT" >"$WORK/fstype" 2>&1
contains "it is a FUSE s3fs mount" "$WORK/fstype" '^fuse.s3fs$'
echo "written through s3fs" >"$MNT/from-fuse.txt"
sync
aws_env
check "awscli reads the file written through the mount" \
  test "$(aws s3 cp s3://media/from-fuse.txt - --only-show-errors)" = "written through s3fs"
echo "put by awscli" | aws s3 cp - s3://media/from-aws.txt --only-show-errors
check "a file put by awscli is visible in the mount" test "$(cat "$MNT/from-aws.txt" 2>/dev/null)" = "put by awscli"
umount "$MNT"
expect_rc "unmount" 0 $?

finish

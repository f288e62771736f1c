#!/usr/bin/env bash
# Backup on a node and first boot on Debian 13 (trixie): the essential cases of two Debian 12
# suites, run again on one trixie node each (subnet 198.18.17, one suite after the other):
#   test_backup_node.sh, whole: the backup timer and units from `nodectl apply`, one backup run
#     under the unit's sandbox (systemd 257), a re-apply without change, `enabled = false`;
#   test_firstboot.sh, node 1's cases only (NODECTL_FIRSTBOOT_CASES=node1): `firstboot install`,
#     the config from cloud-init's path, a power cut while provisioning, the resume after the
#     reboot, status done, `nodectl check`, once only.
# The USB stick and signature cases of test_firstboot.sh do not depend on the release and run on
# Debian 12 only.
export NODECTL_TEST_SUITE=trixie
DIR=$(dirname "$0")
rc=0
echo "# test_backup_node.sh on Debian 13"
NODECTL_BACKUP_NODE_SUBNET=198.18.17 bash "$DIR/test_backup_node.sh" || rc=1
echo "# test_firstboot.sh (node 1's cases) on Debian 13"
NODECTL_FIRSTBOOT_CASES=node1 NODECTL_FIRSTBOOT_SUBNET=198.18.17 bash "$DIR/test_firstboot.sh" || rc=1
exit $rc

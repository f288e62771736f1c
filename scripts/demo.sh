#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine (as root): install what is needed, build
# nodectl, boot a local throw-away Debian 12 test node, then plan and apply the example profile
# to it over SSH, and apply again to show that a converged node changes nothing; then harden it
# (profiles/hardened.toml) and audit it with `nodectl check`.
# The node is torn down at the end (keep it with KEEP_NODE=1).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
scripts/setup.sh
NODECTL=$(scripts/build.sh dynamic nodectl | tail -n 1)
SRC=$REPO
WORK=$(mktemp -d /tmp/nodectl-demo.XXXXXX)
# shellcheck source=lib/nodes.sh
source scripts/lib/nodes.sh
if [ "${KEEP_NODE:-0}" != 1 ]; then trap 'nodes_down; rm -rf "$WORK"' EXIT; fi
echo "### nodectl local up: a throw-away Debian 12 node (systemd-nspawn), its root filesystem built once"
nodes_up 1 198.18.42
"$NODECTL" local status "$ENV_NAME"
cat >"$WORK/inventory.toml" <<INV
[defaults]
identity = "$NODECTL_TEST_KEY"

[[hosts]]
name = "demo-node"
address = "${ADDRS[0]}"
vars = { apt_proxy = "$NODECTL_TEST_APT_PROXY", role = "demo", admin_key = "$(cat "$NODECTL_TEST_KEY.pub")" }
INV
args=(-p profiles/example.toml -i "$WORK/inventory.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
echo; echo "### nodectl plan (changes nothing)"
"$NODECTL" plan "${args[@]}"
echo; echo "### nodectl apply"
"$NODECTL" apply "${args[@]}"
echo; echo "### nodectl apply again: a converged node changes nothing"
"$NODECTL" apply "${args[@]}"
echo; echo "### nodectl check"
"$NODECTL" check "${args[@]}"

# Hardening: root login goes away, so afterwards the node is reached as the admin user.
hard=(-p profiles/hardened.toml -i "$WORK/inventory.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
echo; echo "### nodectl apply -p profiles/hardened.toml (sshd, kernel, nftables, accounts, services, mounts)"
"$NODECTL" apply "${hard[@]}"
sed -i 's/^identity = .*/&\nuser = "admin"\nsudo = "nopasswd"/' "$WORK/inventory.toml"
echo; echo "### nodectl apply again, as admin: nothing changes, nothing restarts"
"$NODECTL" apply "${hard[@]}"
echo; echo "### nodectl check: every control, PASS / FAIL / N/A with what the node shows"
"$NODECTL" check "${hard[@]}"

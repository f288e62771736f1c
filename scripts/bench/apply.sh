#!/usr/bin/env bash
# Benchmarks nodectl's plan and no-change apply on real booted nodes, side by side with an
# equivalent Ansible playbook (ansible-core from Debian, pipelining on), and measures what the
# "upload nodectl and run it on the node" alternative would cost. Results: docs/benchmarks.md.
#
#   scripts/bench/apply.sh [RUNS]      (as root; default 10 runs per case)
#
# Traffic goes only to the test nodes this script boots (198.18.20.0/24) and to loopback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-10}
cd "$REPO"
scripts/setup.sh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible-core >/dev/null
NODECTL=$(scripts/build.sh dynamic | tail -n 1)
STATIC=$(scripts/build.sh static | tail -n 1)
SRC=$REPO
WORK=$(mktemp -d /tmp/nodectl-bench.XXXXXX)
source scripts/lib/nodes.sh
trap 'nodes_down; rm -rf "$WORK"' EXIT
nodes_up 4 198.18.20
OUT=$WORK/bench
mkdir -p "$OUT"

inventory() {  # inventory N: the first N nodes
  echo "[defaults]"; echo "identity = \"$NODECTL_TEST_KEY\""
  for i in $(seq 1 "$1"); do
    printf '\n[[hosts]]\nname = "node%d"\naddress = "%s"\nvars = { apt_proxy = "%s", role = "bench" }\n' \
      "$i" "${ADDRS[$((i-1))]}" "$NODECTL_TEST_APT_PROXY"
  done
}
inventory 4 >"$OUT/inv4.toml"
inventory 1 >"$OUT/inv1.toml"
NC=(-p profiles/example.toml --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --log-level warn)

echo "# converging the nodes once (installs packages through the apt proxy)"
"$NODECTL" apply "${NC[@]}" -i "$OUT/inv4.toml" >/dev/null
"$NODECTL" apply "${NC[@]}" -i "$OUT/inv4.toml" | grep -q '0 changed' 

echo "# Ansible needs python3 on the nodes; apt's daily timers must not take dpkg's lock mid-measurement"
for i in 1 2 3 4; do
  node "$i" "apt-get install -y -qq python3 python3-apt >/dev/null &&
    systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service"
done
{
  echo "[nodes]"
  for i in 1 2 3 4; do echo "node$i ansible_host=${ADDRS[$((i-1))]}"; done
  echo "[nodes:vars]"
  echo "ansible_user=root"
  echo "ansible_ssh_private_key_file=$NODECTL_TEST_KEY"
  echo "ansible_ssh_common_args='-o UserKnownHostsFile=$NODECTL_TEST_KNOWN_HOSTS -o StrictHostKeyChecking=yes'"
  echo "ansible_python_interpreter=/usr/bin/python3"
} >"$OUT/hosts.ini"
cat >"$OUT/ansible.cfg" <<CFG
[defaults]
inventory = $OUT/hosts.ini
forks = 8
gathering = explicit
host_key_checking = True
stdout_callback = minimal
[ssh_connection]
pipelining = True
CFG
# The same state as profiles/example.toml (+ common.toml), with ansible-core's builtin modules.
cat >"$OUT/site.yml" <<'YML'
- hosts: nodes
  tasks:
    - copy: {dest: /etc/apt/apt.conf.d/01nodectl-proxy, mode: "0644", content: "// Managed by nodectl (base.apt_proxy).\nAcquire::http::Proxy \"{{ proxy }}\";\n"}
    - hostname: {name: "{{ inventory_hostname }}", use: debian}
    - file: {src: /usr/share/zoneinfo/Etc/UTC, dest: /etc/localtime, state: link, force: true}
    - copy: {dest: /etc/timezone, content: "Etc/UTC\n", mode: "0644"}
    - blockinfile: {path: /etc/hosts, marker: "# {mark} nodectl base.hosts_entries", block: "198.18.42.1 apt-cache"}
    - apt: {name: [less, htop], state: present}
    - copy: {dest: /etc/motd, mode: "0644", content: "This machine is managed by nodectl. Local changes to managed files are\nreverted by the next `nodectl apply`; change the profile instead.\n"}
    - copy: {dest: /etc/nodectl/role, mode: "0644", content: "bench\n"}
    - copy: {dest: /etc/nodectl/api-token, mode: "0600", content: "demo-token-not-a-real-secret\n"}
      no_log: true
    - systemd: {name: ssh.service, enabled: true, state: started}
    - systemd: {name: e2scrub_reap.service, enabled: false, state: stopped}
YML
export ANSIBLE_CONFIG=$OUT/ansible.cfg
ANS=(ansible-playbook "$OUT/site.yml" -e "proxy=$NODECTL_TEST_APT_PROXY")
"${ANS[@]}" -l node1 >/dev/null   # converge once (blockinfile markers differ from nodectl's)
"${ANS[@]}" >/dev/null

echo "# timing ($RUNS runs per case)"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/nodectl.json" \
  -n "nodectl plan, 4 nodes" "$NODECTL plan ${NC[*]} -i $OUT/inv4.toml" \
  -n "nodectl apply (no change), 4 nodes" "$NODECTL apply ${NC[*]} -i $OUT/inv4.toml" \
  -n "nodectl apply (no change), 1 node" "$NODECTL apply ${NC[*]} -i $OUT/inv1.toml" \
  -n "nodectl (static) apply (no change), 1 node" "$STATIC apply ${NC[*]} -i $OUT/inv1.toml" \
  -n "ansible-playbook (no change), 4 nodes" "${ANS[*]}" \
  -n "ansible-playbook (no change), 1 node" "${ANS[*]} -l node1" | grep -v '^ *$'

echo "# the alternative design: upload the static binary and run it on the node"
N1=${ADDRS[0]}
SSH=(ssh -i "$NODECTL_TEST_KEY" -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS" -o StrictHostKeyChecking=yes root@"$N1")
scp -q -i "$NODECTL_TEST_KEY" -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS" profiles/common.toml profiles/example.toml root@"$N1":/root/
"${SSH[@]}" "sed -i 's/\${host.name}/node1/; s|\${vars.apt_proxy}|$NODECTL_TEST_APT_PROXY|; s/\${vars.role}/bench/' /root/example.toml"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/upload.json" \
  -n "upload static binary (sftp)" "scp -q -i $NODECTL_TEST_KEY -o UserKnownHostsFile=$NODECTL_TEST_KNOWN_HOSTS $STATIC root@$N1:/usr/local/bin/nodectl" \
  -n "sha256 of the uploaded binary (skip-upload check)" "${SSH[*]} sha256sum /usr/local/bin/nodectl" \
  -n "run nodectl --local on the node (no change)" "${SSH[*]} nodectl apply -p /root/example.toml --local --log-level warn" | grep -v '^ *$'
python3 - "$OUT/nodectl.json" "$OUT/upload.json" <<'PY'
import json, sys
rows = []
for f in sys.argv[1:]:
    rows += json.load(open(f))["results"]
print("\n| case | median (ms) | min | max |\n|---|---:|---:|---:|")
for r in rows:
    print(f"| {r['command']} | {r['median']*1000:.0f} | {r['min']*1000:.0f} | {r['max']*1000:.0f} |")
m = {r["command"]: r["median"] for r in rows}
for n in ("4 nodes", "1 node"):
    a, b = m[f"ansible-playbook (no change), {n}"], m[f"nodectl apply (no change), {n}"]
    print(f"\nno-change apply, {n}: ansible-playbook / nodectl = {a/b:.1f}x")
PY

#!/usr/bin/env bash
# `nodectl cloud-init render`:
#  - every profile in profiles/ renders to user-data that Debian's `cloud-init schema` accepts
#    (profiles holding sensitive content inline only with --inline-secrets; without it the
#    refusal names file:line:col); the profile inside the user-data loads again;
#  - end to end on booted nodes with Debian's cloud-init (installed through the node's apt proxy)
#    and a NoCloud seed: node 1 downloads nodectl from an HTTP server on the test bridge, checks its
#    sha256, installs it and provisions itself from runcmd; `cloud-init status` says done and
#    `nodectl check` passes. Node 2 gets user-data with a wrong sha256: the binary is refused,
#    nothing is installed, and `cloud-init status` says error.
source "$(dirname "$0")/lib.sh"
SUBNET=198.18.81
GW=$SUBNET.1

node_binary   # what the nodes download (cloud-init installs its libraries when it needs them)
BIN=$NODE_BIN
SHA=$(sha256sum "$BIN" | cut -d' ' -f1)
URL=http://$GW:18480/nodectl

# The profile inside a user-data file, as cloud-init would write it.
extract_profile() {
  python3 - "$1" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for f in doc["write_files"]:
    if f["path"] == "/etc/nodectl/profile.toml":
        sys.stdout.write(f["content"])
PY
}

# ------------------------------------------------------------------ every shipped profile
for p in "$SRC"/profiles/*.toml; do
  name=$(basename "$p" .toml)
  out=$WORK/$name.yaml
  nodectl cloud-init render -p "$p" --binary-url "$URL" --binary-sha256 "$SHA" >"$out" 2>"$WORK/$name.err"
  rc=$?
  if [ $rc = 3 ] && grep -q 'is sensitive and its content is written in the profile' "$WORK/$name.err"; then
    pass "$name: refused without --inline-secrets (sensitive content inline)"
    contains "$name: the refusal names file:line:col" "$WORK/$name.err" '\.toml:[0-9]+:[0-9]+: '
    lacks "$name: the refusal does not show the secret" "$WORK/$name.err" 'demo-token'
    nodectl cloud-init render -p "$p" --binary-url "$URL" --binary-sha256 "$SHA" --inline-secrets >"$out" 2>"$WORK/$name.err"
    rc=$?
  fi
  expect_rc_out "$name: rendered" 0 $rc "$WORK/$name.err"
  check "$name: starts with #cloud-config" test "$(head -n1 "$out")" = "#cloud-config"
  cloud-init schema -c "$out" >"$WORK/$name.schema" 2>&1
  expect_rc_out "$name: cloud-init schema accepts it" 0 $? "$WORK/$name.schema"
  extract_profile "$out" >"$WORK/$name.node.toml"
  nodectl profile validate "$WORK/$name.node.toml" >"$WORK/$name.validate" 2>&1
  expect_rc_out "$name: the profile in the user-data is valid on its own" 0 $? "$WORK/$name.validate"
done
nodectl cloud-init render -p "$SRC/profiles/common.toml" --binary-preinstalled >"$WORK/pre.yaml" 2>&1
cloud-init schema -c "$WORK/pre.yaml" >"$WORK/pre.schema" 2>&1
expect_rc_out "--binary-preinstalled: schema accepts it" 0 $? "$WORK/pre.schema"
lacks "--binary-preinstalled: no download" "$WORK/pre.yaml" 'sha256sum'
# The validator really checks: a broken runcmd is rejected.
sed 's/^runcmd:$/runcmd: 5\nbootcmd:/' "$WORK/common.yaml" >"$WORK/broken.yaml"
cloud-init schema -c "$WORK/broken.yaml" >"$WORK/broken.schema" 2>&1
check "cloud-init schema rejects a broken runcmd (the check can fail)" test $? -ne 0
nodectl cloud-init render -p "$SRC/profiles/common.toml" --binary-url "$URL" --binary-sha256 abc >"$WORK/u.out" 2>&1
expect_rc_out "a bad --binary-sha256 is a usage error" 2 $? "$WORK/u.out"
nodectl cloud-init render -p "$SRC/profiles/common.toml" >"$WORK/u2.out" 2>&1
expect_rc_out "neither --binary-url nor --binary-preinstalled is a usage error" 2 $? "$WORK/u2.out"

# A secret referenced by file stays a reference unless --inline-secrets.
printf 'K10secretvalue::server:abc\n' >"$WORK/token" && chmod 600 "$WORK/token"
cat >"$WORK/agent.toml" <<EOF
[k3s]
role = "agent"
server_url = "https://198.18.81.2:6443"
token = { file = "$WORK/token" }
EOF
nodectl cloud-init render -p "$WORK/agent.toml" --binary-preinstalled >"$WORK/agent.yaml" 2>&1
expect_rc_out "k3s agent profile rendered" 0 $? "$WORK/agent.yaml"
lacks "the token is not in the user-data" "$WORK/agent.yaml" 'K10secretvalue'
contains "the user-data lists the token file as a reference" "$WORK/agent.yaml" "^#   $WORK/token \\(k3s.token\\)"
nodectl cloud-init render -p "$WORK/agent.toml" --binary-preinstalled --inline-secrets >"$WORK/agent-inline.yaml" 2>&1
cloud-init schema -c "$WORK/agent-inline.yaml" >"$WORK/agent-inline.schema" 2>&1
expect_rc_out "--inline-secrets user-data passes the schema" 0 $? "$WORK/agent-inline.schema"
contains "--inline-secrets writes the token file (base64, 0600)" "$WORK/agent-inline.yaml" "path: $WORK/token"
contains "--inline-secrets warns in the output" "$WORK/agent-inline.yaml" 'WARNING: --inline-secrets'

# ------------------------------------------------------------------ end to end with cloud-init
cat >"$WORK/site.toml" <<EOF
[base]
apt_proxy = "http://$GW:3142"
timezone = "Europe/Berlin"
packages = ["tree"]
[[base.files]]
path = "/etc/motd"
content = "provisioned by cloud-init and nodectl\n"
EOF
nodectl cloud-init render -p "$WORK/site.toml" --binary-url "$URL" --binary-sha256 "$SHA" >"$WORK/user-data" 2>"$WORK/r.err"
expect_rc_out "site profile rendered" 0 $? "$WORK/r.err"
nodectl cloud-init render -p "$WORK/site.toml" --binary-url "$URL" --binary-sha256 "$(printf '%064d' 0)" >"$WORK/user-data-bad"

nodes_up 2 $SUBNET
mkdir -p "$WORK/www" && cp "$BIN" "$WORK/www/nodectl"
python3 -m http.server --bind "$GW" --directory "$WORK/www" 18480 >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null; cleanup' EXIT
wait_until 5 "the HTTP server on $GW:18480" reachable "$GW" 18480

pkgs="cloud-init"
[ "$NODE_NEEDS_LIBS" = 1 ] && pkgs="$pkgs $NODE_LIBS"
APT_PIDS=()
for i in 1 2; do
  node $i "echo 'Acquire::http::Proxy \"$NODECTL_TEST_APT_PROXY\";' >/etc/apt/apt.conf.d/00test-proxy &&
           apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null &&
           rm /etc/apt/apt.conf.d/00test-proxy" >"$WORK/apt$i.out" 2>&1 &
  APT_PIDS+=($!)
done
wait "${APT_PIDS[@]}"
for i in 1 2; do
  check "node$i: cloud-init installed" node $i 'command -v cloud-init >/dev/null'
  ud=$WORK/user-data; [ $i = 2 ] && ud=$WORK/user-data-bad
  # Test-node setup (not part of what is tested): keep the node's network config and ssh host
  # keys (the test reaches the node over ssh with pinned keys), and skip the locale and grub
  # modules (a minbase container has neither locales nor grub).
  node $i "mkdir -p /var/lib/cloud/seed/nocloud && cat >/var/lib/cloud/seed/nocloud/user-data" <"$ud"
  node $i "printf 'instance-id: nodectl-test-$i\nlocal-hostname: n$i\n' >/var/lib/cloud/seed/nocloud/meta-data
           printf 'datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\nssh_deletekeys: false\nssh_genkeytypes: []\nlocale: false\ngrub_dpkg: {enabled: false}\n' >/etc/cloud/cloud.cfg.d/99-nodectl-test.cfg
           rm -rf /var/lib/cloud/instances /var/lib/cloud/instance"
  check "node$i: nodectl is not on the node before cloud-init runs" node $i 'test ! -e /usr/local/bin/nodectl'
  node $i systemctl reboot >/dev/null 2>&1
done
sleep 3
for i in 1 2; do
  wait_until 120 "node$i back after its reboot" node $i true
done
reload_env
node 1 "timeout 300 cloud-init status --wait" >"$WORK/ci1.out" 2>&1
rc=$?
expect_rc_out "node1: cloud-init status --wait succeeds" 0 $rc "$WORK/ci1.out"
if [ $rc != 0 ]; then
  node 1 "cloud-init status --long; grep -E 'WARNING|ERROR|Traceback|failed' /var/log/cloud-init.log | tail -n 25" | sed 's/^/      | /'
fi
contains "node1: cloud-init status says done" "$WORK/ci1.out" '^status: done$'
check "node1: nodectl installed with the served binary's sha256" test "$(node 1 sha256sum /usr/local/bin/nodectl | cut -d' ' -f1)" = "$SHA"
node 1 nodectl status >"$WORK/st1.out" 2>&1
expect_rc_out "node1: nodectl status done" 0 $? "$WORK/st1.out"
contains "node1: the config came from cloud-init" "$WORK/st1.out" 'config: +/etc/nodectl/profile.toml \(cloud-init\)'
check "node1: the profile was written 0600" test "$(node 1 stat -c %a /etc/nodectl/profile.toml)" = 600
node 1 nodectl check --local -p /etc/nodectl/profile.toml >"$WORK/c1.out" 2>&1
expect_rc_out "node1: nodectl check passes" 0 $? "$WORK/c1.out"
check "node1: the motd is the profile's" test "$(node 1 cat /etc/motd)" = "provisioned by cloud-init and nodectl"
contains "node1: the binary was fetched from the bridge's HTTP server" "$WORK/http.log" '"GET /nodectl HTTP/1.1" 200'

node 2 "timeout 300 cloud-init status --wait" >"$WORK/ci2.out" 2>&1
check "node2: cloud-init status --wait fails (wrong sha256)" test $? -ne 0
contains "node2: cloud-init status says error" "$WORK/ci2.out" '^status: error$'
check "node2: no nodectl installed" node 2 'test ! -e /usr/local/bin/nodectl'
node 2 "cat /var/log/cloud-init-output.log" >"$WORK/ci2.log" 2>&1
contains "node2: the log says why the binary was refused" "$WORK/ci2.log" 'expected 0{64}: refused'

finish

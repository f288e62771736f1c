#!/usr/bin/env bash
# k3s server and `nodectl join`, tested up to the moment a real k3s binary would run.
#
# No k3s binary can be downloaded on the machines this runs on. The release is therefore a
# release-shaped directory served on loopback (data/release_server.py) whose "k3s" is a stand-in
# script that only fails; the test never starts it and calls the result a cluster. What is real:
# the download (retries, sha256 check with OpenSSL, refusal of a bad checksum), the install on
# booted Debian nodes over SSH, the rendered config.yaml/registries.yaml (parsed back), the units
# (systemd-analyze verify), the file modes, idempotency, the clear failure when the binary does
# not start, and the join token exchange between two nodes over real SSH. What stands in for a
# running k3s server: its CA certificate (made here with openssl, as k3s would write it) and a TCP
# listener on the API port (systemd-socket-activate).
source "$(dirname "$0")/lib.sh"

VERSION=v1.30.6+k3s1
REL=$WORK/release
mkdir -p "$REL/$VERSION"
printf '#!/bin/sh\necho "stand-in for k3s in nodectl tests: not a k3s binary" >&2\nexit 1\n' >"$REL/$VERSION/k3s"
head -c 200000 /dev/urandom >"$REL/$VERSION/k3s-airgap-images-amd64.tar.zst"
(cd "$REL/$VERSION" && sha256sum k3s k3s-airgap-images-amd64.tar.zst >sha256sum-amd64.txt)
WANT_SHA=$(sha256sum "$REL/$VERSION/k3s" | cut -d' ' -f1)

SERVER_PID=""
start_release_server() {  # extra args: fault injection
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
  coproc RS { exec python3 "$DATA/release_server.py" --root "$REL" --channel "stable=$VERSION" "$@"; }
  SERVER_PID=$RS_PID
  read -r PORT <&"${RS[0]}"
  RELEASE_URL="http://127.0.0.1:$PORT/releases/download"
}
trap 'rc=$?; [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; (exit $rc); cleanup' EXIT

nodes_up 2 198.18.43
S=${ADDRS[0]} A=${ADDRS[1]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")

server_profile() {  # FILE START
  cat >"$1" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[k3s]
channel = "stable"
release_url = "$RELEASE_URL"
channel_url = "http://127.0.0.1:$PORT/channels"
allow_insecure_http = true
airgap_images = true
tls_san = ["k3s.test", "$S"]
node_labels = ["tier=edge"]
node_taints = ["dedicated=edge:NoSchedule"]
disable = ["traefik"]
start = $2
ready_timeout = 20
env = { HTTPS_PROXY = "http://127.0.0.1:3128" }
[[k3s.registries]]
registry = "docker.io"
endpoints = ["http://127.0.0.1:5000"]
T
}

# --- server: install from the online release (channel resolved, sha256 checked) ---------------
start_release_server
export NODECTL_CACHE_DIR=$WORK/cache1
server_profile "$WORK/server.toml" false
nodectl apply -p "$WORK/server.toml" "root@$S" "${KH[@]}" >"$WORK/s1.out" 2>&1
expect_rc "server: apply installs k3s (start = false)" 0 $?
check "server: binary installed with the release's sha256" test "$(node 1 sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$WANT_SHA"
node 1 'readlink /usr/local/bin/kubectl /usr/local/bin/crictl' >"$WORK/links"
check "server: kubectl and crictl link to k3s" test "$(grep -c '^/usr/local/bin/k3s$' "$WORK/links")" = 2
check "server: airgap images in place" node 1 test -s /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst
node 1 cat /etc/rancher/k3s/config.yaml >"$WORK/config.yaml"
python3 - "$WORK/config.yaml" "$S" >"$WORK/yaml.out" 2>&1 <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
want = {"token-file": "/etc/rancher/k3s/token", "write-kubeconfig-mode": "0600", "tls-san": ["k3s.test", sys.argv[2]],
        "node-label": ["tier=edge"], "node-taint": ["dedicated=edge:NoSchedule"], "disable": ["traefik"],
        "secrets-encryption": True, "protect-kernel-defaults": True}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
print("config.yaml matches" if not bad else "differs: %r" % bad)
PY
contains_text "server: config.yaml parses back to the profile's values" "$WORK/yaml.out" "config.yaml matches"
node 1 cat /etc/rancher/k3s/registries.yaml | python3 -c 'import sys,yaml; print(yaml.safe_load(sys.stdin)["mirrors"]["docker.io"]["endpoint"])' >"$WORK/reg.out" 2>&1
contains_text "server: registries.yaml parses back" "$WORK/reg.out" "['http://127.0.0.1:5000']"
node 1 stat -c "'%a %n'" /etc/rancher/k3s/config.yaml /etc/rancher/k3s/token /etc/systemd/system/k3s.service.env /etc/rancher/k3s/registries.yaml >"$WORK/modes"
check "server: config, token, env file and registries are 0600" test "$(grep -c '^600 ' "$WORK/modes")" = 4
node 1 'systemd-analyze verify /etc/systemd/system/k3s.service /etc/systemd/system/nodectl-default-route.service 2>&1; echo rc=$?' >"$WORK/verify"
contains "server: units pass systemd-analyze verify" "$WORK/verify" '^rc=0$'
check "server: the unit is enabled" test "$(node 1 systemctl is-enabled k3s.service)" = enabled
contains "server: the report says a default route was added" "$WORK/s1.out" 'on-link default route via host0'
check "server: the node has a default route now" test -n "$(node 1 ip -4 route show default)"

nodectl apply -p "$WORK/server.toml" "root@$S" "${KH[@]}" >"$WORK/s2.out" 2>&1
expect_rc "server: re-apply" 0 $?
contains "server: re-apply changes nothing" "$WORK/s2.out" ' 0 changed'
contains_text "server: cached release not downloaded again" <(curl -s "http://127.0.0.1:$PORT/_stats") "1 /releases/download/v1.30.6%2Bk3s1/k3s"

# --- plain http only when the profile says so --------------------------------------------------
grep -v '^allow_insecure_http' "$WORK/server.toml" >"$WORK/http.toml"
nodectl apply -p "$WORK/http.toml" "root@$S" "${KH[@]}" >"$WORK/http.out" 2>&1
expect_rc_out "plain http without k3s.allow_insecure_http: refused" 3 $? "$WORK/http.out"
contains_text "plain http: the error names the key that allows it" "$WORK/http.out" "k3s.allow_insecure_http"
contains_text "plain http: nothing was downloaded" <(curl -s "http://127.0.0.1:$PORT/_stats") "1 /releases/download/v1.30.6%2Bk3s1/k3s"

# --- the binary refuses to run: the report is clear, nothing pretends ---------------------------
server_profile "$WORK/server-start.toml" true
nodectl apply -p "$WORK/server-start.toml" "root@$S" "${KH[@]}" >"$WORK/s3.out" 2>&1
expect_rc "server: starting the stand-in fails" 5 $?
contains "server: the failure names the unit" "$WORK/s3.out" 'k3s.service did not start'
contains_text "server: the failure shows the binary's own message" "$WORK/s3.out" "stand-in for k3s"

# --- download faults, on the other node, each with an empty cache -------------------------------
start_release_server --corrupt k3s
export NODECTL_CACHE_DIR=$WORK/cache2
server_profile "$WORK/bad.toml" false
nodectl apply -p "$WORK/bad.toml" "root@$A" "${KH[@]}" >"$WORK/bad.out" 2>&1
expect_rc "bad checksum: apply fails" 5 $?
contains "bad checksum: the error names both hashes" "$WORK/bad.out" "$WANT_SHA"
check "bad checksum: nothing installed on the node" node 2 test ! -e /usr/local/bin/k3s
check "bad checksum: nothing kept in the cache" test -z "$(find "$WORK/cache2" -name k3s -type f)"

start_release_server --truncate-first 1
export NODECTL_CACHE_DIR=$WORK/cache3
server_profile "$WORK/trunc.toml" false
nodectl apply -p "$WORK/trunc.toml" "root@$A" "${KH[@]}" >"$WORK/trunc.out" 2>&1
expect_rc "interrupted download: retried, apply succeeds" 0 $?
check "interrupted download: the right binary is installed" test "$(node 2 sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$WANT_SHA"
nodectl reset --k3s "root@$A" "${KH[@]}" >"$WORK/reset1.out" 2>&1
expect_rc_out "reset --k3s" 0 $? "$WORK/reset1.out"
check "reset: binary, config and units are gone" node 2 'test ! -e /usr/local/bin/k3s -a ! -e /etc/rancher/k3s -a ! -e /etc/systemd/system/k3s.service'

start_release_server --truncate-first 99
export NODECTL_CACHE_DIR=$WORK/cache4
server_profile "$WORK/trunc2.toml" false
nodectl apply -p "$WORK/trunc2.toml" "root@$A" "${KH[@]}" >"$WORK/trunc2.out" 2>&1
expect_rc "download always cut short: clean failure" 5 $?
check "download always cut short: no partial file left" test -z "$(find "$WORK/cache4" -type f -name '*k3s*')"
check "download always cut short: nothing installed" node 2 test ! -e /usr/local/bin/k3s

# --- join: the token exchange between the two nodes over real SSH --------------------------------
start_release_server
export NODECTL_CACHE_DIR=$WORK/cache1
# What a running k3s server would have: its CA (k3s writes server-ca.crt at first start) and an
# API port that answers TCP (a socket-activated listener; it speaks no Kubernetes).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=k3s-server-ca \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
node 1 'mkdir -p /var/lib/rancher/k3s/server/tls && cat > /var/lib/rancher/k3s/server/tls/server-ca.crt' <"$WORK/ca.crt"
node 1 'systemd-run --quiet --unit=fake-api systemd-socket-activate -l 6443 -a /bin/true'
SECRET=$(node 1 cat /etc/rancher/k3s/token)
WANT_TOKEN="K10$(sha256sum "$WORK/ca.crt" | cut -d' ' -f1)::server:$SECRET"
cat >"$WORK/agent.toml" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[k3s]
release_url = "$RELEASE_URL"
allow_insecure_http = true
node_labels = ["tier=worker"]
start = false
T
nodectl join "root@$A" --server "root@$S" -p "$WORK/agent.toml" "${KH[@]}" >"$WORK/j1.out" 2>&1
expect_rc_out "join: the node joins (up to starting k3s-agent)" 0 $? "$WORK/j1.out"
node 2 cat /etc/rancher/k3s/config.yaml >"$WORK/agent.yaml"
python3 - "$WORK/agent.yaml" "https://$S:6443" "$WANT_TOKEN" >"$WORK/agent-yaml.out" 2>&1 <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
ok = c.get("server") == sys.argv[2] and c.get("token") == sys.argv[3] and c.get("node-label") == ["tier=worker"]
print("agent config matches" if ok else "differs: server=%r token-prefix=%r" % (c.get("server"), str(c.get("token"))[:20]))
PY
contains_text "join: agent config has the server URL and the K10<CA sha256> token" "$WORK/agent-yaml.out" "agent config matches"
check "join: agent config is 0600" test "$(node 2 stat -c %a /etc/rancher/k3s/config.yaml)" = 600
lacks "join: the token never appears in the output" "$WORK/j1.out" "$SECRET"
check "join: agent has the server's k3s release" test "$(node 2 sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$WANT_SHA"
node 2 'systemd-analyze verify /etc/systemd/system/k3s-agent.service 2>&1; echo rc=$?' >"$WORK/verify2"
contains "join: k3s-agent.service passes systemd-analyze verify" "$WORK/verify2" '^rc=0$'

nodectl join "root@$A" --server "root@$S" -p "$WORK/agent.toml" "${KH[@]}" >"$WORK/j2.out" 2>&1
expect_rc "join again" 0 $?
contains "join again: a joined node is a no-op" "$WORK/j2.out" ' 0 changed'

sed 's/^start = false/start = false\nversion = "v1.30.7+k3s1"/' "$WORK/agent.toml" >"$WORK/agent-v.toml"
nodectl join "root@$A" --server "root@$S" -p "$WORK/agent-v.toml" "${KH[@]}" >"$WORK/j3.out" 2>&1
expect_rc "version mismatch: refused" 3 $?
contains "version mismatch: says both versions" "$WORK/j3.out" 'v1.30.7\+k3s1.*v1.30.6\+k3s1'

node 2 "sed -i 's#^server: .*#server: https://198.18.43.99:6443#' /etc/rancher/k3s/config.yaml"
nodectl join "root@$A" --server "root@$S" -p "$WORK/agent.toml" "${KH[@]}" >"$WORK/j4.out" 2>&1
expect_rc "another cluster: refused" 5 $?
contains "another cluster: says so" "$WORK/j4.out" 'already belongs to another cluster'
nodectl reset --k3s "root@$A" "${KH[@]}" >/dev/null 2>&1

# --- --server-address is a host name or an IP address, never shell ----------------------------
nodectl join "root@$A" --server "root@$S" --server-address "$S\$(touch /tmp/nodectl-pwned)" -p "$WORK/agent.toml" \
  "${KH[@]}" >"$WORK/inject.out" 2>&1
expect_rc_out "join: a --server-address that is not an address is a usage error" 2 $? "$WORK/inject.out"
contains_text "join: the error says what it must be" "$WORK/inject.out" "is not a host name or an IP address"
check "join: nothing ran on the node" node 2 test ! -e /tmp/nodectl-pwned
check "join: nothing was installed" node 2 test ! -e /usr/local/bin/k3s

node 1 systemctl stop fake-api.service
nodectl join "root@$A" --server "root@$S" -p "$WORK/agent.toml" "${KH[@]}" >"$WORK/j5.out" 2>&1
expect_rc "server unreachable: refused" 5 $?
contains "server unreachable: says so" "$WORK/j5.out" 'unreachable from this node'
check "server unreachable: nothing installed on the node" node 2 test ! -e /usr/local/bin/k3s

node 1 'mv /etc/rancher/k3s/token /root/token.saved'
nodectl join "root@$A" --server "root@$S" -p "$WORK/agent.toml" "${KH[@]}" >"$WORK/j6.out" 2>&1
expect_rc "token unreadable: refused" 5 $?
contains "token unreadable: says so" "$WORK/j6.out" 'cannot read a join token'

# --- reset --k3s never removes through a mount -------------------------------------------------
node 2 'mkdir -p /srv/keep "/var/lib/kubelet/pods/p1/volumes/a b" /var/lib/kubelet/pods/p2 /etc/rancher/k3s &&
  echo precious >/srv/keep/file && mount --bind /srv/keep "/var/lib/kubelet/pods/p1/volumes/a b" &&
  mount -t tmpfs tmpfs /var/lib/kubelet/pods/p2 && touch /etc/rancher/k3s/config.yaml'
nodectl reset --k3s "root@$A" "${KH[@]}" >"$WORK/reset-mnt.out" 2>&1
expect_rc_out "reset: refused while a mount below the k3s directories stays" 5 $? "$WORK/reset-mnt.out"
contains_text "reset: the error names the mount" "$WORK/reset-mnt.out" "still mounted below the k3s directories"
check "reset: the bind-mounted directory's files are untouched" test "$(node 2 cat /srv/keep/file)" = precious
check "reset: nothing was removed" node 2 test -e /etc/rancher/k3s/config.yaml
node 2 'umount "/var/lib/kubelet/pods/p1/volumes/a b"'
nodectl reset --k3s "root@$A" "${KH[@]}" >"$WORK/reset-ok.out" 2>&1
expect_rc_out "reset: once unmounted, it runs (other mounts are unmounted by it)" 0 $? "$WORK/reset-ok.out"
check "reset: the k3s directories are gone" node 2 test ! -e /var/lib/kubelet -a ! -e /etc/rancher/k3s
check "reset: /srv/keep is still there" test "$(node 2 cat /srv/keep/file)" = precious
check "reset: no mount left below /var/lib/kubelet" test -z "$(node 2 "awk '\$2 ~ \"^/var/lib/kubelet\"' /proc/self/mounts")"

finish

#!/usr/bin/env bash
# `nodectl local up --profile P` with a k3s server in P: a cluster of local nodes, tested up to the
# moment a real k3s binary would run (none can be had here; see test_k3s.sh for the same limits).
#   the plan names the server, the agents and the kubeconfig context; node 1 becomes the server
#   (apply); the agents' join is refused while nothing of a running server is there, and `up`
#   says so; with what a running server would have planted on node 1 (its CA, a listener on the
#   API port, its admin kubeconfig) `up` again joins node 2 with node 1's URL and token and merges
#   the kubeconfig as context nodectl-NAME next to the operator's own; `down` removes that context
#   and keeps the operator's. Subnet 198.18.53.0/24; the release is served on loopback.
source "$(dirname "$0")/lib.sh"

serve_k3s_release
VERSION=$K3S_VERSION
export NODECTL_CACHE_DIR=$WORK/cache

nodes_up 2 198.18.53
S=${ADDRS[0]} A=${ADDRS[1]}
# The apt proxy through --var: the server's and the agents' inventories carry the environment's vars.
UP=("$NODECTL" local up "$ENV_NAME" --nodes 2 --subnet "$ENV_SUBNET.0/24" --var "apt_proxy=$NODECTL_TEST_APT_PROXY")
export KUBECONFIG=$WORK/kube/config
mkdir -p "$WORK/kube"
cat >"$KUBECONFIG" <<'K'
apiVersion: v1
kind: Config
clusters:
- name: mine
  cluster:
    server: https://198.18.53.250:6443
contexts:
- name: mine
  context:
    cluster: mine
    user: mine
users:
- name: mine
  user:
    token: the-operators-own
current-context: mine
K
cat >"$WORK/cluster.toml" <<T
[base]
apt_proxy = "\${vars.apt_proxy}"
[k3s]
version = "$VERSION"
release_url = "http://127.0.0.1:$PORT/releases/download"
allow_insecure_http = true
start = false
T

"${UP[@]}" -p "$WORK/cluster.toml" --dry-run >"$WORK/plan.out" 2>&1
expect_rc_out "the plan of a cluster" 0 $? "$WORK/plan.out"
contains "  ... names node 1 the server and node 2 an agent" "$WORK/plan.out" "k3s +$ENV_NAME-1 the server .*1 node\\(s\\) join it as agents"
contains_text "  ... and the context it will merge" "$WORK/plan.out" "context nodectl-$ENV_NAME merged into $KUBECONFIG"
check "  ... and made nothing" node 1 test ! -e /etc/rancher/k3s/config.yaml

echo "# no running server on node 1: the agents cannot join"
"${UP[@]}" -p "$WORK/cluster.toml" >"$WORK/up1.out" 2>&1
rc=$?
check "up fails while the server has not run (exit $rc)" test "$rc" -ne 0
contains "  ... and says the agents could not join" "$WORK/up1.out" "the agents could not join it"
node 1 cat /etc/rancher/k3s/config.yaml >"$WORK/server.yaml" 2>&1
contains "node 1 is the server (config.yaml with its token file)" "$WORK/server.yaml" '^token-file: "?/etc/rancher/k3s/token'
check "node 2 got no k3s configuration" node 2 test ! -e /etc/rancher/k3s/config.yaml
lacks "no context was merged" "$KUBECONFIG" "nodectl-$ENV_NAME"

echo "# what a running k3s server would have: its CA, an API port that answers TCP, its admin kubeconfig"
k3s_admin_kubeconfig "$WORK/k3s.yaml"
node 1 'mkdir -p /var/lib/rancher/k3s/server/tls && cat > /var/lib/rancher/k3s/server/tls/server-ca.crt' <"$WORK/ca.crt"
node 1 'systemd-run --quiet --unit=fake-api systemd-socket-activate -l 6443 -a /bin/true'
node 1 'umask 077 && cat > /etc/rancher/k3s/k3s.yaml' <"$WORK/k3s.yaml"
SECRET=$(node 1 cat /etc/rancher/k3s/token)

"${UP[@]}" -p "$WORK/cluster.toml" >"$WORK/up2.out" 2>&1
expect_rc_out "up again: the cluster" 0 $? "$WORK/up2.out"
lacks "  ... the join token never appears in the output" "$WORK/up2.out" "$SECRET"
node 2 cat /etc/rancher/k3s/config.yaml >"$WORK/agent.yaml" 2>&1
python3 - "$WORK/agent.yaml" "https://$S:6443" "$SECRET" >"$WORK/agent.out" 2>&1 <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
ok = c.get("server") == sys.argv[2] and str(c.get("token", "")).startswith("K10") and c.get("token", "").endswith(sys.argv[3].split("::")[-1])
print("agent config matches" if ok else "differs: server=%r" % c.get("server"))
PY
contains_text "node 2 joins node 1: its URL and the K10 token" "$WORK/agent.out" "agent config matches"
check "  ... as a k3s agent" node 2 test -e /etc/systemd/system/k3s-agent.service
kc() { kubectl config view --raw -o jsonpath="$1"; }
command -v kubectl >/dev/null || apt-get install -y -qq kubernetes-client >/dev/null
check "the context nodectl-$ENV_NAME is current" test "$(kc '{.current-context}')" = "nodectl-$ENV_NAME"
check "  ... and points at node 1" test "$(kc "{.clusters[?(@.name==\"nodectl-$ENV_NAME\")].cluster.server}")" = "https://$S:6443"
check "  ... next to the operator's own" test "$(kc '{.users[?(@.name=="mine")].user.token}')" = "the-operators-own"
check "the kubeconfig is 0600" test "$(stat -c %a "$KUBECONFIG")" = 600

"${UP[@]}" -p "$WORK/cluster.toml" >"$WORK/up3.out" 2>&1
expect_rc_out "up a third time" 0 $? "$WORK/up3.out"
contains "  ... changes nothing on the nodes" "$WORK/up3.out" " 0 changed"

"$NODECTL" local down "$ENV_NAME" >"$WORK/down.out" 2>&1
expect_rc_out "down" 0 $? "$WORK/down.out"
lacks "  ... removed the context" "$KUBECONFIG" "nodectl-$ENV_NAME"
check "  ... and kept the operator's" test "$(kc '{.users[?(@.name=="mine")].user.token}')" = "the-operators-own"
check "  ... the previous file is kept as .bak" grep -q "nodectl-$ENV_NAME" "$KUBECONFIG.bak"
finish

#!/usr/bin/env bash
# `nodectl kubeconfig`: fetch k3s's admin kubeconfig from a real node over SSH, rewrite it, and
# check the result with the real kubectl (printed, --out, --merge), file modes, and the errors.
source "$(dirname "$0")/lib.sh"
command -v kubectl >/dev/null || apt-get install -y -qq kubernetes-client >/dev/null || {
  echo "kubectl is missing (scripts/setup.sh installs kubernetes-client)" >&2; exit 1; }
nodes_up 1 198.18.42
A=${ADDRS[0]}
CONN=(--identity "$NODECTL_TEST_KEY" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
K3S_YAML=/etc/rancher/k3s/k3s.yaml
kc() { kubectl config view --kubeconfig "$1" -o jsonpath="$2"; }
mode_of() { stat -c %a "$1"; }

echo "# no k3s on the node yet"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" >"$WORK/none.out" 2>"$WORK/none.err"
expect_rc "no kubeconfig on the node fails" 5 $?
contains_text "the error says k3s has not written it" "$WORK/none.err" \
  "k3s has not written its kubeconfig on $A: is the k3s server running?"
check "nothing on stdout" test ! -s "$WORK/none.out"

echo "# plant what a k3s server writes"
# This file stands in for the kubeconfig a real k3s server writes (k3s cannot be downloaded
# here): the same layout, a real CA and a real client certificate signed by it, mode 0600.
k3s_admin_kubeconfig "$WORK/k3s.yaml"
CA_DATA=$(base64 -w0 "$WORK/ca.crt")
CERT_DATA=$(base64 -w0 "$WORK/admin.crt")
KEY_DATA=$(base64 -w0 "$WORK/admin.key")
node 1 "mkdir -p /etc/rancher/k3s && umask 077 && cat > $K3S_YAML" <"$WORK/k3s.yaml"
check "the planted file is 0600 on the node" test "$(node 1 stat -c %a $K3S_YAML)" = 600

echo "# printed on stdout"
"$NODECTL" --log-level trace kubeconfig "root@$A" "${CONN[@]}" >"$WORK/printed.yaml" 2>"$WORK/printed.err"
expect_rc "kubeconfig to stdout" 0 $?
check "server rewritten to the node's address" test "$(kc "$WORK/printed.yaml" '{.clusters[0].cluster.server}')" = "https://$A:6443"
check "current context named nodectl-HOST" test "$(kc "$WORK/printed.yaml" '{.current-context}')" = "nodectl-$A"
check "context uses the renamed cluster" \
  test "$(kc "$WORK/printed.yaml" "{.contexts[?(@.name==\"nodectl-$A\")].context.cluster}")" = "nodectl-$A"
check "context uses the renamed user" \
  test "$(kc "$WORK/printed.yaml" "{.contexts[?(@.name==\"nodectl-$A\")].context.user}")" = "nodectl-$A"
lacks "no loopback server left" "$WORK/printed.yaml" "127\.0\.0\.1"
lacks "no 'default' entry left" "$WORK/printed.yaml" "default"
lacks "the admin key is not in the logs, even at trace level" "$WORK/printed.err" "${KEY_DATA:0:40}"
check "the log is not empty (trace level did log)" test -s "$WORK/printed.err"

echo "# --out FILE, --context"
printf 'old\n' >"$WORK/lab.yaml"
chmod 0644 "$WORK/lab.yaml"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --out "$WORK/lab.yaml" --context lab >"$WORK/out.out" 2>&1
expect_rc "kubeconfig --out" 0 $?
check "--out file is 0600 (it was 0644)" test "$(mode_of "$WORK/lab.yaml")" = 600
check "--out: current context is nodectl---context" test "$(kc "$WORK/lab.yaml" '{.current-context}')" = nodectl-lab
check "--out: cluster renamed to nodectl---context" test "$(kc "$WORK/lab.yaml" '{.clusters[0].name}')" = nodectl-lab
check "--out: server rewritten" test "$(kc "$WORK/lab.yaml" '{.clusters[0].cluster.server}')" = "https://$A:6443"
kubectl config view --raw --kubeconfig "$WORK/lab.yaml" -o jsonpath='{.users[0].user.client-key-data}' >"$WORK/key.b64"
check "the admin key came through unchanged" test "$(cat "$WORK/key.b64")" = "$KEY_DATA"
kubectl config view --raw --kubeconfig "$WORK/lab.yaml" -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$WORK/got-ca.crt"
kubectl config view --raw --kubeconfig "$WORK/lab.yaml" -o jsonpath='{.users[0].user.client-certificate-data}' |
  base64 -d >"$WORK/got-admin.crt"
check "the client certificate still verifies against the CA" \
  openssl verify -CAfile "$WORK/got-ca.crt" "$WORK/got-admin.crt"
lacks "stdout stays empty with --out" "$WORK/out.out" "client-key-data"
check "no temporary file left beside it" test -z "$(find "$WORK" -maxdepth 1 -name 'lab.yaml.tmp.*')"

echo "# --server-address (IPv6 is bracketed)"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --server-address "::ffff:$A" --out "$WORK/v6.yaml" 2>"$WORK/v6.err"
expect_rc "kubeconfig --server-address" 0 $?
check "IPv6 server address bracketed, port kept" \
  test "$(kc "$WORK/v6.yaml" '{.clusters[0].cluster.server}')" = "https://[::ffff:$A]:6443"

echo "# --merge into a kubeconfig that has another context"
KC=$WORK/kube/config
mkdir -p "$WORK/kube"
kubectl config --kubeconfig "$KC" set-cluster other --server="https://198.18.42.250:6443" >/dev/null
kubectl config --kubeconfig "$KC" set-credentials other --token=not-a-real-token >/dev/null
kubectl config --kubeconfig "$KC" set-context other --cluster=other --user=other >/dev/null
kubectl config --kubeconfig "$KC" use-context other >/dev/null
chmod 0644 "$KC"
cp "$KC" "$WORK/kc.orig"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$KC" >"$WORK/merge.out" 2>&1
expect_rc "kubeconfig --merge" 0 $?
kubectl config get-contexts --kubeconfig "$KC" -o name | sort >"$WORK/contexts"
check "both contexts are there" test "$(tr '\n' ' ' <"$WORK/contexts")" = "nodectl-$A other "
check "the new context is current" test "$(kubectl config current-context --kubeconfig "$KC")" = "nodectl-$A"
check "the other cluster is untouched" \
  test "$(kc "$KC" '{.clusters[?(@.name=="other")].cluster.server}')" = "https://198.18.42.250:6443"
check "the merged server is rewritten" \
  test "$(kc "$KC" "{.clusters[?(@.name==\"nodectl-$A\")].cluster.server}")" = "https://$A:6443"
check "merged file is 0600 (it was 0644)" test "$(mode_of "$KC")" = 600
check "the previous content is kept in FILE.bak" cmp -s "$KC.bak" "$WORK/kc.orig"
check "FILE.bak is 0600" test "$(mode_of "$KC.bak")" = 600
contains_text "it says where it wrote" "$WORK/merge.out" "wrote context \"nodectl-$A\" to $KC"
sha_before=$(sha256sum <"$KC")
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$KC" >/dev/null 2>&1
expect_rc "merging a second time" 0 $?
check "merging twice gives the same file" test "$(sha256sum <"$KC")" = "$sha_before"
check "still two contexts" test "$(kubectl config get-contexts --kubeconfig "$KC" -o name | wc -l)" = 2

echo "# --merge without --kubeconfig: \$KUBECONFIG's first file, else ~/.kube/config"
KUBECONFIG="$WORK/first.yaml:$WORK/second.yaml" \
  "$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge >/dev/null 2>&1
expect_rc "merge into \$KUBECONFIG" 0 $?
check "the first file of \$KUBECONFIG got it" test "$(kc "$WORK/first.yaml" '{.current-context}')" = "nodectl-$A"
check "the second was not touched" test ! -e "$WORK/second.yaml"
check "a new file gets no .bak" test ! -e "$WORK/first.yaml.bak"
mkdir -p "$WORK/home"
env -u KUBECONFIG HOME="$WORK/home" "$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge >/dev/null 2>&1
expect_rc "merge into ~/.kube/config" 0 $?
check "~/.kube/config created, 0600" test "$(mode_of "$WORK/home/.kube/config")" = 600
check "~/.kube created 0700" test "$(mode_of "$WORK/home/.kube")" = 700
check "kubectl reads ~/.kube/config" \
  test "$(env -u KUBECONFIG HOME="$WORK/home" kubectl config current-context)" = "nodectl-$A"

echo "# the operator's own entries named like the host are never replaced"
KO=$WORK/own.yaml
kubectl config --kubeconfig "$KO" set-cluster "$A" --server="https://198.18.42.251:6443" >/dev/null
kubectl config --kubeconfig "$KO" set-credentials "$A" --token=operators-own-token >/dev/null
kubectl config --kubeconfig "$KO" set-context "$A" --cluster="$A" --user="$A" >/dev/null
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$KO" >"$WORK/own.out" 2>&1
expect_rc_out "merge beside the operator's entries named like the host" 0 $? "$WORK/own.out"
check "the operator's user named $A keeps its token" test "$(kubectl config view --raw --kubeconfig "$KO" \
  -o jsonpath="{.users[?(@.name==\"$A\")].user.token}")" = operators-own-token
check "the operator's cluster named $A keeps its server" \
  test "$(kc "$KO" "{.clusters[?(@.name==\"$A\")].cluster.server}")" = "https://198.18.42.251:6443"
check "nodectl's entries sit beside them" test "$(kc "$KO" "{.users[?(@.name==\"nodectl-$A\")].name}")" = "nodectl-$A"

echo "# a compromised server: only the CA, the server and the client key pair are taken"
cat >"$WORK/make-hostile.py" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["clusters"][0]["cluster"].update({"proxy-url": "socks5://198.18.42.66:1080", "insecure-skip-tls-verify": True,
                                    "tls-server-name": "evil.test"})
c["users"][0]["user"].update({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
                                       "args": ["-c", "touch " + sys.argv[2]], "interactiveMode": "Never"},
                              "tokenFile": "/etc/shadow", "token": "stolen",
                              "auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://198.18.42.66"}}})
c["users"].append({"name": "other", "user": {"exec": {"command": "/bin/sh"}}})
c["contexts"][0]["context"]["namespace"] = "kube-system"
yaml.safe_dump(c, sys.stdout)
EOF
python3 "$WORK/make-hostile.py" "$WORK/k3s.yaml" "$WORK/pwned" >"$WORK/hostile.yaml"
node 1 "umask 077 && cat > $K3S_YAML" <"$WORK/hostile.yaml"
KH_FILE=$WORK/hostile-merged.yaml
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$KH_FILE" >"$WORK/hostile.out" 2>&1
expect_rc_out "a hostile server's kubeconfig is taken apart" 0 $? "$WORK/hostile.out"
kubectl config view --raw --kubeconfig "$KH_FILE" >"$WORK/hostile-view.yaml"
lacks "no exec plugin, auth provider, token or token file" "$WORK/hostile-view.yaml" "exec|auth-provider|token|/bin/sh|oidc"
lacks "no proxy, no insecure flag, no other TLS name" "$WORK/hostile-view.yaml" "proxy|insecure|tls-server-name|evil|198\.18\.42\.66"
lacks "no namespace and no other user" "$WORK/hostile-view.yaml" "namespace|kube-system|name: other"
check "the client key pair still came through" test "$(kubectl config view --raw --kubeconfig "$KH_FILE" \
  -o jsonpath="{.users[?(@.name==\"nodectl-$A\")].user.client-key-data}")" = "$KEY_DATA"
kubectl --kubeconfig "$KH_FILE" --request-timeout=3s get --raw /version >/dev/null 2>&1
check "kubectl ran nothing the server asked for" test ! -e "$WORK/pwned"
# The file above packs so many credentials that kubectl refuses it whole ("more than one
# authentication method"), and with a client certificate kubectl never asks an exec plugin: the
# check before it cannot fail. The plausible attack is a user with an exec plugin and nothing else.
cat >"$WORK/make-exec-only.py" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
                                  "args": ["-c", "touch " + sys.argv[2]], "interactiveMode": "Never"}}
yaml.safe_dump(c, sys.stdout)
EOF
python3 "$WORK/make-exec-only.py" "$WORK/k3s.yaml" "$WORK/pwned-exec" >"$WORK/exec-only.yaml"
node 1 "umask 077 && cat > $K3S_YAML" <"$WORK/exec-only.yaml"
KX_FILE=$WORK/exec-only-merged.yaml
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$KX_FILE" >"$WORK/exec-only.out" 2>&1
rc=$?
check "a server's user with only an exec plugin is refused (exit $rc)" test "$rc" -ne 0
if [ -e "$KX_FILE" ]; then
  kubectl --kubeconfig "$KX_FILE" --request-timeout=3s get --raw /version >/dev/null 2>&1
fi
check "kubectl ran no exec plugin of the server's" test ! -e "$WORK/pwned-exec"

sed "s#server: https://127.0.0.1:6443#server: https://198.18.42.66:6443#" "$WORK/k3s.yaml" |
  node 1 "umask 077 && cat > $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" >"$WORK/elsewhere.out" 2>"$WORK/elsewhere.err"
expect_rc "a server URL pointing elsewhere is refused" 5 $?
contains_text "the error says why" "$WORK/elsewhere.err" "is neither loopback nor $A"
check "nothing on stdout" test ! -s "$WORK/elsewhere.out"
sed "s#server: https://127.0.0.1:6443#server: http://127.0.0.1:6443#" "$WORK/k3s.yaml" |
  node 1 "umask 077 && cat > $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" >/dev/null 2>"$WORK/http.err"
expect_rc "a plain http server URL is refused" 5 $?
{ cat "$WORK/k3s.yaml"; head -c 70000 /dev/zero | tr '\0' '#'; echo; } | node 1 "umask 077 && cat > $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" >/dev/null 2>"$WORK/big.err"
expect_rc "a kubeconfig over 64 KiB is refused" 5 $?
contains_text "the error says it is too large" "$WORK/big.err" "larger than 64 KiB"
node 1 "umask 077 && cat > $K3S_YAML" <"$WORK/k3s.yaml"

echo "# errors"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --out "$WORK/x.yaml" >/dev/null 2>"$WORK/both.err"
expect_rc "--out with --merge is a usage error" 2 $?
printf 'clusters: [oops\n' >"$WORK/broken"
cp "$WORK/broken" "$WORK/broken.orig"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --merge --kubeconfig "$WORK/broken" >/dev/null 2>"$WORK/broken.err"
expect_rc "merge into a file that is not YAML fails" 1 $?
contains_text "the error names the existing file" "$WORK/broken.err" "$WORK/broken: not YAML"
check "the broken file is left as it was" cmp -s "$WORK/broken" "$WORK/broken.orig"
node 1 "printf 'this is not a kubeconfig\n' > $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --out "$WORK/lab.yaml" >/dev/null 2>"$WORK/bad.err"
expect_rc "a node file that is not a kubeconfig fails" 5 $?
contains_text "the error says what is wrong" "$WORK/bad.err" "$A: $K3S_YAML: not a kubeconfig"
check "the previous --out file is untouched" test "$(kc "$WORK/lab.yaml" '{.current-context}')" = nodectl-lab
node 1 "printf 'apiVersion: v1\nkind: Config\nclusters: []\n' > $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" >/dev/null 2>"$WORK/empty.err"
expect_rc "a kubeconfig without clusters fails" 5 $?
contains_text "the error says there are no clusters" "$WORK/empty.err" "$A: $K3S_YAML: no clusters"
node 1 "rm -f $K3S_YAML"
"$NODECTL" kubeconfig "root@$A" "${CONN[@]}" --out "$WORK/gone.yaml" >/dev/null 2>"$WORK/gone.err"
expect_rc "a removed kubeconfig fails" 5 $?
contains_text "the error is the clear one" "$WORK/gone.err" "is the k3s server running?"
check "no file was written" test ! -e "$WORK/gone.yaml"
finish

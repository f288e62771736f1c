#!/usr/bin/env bash
# The Magento stack delivered to a k3s server node by `nodectl apply`, tested up to the moment k3s
# would read the files (no k3s binary can be had here: the release is the stand-in of test_k3s.sh,
# installed and never started).
#
# What is real: a booted Debian node over SSH, the k3s install (start = false), the manifests in
# /var/lib/rancher/k3s/server/manifests (modes, owner, atomic writes through nodectl's file
# steps), the secrets made once on the node (0600, stable across applies, never in the output or
# a world-readable file), the self-signed TLS pair (checked with openssl), the plan's
# diff with the Secret values masked, removal of a site (its manifest replaced by one without
# objects, its secrets removed, files nodectl never wrote left alone), and the delivered YAML
# validated by tests/tools/k8s_check.py (Kubernetes v1.32.2 schemas and cross-references).
# What is not: k3s's deploy controller applying the files, and deleting a removed site's objects.
source "$(dirname "$0")/lib.sh"

serve_k3s_release
VERSION=$K3S_VERSION

nodes_up 1 198.18.30
S=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY")
M=/var/lib/rancher/k3s/server/manifests
ST=/var/lib/nodectl/stack
S3_SECRET=it-s3-secret-4f9b20
export STACK_S3_CREDENTIALS="AWS_ACCESS_KEY_ID=AKIT
AWS_SECRET_ACCESS_KEY=$S3_SECRET"

site() {  # NAME BACKUP
  cat <<T
[[stack.sites]]
name = "$1"
hosts = ["$1.example.org", "www.$1.example.org"]
search_endpoint = "http://opensearch.search:9200"
[stack.sites.autoscaling]
min = 1
max = 1
[stack.sites.backup]
enabled = $2
endpoint = "https://s3.example.net"
bucket = "backups"
credentials = { env = "STACK_S3_CREDENTIALS" }
T
}
profile() {  # FILE SITE...
  local f=$1; shift
  cat >"$f" <<T
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
[k3s]
$K3S_FROM_TEST_RELEASE
start = false
T
  for s in "$@"; do
    case $s in shop) site shop true ;; blog) site blog false ;; esac >>"$f"
  done
}
profile "$WORK/both.toml" shop blog
profile "$WORK/shop.toml" shop

# A file in the manifests directory that nodectl never wrote.
node 1 "mkdir -p $M && printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: default}\n' > $M/other.yaml"

# --- plan: the manifests' diffs, Secret values masked -------------------------------------------
nodectl plan -p "$WORK/both.toml" "root@$S" "${KH[@]}" >"$WORK/plan.out" 2>&1
expect_rc_out "plan of a k3s server with two sites" 0 $? "$WORK/plan.out"
contains_text "plan: shop's manifest is created" "$WORK/plan.out" "$M/nodectl-stack-shop.yaml"
contains_text "plan: the diff shows the objects" "$WORK/plan.out" '"kind": "StatefulSet"'
contains_text "plan: Secret values masked" "$WORK/plan.out" '"(hidden)"'
lacks "plan: no S3 secret" "$WORK/plan.out" "$S3_SECRET"
lacks "plan: no private key" "$WORK/plan.out" "PRIVATE KEY"
check "plan: nothing written" node 1 test ! -e "$M/nodectl-stack-shop.yaml" -a ! -e "$ST"

# --- apply: delivery -----------------------------------------------------------------------------
nodectl apply -p "$WORK/both.toml" "root@$S" "${KH[@]}" >"$WORK/a1.out" 2>&1
expect_rc_out "apply delivers two sites" 0 $? "$WORK/a1.out"
contains "apply reports the self-signed certificates" "$WORK/a1.out" "site shop: TLS uses a self-signed certificate"
node 1 "stat -c '%n %a %U:%G' $M/nodectl-stack-shop.yaml $M/nodectl-stack-blog.yaml $ST/delivered $ST/shop/* $ST/blog/*" >"$WORK/modes"
check "manifests, record and secrets are 0600 root:root (15 files)" \
  test "$(grep -c ' 600 root:root$' "$WORK/modes")" = 15
check "no other mode" test "$(wc -l <"$WORK/modes")" = 15
check "record lists both sites" test "$(node 1 cat $ST/delivered | tr '\n' ' ')" = "shop blog "
PW=$(node 1 cat $ST/shop/db_password)
check "the database password was made on the node (48 hex digits)" grep -Eqx '[0-9a-f]{48}' <<<"$PW"
lacks "apply output shows no generated password" "$WORK/a1.out" "$PW"
lacks "apply output shows no S3 secret" "$WORK/a1.out" "$S3_SECRET"
# Every file on the node holding the password is readable by root only.
node 1 "grep -rlF '$PW' /etc /var /root /tmp /run 2>/dev/null | xargs -r stat -c '%a %n'" >"$WORK/holders"
check "the password is in files (manifest, store, rollback copies)" test -s "$WORK/holders"
lacks "no world- or group-readable file holds the password" "$WORK/holders" '^[0-7][1-7][0-7] |^[0-7][0-7][1-7] '
# The node has no openssl: the pair is checked here (the test's copy is 0600 in its own directory).
(umask 077; node 1 cat "$ST/shop/tls.crt" >"$WORK/tls.crt"; node 1 cat "$ST/shop/tls.key" >"$WORK/tls.key")
{ openssl x509 -in "$WORK/tls.crt" -noout -subject -ext subjectAltName; openssl x509 -in "$WORK/tls.crt" -noout -pubkey | sha256sum
  openssl pkey -in "$WORK/tls.key" -pubout | sha256sum; } >"$WORK/tls" 2>&1
contains_text "self-signed certificate names the hosts" "$WORK/tls" "DNS:www.shop.example.org"
check "the key is the certificate's" test "$(sed -n '$p' "$WORK/tls")" = "$(sed -n 'x;$p' "$WORK/tls")"

# The delivered YAML is what k3s would read: the schemas and cross-references hold.
for s in shop blog; do
  node 1 cat "$M/nodectl-stack-$s.yaml" >"$WORK/$s.yaml"
  python3 "$SRC/tests/tools/k8s_check.py" --image-prefix localhost/nodectl/ "$WORK/$s.yaml" >"$WORK/check-$s.out" 2>&1
  expect_rc_out "k8s_check validates the delivered $s manifest" 0 $? "$WORK/check-$s.out"
done
contains_text "the manifest holds the node's password" "$WORK/shop.yaml" "$PW"
contains_text "the manifest holds the S3 credentials" "$WORK/shop.yaml" "$S3_SECRET"
lacks "no placeholder in the delivered manifest" "$WORK/shop.yaml" "NODECTL-PLACEHOLDER"
contains_text "the TLS Secret says self-signed" "$WORK/shop.yaml" "nodectl.io/self-signed"

# --- re-apply: same secrets, same bytes, nothing to do -------------------------------------------
node 1 "sha256sum $M/nodectl-stack-*.yaml $ST/*/*" >"$WORK/sums1"
nodectl apply -p "$WORK/both.toml" "root@$S" "${KH[@]}" >"$WORK/a2.out" 2>&1
expect_rc_out "second apply" 0 $? "$WORK/a2.out"
node 1 "sha256sum $M/nodectl-stack-*.yaml $ST/*/*" >"$WORK/sums2"
check "secrets and manifests are stable across applies" cmp -s "$WORK/sums1" "$WORK/sums2"
nodectl plan -p "$WORK/both.toml" "root@$S" "${KH[@]}" >"$WORK/plan2.out" 2>&1
expect_rc_out "plan after apply" 0 $? "$WORK/plan2.out"
lacks "plan after apply: no manifest change" "$WORK/plan2.out" "nodectl-stack-"

# A changed S3 credential changes only a Secret value: the plan says so and shows no value.
STACK_S3_CREDENTIALS="AWS_ACCESS_KEY_ID=AKIT
AWS_SECRET_ACCESS_KEY=it-s3-rotated-77aa" nodectl plan -p "$WORK/both.toml" "root@$S" "${KH[@]}" >"$WORK/plan3.out" 2>&1
expect_rc_out "plan with a rotated S3 credential" 0 $? "$WORK/plan3.out"
contains_text "plan: only a secret value changes" "$WORK/plan3.out" "nodectl-stack-shop.yaml (only secret values change: hidden)"
lacks "plan: neither the old nor the new credential" "$WORK/plan3.out" "it-s3-rotated-77aa|$S3_SECRET"

# --- removal of a site ---------------------------------------------------------------------------
nodectl apply -p "$WORK/shop.toml" "root@$S" "${KH[@]}" >"$WORK/a3.out" 2>&1
expect_rc_out "apply without blog" 0 $? "$WORK/a3.out"
node 1 cat "$M/nodectl-stack-blog.yaml" >"$WORK/blog-removed.yaml"
python3 -c 'import sys, yaml; d = [x for x in yaml.safe_load_all(open(sys.argv[1])) if x]; sys.exit(1 if d else 0)' "$WORK/blog-removed.yaml"
check "blog's manifest now lists no object (k3s deletes what it applied from it)" test $? = 0
check "blog's manifest is still 0600" test "$(node 1 stat -c %a "$M/nodectl-stack-blog.yaml")" = 600
check "blog's secrets are removed" node 1 "test -z \"\$(ls -A $ST/blog)\""
check "record lists shop only" test "$(node 1 cat $ST/delivered)" = shop
check "shop's password is unchanged" test "$(node 1 cat $ST/shop/db_password)" = "$PW"
check "a file nodectl never wrote is left alone" node 1 test -s "$M/other.yaml"
nodectl apply -p "$WORK/shop.toml" "root@$S" "${KH[@]}" >"$WORK/a4.out" 2>&1
expect_rc_out "apply without blog again" 0 $? "$WORK/a4.out"
check "blog's empty manifest is kept (not written again)" node 1 test -s "$M/nodectl-stack-blog.yaml"

# A record on the node that names a path instead of a site is refused.
node 1 "printf 'shop\n../../etc\n' > $ST/delivered"
nodectl plan -p "$WORK/shop.toml" "root@$S" "${KH[@]}" >"$WORK/plan4.out" 2>&1
check "a forged record is refused" test $? != 0
contains_text "the refusal says why" "$WORK/plan4.out" "not a site name"

finish

#!/usr/bin/env bash
# `nodectl stack render` of the example profile, checked offline (k3s cannot run here):
#   1. stdout: placeholders only, no secret value; every document validates against the Kubernetes
#      v1.32.2 schemas and the cross-references hold (tests/tools/k8s_check.py), and the
#      NetworkPolicies allow exactly the stack's paths;
#   2. --out: the file is 0600, holds the real secrets, passes the same checks, and a second render
#      gives the same bytes;
#   3. mutations of the rendered manifests (a misspelt field, a broken selector, ...) MUST make the
#      checker fail, so a checker that passes everything is caught;
#   4. no source file of the stack module is over 600 lines (the renderer is split by object kind).
# Usage: test_stack_render.sh [NODECTL_BINARY]   (ctest: repo/stack_render)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NODECTL=${1:-${NODECTL:-$REPO/build/nodectl}}
CHECK="python3 $REPO/tests/tools/k8s_check.py --image-prefix localhost/nodectl/ --single magento-cron --single backup"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_stack_render: FAIL: $*" >&2; exit 1; }

export SHOP_DB_PASSWORD=unit-db-pw-5f1c SHOP_REPLICATION_PASSWORD=unit-repl-pw-77aa SHOP_REDIS_PASSWORD=unit-redis-pw-0b3e
export SHOP_CRYPT_KEY=unit-crypt-key-9d2f SHOP_BACKUP_S3_CREDENTIALS='AWS_ACCESS_KEY_ID=AK
AWS_SECRET_ACCESS_KEY=unit-s3-secret-61c0'
export SHOP_TLS_KEY='-----BEGIN PRIVATE KEY-----
unit-tls-key-3e8a
-----END PRIVATE KEY-----'
secrets=(unit-db-pw-5f1c unit-repl-pw-77aa unit-redis-pw-0b3e unit-crypt-key-9d2f unit-s3-secret-61c0 unit-tls-key-3e8a)

cat >"$tmp/paths" <<'EOF'
# SRC -> DST:PORT, every pod-to-pod path of the stack inside its namespace
varnish -> magento:8080
magento -> varnish:6081
magento -> mariadb-master:3306
magento -> mariadb-replica:3306
magento -> redis:6379
mariadb-replica -> mariadb-master:3306
backup -> mariadb-master:3306
backup -> mariadb-replica:3306
magento-cron -> mariadb-master:3306
magento-cron -> redis:6379
magento-cron -> varnish:6081
EOF

# 1. stdout
"$NODECTL" stack render -p "$REPO/profiles/stack.toml" >"$tmp/stdout.yaml"
for s in "${secrets[@]}"; do
  ! grep -q -F "$s" "$tmp/stdout.yaml" || fail "stdout shows the secret $s"
done
grep -q NODECTL-PLACEHOLDER-NOT-A-SECRET "$tmp/stdout.yaml" || fail "stdout has no placeholder"
$CHECK --expect-paths "$tmp/paths" "$tmp/stdout.yaml"

# 2. --out with the real secrets (the certificate file is a test one)
printf -- '-----BEGIN CERTIFICATE-----\nunit-cert\n-----END CERTIFICATE-----\n' >"$tmp/tls.crt"
sed "s|/etc/nodectl/tls/shop.example.org.crt|$tmp/tls.crt|" "$REPO/profiles/stack.toml" >"$tmp/stack.toml"
"$NODECTL" stack render -p "$tmp/stack.toml" --out "$tmp/out" 2>"$tmp/out.log"
file=$tmp/out/nodectl-shop.yaml
[ "$(stat -c %a "$file")" = 600 ] || fail "$file is mode $(stat -c %a "$file"), want 600"
for s in "${secrets[@]}"; do
  grep -q -F "$s" "$file" || fail "--out file lacks the secret $s"
  ! grep -q -F "$s" "$tmp/out.log" || fail "the log shows the secret $s"
done
! grep -q NODECTL-PLACEHOLDER "$file" || fail "--out file has placeholders"
$CHECK --expect-paths "$tmp/paths" "$file"
"$NODECTL" stack render -p "$tmp/stack.toml" --out "$tmp/again" 2>/dev/null
cmp "$file" "$tmp/again/nodectl-shop.yaml" || fail "two renders differ"
"$NODECTL" stack render -p "$tmp/stack.toml" --site shop >"$tmp/site.yaml"
cmp "$tmp/stdout.yaml" "$tmp/site.yaml" || fail "--site shop differs from the whole profile's render (one site)"
set +e
"$NODECTL" stack render -p "$tmp/stack.toml" --site nosuch >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "--site nosuch exited $rc, want 2"
set +e
env -u SHOP_REDIS_PASSWORD "$NODECTL" stack render -p "$tmp/stack.toml" --out "$tmp/missing" >/dev/null 2>"$tmp/missing.log"; rc=$?
set -e
[ "$rc" = 3 ] || fail "a missing secret exited $rc, want 3"
[ ! -e "$tmp/missing/nodectl-shop.yaml" ] || fail "a file was written although a secret is missing"

# 2b. images pinned by the digests an image build recorded (tests/data/image-build-out: redis only);
#     the others are reported on stderr and in the file.
sed "s|^\[stack.sites.storage\]|[stack.sites.images]\ndigests_from = \"$REPO/tests/data/image-build-out\"\n\n[stack.sites.storage]|" \
  "$REPO/profiles/stack.toml" >"$tmp/pinned.toml"
"$NODECTL" stack render -p "$tmp/pinned.toml" >"$tmp/pinned.yaml" 2>"$tmp/pinned.log"
grep -q -F '"image": "localhost/nodectl/redis:latest@sha256:9888ce1542cf57e748f227b94e21cfda122bea070d253bad845653ed457508ff"' "$tmp/pinned.yaml" \
  || fail "redis is not pinned by the recorded digest"
grep -q -F "images not pinned by digest: localhost/nodectl/magento:latest" "$tmp/pinned.log" || fail "stderr does not report the unpinned images"
! grep -q -F "pinned by digest: localhost/nodectl/redis" "$tmp/pinned.log" "$tmp/pinned.yaml" || fail "redis reported as unpinned"
$CHECK --expect-paths "$tmp/paths" "$tmp/pinned.yaml"

# 3. mutations: each one MUST fail the checker, with the expected reason.
mutate() {  # NAME EXPECTED PYTHON-STATEMENTS (on `docs`, a list of dicts; find(kind, name) helps)
  local name=$1 expected=$2 code=$3
  python3 - "$tmp/stdout.yaml" "$tmp/mut-$name.yaml" "$code" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
def find(kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
exec(sys.argv[3])
with open(sys.argv[2], "w") as f:
    for d in docs:
        f.write("---\n" + json.dumps(d, indent=2) + "\n")
EOF
  set +e
  $CHECK --expect-paths "$tmp/paths" "$tmp/mut-$name.yaml" >"$tmp/mut-$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" = 1 ] || fail "mutation $name: the checker exited $rc, want 1"
  grep -q -F -- "$expected" "$tmp/mut-$name.log" || { cat "$tmp/mut-$name.log" >&2; fail "mutation $name: no '$expected' in the checker's output"; }
  echo "mutation $name: rejected ($expected)"
}
pod='["spec"]["template"]["spec"]'
mutate misspelt-field "Additional properties are not allowed ('containerPorts' was unexpected)" \
  "c = find('Deployment', 'redis')$pod['containers'][0]['ports'][0]; c['containerPorts'] = c.pop('containerPort')"
mutate broken-service-selector "matches no rendered pod template" \
  "find('Service', 'redis')['spec']['selector']['app.kubernetes.io/name'] = 'rediss'"
mutate wrong-target-port "targetPort mysqll is not a port" \
  "find('Service', 'mariadb-master')['spec']['ports'][0]['targetPort'] = 'mysqll'"
mutate probe-port "readinessProbe port htp is not a port" \
  "find('Deployment', 'magento')$pod['containers'][0]['readinessProbe']['httpGet']['port'] = 'htp'"
mutate missing-secret-key "key crypt-key missing from Secret magento" \
  "find('Secret', 'magento')['stringData'] = {'cryptkey': 'x'}"
mutate missing-configmap "envFrom ConfigMap magento is not rendered" \
  "docs.remove(find('ConfigMap', 'magento'))"
mutate hpa-target "is not a rendered apps/v1 Deployment" \
  "find('HorizontalPodAutoscaler', 'magento')['spec']['scaleTargetRef']['name'] = 'magneto'"
mutate hpa-no-cpu-request "requests no CPU" \
  "del find('Deployment', 'magento')$pod['containers'][0]['resources']['requests']['cpu']"
mutate storage-class "is not one a k3s node has" \
  "find('StatefulSet', 'mariadb-master')['spec']['volumeClaimTemplates'][0]['spec']['storageClassName'] = 'standard'"
mutate deprecated-api "no schema for batch/v1beta1 CronJob" \
  "find('CronJob', 'backup')['apiVersion'] = 'batch/v1beta1'"
mutate policy-selector "selects no rendered pod" \
  "find('NetworkPolicy', 'redis')['spec']['podSelector']['matchLabels']['app.kubernetes.io/name'] = 'redis-cache'"
mutate policy-too-open "path varnish -> redis:6379 is allowed but not needed" \
  "find('NetworkPolicy', 'redis')['spec']['ingress'][0].pop('from'); find('NetworkPolicy', 'varnish')['spec']['egress'].append({'ports': [{'protocol': 'TCP', 'port': 6379}]})"
mutate policy-too-closed "path backup -> mariadb-master:3306 is needed but not allowed" \
  "find('NetworkPolicy', 'mariadb-master')['spec']['ingress'][0]['from'].pop(1)"
mutate capability "adds capabilities ['SYS_ADMIN']" \
  "find('Deployment', 'varnish')$pod['containers'][0]['securityContext']['capabilities']['add'].append('SYS_ADMIN')"
mutate no-limits "no resources.limits.memory" \
  "del find('StatefulSet', 'mariadb-replica')$pod['containers'][0]['resources']['limits']['memory']"
mutate foreign-image "is not one the profile builds or names" \
  "find('Deployment', 'varnish')$pod['containers'][0]['image'] = 'docker.io/library/varnish:7'"
mutate middleware-ref "is not a rendered Middleware" \
  "find('Middleware', 'redirect-https')['metadata']['name'] = 'redirect'"
mutate cron-twice "single magento-cron: replicas is 2, want 1" \
  "find('StatefulSet', 'magento-cron')['spec']['replicas'] = 2"
mutate cron-deployment "single magento-cron: a Deployment may run two pods" \
  "d = find('StatefulSet', 'magento-cron'); d['kind'] = 'Deployment'; d['spec'].pop('serviceName'); d['spec'].pop('podManagementPolicy'); d['spec'].pop('updateStrategy')"
mutate cron-to-replica "path magento-cron -> mariadb-replica:3306 is allowed but not needed" \
  "find('NetworkPolicy', 'magento-cron')['spec']['egress'][0]['to'].append({'podSelector': {'matchLabels': {'app.kubernetes.io/name': 'mariadb-replica'}}}); find('NetworkPolicy', 'mariadb-replica')['spec']['ingress'][0]['from'].append({'podSelector': {'matchLabels': {'app.kubernetes.io/name': 'magento-cron'}}})"
mutate cron-no-redis "path magento-cron -> redis:6379 is needed but not allowed" \
  "find('NetworkPolicy', 'redis')['spec']['ingress'][0]['from'].pop(1)"
mutate cron-seccomp "container cron: seccompProfile is not RuntimeDefault" \
  "del find('StatefulSet', 'magento-cron')$pod['containers'][0]['securityContext']['seccompProfile']"
mutate cron-no-limit "container cron: no resources.limits.cpu" \
  "del find('StatefulSet', 'magento-cron')$pod['containers'][0]['resources']['limits']['cpu']"
mutate backup-concurrent "single backup: concurrencyPolicy is Allow, want Forbid" \
  "find('CronJob', 'backup')['spec']['concurrencyPolicy'] = 'Allow'"
mutate limitrange-field "Additional properties are not allowed ('defaultRequests' was unexpected)" \
  "l = find('LimitRange', 'containers')['spec']['limits'][0]; l['defaultRequests'] = l.pop('defaultRequest')"
mutate quota-field "Additional properties are not allowed ('hardd' was unexpected)" \
  "q = find('ResourceQuota', 'site')['spec']; q['hardd'] = q.pop('hard')"
# 5. [stack.monitoring] (profiles/stack-monitoring.toml): an exporter beside each service, the
#    monitoring namespace, Prometheus let in to exactly the exporters' ports; Prometheus' and
#    Alertmanager's configurations pass promtool and amtool (and they refuse broken ones);
#    secrets as in 1 and 2; a profile error names file and line.
export ALERT_WEBHOOK_URL=https://hooks.example.org/unit-webhook-token-4c1d ALERT_SMTP_PASSWORD=unit-smtp-pw-2b7e
export MONITORING_TLS_KEY='-----BEGIN PRIVATE KEY-----
unit-mon-key-8e0a
-----END PRIVATE KEY-----'
export MONITORING_BASIC_AUTH='ops:$2y$05$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY./'
secrets+=(unit-webhook-token-4c1d unit-smtp-pw-2b7e unit-mon-key-8e0a abcdefghijklmnopqrstuvwxyzABCDEFGH)
cp "$tmp/paths" "$tmp/paths-mon"
cat >>"$tmp/paths-mon" <<'EOF'
prometheus -> alertmanager:9093
prometheus -> blackbox-exporter:9115
monitoring/prometheus -> shop/mariadb-master:9104
monitoring/prometheus -> shop/mariadb-replica:9104
monitoring/prometheus -> shop/redis:9121
monitoring/prometheus -> shop/varnish:9131
monitoring/prometheus -> shop/magento:9117
EOF
! grep -q -F '"name": "exporter"' "$tmp/stdout.yaml" || fail "a site without [stack.monitoring] has exporter sidecars"
sed "s|/etc/nodectl/tls/monitoring.example.org.crt|$tmp/tls.crt|" "$REPO/profiles/stack-monitoring.toml" >"$tmp/stack-monitoring.toml"
# The exporters' passwords by reference (without one, `nodectl apply` generates them on the node).
sed -i 's|^crypt_key = .*|&\nexporter_db_password = { env = "SHOP_EXPORTER_DB_PASSWORD" }\nexporter_redis_password = { env = "SHOP_EXPORTER_REDIS_PASSWORD" }|' "$tmp/stack.toml"
export SHOP_EXPORTER_DB_PASSWORD=unit-exp-db-pw-6a2c SHOP_EXPORTER_REDIS_PASSWORD=unit-exp-redis-pw-93d1
secrets+=(unit-exp-db-pw-6a2c unit-exp-redis-pw-93d1)
"$NODECTL" stack render -p "$tmp/stack-monitoring.toml" >"$tmp/mon-stdout.yaml"
for s in "${secrets[@]}"; do
  ! grep -q -F "$s" "$tmp/mon-stdout.yaml" || fail "stdout (monitoring) shows the secret $s"
done
n=$(grep -c '"name": "exporter"' "$tmp/mon-stdout.yaml")
[ "$n" = 5 ] || fail "$n exporter sidecars rendered, want 5 (master, replica, redis, varnish, magento)"
$CHECK --expect-paths "$tmp/paths-mon" "$tmp/mon-stdout.yaml"
"$NODECTL" stack render -p "$tmp/stack-monitoring.toml" --out "$tmp/mon" 2>"$tmp/mon.log"
for f in nodectl-shop.yaml nodectl-monitoring.yaml; do
  [ "$(stat -c %a "$tmp/mon/$f")" = 600 ] || fail "$tmp/mon/$f is not mode 600"
done
for s in "${secrets[@]}"; do
  grep -q -F "$s" "$tmp/mon"/*.yaml || fail "--out files lack the secret $s"
  ! grep -q -F "$s" "$tmp/mon.log" || fail "the log shows the secret $s"
done
$CHECK --expect-paths "$tmp/paths-mon" "$tmp/mon/nodectl-shop.yaml" "$tmp/mon/nodectl-monitoring.yaml"
# Without Prometheus' rule in the site's policy, its path must be reported missing.
python3 - "$tmp/mon/nodectl-shop.yaml" "$tmp/mut-scrape.yaml" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
p = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "redis")
p["spec"]["ingress"] = [r for r in p["spec"]["ingress"] if not any("namespaceSelector" in x for x in r.get("from", []))]
open(sys.argv[2], "w").write("".join("---\n" + json.dumps(d) + "\n" for d in docs))
EOF
set +e
$CHECK --expect-paths "$tmp/paths-mon" "$tmp/mut-scrape.yaml" "$tmp/mon/nodectl-monitoring.yaml" >"$tmp/mut-scrape.log" 2>&1; rc=$?
set -e
[ "$rc" = 1 ] && grep -q -F "path monitoring/prometheus -> shop/redis:9121 is needed but not allowed" "$tmp/mut-scrape.log" \
  || { cat "$tmp/mut-scrape.log" >&2; fail "mutation scrape-policy: not rejected"; }
# The configurations as the pods mount them, checked by Prometheus' and Alertmanager's own tools.
extract() {  # KIND NAME KEY OUT
  python3 - "$tmp/mon/nodectl-monitoring.yaml" "$@" <<'EOF'
import sys, yaml
path, kind, name, key, out = sys.argv[1:]
doc = next(d for d in yaml.safe_load_all(open(path)) if d and d["kind"] == kind and d["metadata"]["name"] == name)
open(out, "w").write((doc.get("data") or doc.get("stringData"))[key])
EOF
}
mkdir -p "$tmp/prom" "$tmp/am"
extract ConfigMap prometheus prometheus.yml "$tmp/prom/prometheus.yml"
extract ConfigMap prometheus nodectl.rules.yml "$tmp/prom/nodectl.rules.yml"
cmp "$tmp/prom/nodectl.rules.yml" "$REPO/monitoring/rules/nodectl.rules.yml" || fail "the ConfigMap's rules differ from monitoring/rules/nodectl.rules.yml"
promtool check config "$tmp/prom/prometheus.yml" >"$tmp/promtool.log" 2>&1 || { cat "$tmp/promtool.log" >&2; fail "promtool check config refused the rendered configuration"; }
grep -q "SUCCESS: 1 rule files found" "$tmp/promtool.log" || { cat "$tmp/promtool.log" >&2; fail "promtool did not check the rule file"; }
extract Secret alertmanager alertmanager.yml "$tmp/am/alertmanager.yml"
amtool check-config "$tmp/am/alertmanager.yml" >"$tmp/amtool.log" 2>&1 || { cat "$tmp/amtool.log" >&2; fail "amtool check-config refused the rendered configuration"; }
grep -q -F "unit-webhook-token-4c1d" "$tmp/am/alertmanager.yml" || fail "alertmanager.yml lacks the webhook URL"
sed -i 's/"scrape_interval": "30s"/"scrape_interval": "30x"/' "$tmp/prom/prometheus.yml"
! promtool check config "$tmp/prom/prometheus.yml" >/dev/null 2>&1 || fail "promtool accepted a broken scrape_interval"
sed -i 's/"receiver": "nodectl"/"receiver": "nobody"/' "$tmp/am/alertmanager.yml"
! amtool check-config "$tmp/am/alertmanager.yml" >/dev/null 2>&1 || fail "amtool accepted a route to an undefined receiver"
printf 'extends = "stack-monitoring.toml"\n\n[stack.monitoring.ingress]\ntls_cert_file = ""\n' >"$tmp/bad-mon.toml"
set +e
"$NODECTL" stack render -p "$tmp/bad-mon.toml" >/dev/null 2>"$tmp/bad-mon.log"; rc=$?
set -e
[ "$rc" = 3 ] || fail "an exposed monitoring without tls_cert_file exited $rc, want 3"
grep -q "bad-mon.toml:4:.*needs 'tls_cert_file'" "$tmp/bad-mon.log" || { cat "$tmp/bad-mon.log" >&2; fail "no file:line reason for the missing tls_cert_file"; }

# 4. source size
for f in "$REPO"/src/modules/stack/*; do
  n=$(wc -l <"$f")
  [ "$n" -le 600 ] || fail "$f has $n lines (at most 600: split it by component or object kind)"
done
echo "test_stack_render: ok"

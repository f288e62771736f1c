#!/usr/bin/env bash
# The pods of `nodectl stack render` run as written: one site rendered with real secrets (files 0600)
# and a certificate pair, its pod templates started by tests/tools/pod_runner.py under a containerd of
# this test's own (ctr run: the manifest's image, command/args, env with the Secret/ConfigMap values,
# volumes, security context, limits), each pod in a network namespace of its own on a bridge
# (198.18.31.0/24, pods in .64/26; Service names through a mounted /etc/hosts). Then, over real TCP:
#   HTTPS (terminated by socat with the Ingress's TLS Secret, in Traefik's place) -> Varnish -> Magento
#   (the stand-in project: Magento cannot be downloaded here); the probes as kubelet would run them;
#   a PHP session lands in Redis; a write on the master appears on the replica (server id 100 + pod
#   index); PURGE accepted from the pod network and refused from elsewhere; UNION SELECT gets 403;
#   the backup CronJob's container backs the master's database up to s3rver, and the archive restores
#   into a fresh MariaDB (the master's template, new volume) with identical CHECKSUM TABLE.
# Why a containerd on this host and not on a booted node: containerd does run in an nspawn node
# (test_runtime.sh), but the node's root is an overlayfs (native snapshotter only: every image
# copied in full) and the ~600 MB of images would be copied into each node; what runs is decided by
# the manifest and pod_runner.py either way. Not reproduced (needs k3s): see docs/stack.md.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ctrd.sh"
source "$(dirname "$0")/lib_services.sh"

for p in containerd runc redis-tools mariadb-client curl jq socat python3-yaml openssl file dnsmasq-base; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || { echo "missing $p (scripts/setup.sh)"; exit 1; }
done
[ -x "$S3RVER" ] || { echo "s3rver is not installed at $S3RVER (scripts/setup.sh)"; exit 1; }

NET=198.18.31
PRE=pods$$
ST=$WORK/pods
TLSPID="" TLS2PID="" DNSPID="" HOOKPID=""
MON=mon$$
mkdir -p "$ST" "$WORK/secrets"
runner() { python3 "$SRC/tests/tools/pod_runner.py" --manifest "$WORK/out/nodectl-shop.yaml" --state "$ST" \
  --address "$C/sock" --namespace "$NS" --prefix "$PRE" --subnet "$NET" --limit 300 "$@"; }
stop_all() {
  if [ "$FAILED" -gt 0 ]; then
    for f in "$ST"/logs/*.log "$WORK"/*.log; do
      [ -f "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -15 "$f" | sed 's/^/      | /'; }
    done
  fi
  [ -S "$C/sock" ] && runner stop-all >/dev/null 2>&1
  [ -S "$C/sock" ] && mon stop-all >/dev/null 2>&1
  mon net-down >/dev/null 2>&1
  runner net-down >/dev/null 2>&1
  [ -n "$DNSPID" ] && kill "$DNSPID" 2>/dev/null
  [ -n "$TLS2PID" ] && kill "$TLS2PID" 2>/dev/null
  [ -n "$HOOKPID" ] && kill "$HOOKPID" 2>/dev/null
  [ -n "$TLSPID" ] && kill "$TLSPID" 2>/dev/null
  stop_services
  ctrd_stop
}
# The monitoring namespace's pods, on the same bridge, with a DNS server of the test's in CoreDNS's place.
mon() { python3 "$SRC/tests/tools/pod_runner.py" --manifest "$WORK/out/nodectl-monitoring.yaml" --state "$WORK/mon" \
  --address "$C/sock" --namespace "$NS" --prefix "$MON" --subnet "$NET" --pod-base 110 --bridge "$PRE-cl" --resolv "$NET.1" \
  --limit 300 "$@"; }
trap 'rc=$?; stop_all; (exit $rc); cleanup' EXIT

# --- images and containerd -------------------------------------------------------------------------
T0=$(date +%s)
MONITORING_IMAGES="mysqld-exporter redis-exporter varnish-exporter apache-exporter prometheus alertmanager blackbox-exporter"
# shellcheck disable=SC2086  # a list of names
build_stack_images redis varnish mysql-master mysql-replica magento nodectl $MONITORING_IMAGES
ctrd_start || exit 1
# shellcheck disable=SC2086
ctrd_import redis varnish mysql-master mysql-replica magento nodectl $MONITORING_IMAGES

# --- render the site with real secrets ---------------------------------------------------------------
secret() { printf '%s' "$2" >"$WORK/secrets/$1"; chmod 0600 "$WORK/secrets/$1"; }
secret db "db-$RANDOM-$RANDOM"
secret repl "repl-$RANDOM-$RANDOM"
secret redis "redis-$RANDOM-$RANDOM"
secret crypt "$(openssl rand -hex 16)"
secret s3 "S3RVER:S3RVER"
secret exporter-db "exp-db-$RANDOM-#;\\\"x"
secret exporter-redis "exp-redis-$RANDOM-$RANDOM"
WHP=$(free_port)
HP=$(free_port)   # HTTPS in Traefik's place (socat), also the port the blackbox exporter probes
secret hook "http://$NET.1:$WHP/alerts/token-$RANDOM"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/secrets/tls.key" \
  -out "$WORK/tls.crt" -days 2 -subj /CN=shop.test -addext subjectAltName=DNS:shop.test 2>/dev/null
chmod 0600 "$WORK/secrets/tls.key"
S3ADDR=$NET.1        # the backup pod reaches s3rver on the bridge
S3PORT=$(free_port)  # in the profile before s3rver starts
cat >"$WORK/stack.toml" <<T
[[stack.sites]]
name = "shop"
hosts = ["shop.test"]
purge_acl = ["$NET.64/26"]
search_endpoint = "http://$NET.1:9200"
[stack.sites.images]
digests_from = "$OUT"
[stack.sites.tls]
cert_file = "$WORK/tls.crt"
key = { file = "$WORK/secrets/tls.key" }
[stack.sites.replicas]
varnish = 1
mariadb_replicas = 1
[stack.sites.autoscaling]
min = 1
max = 1
[stack.sites.secrets]
db_password = { file = "$WORK/secrets/db" }
replication_password = { file = "$WORK/secrets/repl" }
redis_password = { file = "$WORK/secrets/redis" }
crypt_key = { file = "$WORK/secrets/crypt" }
exporter_db_password = { file = "$WORK/secrets/exporter-db" }
exporter_redis_password = { file = "$WORK/secrets/exporter-redis" }
[stack.sites.backup]
schedule = "30 2 * * *"
endpoint = "http://$NET.1:$S3PORT"
bucket = "backups"
prefix = "shop/"
path_style = true
credentials = { file = "$WORK/secrets/s3" }
[stack.monitoring]
enabled = true
scrape_interval = "5s"
tls_probe_port = $HP
[stack.monitoring.images]
digests_from = "$OUT"
[stack.monitoring.alerts]
webhook_url = { file = "$WORK/secrets/hook" }
webhook_port = $WHP
group_wait = "5s"
group_interval = "10s"
T
nodectl stack render -p "$WORK/stack.toml" --out "$WORK/out" >"$WORK/render.out" 2>&1
expect_rc_out "stack render --out with the secrets from files" 0 $? "$WORK/render.out"
python3 - "$WORK/out/nodectl-shop.yaml" "$OUT" >"$WORK/pins.out" 2>&1 <<'P'
import json, os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
refs = set()
for d in docs:
    spec = d.get("spec", {})
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    pod = spec.get("template", {}).get("spec", {})
    refs |= {c["image"] for c in pod.get("initContainers", []) + pod.get("containers", [])}
for ref in sorted(refs):
    name, digest = ref.split("@")
    index = json.load(open(os.path.join(sys.argv[2], name.split("/")[-1].split(":")[0], "index.json")))
    assert digest == index["manifests"][0]["digest"], f"{ref}: not the built manifest"
print(len(refs), "images, each pinned to the manifest its build recorded")
P
expect_rc_out "images.digests_from: every image of the site is pinned to the digest of its build" 0 $? "$WORK/pins.out"
contains "... the ten images (magento, varnish, redis, mariadb master and replica, nodectl, four exporters)" "$WORK/pins.out" '^10 images'
runner plan >"$WORK/plan.json"
expect_rc_out "pod_runner plan reads the rendered site" 0 $? "$WORK/plan.json"
ip_of() { jq -r --arg n "$1" '.[] | select(.name == $n) | .ip' "$WORK/plan.json"; }
MASTER=$(ip_of mariadb-master-0) REPLICA=$(ip_of mariadb-replica-0) REDIS=$(ip_of redis) MAGENTO=$(ip_of magento)
VARNISH_EP=$(runner endpoint varnish 80)   # the Ingress's backend: Service varnish port 80
check "the Ingress's backend (Service varnish:80) leads to the varnish pod's port 6081" test "$VARNISH_EP" = "$(ip_of varnish):6081"
# Traefik's place: TLS with the certificate and key of the Ingress's Secret (from the manifest).
python3 - "$WORK/out/nodectl-shop.yaml" "$WORK/ingress" <<'P'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ing = next(d for d in docs if d["kind"] == "Ingress" and d["spec"].get("tls"))
sec = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ing["spec"]["tls"][0]["secretName"])
for k in ("tls.crt", "tls.key"):
    open(f"{sys.argv[2]}.{k.split('.')[1]}", "w").write(sec["stringData"][k])
P
chmod 0600 "$WORK/ingress.key"

# --- start the pods ------------------------------------------------------------------------------------
NODECTL_RUN_T0=$(date +%s.%N)
runner net-up >"$WORK/net.log" 2>&1
expect_rc_out "pod network up ($NET.1 on the host, pods in $NET.64/26)" 0 $? "$WORK/net.log"
runner start mariadb-master-0 mariadb-replica-0 redis magento varnish >"$WORK/start.log" 2>&1
expect_rc_out "pod_runner starts mariadb-master-0 mariadb-replica-0 redis magento varnish" 0 $? "$WORK/start.log"
setsid socat "OPENSSL-LISTEN:$HP,bind=127.0.0.1,reuseaddr,fork,cert=$WORK/ingress.crt,key=$WORK/ingress.key,verify=0" \
  "TCP:$VARNISH_EP" >"$WORK/tls.log" 2>&1 &
TLSPID=$!
https() { curl -s --max-time 20 --cacert "$WORK/tls.crt" --resolve "shop.test:$HP:127.0.0.1" "$@"; }
wait_until 300 "the shop's page through TLS, varnish and magento" sh -c "curl -sf --max-time 5 --cacert '$WORK/tls.crt' --resolve 'shop.test:$HP:127.0.0.1' -o /dev/null https://shop.test:$HP/cacheable.php"
FIRST=$(python3 -c "import time; print(f'{time.time() - $NODECTL_RUN_T0:.1f}')")
echo "# first request served through Varnish $FIRST s after the runner started the pods"

for p in mariadb-master-0 mariadb-replica-0 magento; do
  runner probe "$p" startup >"$WORK/probe-$p-startup.out" 2>&1
  expect_rc_out "$p: its startupProbe succeeds" 0 $? "$WORK/probe-$p-startup.out"
done
for p in mariadb-master-0 mariadb-replica-0 redis varnish magento; do
  for k in readiness liveness; do
    runner probe "$p" "$k" >"$WORK/probe-$p-$k.out" 2>&1
    expect_rc_out "$p: its ${k}Probe succeeds" 0 $? "$WORK/probe-$p-$k.out"
  done
done

# --- what runs is what the manifest says -----------------------------------------------------------
task_pid() { ctr_ task ls | awk -v n="$PRE-$1" '$1 == n {print $2}'; }
for pc in mariadb-master-0/mariadb mariadb-replica-0/mariadb redis/redis varnish/varnish magento/magento; do
  pod=${pc%/*} c=${pc#*/}
  pid=$(task_pid "$pod-$c")
  want=$(python3 -B -c "
import sys, yaml
sys.path.insert(0, '$SRC/tests/tools')
from pod_runner import ALL_CAPS
for d in yaml.safe_load_all(open('$WORK/out/nodectl-shop.yaml')):
    if d and d['kind'] in ('Deployment', 'StatefulSet') and '$pod'.startswith(d['metadata']['name']):
        c = next(x for x in d['spec']['template']['spec']['containers'] if x['name'] == '$c')
        sc = c['securityContext']
        assert sc['capabilities']['drop'] == ['ALL']
        print('%016x' % sum(1 << ALL_CAPS.index(n) for n in sc['capabilities'].get('add', [])), sc.get('readOnlyRootFilesystem', False))
")
  grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' "/proc/$pid/status" >"$WORK/status-$pod" 2>&1
  contains "$pod: the container's bounding set is exactly the manifest's added capabilities (${want% *})" "$WORK/status-$pod" "^CapBnd:[[:space:]]+${want% *}$"
  contains "$pod: no_new_privs (allowPrivilegeEscalation: false)" "$WORK/status-$pod" '^NoNewPrivs:[[:space:]]+1$'
  contains "$pod: seccomp filter on (RuntimeDefault)" "$WORK/status-$pod" '^Seccomp:[[:space:]]+2$'
  ctr_ task exec --exec-id "rw$RANDOM" "$PRE-$pod-$c" sh -c 'echo x >/probe-rw' >/dev/null 2>&1
  rc=$?
  if [ "${want#* }" = True ]; then
    check "$pod: the root filesystem is read-only (a write to / fails)" test "$rc" != 0
  else
    check "$pod: the root filesystem is writable as the manifest says" test "$rc" = 0
  fi
done
ctr_ task exec --exec-id "mode$RANDOM" "$PRE-magento-magento" stat -c '%a %u' /run/secrets/db/password >"$WORK/secret-mode" 2>&1
contains "magento: the db Secret is projected with defaultMode 0400, owned by root" "$WORK/secret-mode" '^400 0$'
tr '\0' '\n' <"/proc/$(task_pid magento-magento)/environ" >"$WORK/magento-env" 2>&1
contains "magento: envFrom the magento ConfigMap (MAGENTO_DB_HOST=mariadb-master:3306)" "$WORK/magento-env" '^MAGENTO_DB_HOST=mariadb-master:3306$'
lacks "magento: no secret value in the environment (they are files)" "$WORK/magento-env" "$(cat "$WORK/secrets/db")"

# --- HTTPS -> Varnish -> Magento ----------------------------------------------------------------------
PAGE=/cacheable.php?page=$RANDOM   # not the URL the wait above may have cached
https -D "$WORK/h1" -o "$WORK/b1" "https://shop.test:$HP$PAGE"
https -D "$WORK/h2" -o "$WORK/b2" "https://shop.test:$HP$PAGE"
contains "HTTPS (the Ingress's certificate, verified) -> Varnish -> Magento: 200" "$WORK/h1" '^HTTP/1.1 200'
contains_text "... rendered by PHP in the magento pod" "$WORK/b1" "rendered "
contains "... the first request a miss" "$WORK/h1" '^X-Cache: MISS'
contains "... the second a hit from Varnish's cache" "$WORK/h2" '^X-Cache: HIT'
check "... with the same body" cmp -s "$WORK/b1" "$WORK/b2"
https -o /dev/null -w '%{http_code}\n' "https://shop.test:$HP/?id=1%20UNION%20SELECT%201,2" >"$WORK/sqli"
contains "UNION SELECT through HTTPS and Varnish gets 403" "$WORK/sqli" '^403$'
https -o /dev/null -w '%{http_code}\n' "https://shop.test:$HP/?q=union+jackets" >"$WORK/benign"
contains "... an ordinary query passes (200)" "$WORK/benign" '^200$'

# --- a PHP session lands in Redis -------------------------------------------------------------------
https -c "$WORK/jar" -b "$WORK/jar" "https://shop.test:$HP/" >"$WORK/s1.json"
https -c "$WORK/jar" -b "$WORK/jar" "https://shop.test:$HP/" >"$WORK/s2.json"
check "session counter 1 then 2 through HTTPS and Varnish" test "$(jq -r .n "$WORK/s1.json")/$(jq -r .n "$WORK/s2.json")" = 1/2
SID=$(jq -r .session_id "$WORK/s1.json")
rcli() { REDISCLI_AUTH=$(cat "$WORK/secrets/redis") redis-cli --no-auth-warning -h "$REDIS" -p 6379 "$@"; }
rcli -n 2 --scan --pattern "*$SID*" >"$WORK/redis-keys" 2>&1
contains "the session ($SID) is a key in the redis pod (db 2)" "$WORK/redis-keys" "PHPREDIS_SESSION:$SID"
redis-cli -h "$REDIS" -p 6379 ping >"$WORK/redis-noauth" 2>&1
contains_text "... and the redis pod refuses a client without the Secret's password" "$WORK/redis-noauth" NOAUTH

# --- a write on the master appears on the replica --------------------------------------------------------
printf '[client]\nuser=magento\npassword="%s"\n' "$(cat "$WORK/secrets/db")" >"$WORK/app.cnf"
chmod 0600 "$WORK/app.cnf"
sql() { mariadb --defaults-extra-file="$WORK/app.cnf" -h "$1" -P 3306 --batch --skip-column-names magento -e "$2"; }
sql "$MASTER" "CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(64)); INSERT INTO probe VALUES (1, 'first'), (2, 'second'); CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)); INSERT INTO big (v) SELECT MD5(seq) FROM seq_1_to_2000;" >"$WORK/write.out" 2>&1
expect_rc_out "a write on the master (user magento, password from the db Secret)" 0 $? "$WORK/write.out"
wait_until 30 "the 2000 rows on the replica" sh -c "[ \"\$(mariadb --defaults-extra-file=$WORK/app.cnf -h $REPLICA --batch --skip-column-names magento -e 'SELECT COUNT(*) FROM big')\" = 2000 ]"
sql "$REPLICA" "SELECT note FROM probe WHERE id = 2" >"$WORK/replica.out" 2>&1
contains "... appears on the replica" "$WORK/replica.out" '^second$'
sql "$REPLICA" "SELECT @@server_id, @@read_only" >"$WORK/replica-id.out" 2>&1
contains "the replica's server id is 100 + its pod index (\$\$ and fieldRef as Kubernetes expands them), read-only" "$WORK/replica-id.out" $'^100\t1$'
https -c "$WORK/jar" -b "$WORK/jar" "https://shop.test:$HP/" >"$WORK/s3.json"
check "the magento pod reads the rows from the master and the replica by their Service names" \
  test "$(jq -c '[.master.rows, .replica.rows]' "$WORK/s3.json")" = '[["first","second"],["first","second"]]'

# --- monitoring: the exporter sidecars, Prometheus finding them by DNS SRV, an alert to a webhook -------
# Exporters: each sidecar reports its service up, over the pod's loopback, as its own user.
for spec in mariadb-master-0:9104:mysql_up mariadb-replica-0:9104:mysql_up redis:9121:redis_up varnish:9131:varnish_up magento:9117:apache_up; do
  IFS=: read -r pod port metric <<<"$spec"
  wait_until 60 "$pod's $metric 1" sh -c "curl -sf --max-time 5 http://$(ip_of "$pod"):$port/metrics | grep -qx '$metric 1'"
  curl -s --max-time 10 "http://$(ip_of "$pod"):$port/metrics" >"$WORK/metrics-$pod" 2>&1
  contains "$pod: its exporter sidecar (port $port) reports $metric 1" "$WORK/metrics-$pod" "^$metric 1\$"
done
contains "mariadb-replica-0: ... and its replication IO thread running (the exporter user may read SLAVE STATUS)" \
  "$WORK/metrics-mariadb-replica-0" '^mysql_slave_status_slave_io_running\{.*\} 1$'
contains "redis: ... with no scrape error (the exporter ACL user's commands suffice)" "$WORK/metrics-redis" '^redis_exporter_last_scrape_error\{err=""\} 0$'
for spec in mariadb-master-0:exporter-db redis:exporter-redis; do
  IFS=: read -r pod secret <<<"$spec"
  pids=$(ctr_ task ps "$PRE-$pod-exporter" | awk 'NR > 1 {print $1}' | tr '\n' ' ')
  for pid in $pids; do
    tr '\0' '\n' <"/proc/$pid/environ"
    tr '\0' ' ' <"/proc/$pid/cmdline"
    echo
  done >"$WORK/exporter-env-$pod" 2>&1
  check "$pod: the exporter's processes ($pids) have its password in neither their environment nor their arguments" \
    sh -c '[ -n "$2" ] && [ -s "$1" ] && ! grep -qF -- "$2" "$1"' _ "$WORK/exporter-env-$pod" "$(cat "$WORK/secrets/$secret")"
done
# The replica's own exporter user exists and was not replicated from the master (sql_log_bin = 0).
ctr_ task exec --exec-id "binlog$RANDOM" "$PRE-mariadb-master-0-mariadb" sh -c \
  'mariadb --batch --skip-column-names -e "SHOW BINLOG EVENTS" | grep -ci exporter' >"$WORK/binlog-exporter" 2>&1
contains "the master's binary log names no exporter user (each server's is its own)" "$WORK/binlog-exporter" '^0$'
# A DNS server in CoreDNS's place: the SRV records of the headless COMPONENT-metrics Services.
dns=(--host-record="shop.test,$NET.1")   # the site's host name: where "Traefik" listens for the pods
for spec in mariadb-master:mariadb-master-0:9104 mariadb-replica:mariadb-replica-0:9104 redis:redis:9121 varnish:varnish:9131 magento:magento:9117; do
  IFS=: read -r comp pod port <<<"$spec"
  t=$pod.$comp-metrics.shop.svc.cluster.local
  dns+=("--srv-host=_metrics._tcp.$comp-metrics.shop.svc.cluster.local,$t,$port" "--host-record=$t,$(ip_of "$pod")")
done
setsid dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address="$NET.1" --port 53 --log-facility=- "${dns[@]}" >"$WORK/dnsmasq.log" 2>&1 &
DNSPID=$!
# The webhook Alertmanager posts to: each body on one line.
setsid python3 - "$NET.1" "$WHP" "$WORK/hooks" >"$WORK/hook.log" 2>&1 <<'P' &
import http.server, sys
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b" " + body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((host, port), Hook).serve_forever()
P
HOOKPID=$!
mon plan >"$WORK/mon-plan.json"
PROM=$(jq -r '.[] | select(.name == "prometheus") | .ip' "$WORK/mon-plan.json")
# Traefik's place for the pods too: the same certificate on the bridge address.
setsid socat "OPENSSL-LISTEN:$HP,bind=$NET.1,reuseaddr,fork,cert=$WORK/ingress.crt,key=$WORK/ingress.key,verify=0" \
  "TCP:$VARNISH_EP" >"$WORK/tls-pods.log" 2>&1 &
TLS2PID=$!
mon start prometheus alertmanager blackbox-exporter >"$WORK/mon-start.log" 2>&1
expect_rc_out "pod_runner starts the monitoring namespace's prometheus, alertmanager and blackbox-exporter pods (on the same bridge)" 0 $? "$WORK/mon-start.log"
for p in prometheus alertmanager blackbox-exporter; do
  mon probe "$p" readiness >"$WORK/probe-$p.out" 2>&1
  expect_rc_out "$p: its readinessProbe succeeds" 0 $? "$WORK/probe-$p.out"
done
promq() { curl -s --max-time 10 "http://$PROM:9090/api/v1/$1"; }
wait_until 90 "Prometheus: 5 stack targets up" sh -c "curl -s --max-time 5 'http://$PROM:9090/api/v1/query?query=sum(up%7Bjob%3D%22stack%22%7D)' | jq -e '.data.result[0].value[1] == \"5\"'"
promq targets >"$WORK/targets.json"
jq -r '.data.activeTargets[] | select(.labels.job == "stack") | "\(.labels.component) \(.health)"' "$WORK/targets.json" | sort >"$WORK/targets.txt"
check "Prometheus found the five exporters through the SRV records and scrapes each (up)" test "$(cat "$WORK/targets.txt" | tr '\n' ' ')" = \
  "magento up mariadb-master up mariadb-replica up redis up varnish up "
promq rules >"$WORK/rules.json"
check "Prometheus loaded nodectl's alert rules from the ConfigMap" test "$(jq '[.data.groups[].rules[]] | length' "$WORK/rules.json")" -ge 11
promq alertmanagers >"$WORK/ams.json"
check "... and sends to the alertmanager Service's pod" test "$(jq '.data.activeAlertmanagers | length' "$WORK/ams.json")" = 1
# The certificate as a customer's browser gets it (blackbox exporter -> https://shop.test:PORT/): the
# test's certificate is valid for 2 days, so TLSCertificateExpiringSoon fires and reaches the webhook.
NOT_AFTER=$(date -d "$(openssl x509 -enddate -noout -in "$WORK/tls.crt" | cut -d= -f2)" +%s)
wait_until 60 "Prometheus: the certificate's expiry" sh -c "curl -s --max-time 5 'http://$PROM:9090/api/v1/query?query=probe_ssl_earliest_cert_expiry' | jq -e '.data.result | length == 1'"
promq "query?query=probe_ssl_earliest_cert_expiry" >"$WORK/expiry.json"
check "Prometheus has the site's certificate expiry from the blackbox probe of https://shop.test:$HP/ ($NOT_AFTER)" \
  test "$(jq -r '.data.result[0].value[1]' "$WORK/expiry.json")" = "$NOT_AFTER"
wait_until 90 "TLSCertificateExpiringSoon at the webhook" grep -q '"status":"firing".*"alertname":"TLSCertificateExpiringSoon"' "$WORK/hooks"
contains "TLSCertificateExpiringSoon (2 days left) fired and reached the webhook" "$WORK/hooks" '"alertname":"TLSCertificateExpiringSoon"'
# Replication stopped: ReplicaNotRunning fires after its 2 minutes (the cron, PURGE and backup checks
# below run meanwhile) and reaches the webhook; started again, it resolves.
ctr_ task exec --exec-id "stop$RANDOM" "$PRE-mariadb-replica-0-mariadb" mariadb -e 'STOP SLAVE IO_THREAD' >"$WORK/stop-slave" 2>&1
expect_rc_out "replication stopped on the replica (STOP SLAVE IO_THREAD)" 0 $? "$WORK/stop-slave"

# --- Magento's cron: the magento-cron StatefulSet's one pod -------------------------------------------------
# Its container loops `php bin/magento cron:run` (the stand-in records each run on the master) every 60 s.
runner start magento-cron-0 >"$WORK/cron-start.log" 2>&1
expect_rc_out "pod_runner starts magento-cron-0 (image pinned by digest, found under NAME@DIGEST)" 0 $? "$WORK/cron-start.log"
wait_until 90 "a cron run recorded on the master" sh -c "mariadb --defaults-extra-file=$WORK/app.cnf -h $MASTER --batch --skip-column-names magento \
  -e 'SELECT COUNT(*) FROM cron_runs WHERE finished IS NOT NULL' 2>/dev/null | grep -qx 1"
sql "$MASTER" "SELECT who, finished IS NOT NULL FROM cron_runs" >"$WORK/cron-runs" 2>&1
contains "... its cron:run ran to the end on the master, as www-data, with no replica in env.php" "$WORK/cron-runs" \
  $'^www-data replica=none\t1$'
check "... once: the loop waits 60 s before the next run" test "$(wc -l <"$WORK/cron-runs")" = 1

# --- PURGE: accepted from the pod network, refused from elsewhere ------------------------------------------
V=http://$VARNISH_EP
# The same Host header as the page's requests: Varnish's cache key is host + URL.
purge() { curl -s -o /dev/null -w '%{http_code}\n' -X PURGE -H "Host: shop.test:$HP" "$V$PAGE"; }
ip netns exec "$PRE-magento" bash -c "$(declare -f purge); HP=$HP V=$V PAGE='$PAGE' purge" >"$WORK/purge-pod"
contains "PURGE from the magento pod ($MAGENTO, in purge_acl $NET.64/26) is accepted (200)" "$WORK/purge-pod" '^200$'
https -D "$WORK/h3" -o /dev/null "https://shop.test:$HP$PAGE"
contains "... the next request is a miss" "$WORK/h3" '^X-Cache: MISS'
purge >"$WORK/purge-host"
contains "PURGE from the host ($NET.1, outside the pod network) is refused (405)" "$WORK/purge-host" '^405$'
https -D "$WORK/h4" -o /dev/null "https://shop.test:$HP$PAGE"
contains "... and the page stays cached" "$WORK/h4" '^X-Cache: HIT'

# --- the backup CronJob's container: to s3rver, restored into a fresh MariaDB --------------------------------
start_s3rver "$WORK/s3"
runner run-job backup >"$WORK/job.out" 2>&1
expect_rc_out "the backup CronJob's pod (nodectl backup run in the nodectl image) exits 0" 0 $? "$WORK/job.out"
cp "$ST/logs/backup-job_backup.log" "$WORK/backup-job.log" 2>/dev/null
contains_text "... it dumped the magento database" "$WORK/backup-job.log" "dumping database magento"
ID=$(grep -o 'target s3: [^ ]* written' "$WORK/backup-job.log" | head -1 | awk '{print $3}')
ID=$(basename "${ID:-none}"); ID=${ID%%.*}
find "$WORK/s3" -type f | grep -q "shop/$ID"
check "... the archive $ID is in the s3rver bucket" test $? = 0
runner start mariadb-master-0 --as mariadb-fresh >"$WORK/fresh.out" 2>&1
expect_rc_out "a fresh MariaDB from the master's template (new volume)" 0 $? "$WORK/fresh.out"
FRESH=$(tail -1 "$WORK/fresh.out" | awk '{print $NF}')   # "CONTAINER ADDRESS"
wait_until 120 "the fresh MariaDB at $FRESH" sh -c "mariadb --defaults-extra-file=$WORK/app.cnf -h $FRESH --batch -e 'SELECT 1' magento"
sql "$FRESH" "SHOW TABLES" >"$WORK/fresh-tables" 2>&1
check "... which starts empty" test ! -s "$WORK/fresh-tables"
runner run-job backup --name restore -- /usr/bin/tini -- /usr/local/bin/nodectl backup -p /etc/nodectl/profile.toml \
  restore "$ID" --db magento --force --db-host "$FRESH" --db-port 3306 >"$WORK/restore.out" 2>&1
expect_rc_out "nodectl backup restore (the same pod template) into the fresh MariaDB" 0 $? "$WORK/restore.out"
for t in probe big; do
  sql "$MASTER" "CHECKSUM TABLE $t" | awk '{print $2}' >"$WORK/ck-master-$t"
  sql "$FRESH" "CHECKSUM TABLE $t" | awk '{print $2}' >"$WORK/ck-fresh-$t"
  check "CHECKSUM TABLE $t: master $(cat "$WORK/ck-master-$t") = restored $(cat "$WORK/ck-fresh-$t")" \
    sh -c "[ -s '$WORK/ck-master-$t' ] && cmp -s '$WORK/ck-master-$t' '$WORK/ck-fresh-$t'"
done

# --- monitoring, continued: the replica alert fires, then resolves ---------------------------------
wait_until 200 "ReplicaNotRunning firing at the webhook" grep -q '"status":"firing".*"alertname":"ReplicaNotRunning"' "$WORK/hooks"
contains "ReplicaNotRunning fired and Alertmanager posted it to the webhook (the URL from the Secret)" "$WORK/hooks" \
  '^/alerts/token-[0-9]* .*"status":"firing".*"alertname":"ReplicaNotRunning".*"namespace":"shop"'
ctr_ task exec --exec-id "start$RANDOM" "$PRE-mariadb-replica-0-mariadb" mariadb -e 'START SLAVE IO_THREAD' >"$WORK/start-slave" 2>&1
expect_rc_out "replication started again" 0 $? "$WORK/start-slave"
wait_until 120 "ReplicaNotRunning resolved at the webhook" grep -q '"status":"resolved".*"alertname":"ReplicaNotRunning"' "$WORK/hooks"
contains "... and once it runs, the webhook is told the alert is resolved" "$WORK/hooks" '"status":"resolved".*"alertname":"ReplicaNotRunning"'
lacks "no other alert fired meanwhile" "$WORK/hooks" '"alertname":"(MariaDBDown|RedisDown|ReplicaLagging|VarnishHitRatioCollapsed)"'

# --- SIGTERM (what kubelet sends first) stops every pod cleanly, within its grace period -----------
# tini (root) forwards the signal to the service (another user): without CAP_KILL it cannot, dies,
# and the service is killed outright.
for pc in magento-cron-0/cron mariadb-replica-0/mariadb mariadb-master-0/mariadb redis/redis varnish/varnish magento/magento; do
  pod=${pc%/*} c=${pc#*/}
  ctr_ task kill "$PRE-$pod-$c" >/dev/null 2>&1
  wait_until 60 "$pod to stop after SIGTERM" ! task_running "$PRE-$pod-$c"
  check "$pod: SIGTERM stops it within its grace period" test $? = 0
  lacks "$pod: ... tini forwarded the signal (no 'Operation not permitted')" "$ST/logs/${pod}_$c.log" "FATAL tini|forwarding signal"
done
contains_text "mariadb-master-0: ... and MariaDB shut down cleanly" "$ST/logs/mariadb-master-0_mariadb.log" "Shutdown complete"
contains_text "redis: ... and Redis shut down cleanly" "$ST/logs/redis_redis.log" "ready to exit, bye bye"

echo "# suite ran in $(($(date +%s) - T0)) s; first request through Varnish after $FIRST s"
finish

#!/usr/bin/env bash
# The stack images (images/*) built by `nodectl image build`, imported into a containerd of this
# test's own (temp root/state/socket) and run with `ctr run --net-host` on free loopback ports with
# temp volumes, each proving its service:
#   redis          NOAUTH without the password, PONG with it; maxmemory/policy from the config
#   mysql          master + replica: first start initialises, a row replicates, the application
#                  user cannot write on the replica, both restart without re-initialising and
#                  replication resumes; a foreign non-empty datadir is refused
#   magento        Apache + mod_php serving the stand-in project (tests/integration/data/magento-app:
#                  Magento cannot be downloaded here) with sessions in the redis container and
#                  queries to the master and replica; production php.ini values; env.php written
#   varnish        in front of magento: second request a hit, PURGE allowed from 127.0.0.1 (in the
#                  ACL) and refused from 127.0.0.2, SQL-injection probes answered 403
# Images are built into NODECTL_TEST_IMAGES_OUT (default build/test-images), reused across runs:
# the builder's cache makes an unchanged rebuild quick.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ctrd.sh"
source "$(dirname "$0")/lib_services.sh"

for p in containerd runc redis-tools mariadb-client curl jq; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || { echo "missing $p (scripts/setup.sh)"; exit 1; }
done

# A namespace of this run's own (NS, lib_ctrd.sh): runc keeps container state under
# /run/containerd/runc/<namespace>, outside containerd's --state, so a shared name could collide.
mkdir -p "$WORK/logs" "$WORK/secrets"
RUNNING=()   # containers to stop at exit

# exec_ CONTAINER CMD...: run CMD in the running container (stdout; stderr to $WORK/exec.err).
# ctr sometimes returns before a short-lived exec's output is copied: one retry on empty output.
EXEC_N=0
exec_() {
  local name=$1 out
  shift
  for _ in 1 2; do
    EXEC_N=$((EXEC_N + 1))
    out=$(ctr_ task exec --exec-id "x$EXEC_N" "$name" "$@" 2>>"$WORK/exec.err")
    [ -n "$out" ] && break
    sleep 1
  done
  printf '%s\n' "$out"
}
# `ctr run IMAGE ID CMD...` replaces the image's entrypoint too: one-off commands name it again.
EP=(/usr/bin/tini -- /usr/local/bin/docker-entrypoint.sh)

# start NAME IMAGE [ctr run options...]: a detached container, its output in $WORK/logs/NAME.log
start() {
  local name=$1 image=$2
  shift 2
  ctr_ run -d --net-host --log-uri "file://$WORK/logs/$name.log" "$@" "localhost/nodectl/$image:latest" "$name" \
    >"$WORK/logs/$name.ctr" 2>&1 || { echo "cannot start $name:"; cat "$WORK/logs/$name.ctr"; return 1; }
  RUNNING+=("$name")
}
# stop NAME: SIGTERM (the service shuts down cleanly), SIGKILL after 30 s; container removed.
stop() {
  local name=$1
  ctr_ task kill "$name" >/dev/null 2>&1
  wait_until 30 "$name to stop after SIGTERM" ! task_running "$name"
  ctr_ task kill -s SIGKILL "$name" >/dev/null 2>&1
  ctr_ task delete "$name" >/dev/null 2>&1
  ctr_ container rm "$name" >/dev/null 2>&1
  local keep=() r
  for r in "${RUNNING[@]}"; do [ "$r" = "$name" ] || keep+=("$r"); done
  RUNNING=("${keep[@]}")
}
stop_all() {
  local r f
  if [ "$FAILED" -gt 0 ]; then
    for f in "$WORK"/logs/*.log; do
      [ -f "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -15 "$f" | sed 's/^/      | /'; }
    done
  fi
  for r in "${RUNNING[@]}"; do stop "$r"; done
  stop_services
  ctrd_stop
}
trap 'rc=$?; stop_all; (exit $rc); cleanup' EXIT

# --- build and import --------------------------------------------------------------------------
T0=$(date +%s)
build_stack_images redis varnish mysql-master mysql-replica magento
ctrd_start || exit 1
ctrd_import redis varnish mysql-master mysql-replica magento

# secrets: files 0600, bind-mounted read-only at /run/secrets/<name>
secret() { printf '%s' "$2" >"$WORK/secrets/$1"; chmod 0600 "$WORK/secrets/$1"; }
smount() { echo "type=bind,src=$WORK/secrets/$1,dst=/run/secrets/${2:-$1},options=rbind:ro"; }
REDIS_PW="r3dis-$RANDOM-pw\"x"
APP_PW="app-$RANDOM-'pw"
REPL_PW="repl-$RANDOM-pw"
secret redis_password "$REDIS_PW"
secret mysql_password "$APP_PW"
secret mysql_replication_password "$REPL_PW"

# --- redis ---------------------------------------------------------------------------------------
RP=$(free_port)
mkdir -p "$WORK/redis-data"
start redis redis --env REDIS_PORT="$RP" --env REDIS_BIND=127.0.0.1 --mount "$(smount redis_password)" \
  --mount "type=bind,src=$WORK/redis-data,dst=/data,options=rbind:rw"
rcli() { redis-cli --no-auth-warning -h 127.0.0.1 -p "$RP" "$@"; }
wait_until 20 "redis on port $RP (NOAUTH)" sh -c "redis-cli -h 127.0.0.1 -p $RP ping 2>&1 | grep -q NOAUTH"
rcli ping >"$WORK/redis-noauth.out" 2>&1
contains_text "redis: a command without the password gets NOAUTH" "$WORK/redis-noauth.out" "NOAUTH"
REDISCLI_AUTH=wrong rcli ping >"$WORK/redis-wrong.out" 2>&1
contains "redis: a wrong password is refused" "$WORK/redis-wrong.out" "WRONGPASS|invalid password"
REDISCLI_AUTH=$REDIS_PW rcli ping >"$WORK/redis-pong.out" 2>&1
contains "redis: with the password (from the secret file): PONG" "$WORK/redis-pong.out" '^PONG$'
REDISCLI_AUTH=$REDIS_PW rcli config get maxmemory-policy >"$WORK/redis-cfg.out" 2>&1
REDISCLI_AUTH=$REDIS_PW rcli config get maxmemory >>"$WORK/redis-cfg.out" 2>&1
REDISCLI_AUTH=$REDIS_PW rcli config get protected-mode >>"$WORK/redis-cfg.out" 2>&1
contains "redis: maxmemory-policy allkeys-lru" "$WORK/redis-cfg.out" '^allkeys-lru$'
contains "redis: maxmemory 1gb (1073741824)" "$WORK/redis-cfg.out" '^1073741824$'
contains "redis: protected-mode yes" "$WORK/redis-cfg.out" '^yes$'
rpid=$(ctr_ task ls | awk '$1 == "redis" {print $2}')
ruid=$(exec_ redis id -u redis)
check "redis: the server runs as the image's redis user (uid ${ruid:-?}), not root" \
  sh -c "[ -n '$ruid' ] && [ '$ruid' != 0 ] && pgrep -P '$rpid' -u '$ruid' -x redis-server >/dev/null"
lacks "redis: the password is not in the container log" "$WORK/logs/redis.log" "r3dis-"
ctr_ run --rm --net-host localhost/nodectl/redis:latest redis-nopw >"$WORK/redis-nopw.out" 2>&1
expect_rc_out "redis: a start without any password is refused" 1 $? "$WORK/redis-nopw.out"
contains_text "redis: ... and says why" "$WORK/redis-nopw.out" "no password"

# --- mysql master + replica ---------------------------------------------------------------------
MP=$(free_port)
SP=$(free_port)
mkdir -p "$WORK/mysql-master" "$WORK/mysql-replica"
master_opts=(--env MYSQL_PORT="$MP" --env MYSQL_BIND_ADDRESS=127.0.0.1 --env MYSQL_DATABASE=magento --env MYSQL_MAX_CONNECTIONS=77
  --env MYSQL_USER=magento --mount "$(smount mysql_password)" --mount "$(smount mysql_replication_password)"
  --mount "type=bind,src=$WORK/mysql-master,dst=/var/lib/mysql,options=rbind:rw")
replica_opts=(--env MYSQL_PORT="$SP" --env MYSQL_BIND_ADDRESS=127.0.0.1 --env MYSQL_MASTER_HOST=127.0.0.1
  --env MYSQL_MASTER_PORT="$MP" --env MYSQL_MASTER_WAIT_INTERVAL=1 --env MYSQL_MASTER_WAIT_TRIES=90
  --mount "$(smount mysql_replication_password)"
  --mount "type=bind,src=$WORK/mysql-replica,dst=/var/lib/mysql,options=rbind:rw")
# The replica starts first: its first start has to wait for the master.
start mysql-replica mysql-replica "${replica_opts[@]}"
sleep 2
start mysql-master mysql-master "${master_opts[@]}"
printf '[client]\nuser=magento\npassword="%s"\n' "$(printf '%s' "$APP_PW" | sed 's/[\\"]/\\&/g')" >"$WORK/app.cnf"
chmod 0600 "$WORK/app.cnf"
sql() { local port=$1; shift; mariadb --defaults-extra-file="$WORK/app.cnf" -h 127.0.0.1 -P "$port" --batch --skip-column-names magento "$@"; }
wait_until 90 "mysql-master on port $MP" sql "$MP" -e 'SELECT 1'
sql_ok() { sql "$1" -e 'SELECT 1' >/dev/null 2>&1; }
# replica_note_is ID NOTE: the replica's probe row ID has NOTE (replicated)
replica_note_is() { [ "$(sql "$SP" -e "SELECT note FROM probe WHERE id = $1")" = "$2" ]; }
check "mysql-master: the application user (password from the secret) can log in" sql_ok "$MP"
wait_until 90 "mysql-replica on port $SP" sql "$SP" -e 'SELECT 1'
check "mysql-replica: the application user exists on the replica (replicated)" sql_ok "$SP"
sql "$MP" -e 'SELECT @@server_id, @@max_connections, @@binlog_format, @@log_bin, @@read_only' >"$WORK/master-vars.out" 2>&1
contains "mysql-master: server_id 1, max_connections from the environment (77), binlog ROW, log_bin on, writable" \
  "$WORK/master-vars.out" $'^1\t77\tROW\t1\t0$'
sql "$SP" -e 'SELECT @@server_id, @@read_only, @@gtid_strict_mode' >"$WORK/replica-vars.out" 2>&1
contains "mysql-replica: its own server_id 2, read_only, GTID strict mode" "$WORK/replica-vars.out" $'^2\t1\t1$'
contains_text "mysql-replica: the first start waited for the master" "$WORK/logs/mysql-replica.log" "waiting for master 127.0.0.1:$MP"
contains_text "mysql-master: first start initialised the empty datadir" "$WORK/logs/mysql-master.log" "initialising the empty datadir"
sql "$MP" -e "CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(64)); INSERT INTO probe VALUES (1, 'before-restart');"
expect_rc "mysql-master: create a table and write a row" 0 $?
wait_until 30 "the row replicated to mysql-replica" replica_note_is 1 before-restart
sql "$SP" -e 'SELECT note FROM probe WHERE id = 1' >"$WORK/replica-row.out" 2>&1
contains "mysql-replica: the master's row is on the replica (within 30 s)" "$WORK/replica-row.out" '^before-restart$'
sql "$SP" -e "INSERT INTO probe VALUES (2, 'written-on-replica')" >"$WORK/replica-write.out" 2>&1
expect_rc_out "mysql-replica: a write by the application user is refused" 1 $? "$WORK/replica-write.out"
contains_text "mysql-replica: ... because the replica is read-only" "$WORK/replica-write.out" "read-only"
sql "$SP" -e 'SELECT COUNT(*) FROM probe WHERE id = 2' >"$WORK/replica-count.out" 2>&1
contains "mysql-replica: ... and the row is not there" "$WORK/replica-count.out" '^0$'
exec_ mysql-replica mariadb -e 'SHOW SLAVE STATUS\G' >"$WORK/slave-status.out"
contains "mysql-replica: replication uses GTIDs (Using_Gtid: Slave_Pos)" "$WORK/slave-status.out" 'Using_Gtid: Slave_Pos'
contains "mysql-replica: both replication threads run" "$WORK/slave-status.out" 'Slave_SQL_Running: Yes'
sql "$SP" -e 'SELECT @@gtid_slave_pos' >"$WORK/gtid-pos.out" 2>&1
contains "mysql-replica: gtid_slave_pos follows the master (domain 0, server 1)" "$WORK/gtid-pos.out" '^0-1-[0-9]+$'
contains "mysql-replica: master.info says using_gtid=2 (slave_pos)" "$WORK/mysql-replica/master.info" "^using_gtid=2$"
mariadb-binlog "$WORK/mysql-master/mysql-bin.000001" >"$WORK/binlog.txt" 2>&1
contains "mysql-master: the binary log holds the user's password hash..." "$WORK/binlog.txt" "IDENTIFIED BY PASSWORD '\\*[0-9A-F]{40}'"
lacks "mysql-master: ... never the password" "$WORK/binlog.txt" "app-[0-9]+-"
touch "$WORK/mysql-master/nodectl-test-marker" "$WORK/mysql-replica/nodectl-test-marker"

# restart both: the datadirs are kept, the replica resumes by itself
stop mysql-replica
stop mysql-master
start mysql-master mysql-master "${master_opts[@]}" --env MYSQL_PASSWORD=must-not-be-used
start mysql-replica mysql-replica "${replica_opts[@]}"
wait_until 60 "mysql-master back on port $MP" sql "$MP" -e 'SELECT 1'
wait_until 60 "mysql-replica back on port $SP" sql "$SP" -e 'SELECT 1'
check "mysql-master: restarted; the application password is unchanged (no re-initialisation)" sql_ok "$MP"
grep -c "initialising the empty datadir" "$WORK/logs/mysql-master.log" >"$WORK/init-count.out"
contains "mysql-master: initialised once only (one 'initialising' line in the log of both starts)" "$WORK/init-count.out" '^1$'
contains_text "mysql-master: the restart found the datadir initialised" "$WORK/logs/mysql-master.log" "is initialised already"
contains_text "mysql-replica: the restart found the datadir initialised" "$WORK/logs/mysql-replica.log" "is initialised already"
check "mysql: marker files in both datadirs survived" test -e "$WORK/mysql-master/nodectl-test-marker" -a -e "$WORK/mysql-replica/nodectl-test-marker"
sql "$SP" -e 'SELECT note FROM probe WHERE id = 1' >"$WORK/replica-row2.out" 2>&1
contains "mysql-replica: the row from before the restart is still there" "$WORK/replica-row2.out" '^before-restart$'
sql "$MP" -e "INSERT INTO probe VALUES (3, 'after-restart')"
expect_rc "mysql-master: write after the restart" 0 $?
wait_until 30 "the new row replicated after the restart" replica_note_is 3 after-restart
sql "$SP" -e 'SELECT note FROM probe WHERE id = 3' >"$WORK/replica-row3.out" 2>&1
contains "mysql-replica: replication resumed after the restart (new row arrives within 30 s)" "$WORK/replica-row3.out" '^after-restart$'

mkdir -p "$WORK/foreign-datadir"
echo "not a database" >"$WORK/foreign-datadir/keep.txt"
ctr_ run --rm --net-host --env MYSQL_PORT="$(free_port)" --mount "$(smount mysql_password)" \
  --mount "$(smount mysql_replication_password)" \
  --mount "type=bind,src=$WORK/foreign-datadir,dst=/var/lib/mysql,options=rbind:rw" \
  localhost/nodectl/mysql-master:latest mysql-foreign >"$WORK/foreign.out" 2>&1
expect_rc_out "mysql-master: a non-empty datadir that is not MariaDB's is refused" 1 $? "$WORK/foreign.out"
contains_text "mysql-master: ... with the reason" "$WORK/foreign.out" "refusing to initialise"
check "mysql-master: ... and left untouched" sh -c "[ \"\$(ls -A $WORK/foreign-datadir)\" = keep.txt ]"

# --- magento (Apache + PHP) with redis sessions and the master/replica --------------------------
AP=$(free_port)
VP=$(free_port)
secret magento_db_password "$APP_PW"
secret magento_redis_password "$REDIS_PW"
sql "$MP" -e "INSERT INTO probe VALUES (4, 'token-$RANDOM$RANDOM')"
token=$(sql "$MP" -e 'SELECT note FROM probe WHERE id = 4')
start magento magento --env APACHE_PORT="$AP" --env APACHE_BIND_ADDRESS=127.0.0.1 \
  --env MAGENTO_DB_HOST="127.0.0.1:$MP" --env MAGENTO_DB_REPLICA_HOST="127.0.0.1:$SP" \
  --env MAGENTO_DB_NAME=magento --env MAGENTO_DB_USER=magento \
  --env MAGENTO_REDIS_HOST="127.0.0.1:$RP" --env MAGENTO_VARNISH_HOSTS="127.0.0.1:$VP" \
  --mount "$(smount magento_db_password)" --mount "$(smount magento_redis_password)"
wait_until 30 "magento's Apache on port $AP" curl -sf -o /dev/null "http://127.0.0.1:$AP/static/test.css"
curl -s -c "$WORK/jar" -b "$WORK/jar" "http://127.0.0.1:$AP/" >"$WORK/page1.json" 2>&1
curl -s -D "$WORK/page2.headers" -c "$WORK/jar" -b "$WORK/jar" "http://127.0.0.1:$AP/" >"$WORK/page2.json" 2>&1
jget() { jq -r "$2" "$1" 2>/dev/null; }
jqtrue() { jq -e "$@" >/dev/null 2>&1; }
check "magento: PHP answers through Apache (mod_php, apache2handler)" test "$(jget "$WORK/page1.json" .sapi)" = apache2handler
contains "magento: Apache 2.4 serves it" "$WORK/page2.headers" '^Server: Apache'
check "magento: PHP sessions use the redis handler" test "$(jget "$WORK/page1.json" .session_handler)" = redis
sid=$(jget "$WORK/page2.json" .session_id)
check "magento: the session survives between requests (counter 1 then 2, same id)" \
  test "$(jget "$WORK/page1.json" .n)/$(jget "$WORK/page2.json" .n)/$(jget "$WORK/page1.json" .session_id)" = "1/2/$sid"
REDISCLI_AUTH=$REDIS_PW rcli -n 2 exists "PHPREDIS_SESSION:$sid" >"$WORK/session-key.out" 2>&1
contains "magento: the session is stored in the redis container (db 2, PHPREDIS_SESSION:<id>)" "$WORK/session-key.out" '^1$'
REDISCLI_AUTH=$REDIS_PW rcli -n 2 get "PHPREDIS_SESSION:$sid" >"$WORK/session-val.out" 2>&1
contains_text "magento: ... holding the counter" "$WORK/session-val.out" 'n|i:2;'
check "magento: a query to the master through env.php's connection returns the row written there" \
  jqtrue --arg t "$token" '.master.ok and any(.master.rows[]; . == $t)' "$WORK/page2.json"
check "magento: ... and the replica (slave_connection) has it too" \
  jqtrue '.replica.ok and any(.replica.rows[]; . == "before-restart")' "$WORK/page2.json"
check "magento: production php.ini under mod_php (memory_limit 2G, max_input_vars 100000)" \
  test "$(jget "$WORK/page2.json" '.ini.memory_limit + "/" + .ini.max_input_vars')" = 2G/100000
check "magento: opcache on, validate_timestamps off" \
  test "$(jget "$WORK/page2.json" '.ini["opcache.enable"] + "/" + .ini["opcache.validate_timestamps"] + "/" + (.ini.opcache_running | tostring)')" = "1/0/true"
contains "magento: mod_headers sets the security headers" "$WORK/page2.headers" '^X-Content-Type-Options: nosniff'
curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$AP/no/such/page" >"$WORK/rewrite.out"
contains "magento: mod_rewrite sends unknown URLs to pub/index.php (200)" "$WORK/rewrite.out" '^200$'
curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$AP/.htaccess" >"$WORK/dotfile.out"
contains "magento: dot files are denied (403)" "$WORK/dotfile.out" '^403$'
exec_ magento sh -c 'stat -c "%a %U:%G" app/etc/env.php; cat app/etc/env.php' >"$WORK/env.php.out"
contains "magento: env.php is 0640 root:www-data" "$WORK/env.php.out" '^640 root:www-data$'
contains "magento: env.php has the DB master" "$WORK/env.php.out" "'host' => '127.0.0.1:$MP'"
contains "magento: env.php has the replica as slave_connection" "$WORK/env.php.out" "'slave_connection'"
contains "magento: env.php has Redis sessions" "$WORK/env.php.out" "'save' => 'redis'"
contains "magento: env.php has the Redis cache backend" "$WORK/env.php.out" "Backend..Redis"
contains "magento: env.php lists the Varnish host" "$WORK/env.php.out" "'port' => '$VP'"
lacks "magento: no password in the container log" "$WORK/logs/magento.log" "app-[0-9]+-|r3dis-"
exec_ magento sh -c 'APACHE_LISTEN=1 APACHE_SERVER_NAME=x; export APACHE_LISTEN APACHE_SERVER_NAME; . /etc/apache2/envvars; apache2 -M 2>&1' >"$WORK/apache-mods.out"
for m in rewrite headers php mpm_prefork; do
  contains "magento: Apache module $m is loaded" "$WORK/apache-mods.out" "^ ${m}_module"
done
# The same image runs other commands (cron jobs) through the entrypoint, as www-data.
ctr_ run --rm --net-host --env MAGENTO_DB_HOST="127.0.0.1:$MP" --mount "$(smount magento_db_password)" \
  localhost/nodectl/magento:latest magento-cli "${EP[@]}" sh -c 'id -un; php -m; command -v composer; command -v s3fs' >"$WORK/php-m.out" 2>&1
expect_rc_out "magento: the image runs a one-off command (exec \"\$@\")" 0 $? "$WORK/php-m.out"
contains "magento: ... as www-data" "$WORK/php-m.out" '^www-data$'
missing=""
for e in bcmath ctype curl dom gd intl mbstring pdo_mysql SimpleXML soap sodium xsl zip "Zend OPcache" redis; do
  grep -qix -- "$e" "$WORK/php-m.out" || missing="$missing $e"
done
check "magento: PHP has every extension Magento 2.4 needs, and redis (missing:${missing:- none})" test -z "$missing"
contains "magento: composer and s3fs are installed" "$WORK/php-m.out" '/composer$'
contains "magento: ... s3fs" "$WORK/php-m.out" '/s3fs$'
ctr_ run --rm --net-host --env MAGENTO_S3_MEDIA=1 --env MAGENTO_S3_BUCKET=media \
  localhost/nodectl/magento:latest magento-s3fail "${EP[@]}" true >"$WORK/s3-fail.out" 2>&1
expect_rc_out "magento: S3 media enabled without credentials: the start fails" 1 $? "$WORK/s3-fail.out"
contains_text "magento: ... loudly, naming what is missing" "$WORK/s3-fail.out" "/run/secrets/s3_credentials"

# --- magento: pub/media from S3 (s3rver on loopback) through s3fs inside the container ----------
# FUSE inside the container needs /dev/fuse and CAP_SYS_ADMIN: --privileged here.
if [ -x "$S3RVER" ]; then
  start_s3rver "$WORK/s3rver" media
  aws_env
  echo "image bytes $RANDOM" >"$WORK/x.jpg"
  aws s3 cp "$WORK/x.jpg" s3://media/catalog/product/x.jpg --only-show-errors
  expect_rc "s3: an object put into the bucket with awscli" 0 $?
  secret s3_credentials "S3RVER:S3RVER"
  AP3=$(free_port)
  s3_opts=(--privileged --env APACHE_PORT="$AP3" --env APACHE_BIND_ADDRESS=127.0.0.1 --env MAGENTO_S3_MEDIA=1
    --env MAGENTO_S3_BUCKET=media --env MAGENTO_S3_OPTIONS=use_path_request_style --mount "$(smount s3_credentials)")
  start magento-s3 magento "${s3_opts[@]}" --env MAGENTO_S3_URL="http://127.0.0.1:$S3PORT"
  wait_until 30 "magento (S3 media) on port $AP3" curl -sf -o /dev/null "http://127.0.0.1:$AP3/static/test.css"
  contains_text "magento+s3: the entrypoint mounted s3://media on pub/media" "$WORK/logs/magento-s3.log" "s3://media mounted on /var/www/html/pub/media"
  curl -s -o "$WORK/x.got" "http://127.0.0.1:$AP3/media/catalog/product/x.jpg"
  check "magento+s3: Apache serves the object from the bucket at /media/..." cmp -s "$WORK/x.jpg" "$WORK/x.got"
  exec_ magento-s3 sh -c 'echo uploaded-in-container > pub/media/from-container.txt && sync && echo written' >"$WORK/s3-write.out"
  contains "magento+s3: a file written to pub/media in the container..." "$WORK/s3-write.out" '^written$'
  check "magento+s3: ... is an object in the bucket" \
    test "$(aws s3 cp s3://media/from-container.txt - --only-show-errors 2>/dev/null)" = uploaded-in-container
  stop magento-s3
  # The same with an endpoint where nothing listens: the start must fail, not serve an empty pub/media.
  ctr_ run --rm --net-host "${s3_opts[@]}" --env MAGENTO_S3_URL="http://127.0.0.1:$(free_port)" --env MAGENTO_S3_WAIT=5 \
    localhost/nodectl/magento:latest magento-s3-down >"$WORK/s3-down.out" 2>&1
  expect_rc_out "magento+s3: S3 unreachable: the container exits with an error" 1 $? "$WORK/s3-down.out"
  contains "magento+s3: ... saying the mount did not come up" "$WORK/s3-down.out" "s3fs could not mount|is not mounted on"
  stop_s3rver
else
  fail "s3rver is not installed at $S3RVER (scripts/setup.sh)"
fi

# --- varnish in front of magento ------------------------------------------------------------------
start varnish varnish --env VARNISH_BACKEND_HOST=127.0.0.1 --env VARNISH_BACKEND_PORT="$AP" \
  --env VARNISH_LISTEN="127.0.0.1:$VP" --env VARNISH_PURGE_ACL=127.0.0.1 --env VARNISH_STORAGE_SIZE=64m
wait_until 30 "varnish on port $VP" curl -sf -o /dev/null "http://127.0.0.1:$VP/static/test.css"
V=http://127.0.0.1:$VP
vpid=$(ctr_ task ls | awk '$1 == "varnish" {print $2}')
ps -o args= --ppid "$vpid" >"$WORK/varnishd.args" 2>&1
contains "varnish: varnishd -F runs with the storage size from the environment (malloc,64m)" "$WORK/varnishd.args" '^varnishd -F .*-s malloc,64m'
contains_text "varnish: ... and the VCL rendered at start" "$WORK/varnishd.args" "-f /run/varnish/default.vcl"
curl -s -D "$WORK/v1.h" -o "$WORK/v1.body" "$V/cacheable.php"
curl -s -D "$WORK/v2.h" -o "$WORK/v2.body" "$V/cacheable.php"
contains "varnish: the page comes from magento through varnish (200)" "$WORK/v1.h" '^HTTP/1.1 200'
contains_text "varnish: ... rendered by PHP" "$WORK/v1.body" "rendered "
contains "varnish: first request is a miss" "$WORK/v1.h" '^X-Cache: MISS'
contains "varnish: the second identical request is a cache hit" "$WORK/v2.h" '^X-Cache: HIT'
check "varnish: ... with the same rendering (served from the cache)" cmp -s "$WORK/v1.body" "$WORK/v2.body"
curl -s -o /dev/null -w '%{http_code}\n' -X PURGE --interface 127.0.0.2 "$V/cacheable.php" >"$WORK/purge-other.out"
contains "varnish: PURGE from 127.0.0.2 (not in the ACL) is refused (405)" "$WORK/purge-other.out" '^405$'
curl -s -D "$WORK/v3.h" -o "$WORK/v3.body" "$V/cacheable.php"
contains "varnish: ... and the object is still cached" "$WORK/v3.h" '^X-Cache: HIT'
curl -s -o /dev/null -w '%{http_code}\n' -X PURGE "$V/cacheable.php" >"$WORK/purge-acl.out"
contains "varnish: PURGE from 127.0.0.1 (in the ACL) works (200)" "$WORK/purge-acl.out" '^200$'
curl -s -D "$WORK/v4.h" -o "$WORK/v4.body" "$V/cacheable.php"
contains "varnish: ... the next request is a miss" "$WORK/v4.h" '^X-Cache: MISS'
contains_text "varnish: ... rendered by PHP again" "$WORK/v4.body" "rendered "
check "varnish: ... rendered anew" sh -c "! cmp -s '$WORK/v1.body' '$WORK/v4.body'"
for u in '/?id=1%20UNION%20SELECT' '/?id=1%20union%20all%20select%201,2' '/?id=%55nion+%53elect' \
  '/catalog?q=1/**/UNION/**/SELECT' '/?id=1%20AND%20SLEEP(5)' '/?q=(select%20password%20from%20admin)'; do
  curl -s -o /dev/null -w '%{http_code}\n' "$V$u" >"$WORK/sqli.out"
  contains "varnish: SQL-injection probe $u gets 403" "$WORK/sqli.out" '^403$'
done
curl -s -o /dev/null -w '%{http_code}\n' "$V/?id=1" >"$WORK/benign.out"
contains "varnish: an ordinary query string passes (200)" "$WORK/benign.out" '^200$'
curl -s -o /dev/null -w '%{http_code}\n' "$V/?q=selection+of+union+jackets" >"$WORK/benign2.out"
contains "varnish: words like 'selection'/'union' alone pass (200)" "$WORK/benign2.out" '^200$'
curl -s -o /dev/null -H 'Cookie: PHPSESSID=abc' "$V/static/test.css"
curl -s -D "$WORK/static.h" -o /dev/null -H 'Cookie: PHPSESSID=def' "$V/static/test.css"
contains "varnish: static files are cached whatever the visitor's cookies" "$WORK/static.h" '^X-Cache: HIT'
curl -s -c "$WORK/vjar" -b "$WORK/vjar" "$V/" >"$WORK/vs1.json"
curl -s -c "$WORK/vjar" -b "$WORK/vjar" "$V/" >"$WORK/vs2.json"
check "varnish: session pages are not cached (counter 1 then 2 through varnish)" \
  test "$(jget "$WORK/vs1.json" .n)/$(jget "$WORK/vs2.json" .n)" = 1/2

echo "# suite ran in $(($(date +%s) - T0)) s"
finish

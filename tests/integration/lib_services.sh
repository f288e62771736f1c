# Services the suites run on loopback, started one way (source after lib.sh):
#   start_mariadb NAME PASSWORD  mariadbd (as root, --no-defaults) with its datadir, socket and log in
#                                $WORK/db-NAME, on a free loopback port (DB_PORT_NAME); root@localhost
#                                and root@'127.0.0.1' get PASSWORD; its pid is added to PIDS
#   start_s3rver DIR [BUCKET]    s3rver (scripts/setup.sh installs it) on 127.0.0.1, data in DIR,
#                                BUCKET (default backups) configured; the port is S3PORT (picked once,
#                                so a restart keeps it), the pid S3PID, also added to PIDS
#   stop_services                SIGKILL to every pid in PIDS, waited for
S3RVER=/opt/nodectl-test/s3rver/node_modules/.bin/s3rver
PIDS=()

start_mariadb() {
  local n=$1 pw=$2 d=$WORK/db-$1 port
  port=$(free_port)
  mkdir -p "$d"
  mariadb-install-db --no-defaults --user=root --datadir="$d/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$d/install.log" 2>&1 || { cat "$d/install.log"; exit 1; }
  mariadbd --no-defaults --user=root --datadir="$d/data" --socket="$d/sock" --port="$port" --bind-address=127.0.0.1 \
    --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=32M --log-error="$d/error.log" --pid-file="$d/pid" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 150); do mariadb --no-defaults -S "$d/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb --no-defaults -S "$d/sock" -uroot <<SQL || { echo "cannot set up MariaDB $n"; exit 1; }
ALTER USER root@localhost IDENTIFIED BY '$pw';
CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
SQL
  eval "DB_PORT_$n=$port"
}

start_s3rver() {
  local dir=$1 bucket=${2:-backups}
  [ -x "$S3RVER" ] || { echo "missing s3rver at $S3RVER (scripts/setup.sh)"; exit 1; }
  S3PORT=${S3PORT:-$(free_port)}
  mkdir -p "$dir"
  NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$dir" -a 127.0.0.1 -p "$S3PORT" --configure-bucket "$bucket" \
    >>"$WORK/s3rver.log" 2>&1 &
  S3PID=$!
  PIDS+=($S3PID)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && return 0; sleep 0.1; done
  echo "s3rver did not start"; exit 1
}

stop_services() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}

# Services the suites run on loopback (or a node bridge's address), started one way (source after
# lib.sh); a suite's EXIT trap calls stop_services (or stop_s3rver) before cleanup.
#   start_mariadb NAME PASSWORD  mariadbd (as root, --no-defaults) with its datadir, socket and log in
#                                $WORK/db-NAME, on a free loopback port (DB_PORT_NAME); root@localhost
#                                and root@'127.0.0.1' get PASSWORD; its pid is added to PIDS
#   start_s3rver DIR [BUCKET [OPTION...]]
#                                s3rver (scripts/setup.sh installs it) in a session of its own (a
#                                Ctrl-C reaches it only through the trap, after what uses it) on
#                                S3ADDR (default 127.0.0.1), data in DIR, BUCKET (default backups)
#                                configured, OPTIONs passed on (e.g. --service-endpoint localhost);
#                                the port is S3PORT (free_port, picked once unless set before, so a
#                                restart keeps it), the pid S3PID, also in PIDS; log $WORK/s3rver.log
#   stop_s3rver                  SIGKILL to that s3rver, waited for (start_s3rver starts it again)
#   aws_env                      awscli for that s3rver: HOME=$WORK/home, whose ~/.aws holds the
#                                config (us-east-1, path-style) and the credentials (S3RVER's keys,
#                                0600); then `aws ARGS...` runs /usr/bin/aws against S3ADDR:S3PORT
#   s3_target PREFIX             a [[backup.targets]] table "s3" for that s3rver's bucket "backups"
#                                under PREFIX, with the keys in $WORK/s3.cred (KEY=VALUE, 0600)
#   stop_services                SIGKILL to every pid in PIDS, waited for
S3RVER=/opt/nodectl-test/s3rver/node_modules/.bin/s3rver
AWS=/usr/bin/aws
S3ADDR=${S3ADDR:-127.0.0.1}
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
  wait_until 30 "MariaDB $n on $d/sock" mariadb --no-defaults -S "$d/sock" -uroot -e 'SELECT 1'
  mariadb --no-defaults -S "$d/sock" -uroot <<SQL || { echo "cannot set up MariaDB $n"; exit 1; }
ALTER USER root@localhost IDENTIFIED BY '$pw';
CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
SQL
  eval "DB_PORT_$n=$port"
}

start_s3rver() {
  local dir=$1 bucket=${2:-backups}
  shift $(($# < 2 ? $# : 2))
  [ -x "$S3RVER" ] || { echo "missing s3rver at $S3RVER (scripts/setup.sh)"; exit 1; }
  S3PORT=${S3PORT:-$(free_port)}
  mkdir -p "$dir"
  # s3rver 3.7 makes ListObjectsV2 continuation tokens with DES, which Node's OpenSSL 3 only has in
  # its legacy provider.
  NODE_OPTIONS=--openssl-legacy-provider setsid "$S3RVER" -d "$dir" -a "$S3ADDR" -p "$S3PORT" \
    --configure-bucket "$bucket" "$@" >>"$WORK/s3rver.log" 2>&1 &
  S3PID=$!
  PIDS+=("$S3PID")
  wait_until 10 "s3rver on $S3ADDR:$S3PORT" curl -s -o /dev/null "http://$S3ADDR:$S3PORT/" ||
    { echo "s3rver did not start:"; tail -5 "$WORK/s3rver.log"; exit 1; }
}

stop_s3rver() {
  [ -n "${S3PID:-}" ] || return 0
  kill -9 "$S3PID" 2>/dev/null
  wait "$S3PID" 2>/dev/null
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$S3PID" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  S3PID=""
}

aws_env() {
  [ -x "$AWS" ] || { echo "missing awscli at $AWS (scripts/setup.sh)"; exit 1; }
  export HOME=$WORK/home
  mkdir -p "$HOME/.aws"
  printf '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n' >"$HOME/.aws/config"
  install -m 0600 /dev/null "$HOME/.aws/credentials"
  printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$HOME/.aws/credentials"
}
aws() { "$AWS" --endpoint-url "http://$S3ADDR:$S3PORT" --no-cli-pager "$@"; }

s3_target() {
  if [ ! -e "$WORK/s3.cred" ]; then
    install -m 0600 /dev/null "$WORK/s3.cred"
    printf 'AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY=S3RVER\n' >"$WORK/s3.cred"
  fi
  cat <<T
[[backup.targets]]
name = "s3"
type = "s3"
endpoint = "http://$S3ADDR:$S3PORT"
bucket = "backups"
prefix = "$1"
path_style = true
credentials_file = "$WORK/s3.cred"
T
}

stop_services() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}

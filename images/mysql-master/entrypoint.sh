#!/bin/sh
# nodectl MariaDB entrypoint (POSIX sh), shared by the mysql-master and mysql-replica images
# (MYSQL_ROLE in the image config says which one).
#
# `mariadbd [ARGS...]` (the default command):
#   - An empty datadir is initialised once: mariadb-install-db, then a temporary server on a
#     private socket (no network) runs the role's setup, then it is shut down.
#       master:  creates MYSQL_DATABASE, MYSQL_USER (all privileges on that database) and the
#                replication user; these statements go to the binary log, so a replica that
#                starts from the beginning of it gets the same database and users.
#       replica: first waits for the master (MYSQL_MASTER_WAIT_TRIES x MYSQL_MASTER_WAIT_INTERVAL
#                seconds, before touching the datadir), then CHANGE MASTER ... MASTER_USE_GTID=slave_pos.
#   - A non-empty datadir is never initialised again: the server just starts (a replica resumes
#     replication by itself). A datadir that is non-empty but not a MariaDB datadir, or whose first
#     initialisation was interrupted, is refused and left untouched.
#   - When the exporter's password is given (MYSQL_EXPORTER_PASSWORD_FILE), every start creates the
#     user MYSQL_EXPORTER_USER (exporter) @'127.0.0.1' and @'localhost', or sets its password, with
#     PROCESS, REPLICATION CLIENT, SLAVE MONITOR and MAX_USER_CONNECTIONS 3, in a session with
#     sql_log_bin = 0: the user is local to this server (master and replica each make their own) and
#     never replicated. On an initialised datadir this takes a temporary server (no network) first.
#   - Then exec mariadbd as the mysql user, with port, server_id, max_connections, bind address and
#     buffer pool from the environment.
# Anything else: exec "$@" (e.g. `mariadb -h ...`). The image holds MariaDB's server and client
# cores only (no mariadb-admin/mariadb-dump, no Perl, no Galera), so it stays small.
#
# Environment:
#   MYSQL_PORT (3306) MYSQL_BIND_ADDRESS (0.0.0.0) MYSQL_SERVER_ID (master 1, replica 2)
#   MYSQL_MAX_CONNECTIONS (500) MYSQL_INNODB_BUFFER_POOL_SIZE (256M)
#   master:  MYSQL_DATABASE (magento) MYSQL_USER (magento) MYSQL_PASSWORD[_FILE]
#   both:    MYSQL_REPLICATION_USER (repl) MYSQL_REPLICATION_PASSWORD[_FILE]
#            MYSQL_EXPORTER_USER (exporter) MYSQL_EXPORTER_PASSWORD[_FILE] (optional: no exporter user)
#   replica: MYSQL_MASTER_HOST (required) MYSQL_MASTER_PORT (3306)
#            MYSQL_MASTER_WAIT_TRIES (60) MYSQL_MASTER_WAIT_INTERVAL (2)
# A password comes from NAME_FILE, else the NAME variable, else /run/secrets/<name in lower case>
# (e.g. /run/secrets/mysql_password). Passwords never appear in argv or in the log.
set -eu

log() { echo "mysql-entrypoint: $*" >&2; }
die() { echo "mysql-entrypoint: error: $*" >&2; exit 1; }

if [ "${1:-}" != "mariadbd" ] && [ "${1:-}" != "mysqld" ]; then
  exec "$@"
fi
shift

role=${MYSQL_ROLE:-master}
case $role in master | replica) ;; *) die "MYSQL_ROLE=$role: want master or replica" ;; esac
datadir=/var/lib/mysql
marker=$datadir/.nodectl-init-incomplete

# secret NAME: prints the secret from $NAME_FILE, $NAME or /run/secrets/<name>; empty if none.
secret() {
  eval "f=\${${1}_FILE:-}"
  eval "v=\${${1}:-}"
  if [ -z "$f" ] && [ -z "$v" ]; then
    d=/run/secrets/$(printf '%s' "$1" | tr 'A-Z' 'a-z')
    [ -f "$d" ] && f=$d
  fi
  if [ -n "$f" ]; then
    [ -r "$f" ] || die "${1}_FILE=$f: cannot read it"
    cat "$f"
  else
    printf '%s' "$v"
  fi
}
# sql_string VALUE: VALUE as a single-quoted SQL string literal. Lines holding one are written with
# printf '%s\n', never echo: dash's echo would turn the escaped backslashes back into single ones.
sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed "s/[\\\\']/\\\\&/g")"; }
# create_user NAME PASSWORD: SQL creating NAME@'%'. The hash is computed by a SET (never in a
# row-format binary log) and CREATE USER ... IDENTIFIED BY PASSWORD 'hash' is prepared from it,
# so the binary log (and every replica's relay log) holds the hash only.
create_user() {
  printf '%s\n' "SET @nodectl_hash = PASSWORD($(sql_string "$2"));"
  echo "SET @nodectl_sql = CONCAT('CREATE USER ''$1''@''%'' IDENTIFIED BY PASSWORD ''', @nodectl_hash, '''');"
  echo "PREPARE nodectl_stmt FROM @nodectl_sql; EXECUTE nodectl_stmt; DEALLOCATE PREPARE nodectl_stmt;"
  echo "SET @nodectl_hash = NULL, @nodectl_sql = NULL;"
}
# exporter_sql NAME PASSWORD: SQL creating NAME@'127.0.0.1' and NAME@'localhost' for the metrics
# exporter, or setting its password and grants, outside the binary log (local to this server). The
# password reaches the statements as a hash computed by a SET, as in create_user.
exporter_sql() {
  echo "SET SESSION sql_log_bin = 0;"
  printf '%s\n' "SET @nodectl_hash = PASSWORD($(sql_string "$2"));"
  for h in 127.0.0.1 localhost; do
    for verb in 'CREATE USER IF NOT EXISTS' 'ALTER USER'; do
      echo "SET @nodectl_sql = CONCAT('$verb ''$1''@''$h'' IDENTIFIED BY PASSWORD ''', @nodectl_hash, ''' WITH MAX_USER_CONNECTIONS 3');"
      echo "PREPARE nodectl_stmt FROM @nodectl_sql; EXECUTE nodectl_stmt; DEALLOCATE PREPARE nodectl_stmt;"
    done
    echo "GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO '$1'@'$h';"
  done
  echo "SET @nodectl_hash = NULL, @nodectl_sql = NULL;"
}
# ident NAME VALUE: VALUE must be a plain identifier (letters, digits, _).
ident() {
  case $2 in '' | *[!A-Za-z0-9_]*) die "$1=$2: use only letters, digits and _" ;; esac
}
number() {
  case $2 in '' | *[!0-9]*) die "$1=$2: not a number" ;; esac
}

port=${MYSQL_PORT:-3306}
number MYSQL_PORT "$port"
if [ "$role" = master ]; then server_id=${MYSQL_SERVER_ID:-1}; else server_id=${MYSQL_SERVER_ID:-2}; fi
number MYSQL_SERVER_ID "$server_id"
max_connections=${MYSQL_MAX_CONNECTIONS:-500}
number MYSQL_MAX_CONNECTIONS "$max_connections"
bind=${MYSQL_BIND_ADDRESS:-0.0.0.0}
case $bind in '' | *[!0-9A-Fa-f.:]*) die "MYSQL_BIND_ADDRESS=$bind: want an address" ;; esac
pool=${MYSQL_INNODB_BUFFER_POOL_SIZE:-256M}
case $pool in '' | *[!0-9KMGkmg]*) die "MYSQL_INNODB_BUFFER_POOL_SIZE=$pool: want a size like 256M or 4G" ;; esac

mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld
chmod 0755 /run/mysqld
umask 077

# start_temp: a server for setup only, on a private socket, no network, no replication threads.
tmp_socket=/run/mysqld/init.sock
start_temp() {
  setpriv --reuid=mysql --regid=mysql --init-groups mariadbd --datadir="$datadir" --skip-networking \
    --socket="$tmp_socket" --server-id="$server_id" --skip-slave-start >/run/mysqld/init.log 2>&1 &
  temp_pid=$!
  i=0
  while ! mariadb --socket="$tmp_socket" --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 120 ] || ! kill -0 "$temp_pid" 2>/dev/null; then
      cat /run/mysqld/init.log >&2
      die "the temporary server for the first initialisation did not start (log above)"
    fi
    sleep 0.5
  done
}
stop_temp() {
  mariadb --socket="$tmp_socket" -e 'SHUTDOWN' || die "cannot shut down the temporary server"
  wait "$temp_pid" || true
}
run_sql() { mariadb --socket="$tmp_socket" --batch --skip-column-names; }

# The replication account, needed by the replica's first start (the master creates it).
repl_user=${MYSQL_REPLICATION_USER:-repl}
ident MYSQL_REPLICATION_USER "$repl_user"
# The metrics exporter's account, local to each server (optional).
exporter_user=${MYSQL_EXPORTER_USER:-exporter}
ident MYSQL_EXPORTER_USER "$exporter_user"
exporter_password=$(secret MYSQL_EXPORTER_PASSWORD)
unset MYSQL_EXPORTER_PASSWORD

if [ -e "$marker" ]; then
  die "$datadir: a previous first initialisation was interrupted ($marker exists). Nothing was changed; empty the datadir to initialise it again."
fi

if [ -d "$datadir/mysql" ]; then
  log "$datadir is initialised already: starting it as it is ($role, server_id $server_id)"
  if [ -n "$exporter_password" ]; then
    # A temporary server (no network, no replication threads), so the user is right before anyone
    # can connect; the statements are not binary-logged.
    find "$datadir" \! -user mysql -exec chown mysql:mysql {} +
    start_temp
    exporter_sql "$exporter_user" "$exporter_password" | run_sql || {
      stop_temp
      die "creating the exporter user $exporter_user failed"
    }
    stop_temp
    log "exporter user $exporter_user@127.0.0.1 and @localhost ready (not replicated)"
  fi
else
  if [ -n "$(ls -A "$datadir" | grep -v '^lost+found$' || true)" ]; then
    die "$datadir is not empty but holds no MariaDB system database: refusing to initialise over it"
  fi
  repl_password=$(secret MYSQL_REPLICATION_PASSWORD)
  [ -n "$repl_password" ] || die "no replication password: mount /run/secrets/mysql_replication_password or set MYSQL_REPLICATION_PASSWORD_FILE"

  if [ "$role" = master ]; then
    database=${MYSQL_DATABASE:-magento}
    user=${MYSQL_USER:-magento}
    ident MYSQL_DATABASE "$database"
    ident MYSQL_USER "$user"
    password=$(secret MYSQL_PASSWORD)
    [ -n "$password" ] || die "no application password: mount /run/secrets/mysql_password or set MYSQL_PASSWORD_FILE"
  else
    master_host=${MYSQL_MASTER_HOST:-}
    [ -n "$master_host" ] || die "MYSQL_MASTER_HOST is not set: the replica needs its master"
    case $master_host in *[!0-9A-Za-z.:-]*) die "MYSQL_MASTER_HOST=$master_host: want a host name or address" ;; esac
    master_port=${MYSQL_MASTER_PORT:-3306}
    number MYSQL_MASTER_PORT "$master_port"
    tries=${MYSQL_MASTER_WAIT_TRIES:-60}
    interval=${MYSQL_MASTER_WAIT_INTERVAL:-2}
    number MYSQL_MASTER_WAIT_TRIES "$tries"
    number MYSQL_MASTER_WAIT_INTERVAL "$interval"
    # The client reads the password from a 0600 option file, not from argv.
    client_cnf=/run/mysqld/master-client.cnf
    {
      echo "[client]"
      printf 'user=%s\n' "$repl_user"
      printf 'password="%s"\n' "$(printf '%s' "$repl_password" | sed 's/[\\"]/\\&/g')"
    } >"$client_cnf"
    i=1
    while ! mariadb --defaults-extra-file="$client_cnf" --host="$master_host" --port="$master_port" \
      --connect-timeout=5 --batch -e 'SELECT 1' >/run/mysqld/master-wait.log 2>&1; do
      if [ "$i" -ge "$tries" ]; then
        rm -f "$client_cnf"
        cat /run/mysqld/master-wait.log >&2
        die "master $master_host:$master_port not reachable as $repl_user after $tries tries: the datadir is left empty, the next start tries again"
      fi
      log "waiting for master $master_host:$master_port ($i/$tries)"
      i=$((i + 1))
      sleep "$interval"
    done
    rm -f "$client_cnf"
    log "master $master_host:$master_port answers"
  fi

  log "initialising the empty datadir $datadir ($role, server_id $server_id)"
  chown mysql:mysql "$datadir"
  : >"$marker"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db --skip-name-resolve \
    --auth-root-authentication-method=socket >/run/mysqld/install.log 2>&1 || {
    cat /run/mysqld/install.log >&2
    die "mariadb-install-db failed (log above); $datadir is left as it is"
  }
  start_temp
  {
    # Local clean-up, not replicated.
    echo "SET SESSION sql_log_bin = 0;"
    echo "DELETE FROM mysql.global_priv WHERE User = '';"
    echo "DROP DATABASE IF EXISTS test;"
    echo "FLUSH PRIVILEGES;"
    if [ "$role" = master ]; then
      echo "SET SESSION sql_log_bin = 1;"
      echo "CREATE DATABASE \`$database\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"
      # The binary log gets the password hash, never the password (see create_user).
      create_user "$user" "$password"
      echo "GRANT ALL PRIVILEGES ON \`$database\`.* TO '$user'@'%';"
      create_user "$repl_user" "$repl_password"
      echo "GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO '$repl_user'@'%';"
    else
      echo "CHANGE MASTER TO MASTER_HOST=$(sql_string "$master_host"), MASTER_PORT=$master_port,"
      printf '%s\n' "  MASTER_USER='$repl_user', MASTER_PASSWORD=$(sql_string "$repl_password"),"
      echo "  MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;"
    fi
    [ -z "$exporter_password" ] || exporter_sql "$exporter_user" "$exporter_password"
  } | run_sql || {
    stop_temp
    die "the first-initialisation SQL failed; $datadir keeps $marker, so it is not reused half-done"
  }
  stop_temp
  rm -f "$marker"
  unset password repl_password
  [ -z "$exporter_password" ] || log "exporter user $exporter_user@127.0.0.1 and @localhost ready (not replicated)"
  log "first initialisation done"
fi

unset exporter_password
# The volume may be a fresh bind mount owned by root.
find "$datadir" \! -user mysql -exec chown mysql:mysql {} +

log "starting mariadbd ($role) on $bind:$port, server_id $server_id, max_connections $max_connections"
exec mariadbd --user=mysql --port="$port" --bind-address="$bind" --server-id="$server_id" \
  --max-connections="$max_connections" --innodb-buffer-pool-size="$pool" "$@"

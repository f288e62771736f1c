#!/bin/sh
# nodectl mysqld-exporter image entrypoint (POSIX sh).
#
# `mysqld_exporter [ARGS...]` (the default command): reads the password from
# MYSQLD_EXPORTER_PASSWORD_FILE (required; may be 0400 of root), writes /run/exporter/my.cnf
# ([client] user, password, host, port; 0600, owned by the prometheus user), then runs, as that user,
#   prometheus-mysqld-exporter --config.my-cnf=/run/exporter/my.cnf --web.listen-address=:9104 ARGS...
# The password is never in argv, in the log or in the exporter's environment (DATA_SOURCE_NAME, which
# the exporter would prefer over the file, is removed from it).
# Environment: MYSQLD_EXPORTER_HOST (127.0.0.1) MYSQLD_EXPORTER_PORT (3306)
#   MYSQLD_EXPORTER_USER (exporter) MYSQLD_EXPORTER_PASSWORD_FILE (required)
# Anything else: exec "$@".
set -eu

die() { echo "mysqld-exporter-entrypoint: error: $*" >&2; exit 1; }

case ${1:-} in
  mysqld_exporter | prometheus-mysqld-exporter) shift ;;
  *) exec "$@" ;;
esac

host=${MYSQLD_EXPORTER_HOST:-127.0.0.1}
port=${MYSQLD_EXPORTER_PORT:-3306}
user=${MYSQLD_EXPORTER_USER:-exporter}
case $host in '' | *[!0-9A-Za-z.:-]*) die "MYSQLD_EXPORTER_HOST=$host: want a host name or address" ;; esac
case $port in '' | *[!0-9]*) die "MYSQLD_EXPORTER_PORT=$port: not a port number" ;; esac
case $user in '' | *[!A-Za-z0-9_]*) die "MYSQLD_EXPORTER_USER=$user: use only letters, digits and _" ;; esac
file=${MYSQLD_EXPORTER_PASSWORD_FILE:-}
[ -n "$file" ] || die "MYSQLD_EXPORTER_PASSWORD_FILE is not set: mount the exporter's password and name it"
[ -r "$file" ] || die "MYSQLD_EXPORTER_PASSWORD_FILE=$file: cannot read it"
password=$(cat "$file")
[ -n "$password" ] || die "MYSQLD_EXPORTER_PASSWORD_FILE=$file is empty"
# The exporter reads my.cnf with go-ini: a value in backquotes is taken as it is (with # and ;).
case $password in
  *"
"* | *'`'*) die "the password contains a newline or a backquote, which the exporter's my.cnf cannot hold" ;;
esac

dir=/run/exporter
mkdir -p "$dir" || die "$dir cannot be created: it must be a writable volume"
chown prometheus:prometheus "$dir"
chmod 0700 "$dir"
umask 077
cnf=$dir/my.cnf
{
  echo "[client]"
  echo "user=$user"
  # shellcheck disable=SC2016 # the backquotes are go-ini's quotes, not a command
  printf 'password=`%s`\n' "$password"
  echo "host=$host"
  echo "port=$port"
} >"$cnf.tmp"
chown prometheus:prometheus "$cnf.tmp"
chmod 0600 "$cnf.tmp"
mv -f "$cnf.tmp" "$cnf"
unset password DATA_SOURCE_NAME MYSQLD_EXPORTER_PASSWORD

echo "mysqld-exporter-entrypoint: $user@$host:$port, listening on :9104" >&2
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all \
  prometheus-mysqld-exporter --config.my-cnf="$cnf" --web.listen-address=:9104 "$@"

#!/bin/sh
# nodectl redis-exporter image entrypoint (POSIX sh).
#
# `redis_exporter [ARGS...]` (the default command): reads the password from
# REDIS_EXPORTER_PASSWORD_FILE (required; may be 0400 of root) and writes the exporter's password
# file /run/exporter/redis-password.json ({"ADDR": "PASSWORD"}, 0600, the prometheus user), then
# runs, as that user,
#   prometheus-redis-exporter --redis.addr=ADDR --redis.user=USER
#     --redis.password-file=/run/exporter/redis-password.json --web.listen-address=:9121 ARGS...
# The password is never in argv or the log. Only when /run/exporter cannot be written (a read-only
# root filesystem without a volume there) does it go to the exporter through its REDIS_PASSWORD
# environment variable instead (the log says so).
# Environment: REDIS_EXPORTER_ADDR (redis://127.0.0.1:6379) REDIS_EXPORTER_USER (exporter)
#   REDIS_EXPORTER_PASSWORD_FILE (required)
#   REDIS_EXPORTER_CONFIG_COMMAND ("-" in the image: no CONFIG GET, which the redis image's exporter
#   user may not run); the exporter reads it, and its other REDIS_EXPORTER_* variables, itself.
# Anything else: exec "$@".
set -eu

log() { echo "redis-exporter-entrypoint: $*" >&2; }
die() { echo "redis-exporter-entrypoint: error: $*" >&2; exit 1; }

case ${1:-} in
  redis_exporter | prometheus-redis-exporter) shift ;;
  *) exec "$@" ;;
esac

addr=${REDIS_EXPORTER_ADDR:-redis://127.0.0.1:6379}
user=${REDIS_EXPORTER_USER:-exporter}
case $addr in
  redis://* | rediss://* | unix://*) ;;
  *) addr=redis://$addr ;;
esac
case $addr in *[!0-9A-Za-z.:/_-]*) die "REDIS_EXPORTER_ADDR=$addr: want redis://host:port" ;; esac
case $user in '' | *[!0-9A-Za-z._-]*) die "REDIS_EXPORTER_USER=$user: use only letters, digits, '.', '_' and '-'" ;; esac
file=${REDIS_EXPORTER_PASSWORD_FILE:-}
[ -n "$file" ] || die "REDIS_EXPORTER_PASSWORD_FILE is not set: mount the exporter's password and name it"
[ -r "$file" ] || die "REDIS_EXPORTER_PASSWORD_FILE=$file: cannot read it"
password=$(cat "$file")
[ -n "$password" ] || die "REDIS_EXPORTER_PASSWORD_FILE=$file is empty"
if printf '%s' "$password" | LC_ALL=C grep -q '[[:cntrl:]]'; then
  die "the password contains a control character (newline, tab, ...)"
fi
# Variables the exporter itself would read.
unset REDIS_PASSWORD REDIS_PASSWORD_FILE REDIS_USER REDIS_ADDR

umask 077
dir=/run/exporter
pwfile=$dir/redis-password.json
if mkdir -p "$dir" 2>/dev/null && touch "$pwfile.tmp" 2>/dev/null; then
  chown prometheus:prometheus "$dir"
  chmod 0700 "$dir"
  # JSON string: backslash and double quote escaped (control characters were refused above).
  printf '{"%s": "%s"}\n' "$addr" "$(printf '%s' "$password" | sed 's/[\\"]/\\&/g')" >"$pwfile.tmp"
  chown prometheus:prometheus "$pwfile.tmp"
  chmod 0600 "$pwfile.tmp"
  mv -f "$pwfile.tmp" "$pwfile"
  unset password
  set -- --redis.password-file="$pwfile" "$@"
  how="password file $pwfile"
else
  log "$dir is not writable (no volume there?): the password goes to the exporter in its environment"
  REDIS_PASSWORD=$password
  export REDIS_PASSWORD
  unset password
  how="password in the exporter's environment"
fi

log "$user@$addr ($how); metrics on :9121 unless the arguments say otherwise"
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all \
  prometheus-redis-exporter --redis.addr="$addr" --redis.user="$user" --web.listen-address=:9121 "$@"

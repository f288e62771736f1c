#!/bin/sh
# nodectl redis image entrypoint (POSIX sh).
#
# `redis-server [ARGS...]` (the default command): writes /run/redis/redis.conf (mode 0600, owner
# redis) from the environment, then runs redis-server as the redis user. Anything else: exec "$@".
#
# Environment (defaults in the image config):
#   REDIS_PASSWORD_FILE  file holding the password (default /run/secrets/redis_password if it exists)
#   REDIS_PASSWORD       the password itself (used only when no file is given)
#   REDIS_PORT (6379)  REDIS_BIND (0.0.0.0)  REDIS_MAXMEMORY (1gb)  REDIS_MAXMEMORY_POLICY (allkeys-lru)
#   REDIS_PERSISTENCE    none | rdb | aof | rdb+aof (default rdb)
#   REDIS_EXPORTER_PASSWORD_FILE  optional: a file holding the password of the ACL user `exporter`
#                        (REDIS_EXPORTER_USER) for the metrics exporter, which may run only the
#                        commands redis_exporter needs to report (see EXPORTER_ACL below); no keys,
#                        no channels. The default user and its password are unchanged.
# The password never appears in argv or in the log; a start without any password is refused.
set -eu

die() { echo "redis-entrypoint: error: $*" >&2; exit 1; }

if [ "${1:-}" != "redis-server" ]; then
  exec "$@"
fi
shift

file=${REDIS_PASSWORD_FILE:-}
if [ -z "$file" ] && [ -z "${REDIS_PASSWORD:-}" ] && [ -f /run/secrets/redis_password ]; then
  file=/run/secrets/redis_password
fi
if [ -n "$file" ]; then
  [ -r "$file" ] || die "REDIS_PASSWORD_FILE=$file: cannot read it"
  password=$(cat "$file")
else
  password=${REDIS_PASSWORD:-}
fi
unset REDIS_PASSWORD
[ -n "$password" ] || die "no password: mount it at /run/secrets/redis_password, or set REDIS_PASSWORD_FILE or REDIS_PASSWORD"
case $password in
  *"
"*) die "the password contains a newline" ;;
esac

port=${REDIS_PORT:-6379}
case $port in '' | *[!0-9]*) die "REDIS_PORT=$port: not a port number" ;; esac
maxmemory=${REDIS_MAXMEMORY:-1gb}
case $maxmemory in '' | *[!0-9a-zA-Z]*) die "REDIS_MAXMEMORY=$maxmemory: want a size like 1gb or 512mb" ;; esac
policy=${REDIS_MAXMEMORY_POLICY:-allkeys-lru}
case $policy in
  volatile-lru | allkeys-lru | volatile-lfu | allkeys-lfu | volatile-random | allkeys-random | volatile-ttl | noeviction) ;;
  *) die "REDIS_MAXMEMORY_POLICY=$policy: not a Redis maxmemory policy" ;;
esac
bind=${REDIS_BIND:-0.0.0.0}
case $bind in '' | *[!0-9a-fA-F.:\ -]*) die "REDIS_BIND=$bind: want addresses separated by spaces" ;; esac

case ${REDIS_PERSISTENCE:-rdb} in
  none) persistence='save ""
appendonly no' ;;
  rdb) persistence='appendonly no' ;;
  aof) persistence='save ""
appendonly yes' ;;
  rdb+aof | aof+rdb) persistence='appendonly yes' ;;
  *) die "REDIS_PERSISTENCE=${REDIS_PERSISTENCE}: want none, rdb, aof or rdb+aof" ;;
esac

# The metrics exporter's ACL user: only the commands redis_exporter 1.45 runs by default, found with
# ACL LOG, without CONFIG GET (it would show the default user's password; the redis-exporter image
# turns that collector off) and SLOWLOG GET (slow commands' arguments are data; denied, the
# exporter goes on without it); no key and no channel. The password is stored as its SHA-256.
EXPORTER_ACL="-@all +info +client|setname +slowlog|len +latency|latest"
exporter_rule=""
if [ -n "${REDIS_EXPORTER_PASSWORD_FILE:-}" ]; then
  f=$REDIS_EXPORTER_PASSWORD_FILE
  [ -r "$f" ] || die "REDIS_EXPORTER_PASSWORD_FILE=$f: cannot read it"
  exporter_user=${REDIS_EXPORTER_USER:-exporter}
  case $exporter_user in '' | default | *[!0-9A-Za-z._-]*) die "REDIS_EXPORTER_USER=$exporter_user: want letters, digits, '.', '_' or '-' (and not default)" ;; esac
  exporter_password=$(cat "$f")
  [ -n "$exporter_password" ] || die "REDIS_EXPORTER_PASSWORD_FILE=$f is empty"
  hash=$(printf '%s' "$exporter_password" | sha256sum | cut -d' ' -f1)
  exporter_rule="user $exporter_user reset on #$hash resetkeys resetchannels $EXPORTER_ACL"
  unset hash exporter_password
fi

# Escape for a Redis double-quoted string: backslash and double quote.
quoted=$(printf '%s' "$password" | sed 's/[\\"]/\\&/g')

mkdir -p /run/redis
chown redis:redis /run/redis
chmod 0700 /run/redis
umask 077
conf=/run/redis/redis.conf
tmp=$conf.tmp.$$
{
  echo "include /etc/redis/redis.conf"
  echo "port $port"
  echo "bind $bind"
  echo "maxmemory $maxmemory"
  echo "maxmemory-policy $policy"
  echo "$persistence"
  printf 'requirepass "%s"\n' "$quoted"
  [ -z "$exporter_rule" ] || echo "$exporter_rule"
} >"$tmp"
chown redis:redis "$tmp"
mv -f "$tmp" "$conf"
unset password quoted

# The data volume may be a fresh bind mount owned by root.
[ "$(stat -c %U /data)" = redis ] || chown redis:redis /data

echo "redis-entrypoint: port $port, bind $bind, maxmemory $maxmemory $policy, persistence ${REDIS_PERSISTENCE:-rdb}${exporter_rule:+, ACL user $exporter_user for the exporter}" >&2
exec setpriv --reuid=redis --regid=redis --init-groups --inh-caps=-all redis-server "$conf" "$@"

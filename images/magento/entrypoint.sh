#!/bin/sh
# nodectl magento image entrypoint (POSIX sh). At every start, whatever the command:
#   1. when MAGENTO_S3_MEDIA=1, mounts pub/media from S3 with s3fs and fails (exit 1, with s3fs's
#      messages) when the mount is not up within MAGENTO_S3_WAIT seconds;
#   2. writes app/etc/env.php settings from the environment (write-env-php.php: DB master and
#      replica, Redis sessions and cache, Varnish hosts) and PHP's Redis session settings;
#   3. `apache2-foreground` (the default command) runs Apache in the foreground on APACHE_PORT;
#      anything else is exec'd as MAGENTO_CMD_USER (default www-data), so the same image runs
#      cron jobs: e.g. `php bin/magento cron:run`.
#
# Environment: APACHE_PORT (80) APACHE_BIND_ADDRESS (all) APACHE_SERVER_NAME (localhost)
#   MAGENTO_DB_HOST[:PORT] MAGENTO_DB_NAME MAGENTO_DB_USER MAGENTO_DB_PASSWORD[_FILE] MAGENTO_DB_REPLICA_HOST[:PORT]
#   MAGENTO_REDIS_HOST[:PORT] MAGENTO_REDIS_PASSWORD[_FILE] MAGENTO_REDIS_SESSION_DB (2) MAGENTO_REDIS_CACHE_DB (0)
#   MAGENTO_VARNISH_HOSTS (host:port,...) MAGENTO_CRYPT_KEY[_FILE] MAGENTO_MODE MAGENTO_ADMIN_FRONTNAME
#   MAGENTO_S3_MEDIA (0|1) MAGENTO_S3_BUCKET MAGENTO_S3_URL MAGENTO_S3_OPTIONS MAGENTO_S3_WAIT (15)
#   MAGENTO_S3_CREDENTIALS_FILE (default /run/secrets/s3_credentials; s3fs format ACCESS_KEY:SECRET_KEY)
#   MAGENTO_CMD_USER (www-data)
set -eu

log() { echo "magento-entrypoint: $*" >&2; }
die() { echo "magento-entrypoint: error: $*" >&2; exit 1; }

root=${MAGENTO_ROOT:-/var/www/html}
mkdir -p /run/nodectl
chmod 0755 /run/nodectl

# --- 1. pub/media on S3 -------------------------------------------------------------------------
case ${MAGENTO_S3_MEDIA:-0} in
  1 | yes | true)
    bucket=${MAGENTO_S3_BUCKET:-}
    [ -n "$bucket" ] || die "MAGENTO_S3_MEDIA is on but MAGENTO_S3_BUCKET is not set"
    case $bucket in *[!A-Za-z0-9.:/_-]*) die "MAGENTO_S3_BUCKET=$bucket: not a bucket name" ;; esac
    creds=${MAGENTO_S3_CREDENTIALS_FILE:-/run/secrets/s3_credentials}
    [ -r "$creds" ] || die "MAGENTO_S3_MEDIA is on but $creds (ACCESS_KEY:SECRET_KEY) cannot be read"
    # s3fs insists on a credentials file nobody else can read: a private copy.
    (umask 077 && cp "$creds" /run/nodectl/s3fs.passwd)
    media=$root/pub/media
    mkdir -p "$media"
    if mountpoint -q "$media"; then
      die "$media is already a mount point: refusing to mount S3 over it"
    fi
    [ -e /dev/fuse ] || die "/dev/fuse is missing: run the container with the fuse device and CAP_SYS_ADMIN (e.g. ctr run --privileged, or --device /dev/fuse --cap-add CAP_SYS_ADMIN)"
    opts="passwd_file=/run/nodectl/s3fs.passwd,allow_other,uid=33,gid=33,umask=0022,mp_umask=0022,retries=3,connect_timeout=10"
    [ -n "${MAGENTO_S3_URL:-}" ] && opts="$opts,url=$MAGENTO_S3_URL"
    [ -n "${MAGENTO_S3_OPTIONS:-}" ] && opts="$opts,$MAGENTO_S3_OPTIONS"
    log "mounting s3://$bucket on $media (${MAGENTO_S3_URL:-default endpoint})"
    s3fs "$bucket" "$media" -o "$opts" >/run/nodectl/s3fs.log 2>&1 || {
      cat /run/nodectl/s3fs.log >&2
      die "s3fs could not mount s3://$bucket on $media (messages above)"
    }
    wait=${MAGENTO_S3_WAIT:-15}
    i=0
    until mountpoint -q "$media" && ls "$media" >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -gt $((wait * 2)) ]; then
        cat /run/nodectl/s3fs.log >&2
        umount "$media" 2>/dev/null || true
        die "s3://$bucket is not mounted on $media after ${wait}s: not starting with an empty media directory"
      fi
      sleep 0.5
    done
    log "s3://$bucket mounted on $media"
    ;;
  0 | no | false | '') ;;
  *) die "MAGENTO_S3_MEDIA=${MAGENTO_S3_MEDIA}: want 0 or 1" ;;
esac

# --- 2. env.php and PHP session settings --------------------------------------------------------
php /usr/local/lib/nodectl/write-env-php.php "$root" /run/nodectl/php-session.ini

# --- 3. the command -------------------------------------------------------------------------------
if [ "${1:-}" = "apache2-foreground" ]; then
  shift
  port=${APACHE_PORT:-80}
  case $port in '' | *[!0-9]*) die "APACHE_PORT=$port: not a port number" ;; esac
  if [ -n "${APACHE_BIND_ADDRESS:-}" ]; then
    APACHE_LISTEN="$APACHE_BIND_ADDRESS:$port"
  else
    APACHE_LISTEN=$port
  fi
  APACHE_SERVER_NAME=${APACHE_SERVER_NAME:-localhost}
  export APACHE_LISTEN APACHE_SERVER_NAME
  # envvars reads variables that may be unset
  set +u
  # shellcheck disable=SC1091
  . /etc/apache2/envvars
  set -u
  # /run is a fresh tmpfs in a container; /var/log was emptied by the image build
  mkdir -p /run/lock "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
  rm -f "$APACHE_PID_FILE"
  log "Apache on $APACHE_LISTEN, document root $root/pub"
  exec apache2 -DFOREGROUND "$@"
fi

user=${MAGENTO_CMD_USER:-www-data}
if [ "$user" = root ]; then
  exec "$@"
fi
exec setpriv --reuid="$user" --regid="$user" --init-groups --inh-caps=-all "$@"

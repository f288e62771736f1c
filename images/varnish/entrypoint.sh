#!/bin/sh
# nodectl varnish image entrypoint (POSIX sh).
#
# `varnishd` (the default command): renders /etc/varnish/default.vcl.in into /run/varnish/default.vcl
# with the backend and purge ACL from the environment, compiles it once (so a bad value fails here,
# with the reason), then runs `varnishd -F`. Anything else: exec "$@".
#
# Environment (defaults in the image config):
#   VARNISH_BACKEND_HOST (127.0.0.1)  VARNISH_BACKEND_PORT (8080)
#   VARNISH_PURGE_ACL    addresses or networks allowed to PURGE, separated by spaces or commas
#                        (e.g. "127.0.0.1 ::1 198.18.0.0/24"; default "127.0.0.1 ::1")
#   VARNISH_LISTEN       -a address (default ":6081"); VARNISH_PORT sets only the port (":PORT")
#   VARNISH_STORAGE_SIZE malloc storage size (default 256m)
#   VARNISH_ADMIN        -T management address (default 127.0.0.1:0 = a free port; "none" disables)
#   VARNISH_EXTRA_ARGS   more varnishd arguments, split on spaces (e.g. "-p thread_pool_min=50")
set -eu

die() { echo "varnish-entrypoint: error: $*" >&2; exit 1; }

if [ "${1:-}" != "varnishd" ]; then
  exec "$@"
fi
shift

host=${VARNISH_BACKEND_HOST:-127.0.0.1}
port=${VARNISH_BACKEND_PORT:-8080}
case $host in '' | *[!0-9A-Za-z.:-]*) die "VARNISH_BACKEND_HOST=$host: want a host name or address" ;; esac
case $port in '' | *[!0-9]*) die "VARNISH_BACKEND_PORT=$port: not a port number" ;; esac

acl=""
for entry in $(printf '%s' "${VARNISH_PURGE_ACL:-127.0.0.1 ::1}" | tr ',' ' '); do
  case $entry in
    *[!0-9A-Fa-f.:/]* | /* | */*/*) die "VARNISH_PURGE_ACL: '$entry' is not an address or address/prefix" ;;
    */*) acl="$acl    \"${entry%/*}\"/${entry#*/};
" ;;
    *) acl="$acl    \"$entry\";
" ;;
  esac
done
[ -n "$acl" ] || die "VARNISH_PURGE_ACL is empty: name at least one address allowed to purge"

listen=${VARNISH_LISTEN:-}
if [ -z "$listen" ]; then
  listen=":${VARNISH_PORT:-6081}"
fi
size=${VARNISH_STORAGE_SIZE:-256m}
case $size in '' | *[!0-9kKmMgGtT%]*) die "VARNISH_STORAGE_SIZE=$size: want a size like 256m or 2g" ;; esac
admin=${VARNISH_ADMIN:-127.0.0.1:0}

mkdir -p /run/varnish
vcl=/run/varnish/default.vcl
# The ACL spans lines: sed reads it from a file with the r command.
printf '%s' "$acl" >/run/varnish/acl.vcl
sed -e "s|@@BACKEND_HOST@@|$host|" -e "s|@@BACKEND_PORT@@|$port|" \
  -e '/^@@PURGE_ACL@@$/{r /run/varnish/acl.vcl
d;}' /etc/varnish/default.vcl.in >"$vcl.tmp"
mv -f "$vcl.tmp" "$vcl"
rm -f /run/varnish/acl.vcl

workdir=/var/lib/varnish/nodectl
mkdir -p "$workdir"
# Compile once here: an invalid backend or ACL fails the start with varnish's own message.
varnishd -C -f "$vcl" -n "$workdir" >/dev/null 2>/run/varnish/compile.err || {
  cat /run/varnish/compile.err >&2
  die "the rendered VCL $vcl does not compile (see above)"
}

echo "varnish-entrypoint: listen $listen, backend $host:$port, storage malloc,$size, purge ACL: $(printf '%s' "$acl" | tr -d '\n ')" >&2
# shellcheck disable=SC2086 # VARNISH_EXTRA_ARGS is split on purpose
exec varnishd -F -f "$vcl" -n "$workdir" -a "$listen" -T "$admin" -s "malloc,$size" ${VARNISH_EXTRA_ARGS:-} "$@"

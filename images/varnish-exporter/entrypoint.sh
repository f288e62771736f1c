#!/bin/sh
# nodectl varnish-exporter image entrypoint (POSIX sh).
#
# `varnish_exporter [ARGS...]` (the default command): waits (bounded) until varnishd's shared memory
# appears in VARNISH_EXPORTER_WORKDIR (the varnish container's `-n` directory, in the volume both
# containers mount at /var/lib/varnish), then runs, as user varnishlog, group varnish,
#   prometheus-varnish-exporter -n VARNISH_EXPORTER_WORKDIR -web.listen-address :9131 -raw ARGS...
# Environment: VARNISH_EXPORTER_WORKDIR (/var/lib/varnish/nodectl, the varnish image's)
#   VARNISH_EXPORTER_WAIT (60 s)
# Anything else: exec "$@".
set -eu

log() { echo "varnish-exporter-entrypoint: $*" >&2; }
die() { echo "varnish-exporter-entrypoint: error: $*" >&2; exit 1; }

case ${1:-} in
  varnish_exporter | prometheus-varnish-exporter) shift ;;
  *) exec "$@" ;;
esac

workdir=${VARNISH_EXPORTER_WORKDIR:-/var/lib/varnish/nodectl}
case $workdir in /*) ;; *) die "VARNISH_EXPORTER_WORKDIR=$workdir: want an absolute path" ;; esac
wait=${VARNISH_EXPORTER_WAIT:-60}
case $wait in '' | *[!0-9]*) die "VARNISH_EXPORTER_WAIT=$wait: not a number of seconds" ;; esac

# The exporter checks varnishstat once at start: it must find varnishd's shared memory there.
i=0
until setpriv --reuid=varnishlog --regid=varnish --init-groups --inh-caps=-all \
  varnishstat -n "$workdir" -1 -f MAIN.uptime >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -le $((wait * 2)) ] || die "no varnishd shared memory readable in $workdir after ${wait}s (is the varnish container's /var/lib/varnish mounted here?)"
  [ "$i" -ne 1 ] || log "waiting for varnishd's shared memory in $workdir"
  sleep 0.5
done

log "varnishstat -n $workdir, listening on :9131"
exec setpriv --reuid=varnishlog --regid=varnish --init-groups --inh-caps=-all \
  prometheus-varnish-exporter -n "$workdir" -web.listen-address :9131 -raw "$@"

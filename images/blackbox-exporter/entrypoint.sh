#!/bin/sh
# nodectl blackbox-exporter image entrypoint (POSIX sh).
#
# `blackbox_exporter [ARGS...]` (the default command) runs, as the prometheus user,
#   prometheus-blackbox-exporter --config.file=/etc/prometheus/blackbox.yml --web.listen-address=:9115 ARGS...
# Anything else: exec "$@".
set -eu

case ${1:-} in
  blackbox_exporter | prometheus-blackbox-exporter) shift ;;
  *) exec "$@" ;;
esac

echo "blackbox-exporter-entrypoint: modules from /etc/prometheus/blackbox.yml, listening on :9115" >&2
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all \
  prometheus-blackbox-exporter --config.file=/etc/prometheus/blackbox.yml --web.listen-address=:9115 "$@"

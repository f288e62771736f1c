#!/bin/sh
# nodectl apache-exporter image entrypoint (POSIX sh).
#
# `apache_exporter [ARGS...]` (the default command) runs, as the prometheus user,
#   prometheus-apache-exporter --scrape_uri=APACHE_EXPORTER_SCRAPE_URI --telemetry.address=:9117 ARGS...
# Environment: APACHE_EXPORTER_SCRAPE_URI (http://127.0.0.1:8080/server-status?auto)
# Anything else: exec "$@".
set -eu

die() { echo "apache-exporter-entrypoint: error: $*" >&2; exit 1; }

case ${1:-} in
  apache_exporter | prometheus-apache-exporter) shift ;;
  *) exec "$@" ;;
esac

uri=${APACHE_EXPORTER_SCRAPE_URI:-http://127.0.0.1:8080/server-status?auto}
case $uri in
  http://* | https://*) ;;
  *) die "APACHE_EXPORTER_SCRAPE_URI=$uri: want an http:// or https:// URL" ;;
esac

echo "apache-exporter-entrypoint: scraping $uri, listening on :9117" >&2
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all \
  prometheus-apache-exporter --scrape_uri="$uri" --telemetry.address=:9117 "$@"

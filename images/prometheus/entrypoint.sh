#!/bin/sh
# nodectl prometheus image entrypoint (POSIX sh).
#
# `prometheus [ARGS...]` (the default command): checks that /etc/prometheus/prometheus.yml exists,
# gives the /prometheus volume to the prometheus user when it is not (a fresh volume is root's),
# then runs, as the prometheus user,
#   prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus
#              --web.listen-address=:9090 ARGS...
# A flag among ARGS replaces the default of the same name (e.g. --web.listen-address=127.0.0.1:9090).
# Anything else: exec "$@" (e.g. `promtool check config /etc/prometheus/prometheus.yml`).
set -eu

die() { echo "prometheus-entrypoint: error: $*" >&2; exit 1; }

if [ "${1:-}" != "prometheus" ]; then
  exec "$@"
fi
shift

# given FLAG ARGS...: true when ARGS set --FLAG (as --FLAG=V or --FLAG V).
given() {
  f=$1
  shift
  for a in "$@"; do
    case $a in "--$f" | "--$f="*) return 0 ;; esac
  done
  return 1
}
config=/etc/prometheus/prometheus.yml
defaults=""
given config.file "$@" || { [ -f "$config" ] || die "$config is missing: mount the configuration directory at /etc/prometheus"; defaults="--config.file=$config"; }
given storage.tsdb.path "$@" || defaults="$defaults --storage.tsdb.path=/prometheus"
given web.listen-address "$@" || defaults="$defaults --web.listen-address=:9090"

# The data volume may be a fresh mount owned by root.
mkdir -p /prometheus
[ "$(stat -c %U /prometheus)" = prometheus ] || chown prometheus:prometheus /prometheus

echo "prometheus-entrypoint: prometheus $defaults $*" >&2
# shellcheck disable=SC2086 # the defaults hold no spaces but the ones between flags
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all prometheus $defaults "$@"

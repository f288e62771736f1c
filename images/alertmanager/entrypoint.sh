#!/bin/sh
# nodectl alertmanager image entrypoint (POSIX sh).
#
# `alertmanager [ARGS...]` (the default command): the configuration directory /etc/alertmanager (a
# Secret: files 0400 of root, which the service user cannot read) is copied, its regular files at the
# top level (links followed), into /run/alertmanager, each 0600 and owned by the prometheus user;
# template paths relative to the configuration resolve there as they would have in /etc/alertmanager.
# Then, as the prometheus user:
#   prometheus-alertmanager --config.file=/run/alertmanager/alertmanager.yml --storage.path=/alertmanager
#                           --web.listen-address=:9093 --cluster.listen-address= ARGS...
# A flag among ARGS replaces the default of the same name. The copy is made at start only: a changed
# Secret takes effect at the next start of the container.
# /run/alertmanager must be writable (a volume); when it is not (read-only root filesystem and no
# volume there), the copy goes to /alertmanager/.config instead (the data volume), and the log says so.
# Anything else: exec "$@" (e.g. `amtool check-config /etc/alertmanager/alertmanager.yml` as root).
set -eu

log() { echo "alertmanager-entrypoint: $*" >&2; }
die() { echo "alertmanager-entrypoint: error: $*" >&2; exit 1; }

case ${1:-} in
  alertmanager | prometheus-alertmanager) shift ;;
  *) exec "$@" ;;
esac

given() {
  f=$1
  shift
  for a in "$@"; do
    case $a in "--$f" | "--$f="*) return 0 ;; esac
  done
  return 1
}

src=/etc/alertmanager
[ -f "$src/alertmanager.yml" ] || given config.file "$@" ||
  die "$src/alertmanager.yml is missing: mount the configuration (a Secret) at $src"

# The data volume may be a fresh mount owned by root.
mkdir -p /alertmanager
[ "$(stat -c %U /alertmanager)" = prometheus ] || chown prometheus:prometheus /alertmanager

umask 077
run=/run/alertmanager
if ! { mkdir -p "$run" 2>/dev/null && touch "$run/.w" 2>/dev/null && rm -f "$run/.w"; }; then
  log "$run is not writable (no volume there?): the configuration is copied to /alertmanager/.config"
  run=/alertmanager/.config
  mkdir -p "$run"
fi
chown prometheus:prometheus "$run"
chmod 0700 "$run"
# Files of an earlier start go first: a file removed from the Secret must not stay.
find "$run" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
n=0
for f in "$src"/*; do
  [ -f "$f" ] || continue
  dest=$run/$(basename "$f")
  cp -L "$f" "$dest.tmp"
  chown prometheus:prometheus "$dest.tmp"
  chmod 0600 "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
  n=$((n + 1))
done

defaults=""
given config.file "$@" || defaults="--config.file=$run/alertmanager.yml"
given storage.path "$@" || defaults="$defaults --storage.path=/alertmanager"
given web.listen-address "$@" || defaults="$defaults --web.listen-address=:9093"
given cluster.listen-address "$@" || defaults="$defaults --cluster.listen-address="

log "$n file(s) of $src copied to $run; prometheus-alertmanager $defaults $*"
# shellcheck disable=SC2086 # the defaults hold no spaces but the ones between flags
exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all prometheus-alertmanager $defaults "$@"

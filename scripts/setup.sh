#!/usr/bin/env bash
# Installs every build and test dependency of nodectl from Debian's archive.
# Idempotent: re-running it on a machine that already has everything installs nothing.
# Works on a fresh Debian 12 (bookworm) machine as root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs packages with apt-get)" >&2
  exit 2
fi

build_pkgs=(
  build-essential cmake pkg-config git file
  libssh-dev libarchive-dev libcurl4-openssl-dev libssl-dev
  libtomlplusplus-dev libspdlog-dev libfmt-dev doctest-dev libzstd-dev
  libcli11-dev nlohmann-json3-dev libyaml-cpp-dev
  # static release build: Debian source packages of curl/libssh/libarchive are rebuilt minimal
  dpkg-dev zlib1g-dev liblzma-dev libbz2-dev
)
test_pkgs=(
  openssh-server openssh-client sudo util-linux iproute2 procps psmisc
  mmdebstrap systemd-container apt-cacher-ng diffutils
  hyperfine ssh-audit python3
  # kubectl, for test_kubeconfig.sh
  kubernetes-client
  # containerd on this host (test_runtime.sh), a busybox image built in the tests, jq
  containerd runc containernetworking-plugins busybox-static jq
  # real services for the image, backup and mount tests (started by the tests themselves, on free
  # ports with temp data dirs; the packages' own instances are never started, see below)
  mariadb-server mariadb-client redis-server redis-tools varnish apache2 libapache2-mod-php8.2 curl
  # S3: awscli and s3fs check what nodectl writes to s3rver (npm, below); restic and zstd for the
  # backup benchmark
  awscli s3fs fuse3 zstd restic
  # the tree's formatting (.clang-format; tests/repo/check_format.sh checks it with version 14)
  clang-format
  # GNU time: peak RSS (`/usr/bin/time -v`) in scripts/bench/backup.sh
  time
  # OCI layouts are checked with skopeo and umoci
  skopeo umoci
  # first boot: cloud-init's schema check, FAT images for USB sticks
  cloud-init dosfstools mtools
  # k8s manifests of `nodectl stack render` are checked against JSON schemas (tests/tools/k8s_check.py)
  python3-jsonschema python3-yaml
  # test_stack_pods.sh: socat terminates TLS in Traefik's place, file checks the static binary
  socat file
  # test_stack_pods.sh: dnsmasq answers the SRV records of the metrics Services in CoreDNS's place
  dnsmasq-base
  # promtool (package prometheus): the alert rules' unit tests (tests/repo/test_alert_rules.sh)
  prometheus
  # amtool (package prometheus-alertmanager): the rendered Alertmanager configuration (repo/stack_render)
  prometheus-alertmanager
  # npm, for s3rver (any node/npm will do: a nodejs package that brings its own npm is kept)
  nodejs npm
)

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
  case "$p" in \#*) continue ;; esac
  # Any kubectl will do; installing Debian's over another one's /usr/bin/kubectl would conflict.
  if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing+=("$p")
  fi
done

# deb-src entries are needed for `apt-get source` (static build of curl/libssh/libarchive).
# deb-src entries for `apt-get source` (static build of curl/libssh/libarchive). The security
# suite's source packages are not reachable from these machines, so the static build uses the
# bookworm and bookworm-updates sources (see docs/development.md, "Static binary").
src_list=/etc/apt/sources.list.d/nodectl-deb-src.sources
uri=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
want_src="Types: deb-src
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
need_update=0
if [ "$(cat "$src_list" 2>/dev/null)" != "$want_src" ]; then
  printf '%s\n' "$want_src" > "$src_list.tmp"
  mv "$src_list.tmp" "$src_list"
  need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ "$need_update" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}" >&2
  # Service packages (apt-cacher-ng, mariadb, redis, varnish, apache2, prometheus) would start their own
  # instances on the standard ports; tests run their own on free ports. policy-rc.d keeps
  # invoke-rc.d from starting them during the install, and they are disabled afterwards.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
  for unit in apt-cacher-ng mariadb redis-server varnish apache2 prometheus prometheus-alertmanager cloud-init cloud-init-local cloud-config cloud-final; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then systemctl stop "$unit" || true; fi
    systemctl disable "$unit" >/dev/null 2>&1 || true
  done
fi

# s3rver (npm), the S3 server of the tests; a fixed version in a prefix of its own.
S3RVER_PREFIX=/opt/nodectl-test/s3rver
if [ ! -x "$S3RVER_PREFIX/node_modules/.bin/s3rver" ]; then
  echo "setup.sh: installing s3rver 3.7.1 (npm) into $S3RVER_PREFIX" >&2
  mkdir -p "$S3RVER_PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$S3RVER_PREFIX" s3rver@3.7.1 >/dev/null
fi
echo "setup.sh: all build and test dependencies present" >&2

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
)

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
  case "$p" in \#*) continue ;; esac
  # Any kubectl will do; installing Debian's over another one's /usr/bin/kubectl would conflict.
  if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing+=("$p")
  fi
done

# deb-src entries are needed for `apt-get source` (static build of curl/libssh/libarchive).
# deb-src entries for `apt-get source` (static build of curl/libssh/libarchive). The security
# suite's source packages are not reachable from these machines, so the static build uses the
# bookworm and bookworm-updates sources (see README, "Static binary").
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
  # apt-cacher-ng's package starts a system service; tests run their own instance.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if systemctl is-active --quiet apt-cacher-ng 2>/dev/null; then systemctl stop apt-cacher-ng || true; fi
fi
echo "setup.sh: all build and test dependencies present" >&2

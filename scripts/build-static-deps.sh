#!/usr/bin/env bash
# Builds minimal STATIC libssh, libcurl and libarchive from Debian 12's source
# packages, so that nodectl can be linked fully statically.
#
# Debian's own libssh.a / libcurl.a / libarchive.a cannot be used for that:
# they pull in GSSAPI, LDAP, RTMP, nghttp2, libpsl, libidn2, libxml2, nettle,
# acl, ... which either have no static archive or are not wanted. The rebuilt
# libraries only depend on archives that Debian ships:
#   libssl.a libcrypto.a libz.a libzstd.a liblzma.a libbz2.a (+ glibc).
#
# Usage: scripts/build-static-deps.sh [PREFIX]
#   PREFIX defaults to build/static-deps under the repository root.
#   PREFIX/src    downloaded and unpacked Debian source packages
#   PREFIX/build  build trees and logs (*.log)
#   PREFIX/{include,lib,lib/pkgconfig}  installed result
#   PREFIX/.stamp source package versions + hash of this script; when it
#                 matches, the script exits at once without rebuilding.
#
# Link order for a static executable (see also pkg-config --static):
#   -lssh -lcurl -larchive -lssl -lcrypto -lzstd -llzma -lbz2 -lz -pthread -ldl
#
# Needs (scripts/setup.sh installs them): dpkg-dev, cmake, build-essential,
# pkg-config, libssl-dev, zlib1g-dev, libzstd-dev, liblzma-dev, libbz2-dev and
# deb-src entries for bookworm in apt's sources.
set -euo pipefail

script_path=$(readlink -f "${BASH_SOURCE[0]}")
repo_root=$(cd "$(dirname "$script_path")/.." && pwd)
prefix_arg=${1:-$repo_root/build/static-deps}
if [ $# -gt 1 ]; then
  echo "usage: $0 [PREFIX]" >&2
  exit 2
fi

# Source packages to rebuild (Debian source package names).
packages=(libssh curl libarchive)

log() { printf '[static-deps] %s\n' "$*" >&2; }
die() { printf '[static-deps] error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$prefix_arg"
prefix=$(cd "$prefix_arg" && pwd)
srcdir=$prefix/src
blddir=$prefix/build
stamp=$prefix/.stamp
marker=$prefix/.static-deps-prefix

# Never wipe a directory this script does not own (e.g. PREFIX=/usr/local).
if [ ! -e "$marker" ] && [ -n "$(ls -A "$prefix")" ]; then
  die "$prefix is not empty and was not created by this script; choose an empty or new PREFIX"
fi
touch "$marker"

# One build per PREFIX at a time.
exec 9>"$prefix/.lock"
if ! flock -n 9; then
  log "waiting for another build in $prefix"
  flock 9
fi

# ---------------------------------------------------------------------------
# Cache check: versions apt would fetch now + hash of this script.
# ---------------------------------------------------------------------------
script_hash=$(sha256sum "$script_path" | cut -d' ' -f1)

# Prints "pkg=version" for each source package, as `apt-get source` would pick.
resolve_versions() {
  local out
  out=$(cd "$prefix" && LC_ALL=C apt-get source --print-uris --only-source "${packages[@]}" 2>&1) || {
    printf '%s\n' "$out" | tail -n 5 >&2
    return 1
  }
  local p dsc
  for p in "${packages[@]}"; do
    dsc=$(printf '%s\n' "$out" | awk -v p="$p" '$2 ~ "^" p "_.*\\.dsc$" {print $2; exit}')
    [ -n "$dsc" ] || { echo "no .dsc found for source package $p" >&2; return 1; }
    dsc=${dsc#"${p}_"}
    printf '%s=%s\n' "$p" "${dsc%.dsc}"
  done
}

installed_ok() {
  [ -f "$prefix/lib/libssh.a" ] && [ -f "$prefix/lib/libcurl.a" ] && [ -f "$prefix/lib/libarchive.a" ] &&
    [ -f "$prefix/lib/pkgconfig/libssh.pc" ] && [ -f "$prefix/lib/pkgconfig/libcurl.pc" ] &&
    [ -f "$prefix/lib/pkgconfig/libarchive.pc" ]
}

if ! versions=$(resolve_versions); then
  if [ -f "$stamp" ] && grep -qx "script-sha256=$script_hash" "$stamp" && installed_ok; then
    log "warning: cannot ask apt for source versions; keeping the cached build in $prefix"
    exit 0
  fi
  die "apt-get cannot locate the source packages (${packages[*]}); run scripts/setup.sh (needs deb-src entries and apt-get update)"
fi
want_stamp=$(printf 'script-sha256=%s\n%s\n' "$script_hash" "$versions")

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && installed_ok; then
  log "up to date in $prefix ($(printf '%s\n' "$versions" | paste -sd' '))"
  exit 0
fi

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------
for tool in apt-get dpkg-source cmake make "${CC:-cc}" pkg-config sha256sum flock; do
  command -v "$tool" >/dev/null || die "missing tool '$tool'; run scripts/setup.sh"
done
for a in libssl.a libcrypto.a libz.a libzstd.a liblzma.a libbz2.a; do
  f=$("${CC:-cc}" -print-file-name="$a")
  if [ "$f" = "$a" ] || [ ! -f "$f" ]; then
    die "missing static archive $a; run scripts/setup.sh"
  fi
done

started=$SECONDS
jobs=$(nproc)
log "building static libssh, curl, libarchive into $prefix with $jobs jobs"

# Start from a clean install tree: nothing stale from an older build remains.
rm -f "$stamp"
rm -rf "${prefix:?}/include" "${prefix:?}/lib" "${prefix:?}/bin" "${prefix:?}/share" "$blddir"
mkdir -p "$srcdir" "$blddir"

# Runs a command with output going to a log; on failure prints the log's tail.
run() {
  local logfile=$1
  shift
  if ! "$@" >>"$logfile" 2>&1; then
    printf '[static-deps] error: command failed:' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    printf '[static-deps] last 40 lines of %s:\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2
    exit 1
  fi
}

# Controlled build environment: no flags leaking in from the caller.
unset MAKEFLAGS MFLAGS MAKELEVEL LDFLAGS LIBS CXXFLAGS
export LC_ALL=C
export CC=${CC:-cc}
# -fPIC: usable in static-pie too; sections: lets the final link --gc-sections.
export CFLAGS="-O2 -fPIC -ffunction-sections -fdata-sections -fstack-protector-strong"
export CPPFLAGS="-D_FORTIFY_SOURCE=2"

# ---------------------------------------------------------------------------
# Sources: apt-get source --download-only, then dpkg-source -x (applies
# Debian's patches, including the security fixes).
# ---------------------------------------------------------------------------
log "fetching source packages: $(printf '%s\n' "$versions" | paste -sd' ')"
# apt-get prints a warning when run as root (download unsandboxed); harmless.
(cd "$srcdir" && run "$blddir/download.log" apt-get source --download-only --only-source "${packages[@]}")

declare -A src
while IFS='=' read -r p v; do
  dsc=$srcdir/${p}_$v.dsc
  [ -f "$dsc" ] || die "expected $dsc after download"
  rm -rf "${srcdir:?}/$p"
  run "$blddir/unpack.log" dpkg-source -x "$dsc" "$srcdir/$p"
  src[$p]=$srcdir/$p
done <<<"$versions"

# ---------------------------------------------------------------------------
# libssh: OpenSSL backend, zlib, client + SFTP client, no GSSAPI/server/examples.
# ---------------------------------------------------------------------------
build_libssh() {
  local b=$blddir/libssh
  mkdir -p "$b"
  log "libssh: configure"
  run "$blddir/libssh-configure.log" cmake -S "${src[libssh]}" -B "$b" -G "Unix Makefiles" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS="$CPPFLAGS $CFLAGS" \
    -Wno-dev \
    -DBUILD_SHARED_LIBS=OFF \
    -DOPENSSL_USE_STATIC_LIBS=ON -DZLIB_USE_STATIC_LIBS=ON \
    -DWITH_GCRYPT=OFF -DWITH_MBEDTLS=OFF \
    -DWITH_ZLIB=ON \
    -DWITH_GSSAPI=OFF \
    -DWITH_SFTP=ON \
    -DWITH_SERVER=OFF \
    -DWITH_NACL=OFF \
    -DWITH_PKCS11_URI=OFF \
    -DWITH_SYMBOL_VERSIONING=OFF \
    -DWITH_EXAMPLES=OFF \
    -DUNIT_TESTING=OFF -DCLIENT_TESTING=OFF -DSERVER_TESTING=OFF -DWITH_BENCHMARKS=OFF
  log "libssh: build"
  run "$blddir/libssh-build.log" cmake --build "$b" -j "$jobs"
  run "$blddir/libssh-install.log" cmake --install "$b"
  # Upstream's libssh.pc has no private dependencies; add them for --static.
  local pc=$prefix/lib/pkgconfig/libssh.pc
  [ -f "$pc" ] || die "libssh did not install $pc"
  printf 'Requires.private: libcrypto zlib\nLibs.private: -pthread\n' >>"$pc"
}

# ---------------------------------------------------------------------------
# curl: libcurl only, HTTP/HTTPS with OpenSSL + zlib, threaded resolver.
# AWS SigV4 (CURLOPT_AWS_SIGV4) stays: it is on unless --disable-aws/crypto-auth.
# ---------------------------------------------------------------------------
build_curl() {
  local b=$blddir/curl
  mkdir -p "$b"
  log "curl: configure"
  # Debian's patches touch configure.ac/Makefile.am (gnutls/nss variants,
  # gssapi, ldap); none matters here, and maintainer mode is off by default,
  # so the shipped configure is used without autoreconf.
  (cd "$b" && run "$blddir/curl-configure.log" "${src[curl]}/configure" \
    --prefix="$prefix" --libdir="$prefix/lib" \
    --disable-shared --enable-static --with-pic \
    --disable-dependency-tracking --disable-maintainer-mode \
    --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps \
    --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
    --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
    --disable-websockets --disable-ntlm-wb \
    --disable-manual --disable-libcurl-option \
    --enable-threaded-resolver --enable-ipv6 --enable-unix-sockets \
    --with-openssl --with-zlib \
    --without-brotli --without-zstd --without-libpsl --without-libidn2 \
    --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
    --without-hyper --without-librtmp --without-libssh2 --without-libssh --without-wolfssh \
    --without-gssapi --without-libgsasl --disable-sspi --without-winidn \
    --without-zsh-functions-dir --without-fish-functions-dir \
    --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs)
  log "curl: build"
  run "$blddir/curl-build.log" make -C "$b/lib" -j "$jobs"
  run "$blddir/curl-install.log" make -C "$b/lib" install
  run "$blddir/curl-install.log" make -C "$b/include" install
  run "$blddir/curl-install.log" make -C "$b" install-pkgconfigDATA install-binSCRIPTS
  rm -f "$prefix/lib/libcurl.la"
}

# ---------------------------------------------------------------------------
# libarchive: tar/pax + gzip(zlib)/bzip2/xz/zstd, OpenSSL for digests.
# No libxml2/expat, nettle, mbedtls, lz4, libb2, lzo, acl; no bsdtar/bsdcpio/bsdcat.
# xattr support stays: it only needs glibc.
# ---------------------------------------------------------------------------
build_libarchive() {
  local b=$blddir/libarchive
  mkdir -p "$b"
  log "libarchive: configure"
  # Debian's patches touch configure.ac/Makefile.am; --disable-maintainer-mode
  # keeps make from trying to re-run automake.
  (cd "$b" && run "$blddir/libarchive-configure.log" "${src[libarchive]}/configure" \
    --prefix="$prefix" --libdir="$prefix/lib" \
    --disable-shared --enable-static --with-pic \
    --disable-dependency-tracking --disable-maintainer-mode \
    --disable-bsdtar --disable-bsdcat --disable-bsdcpio \
    --disable-acl --enable-xattr \
    --enable-posix-regex-lib=libc \
    --with-zlib --with-bz2lib --with-lzma --with-zstd --with-openssl \
    --without-lz4 --without-libb2 --without-lzo2 --without-cng \
    --without-nettle --without-mbedtls --without-xml2 --without-expat)
  log "libarchive: build"
  run "$blddir/libarchive-build.log" make -C "$b" -j "$jobs" libarchive.la
  run "$blddir/libarchive-install.log" make -C "$b" \
    install-libLTLIBRARIES install-includeHEADERS install-pkgconfigDATA
  rm -f "$prefix/lib/libarchive.la"
  # glibc provides iconv, and there is no iconv.pc: drop it from Requires.private
  # (the same fix as Debian's iconv-pkgconfig.patch, which only touches configure.ac).
  sed -i -E '/^Requires\.private:/ s/(^Requires\.private:|[ ,])iconv([ ,]|$)/\1\2/' \
    "$prefix/lib/pkgconfig/libarchive.pc"
}

build_libssh
build_curl
build_libarchive

installed_ok || die "install tree in $prefix is incomplete"
printf '%s\n' "$want_stamp" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "done in $((SECONDS - started))s: $prefix/lib/{libssh,libcurl,libarchive}.a"

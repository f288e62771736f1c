# lib_oci.sh - build a minimal OCI image archive from Debian's busybox-static, offline.
#
#   source tests/integration/lib_oci.sh
#   make_busybox_oci OUT_TAR [NAME:TAG [CMD...]]
#     NAME:TAG defaults to localhost/nodectl-busybox:latest, CMD (the image's default command)
#     to /bin/sh. A CRI sandbox ("pause") image must keep running: CMD /bin/sleep 2147483647.
#
# The archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/*): one
# gzip layer holding /bin/busybox plus symlinks sh, echo, cat, sleep, id -> busybox, an image
# config with rootfs.diff_ids, and a manifest. index.json names the manifest with the
# annotations org.opencontainers.image.ref.name=NAME:TAG and io.containerd.image.name=NAME:TAG.
# Output is byte-for-byte reproducible (sorted entries, mtime 0, numeric owner 0:0, gzip -n).
#
# Import and run with containerd 1.6. ctr takes the name from io.containerd.image.name as it
# is (even with --base-name); with only ref.name it keeps a ref containing ":" or "/" and
# makes a bare tag "T" into "import-DATE:T" (or "BASE:T" with --base-name BASE). No flag needed:
#   ctr -a SOCK images import OUT_TAR
#   ctr -a SOCK run --rm --net-host NAME:TAG ID /bin/busybox echo hello
# Check: skopeo inspect oci-archive:OUT_TAR
#
# Needs: bash, GNU tar, gzip, sha256sum, stat, and /bin/busybox (package busybox-static; a
# static binary, so nothing else is needed in the image). BUSYBOX=/path overrides the binary.

make_busybox_oci() {
  (
    set -euo pipefail
    local out=${1:?usage: make_busybox_oci OUT_TAR [NAME:TAG [CMD...]]}
    local ref=${2:-localhost/nodectl-busybox:latest}
    shift; [ $# -gt 0 ] && shift
    [ $# -gt 0 ] || set -- /bin/sh
    local cmd="" arg
    for arg in "$@"; do            # JSON array of strings
      arg=${arg//\\/\\\\}; arg=${arg//\"/\\\"}
      cmd+="${cmd:+,}\"$arg\""
    done
    local busybox=${BUSYBOX:-/bin/busybox}
    [ -x "$busybox" ] || { echo "make_busybox_oci: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
    case $ref in
      *:*) ;;
      *) echo "make_busybox_oci: reference '$ref' has no :TAG" >&2; exit 1 ;;
    esac

    # OCI platform of this machine.
    local arch variant=""
    case $(uname -m) in
      x86_64) arch=amd64 ;;
      aarch64) arch=arm64 ;;
      armv7l) arch=arm variant=v7 ;;
      i?86) arch=386 ;;
      ppc64le) arch=ppc64le ;;
      s390x) arch=s390x ;;
      riscv64) arch=riscv64 ;;
      *) echo "make_busybox_oci: unknown machine $(uname -m)" >&2; exit 1 ;;
    esac

    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/oci-busybox.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT

    # Deterministic tar: sorted names, fixed mtime, root owner, normalised modes.
    dtar() {
      tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --mode='u+rwX,go+rX,go-w' --format=ustar "$@"
    }
    sha() { sha256sum "$1" | cut -d' ' -f1; }
    size() { stat -c %s "$1"; }

    # Layer: /bin/busybox and applet symlinks.
    mkdir -p "$tmp/rootfs/bin" "$tmp/layout/blobs/sha256"
    cp "$busybox" "$tmp/rootfs/bin/busybox"
    chmod 0755 "$tmp/rootfs/bin" "$tmp/rootfs/bin/busybox"
    local a
    for a in sh echo cat sleep id; do ln -s busybox "$tmp/rootfs/bin/$a"; done
    dtar -C "$tmp/rootfs" -cf "$tmp/layer.tar" bin
    local diff_id
    diff_id=$(sha "$tmp/layer.tar")
    gzip -n -9 -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
    local layer_digest layer_size
    layer_digest=$(sha "$tmp/layer.tar.gz")
    layer_size=$(size "$tmp/layer.tar.gz")
    mv "$tmp/layer.tar.gz" "$tmp/layout/blobs/sha256/$layer_digest"

    # Image config.
    local vjson=""
    [ -n "$variant" ] && vjson=",\"variant\":\"$variant\""
    printf '{"architecture":"%s","os":"linux"%s,"config":{"Env":["PATH=/bin"],"Cmd":[%s],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"make_busybox_oci"}],"created":"1970-01-01T00:00:00Z"}' \
      "$arch" "$vjson" "$cmd" "$diff_id" >"$tmp/config.json"
    local config_digest config_size
    config_digest=$(sha "$tmp/config.json")
    config_size=$(size "$tmp/config.json")
    mv "$tmp/config.json" "$tmp/layout/blobs/sha256/$config_digest"

    # Manifest.
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
      "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$tmp/manifest.json"
    local manifest_digest manifest_size
    manifest_digest=$(sha "$tmp/manifest.json")
    manifest_size=$(size "$tmp/manifest.json")
    mv "$tmp/manifest.json" "$tmp/layout/blobs/sha256/$manifest_digest"

    # Layout marker and index naming the manifest.
    printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"%s},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
      "$manifest_digest" "$manifest_size" "$arch" "$vjson" "$ref" "$ref" >"$tmp/layout/index.json"

    chmod -R u+rwX,go+rX,go-w "$tmp/layout"
    dtar -C "$tmp/layout" -cf "$tmp/out.tar" oci-layout index.json blobs
    mkdir -p "$(dirname "$out")"
    mv -f "$tmp/out.tar" "$out"
  )
}

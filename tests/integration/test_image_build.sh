#!/usr/bin/env bash
# `nodectl image build` for real: mmdebstrap from Debian's archive, overlayfs, libarchive layers.
# Builds the test recipes (tests/integration/data/images: a base and a small image with a user,
# files, runs, a build argument and a build secret) twice from two empty build caches and compares
# the digests; checks the layout with skopeo and umoci, the layers' metadata with Python's
# tarfile, that the secret is in no layer, the cache (warm rebuild, zstd from the cached tar),
# broken recipes, and imports the oci-archive into a containerd started here and runs it (runc).
# The stack's recipes (images/) are only parsed here; their own suites build and run them.
#
# Downloads (apt lists, .debs) are inputs, not build results: they are kept between runs in
# $NODECTL_TEST_CACHE/image-apt so a run costs two cold builds, not two downloads.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ctrd.sh"

[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
for t in mmdebstrap skopeo umoci containerd ctr runc python3 jq unshare; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/setup.sh)"; exit 1; }
done
RECIPES=$DATA/images
APT_CACHE=${NODECTL_TEST_CACHE:-$SRC/build/testcache}/image-apt
mkdir -p "$APT_CACHE"
export NODECTL_CACHE_DIR=$WORK/nodectl-cache

# A secret with a value that appears nowhere else.
SECRET_VALUE="nodectl-build-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$SECRET_VALUE" >"$WORK/token"
chmod 0600 "$WORK/token"

build() {  # build CACHE OUT [more args]: the test recipes, all of them
  local cache=$1 out=$2; shift 2
  nodectl image build --all --recipes "$RECIPES" --cache "$cache" --apt-cache "$APT_CACHE" --out "$out" \
    --secret token="$WORK/token" --arg greeting=hi "$@"
}
digest_of() { jq -r '.manifests[0].digest' "$1/index.json"; }
manifest_of() { echo "$1/blobs/sha256/$(digest_of "$1" | cut -c8-)"; }

# --- 1. recipes parse; a broken one names file, line and key ------------------------------------
nodectl image check --recipes "$RECIPES" >"$WORK/check.out" 2>&1
expect_rc_out "image check: the test recipes parse" 0 $? "$WORK/check.out"
contains "image check lists the build argument and secret" "$WORK/check.out" 'arg greeting=.*--secret token=FILE|--secret token=FILE'
if [ -d "$SRC/images" ]; then
  nodectl image check --recipes "$SRC/images" >"$WORK/check-stack.out" 2>&1
  expect_rc_out "image check: every recipe in images/ parses" 0 $? "$WORK/check-stack.out"
fi
mkdir -p "$WORK/broken"
cp -r "$RECIPES/base" "$RECIPES/hello" "$WORK/broken/"
sed -i 's/^packages = \["jq"\]/pakages = ["jq"]/; s|^dest = "/etc/hello"|dest = "etc/hello"|' "$WORK/broken/hello/recipe.toml"
line=$(grep -n '^pakages' "$WORK/broken/hello/recipe.toml" | cut -d: -f1)
nodectl image check --recipes "$WORK/broken" >"$WORK/broken.out" 2>&1
expect_rc_out "a broken recipe is refused" 3 $? "$WORK/broken.out"
contains_text "the error names file:line:col and the unknown key" "$WORK/broken.out" \
  "$WORK/broken/hello/recipe.toml:$line:1: unknown key 'pakages'; did you mean 'packages'?"
contains "the error names the bad value's key" "$WORK/broken.out" "recipe.toml:[0-9]+:[0-9]+: 'files\[\]\.dest' must be an absolute path"
nodectl image build hello --recipes "$WORK/broken" --out "$WORK/never" >"$WORK/broken-build.out" 2>&1
expect_rc_out "build refuses a broken recipe before building anything" 3 $? "$WORK/broken-build.out"
check "nothing was written for a broken recipe" test ! -e "$WORK/never"
nodectl image build hello --recipes "$RECIPES" --arg nosuch=1 --out "$WORK/never" >"$WORK/badarg.out" 2>&1
expect_rc_out "an undeclared --arg is a usage error" 2 $? "$WORK/badarg.out"

# --- 2. two builds from two empty caches: the same digests -------------------------------------
t0=$(date +%s)
build "$WORK/cache1" "$WORK/out1" >"$WORK/build1.out" 2>"$WORK/build1.err"
expect_rc_out "cold build 1 (base + hello)" 0 $? "$WORK/build1.err"
t1=$(date +%s)
build "$WORK/cache2" "$WORK/out2" >"$WORK/build2.out" 2>"$WORK/build2.err"
expect_rc_out "cold build 2 from another empty cache" 0 $? "$WORK/build2.err"
t2=$(date +%s)
echo "      cold builds: $((t1 - t0)) s and $((t2 - t1)) s"
contains "progress is shown on stderr" "$WORK/build1.err" 'mmdebstrap: |installing jq'
for img in base hello; do
  d1=$(digest_of "$WORK/out1/$img"); d2=$(digest_of "$WORK/out2/$img")
  echo "      $img: $d1 / $d2"
  check "$img: both builds give manifest $d1" test -n "$d1" -a "$d1" = "$d2"
  check "$img: the oci-archives are byte-identical" cmp -s "$WORK/out1/$img.oci.tar" "$WORK/out2/$img.oci.tar"
done
if [ "$(digest_of "$WORK/out1/hello")" != "$(digest_of "$WORK/out2/hello")" ]; then
  # Show what differs, for whoever has to find the source of non-determinism.
  for o in out1 out2; do
    for b in "$WORK/$o"/hello/blobs/sha256/*; do
      gzip -t "$b" 2>/dev/null && tar -tvzf "$b" --full-time >"$WORK/$o.$(basename "$b").lst" 2>/dev/null
    done
  done
  ls "$WORK"/*.lst | head
fi

# --- 3. the layout: skopeo, umoci, the config -----------------------------------------------------
# The index names the manifest twice (tag, and NAME@DIGEST for pods pinned by digest): skopeo wants
# the name when a layout holds more than one.
REF=localhost/nodectl/hello:latest
skopeo inspect "oci:$WORK/out1/hello:$REF" >"$WORK/inspect.json" 2>&1
expect_rc_out "skopeo inspect accepts the layout" 0 $? "$WORK/inspect.json"
check "skopeo: two layers, the first is the base image's only layer" \
  test "$(jq -r '.Layers | length' "$WORK/inspect.json")" = 2 -a \
       "$(jq -r '.Layers[0]' "$WORK/inspect.json")" = "$(jq -r '.layers[0].digest' "$(manifest_of "$WORK/out1/base")")"
skopeo inspect "oci-archive:$WORK/out1/hello.oci.tar:$REF" >"$WORK/inspect-archive.json" 2>&1
expect_rc_out "skopeo inspect accepts the oci-archive" 0 $? "$WORK/inspect-archive.json"
skopeo inspect --config "oci:$WORK/out1/hello:$REF" >"$WORK/config.json" 2>&1
check "config: user, workdir, cmd, entrypoint inherited from the base" \
  test "$(jq -c '[.config.User, .config.WorkingDir, .config.Cmd, .config.Entrypoint]' "$WORK/config.json")" = \
       '["app","/data",["/usr/local/bin/hello"],["/usr/bin/tini","--"]]'
check "config: env with PATH, ports, volumes, labels of both recipes, stop signal" \
  test "$(jq -c '[(.config.Env|sort), (.config.ExposedPorts|keys), (.config.Volumes|keys), (.config.Labels|keys), .config.StopSignal]' "$WORK/config.json")" = \
       '[["GREETING=hello from nodectl","PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],["8080/tcp"],["/data"],["org.opencontainers.image.title","org.opencontainers.image.vendor"],"SIGTERM"]'
check "config: diff_ids and history for both layers" \
  test "$(jq -r '[(.rootfs.diff_ids|length), (.history|length)] | @csv' "$WORK/config.json")" = "2,2"
contains_text "index.json names the image localhost/nodectl/hello:latest" "$WORK/out1/hello/index.json" \
  '"io.containerd.image.name":"localhost/nodectl/hello:latest"'
check "index.json also names it localhost/nodectl/hello@DIGEST (the name the CRI looks a digest-pinned image up by)" \
  test "$(jq -r '[.manifests[] | .annotations["io.containerd.image.name"] + " " + .digest] | join(",")' "$WORK/out1/hello/index.json")" = \
       "$REF $(digest_of "$WORK/out1/hello"),localhost/nodectl/hello@$(digest_of "$WORK/out1/hello") $(digest_of "$WORK/out1/hello")"

umoci unpack --image "$WORK/out1/hello:localhost/nodectl/hello:latest" "$WORK/bundle" >"$WORK/umoci.out" 2>&1
expect_rc_out "umoci unpack (as root) accepts the layout" 0 $? "$WORK/umoci.out"
R=$WORK/bundle/rootfs
check "unpacked: the copied script, mode 0755" test "$(stat -c %a "$R/usr/local/bin/hello" 2>/dev/null)" = 755
check "unpacked: a copied directory owned by the recipe's user (1234:1234)" \
  test "$(stat -c %u:%g "$R/etc/hello/sub/nested.txt" 2>/dev/null)" = 1234:1234
check "unpacked: the user exists with its uid" grep -q '^app:x:1234:1234:' "$R/etc/passwd"
check "unpacked: jq from the image's layer" test -x "$R/usr/bin/jq"
check "unpacked: a base file removed by a run is gone (whiteout)" test ! -e "$R/etc/issue.net" -a -e "$R/etc/issue"
check "unpacked: the build argument was used" grep -qx hi "$R/etc/hello/greeting"
check "unpacked: the run with the secret saw it (its length)" \
  test "$(cat "$R/etc/hello/token-length" 2>/dev/null)" = "$(wc -c <"$WORK/token")"
check "unpacked: no /run/secrets in the image" test -z "$(ls -A "$R/run" 2>/dev/null | grep secrets)"

# --- 4. the layers themselves ---------------------------------------------------------------------
cat >"$WORK/layers.py" <<'PY'
import json, sys, tarfile, os
layout, secret = sys.argv[1], sys.argv[2].encode()
idx = json.load(open(os.path.join(layout, "index.json")))
man = json.load(open(os.path.join(layout, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
cfg = json.load(open(os.path.join(layout, "blobs/sha256", man["config"]["digest"][7:])))
epoch = None
import datetime
epoch = int(datetime.datetime.strptime(cfg["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())
problems = []
for n, layer in enumerate(man["layers"]):
    path = os.path.join(layout, "blobs/sha256", layer["digest"][7:])
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b" and raw[4:8] != b"\0\0\0\0":
        problems.append(f"layer {n}: gzip header has a timestamp")
    import gzip
    data = gzip.decompress(raw)
    if secret in data:
        problems.append(f"layer {n}: contains the secret")
    names = []
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as t:
        for m in t:
            names.append(m.name)
            if m.mtime > epoch:
                problems.append(f"layer {n}: {m.name} mtime {m.mtime} > epoch {epoch}")
            for k in ("atime", "ctime"):
                if k in m.pax_headers:
                    problems.append(f"layer {n}: {m.name} has {k}")
            if m.uname or m.gname:
                problems.append(f"layer {n}: {m.name} has owner names {m.uname}/{m.gname}")
            for bad in ("var/lib/apt/lists/", "var/log/", "var/cache/apt/", "run/secrets"):
                if m.name.startswith(bad) and not m.isdir():  # the directories themselves stay
                    problems.append(f"layer {n}: {m.name} should have been removed")
            if m.name.endswith("-old") and ("debconf" in m.name or "dpkg" in m.name):
                problems.append(f"layer {n}: {m.name}")
            if m.name in ("var/cache/ldconfig/aux-cache", "usr/sbin/policy-rc.d", "etc/resolv.conf"):
                problems.append(f"layer {n}: {m.name}")
    # Parents before children, siblings in byte order (depth first); whiteouts sit beside what they hide.
    plain = [x for x in names if ".wh." not in x]
    if sorted(plain, key=lambda s: [c.encode() for c in s.split("/")]) != plain:
        problems.append(f"layer {n}: entries are not sorted")
    print(f"layer {n}: {len(names)} entries, {len(raw)} bytes")
print("\n".join(problems) if problems else "layers ok")
PY
python3 "$WORK/layers.py" "$WORK/out1/hello" "$SECRET_VALUE" >"$WORK/layers.out" 2>&1
contains "layers: sorted, mtimes <= epoch, no atime/ctime/owner names, no caches, no secret" "$WORK/layers.out" '^layers ok$'
grep -q "secret" "$WORK/layers.out" && fail "the secret's value is in a layer"
check "the secret's value is in no blob (raw bytes)" sh -c "! grep -rqaF '$SECRET_VALUE' '$WORK/out1' '$WORK/cache1'"
tar -tzf "$WORK/out1/hello/blobs/sha256/$(jq -r '.layers[1].digest' "$(manifest_of "$WORK/out1/hello")" | cut -c8-)" >"$WORK/app-layer.lst" 2>&1
contains_text "the app layer holds the whiteout for /etc/issue.net" "$WORK/app-layer.lst" "etc/.wh.issue.net"
lacks "the app layer does not repeat the base (no /bin/bash)" "$WORK/app-layer.lst" '^(usr/)?bin/bash$'

# --- 5. the cache: a warm rebuild, zstd from the cached tar ------------------------------------
t0=$(date +%s)
build "$WORK/cache1" "$WORK/out3" >"$WORK/build3.out" 2>"$WORK/build3.err"
expect_rc_out "warm rebuild" 0 $? "$WORK/build3.err"
echo "      warm rebuild: $(( $(date +%s) - t0 )) s"
contains "warm rebuild: every layer from the cache" "$WORK/build3.out" 'hello .*\(cached\)'
lacks "warm rebuild: no mmdebstrap, no apt install" "$WORK/build3.err" 'mmdebstrap: |installing jq'
check "warm rebuild: same digest" test "$(digest_of "$WORK/out3/hello")" = "$(digest_of "$WORK/out1/hello")"
cp -r "$RECIPES" "$WORK/recipes2"
echo "answer = 43" >"$WORK/recipes2/hello/conf/hello.conf"
nodectl image build hello --recipes "$WORK/recipes2" --cache "$WORK/cache1" --apt-cache "$APT_CACHE" --out "$WORK/out4" \
  --secret token="$WORK/token" --arg greeting=hi >"$WORK/build4.out" 2>"$WORK/build4.err"
expect_rc_out "a changed copied file rebuilds only the app layer" 0 $? "$WORK/build4.err"
contains "  ... the base layer came from the cache" "$WORK/build4.err" 'base: base layer cached'
check "  ... and the image digest changed" test "$(digest_of "$WORK/out4/hello")" != "$(digest_of "$WORK/out1/hello")"
nodectl image build hello --recipes "$RECIPES" --cache "$WORK/cache1" --apt-cache "$APT_CACHE" --out "$WORK/outz" \
  --secret token="$WORK/token" --arg greeting=hi --compression zstd >"$WORK/buildz.out" 2>"$WORK/buildz.err"
expect_rc_out "zstd build from the cached layers" 0 $? "$WORK/buildz.err"
skopeo inspect --raw "oci:$WORK/outz/hello:$REF" >"$WORK/zmanifest.json" 2>&1
check "zstd: layer media types are tar+zstd" \
  test "$(jq -r '[.layers[].mediaType] | unique | .[]' "$WORK/zmanifest.json")" = "application/vnd.oci.image.layer.v1.tar+zstd"
skopeo inspect --config "oci:$WORK/outz/hello:$REF" >"$WORK/zconfig.json" 2>&1
check "zstd: same diff_ids as the gzip image (same tars)" \
  test "$(jq -c .rootfs.diff_ids "$WORK/zconfig.json")" = "$(jq -c .rootfs.diff_ids "$WORK/config.json")"

# --- 6. containerd: import and run ----------------------------------------------------------------
stop_containerd() { ctr_ tasks kill -s KILL hello1 >/dev/null 2>&1; ctrd_stop; }
trap 'rc=$?; stop_containerd; (exit $rc); cleanup' EXIT
ctrd_start
nodectl image build hello --recipes "$RECIPES" --cache "$WORK/cache1" --apt-cache "$APT_CACHE" --out "$WORK/out1" \
  --secret token="$WORK/token" --arg greeting=hi --import "containerd=$C/sock" --namespace "$NS" \
  >"$WORK/import.out" 2>"$WORK/import.err"
expect_rc_out "build --import containerd=SOCKET (ctr images import of the oci-archive)" 0 $? "$WORK/import.err"
ctr_ images ls >"$WORK/images.lst" 2>&1
contains "containerd lists localhost/nodectl/hello:latest with the manifest digest" "$WORK/images.lst" \
  "localhost/nodectl/hello:latest .*$(digest_of "$WORK/out1/hello")"
contains "... and localhost/nodectl/hello@DIGEST, so a pod pinned by digest finds it offline" "$WORK/images.lst" \
  "^localhost/nodectl/hello@$(digest_of "$WORK/out1/hello") .*$(digest_of "$WORK/out1/hello")"
timeout 60 ctr -a "$C/sock" -n "$NS" run --rm --net-host localhost/nodectl/hello:latest hello1 >"$WORK/run.out" 2>&1
expect_rc_out "the image runs under containerd + runc (tini, then the recipe's cmd)" 0 $? "$WORK/run.out"
contains_text "  ... as the recipe's user, in its workdir, with its env" "$WORK/run.out" "hello from nodectl as app in /data"
contains_text "  ... and jq from the image's own layer works" "$WORK/run.out" '{"greeting":"hi"}'
stop_containerd

# --- 7. --import k3s ------------------------------------------------------------------------------
nodectl image build hello --recipes "$RECIPES" --cache "$WORK/cache1" --apt-cache "$APT_CACHE" --out "$WORK/out1" \
  --secret token="$WORK/token" --arg greeting=hi --import k3s --k3s-images-dir "$WORK/k3s-images" \
  >"$WORK/k3s.out" 2>"$WORK/k3s.err"
expect_rc_out "build --import k3s" 0 $? "$WORK/k3s.err"
check "the oci-archive is in k3s's images directory, unchanged" cmp -s "$WORK/out1/hello.oci.tar" "$WORK/k3s-images/nodectl-hello.oci.tar"
check "no partial file is left there" test "$(ls -A "$WORK/k3s-images" | wc -l)" = 1

echo "      runtime: $SECONDS s"
finish

#!/usr/bin/env bash
# The release binary is fully static and does the real job against a booted node.
source "$(dirname "$0")/lib.sh"
BIN=${NODECTL_STATIC_BIN:-$SRC/build/static/nodectl}
if [ ! -x "$BIN" ]; then
  fail "no static binary at $BIN: build it with scripts/build.sh static"
  finish
  exit 1
fi
file "$BIN" >"$WORK/file.out"
contains "file says statically linked" "$WORK/file.out" 'statically linked'
ldd "$BIN" >"$WORK/ldd.out" 2>&1
contains "ldd says not a dynamic executable" "$WORK/ldd.out" 'not a dynamic executable'
"$BIN" version >"$WORK/version.out"
expect_rc "static version runs" 0 $?
contains "libssh is built in" "$WORK/version.out" 'libssh: 0\.10'
contains "libcurl is built in" "$WORK/version.out" 'libcurl: 7\.88'
echo "static binary size: $(stat -c %s "$BIN") bytes"

nodes_up 1 198.18.9
NODECTL=$BIN
nodectl apply -p "$DATA/motd.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY" "root@${ADDRS[0]}" >"$WORK/1.out" 2>&1
expect_rc "the static binary applies a profile over SSH" 0 $?
check "the node got the file" test "$(node 1 cat /etc/motd)" = "Hello from ${ADDRS[0]}."
nodectl apply -p "$DATA/motd.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --identity "$NODECTL_TEST_KEY" "root@${ADDRS[0]}" >"$WORK/2.out" 2>&1
contains "second run changes nothing" "$WORK/2.out" '0 changed, 1 unchanged'

# The same binary, copied onto the node, provisions the node it runs on (--local).
cat "$BIN" | node 1 "cat > /usr/local/bin/nodectl && chmod 755 /usr/local/bin/nodectl"
node 1 "mkdir -p /root/p && cat > /root/p/local.toml" <"$DATA/motd.toml"
node 1 "nodectl apply -p /root/p/local.toml --local" >"$WORK/3.out" 2>&1
expect_rc "the static binary runs on a bare Debian node with --local" 0 $?
check "it wrote the file locally" test "$(node 1 cat /etc/motd)" = "Hello from $(node 1 hostname)."
finish

#!/usr/bin/env bash
# Strict host keys: an unknown key needs --accept-new-host-key; a changed key is always refused.
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.3
KH=$WORK/known_hosts
: >"$KH"
HOST="root@${ADDRS[0]}"
ARGS=(-p "$DATA/motd.toml" --identity "$NODECTL_TEST_KEY" --known-hosts "$KH" "$HOST")

nodectl plan "${ARGS[@]}" >"$WORK/1.out" 2>&1
expect_rc "unknown host key is refused" 5 $?
contains "the error says how to accept it" "$WORK/1.out" 'is not in .*known_hosts.*--accept-new-host-key'
contains "the error shows the offered fingerprint" "$WORK/1.out" 'SHA256:'
check "known_hosts untouched" test ! -s "$KH"

nodectl plan --accept-new-host-key "${ARGS[@]}" >"$WORK/2.out" 2>&1
expect_rc "--accept-new-host-key records the key" 0 $?
check "known_hosts has the host" grep -q "${ADDRS[0]}" "$KH"
nodectl plan "${ARGS[@]}" >"$WORK/3.out" 2>&1
expect_rc "the recorded key is accepted afterwards" 0 $?

old_fp=$(ssh-keygen -l -f "$KH" | awk '/ED25519/ {print $2; exit}')
node 1 'rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -A; ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key <<<y >/dev/null; systemctl restart ssh'
new_fp=$(ssh-keyscan -t ed25519 "${ADDRS[0]}" 2>/dev/null | ssh-keygen -l -f - | awk '{print $2}')
check "the node now has another ed25519 key" test -n "$new_fp" -a "$new_fp" != "$old_fp"
kh_sum=$(sha256sum <"$KH")
nodectl plan "${ARGS[@]}" >"$WORK/4.out" 2>&1
expect_rc "changed host key is refused" 5 $?
contains "the error says the key changed" "$WORK/4.out" 'HOST KEY OF .* HAS CHANGED'
contains_text "the error shows the known fingerprint" "$WORK/4.out" "known ($KH): ssh-ed25519 $old_fp"
contains_text "the error shows the offered fingerprint" "$WORK/4.out" "offered now: ssh-ed25519 $new_fp"
nodectl apply --accept-new-host-key "${ARGS[@]}" >"$WORK/5.out" 2>&1
expect_rc "--accept-new-host-key does not accept a changed key" 5 $?
check "known_hosts unchanged after the refusals" test "$(sha256sum <"$KH")" = "$kh_sum"
ssh-keygen -q -H -f "$KH" >/dev/null 2>&1 && rm -f "$KH.old"
check "known_hosts is now hashed" grep -q '^|1|' "$KH"
nodectl plan "${ARGS[@]}" >"$WORK/6.out" 2>&1
expect_rc "changed key refused with a hashed known_hosts" 5 $?
contains_text "the known fingerprint is found in a hashed known_hosts too" "$WORK/6.out" "known ($KH): ssh-ed25519 $old_fp"
# known_hosts is not trusted to be well formed: a hashed entry far longer than a SHA-1 HMAC is
# skipped (it used to be decoded into a fixed 64-byte buffer).
long=$(head -c 3000 /dev/zero | base64 -w0)
{ printf '|1|%s|%s ssh-ed25519 AAAA\n' "$long" "$long"; cat "$KH"; } >"$KH.new" && mv "$KH.new" "$KH"
nodectl plan "${ARGS[@]}" >"$WORK/7.out" 2>&1
expect_rc_out "an oversized hashed entry: still a clean refusal" 5 $? "$WORK/7.out"
contains_text "an oversized hashed entry: the known fingerprint is still found" "$WORK/7.out" "known ($KH): ssh-ed25519 $old_fp"
finish

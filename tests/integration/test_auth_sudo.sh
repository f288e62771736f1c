#!/usr/bin/env bash
# Wrong key, wrong user, unreachable hosts fail fast and clearly; non-root users work through sudo,
# with and without a password, and the password never shows up in output or in any argv.
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.4
A=${ADDRS[0]}
KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
PW='correct horse 42 battery'

ssh-keygen -q -t ed25519 -N '' -f "$WORK/wrong_key"
SECONDS=0
timeout 60 "$NODECTL" plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$WORK/wrong_key" "root@$A" >"$WORK/1.out" 2>&1
expect_rc "wrong key fails" 5 $?
check "wrong key fails fast (${SECONDS}s)" test "$SECONDS" -lt 20
contains "wrong key: clear error" "$WORK/1.out" "authentication as 'root' on root@$A:22 failed \\(tried key $WORK/wrong_key\\)"

timeout 60 "$NODECTL" plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "nosuchuser@$A" >"$WORK/2.out" 2>&1
expect_rc "wrong user fails" 5 $?
contains "wrong user: clear error" "$WORK/2.out" "authentication as 'nosuchuser'"

timeout 60 "$NODECTL" plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$A:2" >"$WORK/3.out" 2>&1
expect_rc "closed port fails" 5 $?
contains "closed port: clear error" "$WORK/3.out" "cannot connect to root@$A:2"

SECONDS=0
timeout 60 "$NODECTL" plan -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" --connect-timeout 2 "root@198.18.4.250" >"$WORK/4.out" 2>&1
expect_rc "silent address fails" 5 $?
check "silent address: connect timeout honoured (${SECONDS}s)" test "$SECONDS" -lt 15

echo "# users: alice has passwordless sudo, bob needs his password"
node 1 "set -e
  for u in alice bob; do
    useradd -m -s /bin/bash \$u
    install -d -m 700 -o \$u -g \$u /home/\$u/.ssh
    install -m 600 -o \$u -g \$u /root/.ssh/authorized_keys /home/\$u/.ssh/authorized_keys
  done
  echo 'alice ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/alice
  echo 'bob ALL=(ALL) ALL' > /etc/sudoers.d/bob
  chmod 440 /etc/sudoers.d/alice /etc/sudoers.d/bob
  printf 'bob:%s\n' '$PW' | chpasswd"
cp "$DATA/upload.toml" "$DATA/uploaded.conf" "$WORK/"
BASE=(-p "$WORK/upload.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY")

"$NODECTL" apply "${BASE[@]}" --sudo none "alice@$A" >"$WORK/5.out" 2>&1
expect_rc "non-root without sudo is refused" 5 $?
contains "says it is not root" "$WORK/5.out" 'not as root'

"$NODECTL" apply "${BASE[@]}" --sudo nopasswd "alice@$A" >"$WORK/6.out" 2>&1
expect_rc "alice: sudo without a password" 0 $?
check "alice's run wrote the file as root (SFTP upload + sudo)" test "$(node 1 "stat -c '%U %a' /etc/nodectl-test/uploaded.conf")" = "root 644"
check "alice's upload left no temporary file in her home" test -z "$(node 1 "find /home/alice -name '.nodectl-upload*'")"

"$NODECTL" apply "${BASE[@]}" --sudo nopasswd "bob@$A" >"$WORK/7.out" 2>&1
expect_rc "bob without his password is refused" 5 $?
contains "says sudo -n was refused" "$WORK/7.out" 'sudo -n was refused'

printf '%s\n' "$PW" >"$WORK/pw"
chmod 644 "$WORK/pw"
"$NODECTL" apply "${BASE[@]}" --sudo password --sudo-password-file "$WORK/pw" "bob@$A" >"$WORK/8.out" 2>&1
expect_rc "a world-readable password file is refused" 5 $?
contains "says why" "$WORK/8.out" 'readable by group or others'
chmod 600 "$WORK/pw"

export WRONG_PW='not the password'
"$NODECTL" apply "${BASE[@]}" --sudo password --sudo-password-env WRONG_PW "bob@$A" >"$WORK/9.out" 2>&1
expect_rc "a wrong sudo password is refused" 5 $?
contains "says the password was refused" "$WORK/9.out" 'sudo refused the password'

# Record every command line on the node while bob's run goes on (bounded: 40 s at most).
node 1 "rm -f /etc/nodectl-test/uploaded.conf"
node 1 'end=$((SECONDS+40)); while [ $SECONDS -lt $end ] && [ ! -e /tmp/stop-watch ]; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " "; echo; sleep 0.02; done' >"$WORK/argv.log" &
watch=$!
sleep 1
"$NODECTL" apply "${BASE[@]}" --sudo password --sudo-password-file "$WORK/pw" "bob@$A" >"$WORK/10.out" 2>&1
expect_rc "bob: sudo with a password from a file" 0 $?
node 1 'touch /tmp/stop-watch'
wait $watch
check "the file was written as root" test "$(node 1 "stat -c '%U' /etc/nodectl-test/uploaded.conf")" = root
contains "the watcher saw nodectl's sudo commands" "$WORK/argv.log" 'sudo -S -k -p  -- timeout'
lacks "the password is in no process's argv on the node" "$WORK/argv.log" "$PW"
lacks "the password is not printed" "$WORK/10.out" "$PW"
"$NODECTL" apply "${BASE[@]}" --sudo password --sudo-password-file "$WORK/pw" "bob@$A" >"$WORK/11.out" 2>&1
expect_rc "bob: second run" 0 $?
contains "bob: second run changes nothing" "$WORK/11.out" '0 changed'

# sudo = "password" for a user whose sudo rule needs no password (nodectl's hardening installs
# such a rule): sudo never reads the password, which must not end up in what the script reads.
export ALICE_PW='alice secret 17 staple'
"$NODECTL" apply -p "$DATA/motd.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" --sudo password \
  --sudo-password-env ALICE_PW "alice@$A" >"$WORK/12.out" 2>&1
expect_rc "alice: sudo = password with a NOPASSWD rule" 0 $?
node 1 "cat /etc/motd" >"$WORK/motd"
contains "the file holds its content" "$WORK/motd" "Hello from $A"
lacks "the password is not written into the file" "$WORK/motd" "$ALICE_PW"
check "the file's first line is its content" test "$(head -n1 "$WORK/motd")" = "Hello from $A."

echo "# a file in a directory a local user owns, while that user swaps nodectl's temporary files for symlinks"
node 1 "install -d -o alice -g alice -m 755 /srv/alice && printf 'precious\n' >/root/victim && chmod 600 /root/victim"
node 1 'setpriv --reuid=alice --regid=alice --clear-groups sh -c "end=\$((\$(date +%s)+90)); while [ \$(date +%s) -lt \$end ] && [ ! -e /srv/alice/stop ]; do for f in /srv/alice/.nodectl.*; do [ -e \"\$f\" ] && [ ! -L \"\$f\" ] && rm -f \"\$f\" && ln -s /root/victim \"\$f\"; done; done" >/dev/null 2>&1' &
racer=$!
for i in 1 2 3 4 5 6 7 8; do
  printf '[[base.files]]\npath = "/srv/alice/app.conf"\ncontent = "run %s\\n"\nmode = "0644"\n' "$i" >"$WORK/race.toml"
  "$NODECTL" apply -p "$WORK/race.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$A" >"$WORK/race-$i.out" 2>&1
done
node 1 'touch /srv/alice/stop'
wait $racer
check "root's file was not written through the swapped symlink" test "$(node 1 cat /root/victim)" = precious
check "root's file kept its mode and owner" test "$(node 1 "stat -c '%a %U' /root/victim")" = "600 root"
node 1 'rm -f /srv/alice/stop /srv/alice/app.conf'
"$NODECTL" apply -p "$WORK/race.toml" "${KH[@]}" --identity "$NODECTL_TEST_KEY" "root@$A" >"$WORK/race.out" 2>&1
expect_rc_out "without the racer the file is written" 0 $? "$WORK/race.out"
check "with its content, owner and mode" test "$(node 1 "cat /srv/alice/app.conf; stat -c '%a %U' /srv/alice/app.conf")" = "run 8
644 root"
finish

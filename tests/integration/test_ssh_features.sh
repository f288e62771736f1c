#!/usr/bin/env bash
# ProxyJump through a real sshd on loopback, ~/.ssh/config host aliases, and ssh-agent keys.
source "$(dirname "$0")/lib.sh"
nodes_up 1 198.18.8
A=${ADDRS[0]}

echo "# a jump host: our own sshd on a free loopback port"
PORT=$(free_port)
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$WORK/jump_host_key"
cp "$NODECTL_TEST_KEY.pub" "$WORK/jump_authorized_keys"
cat >"$WORK/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/jump_host_key
AuthorizedKeysFile $WORK/jump_authorized_keys
PidFile $WORK/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
StrictModes no
UsePAM no
LogLevel DEBUG1
CFG
/usr/sbin/sshd -f "$WORK/sshd_config" -D -E "$WORK/sshd.log" &
SSHD=$!
trap 'kill $SSHD 2>/dev/null; cleanup' EXIT
wait_until 5 "sshd on 127.0.0.1:$PORT" grep -q "Server listening" "$WORK/sshd.log"
cp "$NODECTL_TEST_KNOWN_HOSTS" "$WORK/known_hosts"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$WORK/jump_host_key.pub")" >>"$WORK/known_hosts"
cat >"$WORK/inv.toml" <<INV
[[hosts]]
name = "behind-jump"
address = "$A"
identity = "$NODECTL_TEST_KEY"
proxy_jump = "root@127.0.0.1:$PORT"
INV
"$NODECTL" apply -p "$DATA/motd.toml" -i "$WORK/inv.toml" --known-hosts "$WORK/known_hosts" >"$WORK/1.out" 2>&1
expect_rc "apply through a ProxyJump host" 0 $?
check "the node got the file" test "$(node 1 cat /etc/motd)" = "Hello from behind-jump."
contains "the jump host forwarded the connection to the node" "$WORK/sshd.log" "direct-tcpip.*$A|target $A port 22|connect to $A port 22"

echo "# names that reach the ProxyCommand are validated: no option or shell injection"
cat >"$WORK/inv-bad-jump.toml" <<INV
[[hosts]]
address = "$A"
identity = "$NODECTL_TEST_KEY"
proxy_jump = "-oProxyCommand=touch $WORK/pwned-jump"
INV
cat >"$WORK/inv-bad-address.toml" <<INV
[[hosts]]
address = "x'\$(touch $WORK/pwned-address)'"
identity = "$NODECTL_TEST_KEY"
proxy_jump = "root@127.0.0.1:$PORT"
INV
for bad in jump address; do
  "$NODECTL" plan -p "$DATA/motd.toml" -i "$WORK/inv-bad-$bad.toml" --known-hosts "$WORK/known_hosts" >"$WORK/bad-$bad.out" 2>&1
  rc=$?
  check "a bad $bad is refused (exit $rc)" test "$rc" -ne 0
  check "a bad $bad runs no command" test ! -e "$WORK/pwned-$bad"
done
contains "the bad jump host is named" "$WORK/bad-jump.out" "proxy_jump' must be"
contains "the bad address is named" "$WORK/bad-address.out" "address' must be a host name or an IP address"

echo "# an alias from an ssh config file"
cat >"$WORK/ssh_config" <<CFG
Host mynode
  HostName $A
  User root
  IdentityFile $NODECTL_TEST_KEY
CFG
"$NODECTL" plan -p "$DATA/motd.toml" --ssh-config "$WORK/ssh_config" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" mynode >"$WORK/2.out" 2>&1
expect_rc "plan to an ssh config alias" 0 $?
contains "the alias is used as the host's name" "$WORK/2.out" '^ +\+Hello from mynode\.$'

echo "# a key that only ssh-agent holds"
eval "$(ssh-agent -s)" >/dev/null
ssh-add -q "$NODECTL_TEST_KEY" 2>/dev/null
HOME=$WORK "$NODECTL" plan -p "$DATA/motd.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" "root@$A" >"$WORK/3.out" 2>&1
expect_rc "authenticate with ssh-agent" 0 $?
ssh-agent -k >/dev/null
HOME=$WORK SSH_AUTH_SOCK= "$NODECTL" plan -p "$DATA/motd.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" "root@$A" >"$WORK/4.out" 2>&1
expect_rc "without the agent the same run has no key" 5 $?
finish

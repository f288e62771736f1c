# Shared by the hardening benchmarks (harden.sh, harden_devsec.sh, harden_reapply.sh): their
# start, nodectl inventories, dev-sec's collection and its Ansible inventory, and this machine's
# kernel values, which nodes booted with a writable /proc/sys change. Sourced from the
# repository's root.

# bench_start: the dependencies, nodectl built ($NODECTL), a work directory ($WORK), the node
# helpers (scripts/lib/nodes.sh), and an EXIT trap that removes the nodes and the work directory
# and puts back this machine's kernel values.
bench_start() {
  scripts/setup.sh
  NODECTL=$(scripts/build.sh dynamic nodectl | tail -n 1)
  SRC=$PWD
  WORK=$(mktemp -d /tmp/nodectl-bench.XXXXXX)
  source scripts/lib/nodes.sh
  save_machine_sysctls
  trap 'nodes_down; restore_machine_sysctls; rm -rf "$WORK"' EXIT
}

# inventory FILE USER I...: nodes I... as USER (root, or admin with sudo), in one inventory.
inventory() {
  local file=$1 user=$2 i
  shift 2
  {
    printf '[defaults]\nidentity = "%s"\n' "$NODECTL_TEST_KEY"
    if [ "$user" != root ]; then printf 'user = "%s"\nsudo = "nopasswd"\n' "$user"; fi
    for i in "$@"; do
      printf '\n[[hosts]]\nname = "node%d"\naddress = "%s"\nvars = { apt_proxy = "%s", role = "bench", admin_key = "%s" }\n' \
        "$i" "${ADDRS[$((i - 1))]}" "$NODECTL_TEST_APT_PROXY" "$(cat "$NODECTL_TEST_KEY.pub")"
    done
  } >"$file"
}

# devsec_setup TARBALL PLAY: Debian's Ansible, and dev-sec's collection unpacked into $WORK/devsec
# with the play beside it ($WORK/play.yml); neither is copied into the repository. DEVSEC_PLAY is
# then the command that runs the play on the node of $WORK/hosts.ini (root over SSH, pipelining on).
devsec_setup() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible >/dev/null
  mkdir -p "$WORK/devsec"
  tar -xzf "$1" -C "$WORK/devsec"
  cp "$2" "$WORK/play.yml"
  DEVSEC_PLAY=(env ANSIBLE_COLLECTIONS_PATH="$WORK/devsec" ANSIBLE_PIPELINING=True ANSIBLE_NOCOLOR=1
    ansible-playbook -i "$WORK/hosts.ini" "$WORK/play.yml")
}

# devsec_node I: what dev-sec's roles expect of a Debian node and nodectl local's nodes lack
# (python3-apt; every host key type a Debian install has, ECDSA among them), done before any clock
# starts; then $WORK/hosts.ini names node I as root.
devsec_node() {
  node "$1" "ssh-keygen -A >/dev/null && echo 'Acquire::http::Proxy \"$NODECTL_TEST_APT_PROXY\";' >/etc/apt/apt.conf.d/01proxy &&
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-apt >/dev/null"
  printf '[nodes]\nnode%d ansible_host=%s\n[nodes:vars]\nansible_user=root\nansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=%s\n' \
    "$1" "${ADDRS[$(($1 - 1))]}" "$NODECTL_TEST_KEY" "'-o UserKnownHostsFile=$NODECTL_TEST_KNOWN_HOSTS -o StrictHostKeyChecking=yes'" >"$WORK/hosts.ini"
}

# devsec_run LOG ARG...: the play (ARG... go to ansible-playbook), its output in LOG (the end of
# it shown when it fails).
devsec_run() {
  local log=$1
  shift
  "${DEVSEC_PLAY[@]}" "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; return 1; }
}

# This machine's kernel values that hardening (nodectl's and dev-sec's) sets, saved by
# save_machine_sysctls and put back by restore_machine_sysctls (kernel.kexec_load_disabled and
# kernel.unprivileged_bpf_disabled = 1 cannot be undone before a reboot; they are left).
MACHINE_SYSCTLS="kernel.kptr_restrict kernel.dmesg_restrict kernel.yama.ptrace_scope kernel.core_uses_pid
  kernel.ctrl-alt-del dev.tty.ldisc_autoload net.core.bpf_jit_harden kernel.sysrq kernel.randomize_va_space
  kernel.perf_event_paranoid fs.protected_hardlinks fs.protected_symlinks fs.protected_fifos fs.protected_regular
  fs.suid_dumpable"
MACHINE_SAVED=()
save_machine_sysctls() {
  local k p
  for k in $MACHINE_SYSCTLS; do
    p=/proc/sys/${k//.//}
    if [ -r "$p" ]; then MACHINE_SAVED+=("$k=$(cat "$p")"); fi
  done
}
restore_machine_sysctls() {
  local kv
  for kv in "${MACHINE_SAVED[@]}"; do sysctl -q -w "$kv" >/dev/null 2>&1 || true; done
}

seconds_since() { python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.3f}")' "$1"; }
now() { date +%s.%N; }

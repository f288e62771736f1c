#!/usr/bin/env bash
# Profile errors name file:line:col, suggest fixes, and stop everything before any host is contacted.
source "$(dirname "$0")/lib.sh"

printf '[base]\ntimezone = "Etc/UTC"\nhostnme = "web1"\n' >"$WORK/typo.toml"
nodectl plan -p "$WORK/typo.toml" root@198.18.6.2 >"$WORK/1.out" 2>&1
expect_rc "a profile error stops the run before connecting (config error, not host failure)" 3 $?
contains "unknown key has file:line:col and a suggestion" "$WORK/1.out" "typo.toml:3:1: unknown key 'base.hostnme'; did you mean 'hostname'\\?"
contains "says nothing was changed" "$WORK/1.out" 'nothing was changed'
lacks "no connection was attempted" "$WORK/1.out" 'connecting|cannot connect'

printf '[base]\npackages = "curl"\n' >"$WORK/type.toml"
nodectl profile validate "$WORK/type.toml" >"$WORK/2.out" 2>&1
expect_rc "wrong type" 3 $?
contains "wrong type gives location and expected type" "$WORK/2.out" "type.toml:2:12: 'base.packages' must be a list of strings, not string"

printf '[base\nhostname = "x"\n' >"$WORK/syntax.toml"
nodectl profile validate "$WORK/syntax.toml" >"$WORK/3.out" 2>&1
expect_rc "syntax error" 3 $?
contains "syntax error has file:line:col" "$WORK/3.out" 'syntax.toml:1:[0-9]+: '

printf '[[base.files]]\npath = "/etc/x"\ncontent = "a"\nmode = "0999"\n' >"$WORK/inner.toml"
printf 'include = ["inner.toml"]\n[base]\ntimezone = "Etc/UTC"\n' >"$WORK/outer.toml"
nodectl apply -p "$WORK/outer.toml" --local >"$WORK/4.out" 2>&1
expect_rc "error in an included profile" 3 $?
contains "the included file is named, with its line" "$WORK/4.out" "inner.toml:4:8: 'base.files\\[\\].mode' must be an octal file mode"

printf '[bsae]\nhostname = "x"\n' >"$WORK/section.toml"
nodectl profile validate "$WORK/section.toml" >"$WORK/5.out" 2>&1
expect_rc "misspelt section" 3 $?
contains "misspelt section gets a suggestion" "$WORK/5.out" "did you mean 'base'"

printf '[[hosts]]\naddress = "198.18.6.2"\nport = 70000\n' >"$WORK/inv.toml"
nodectl plan -p "$DATA/motd.toml" -i "$WORK/inv.toml" >"$WORK/6.out" 2>&1
expect_rc "inventory error" 3 $?
contains "out-of-range port with location" "$WORK/6.out" "inv.toml:3:8: 'hosts\\[\\].port' must be a TCP port between 1 and 65535"

# A profile on a pipe (/dev/fd/N links to "pipe:[N]", which has no canonical path): read, not a crash.
nodectl profile validate <(printf '[base]\ntimezone = "Etc/UTC"\n') >"$WORK/pipe.out" 2>&1
expect_rc "a profile read from a pipe (<(...)) validates" 0 $?
nodectl profile validate <(printf '[base]\nhostnme = "x"\n') >"$WORK/pipe2.out" 2>&1
expect_rc "... and one with an error on a pipe is a config error" 3 $?
contains "... named /dev/fd/N:line:col" "$WORK/pipe2.out" "/dev/fd/[0-9]+:2:1: unknown key 'base.hostnme'"
lacks "... no uncaught exception" "$WORK/pipe2.out" "terminate called|filesystem error"

for p in "$SRC"/profiles/*.toml; do
  nodectl profile validate "$p" >"$WORK/v.out" 2>&1
  expect_rc "shipped profile $(basename "$p") validates" 0 $?
done

nodectl profile keys >"$WORK/keys.out"
expect_rc "profile keys" 0 $?
contains "key table lists base.hostname with its doc" "$WORK/keys.out" '^  base.hostname \(string\)'
contains "key table lists inventory keys with defaults" "$WORK/keys.out" '^  hosts\[\]\.port \(integer = 22\)'

nodectl join root@198.18.0.3 >"$WORK/j.out" 2>&1
expect_rc "join without --server is a usage error" 2 $?
contains "join says what is missing" "$WORK/j.out" '--server is required'
# Every command of the table is built now (issue 18 built `local`): an unknown option is a usage error.
nodectl local --anything >"$WORK/u.out" 2>&1
expect_rc "'local --anything' is a usage error" 2 $?
lacks "'local' is available" "$WORK/u.out" 'not available yet'
nodectl backup -p "$WORK/none.toml" list >"$WORK/b.out" 2>&1
expect_rc "backup with a missing profile is a profile error" 3 $?
nodectl --help >"$WORK/help.out"
expect_rc "--help" 0 $?
contains "--help documents exit codes" "$WORK/help.out" 'Exit codes: 0 ok'
nodectl apply --help >"$WORK/ahelp.out"
contains "apply --help has examples" "$WORK/ahelp.out" 'Examples:'
nodectl plan >"$WORK/usage.out" 2>&1
expect_rc "missing --profile is a usage error" 2 $?
finish

#!/usr/bin/env bash
# `nodectl backup` against real services on loopback: two MariaDB servers (mariadbd, own datadirs
# and ports), s3rver checked with Debian's awscli, a directory target, a tiny tmpfs, a python
# webhook receiver. Round trip (dump -> tar+zstd [-> AES-GCM] -> S3 + directory -> verify ->
# restore into a fresh server: CHECKSUM TABLE, routines, triggers; files byte for byte), then the
# faults: a flipped byte, a wrong key, s3rver killed mid-upload, a full disk, a failing target.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_services.sh"

for t in mariadbd mariadb-install-db mariadb mariadb-dump; do
  command -v $t >/dev/null || { echo "missing $t (scripts/setup.sh)"; exit 1; }
done
[ -x "$S3RVER" ] || { echo "missing s3rver (scripts/setup.sh)"; exit 1; }
[ -x "$AWS" ] || { echo "missing awscli (scripts/setup.sh)"; exit 1; }

TMPFS=""
stop_all() {
  stop_services
  if [ -n "$TMPFS" ]; then umount "$TMPFS" 2>/dev/null; fi
}
trap 'rc=$?; stop_all; (exit $rc); cleanup' EXIT
chmod 755 "$WORK"

DBPW="Db-pw-$(openssl rand -hex 12)"
# --- MariaDB: two servers as root (--user=root), datadirs in the work dir --------------------
start_mariadb A "$DBPW"
start_mariadb B "$DBPW"
printf '[client]\nuser=root\npassword="%s"\nhost=127.0.0.1\nprotocol=TCP\n' "$DBPW" >"$WORK/my.cnf"
chmod 600 "$WORK/my.cnf"
sqlA() { mariadb --defaults-extra-file="$WORK/my.cnf" -P "$DB_PORT_A" -N -B "$@"; }
sqlB() { mariadb --defaults-extra-file="$WORK/my.cnf" -P "$DB_PORT_B" -N -B "$@"; }
check "both MariaDB servers answer with the password" bash -c "[ \"\$(mariadb --defaults-extra-file=$WORK/my.cnf -P $DB_PORT_A -N -e 'SELECT 1')\" = 1 ]"

# Data: several tables, thousands of rows, a blob column, a trigger, routines, an event.
sqlA <<'SQL'
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(200), created DATETIME);
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, total DECIMAL(10,2), note TEXT,
  receipt BLOB, KEY (customer_id));
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, order_id INT, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id);
CREATE FUNCTION vat(x DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN x * 1.19;
CREATE PROCEDURE big_orders(IN lim DECIMAL(10,2)) SELECT id, total FROM orders WHERE total > lim;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE at < NOW() - INTERVAL 1 YEAR;
INSERT INTO customers SELECT seq, CONCAT('Kunde ', seq, ' Müller'), CONCAT('c', seq, '@example.org'),
  '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_5000;
INSERT INTO orders (customer_id, total, note, receipt) SELECT seq % 5000 + 1, seq * 1.25,
  CONCAT('note ''quoted'' \\ ', seq), RANDOM_BYTES(200 + seq % 800) FROM seq_1_to_4000;
UPDATE orders SET receipt = UNHEX('00FF0D0A1A27225C') WHERE id = 7;
CREATE DATABASE blog;
CREATE TABLE blog.posts (id INT PRIMARY KEY, body MEDIUMTEXT);
INSERT INTO blog.posts SELECT seq, REPEAT(CONCAT('line ', seq, '\n'), 50) FROM seq_1_to_2000;
SQL
# A database user can name a database like a mariadb-dump option (audit H6).
sqlA -e "CREATE DATABASE \`--result-file=$WORK/pwned.sql\`"
check "test data: 4000 orders, 4000 audit rows by the trigger" test "$(sqlA -e 'SELECT COUNT(*) FROM shop.audit')" = 4000

# --- files, s3rver, keys, profiles ----------------------------------------------------------
mkdir -p "$WORK/site/media/img" "$WORK/site/cache" "$WORK/site/empty"
echo "<?php echo 1;" >"$WORK/site/index.php"
head -c 2000000 /dev/urandom >"$WORK/site/media/img/photo.jpg"
printf 'a\0b\n' >"$WORK/site/media/nul.bin"
ln -s media/img/photo.jpg "$WORK/site/latest.jpg"
echo tmp >"$WORK/site/cache/x.tmp"
echo log >"$WORK/site/debug.log"
chmod 640 "$WORK/site/index.php"
touch -d '2025-05-05 05:05:05' "$WORK/site/media/nul.bin"

S3DIR=$WORK/s3rver
start_s3rver "$S3DIR"
aws_env
printf '%s' "$DBPW" >"$WORK/db.pw"
chmod 600 "$WORK/db.pw"
openssl rand -hex 32 >"$WORK/key"
openssl rand -hex 32 >"$WORK/otherkey"
chmod 600 "$WORK/key" "$WORK/otherkey"
mkdir -p "$WORK/nfs" "$WORK/enc"

common() {  # the [backup] sources
  cat <<EOF
[backup.mariadb]
host = "127.0.0.1"
port = $DB_PORT_A
password = { file = "$WORK/db.pw" }
[[backup.files]]
path = "$WORK/site"
exclude = ["cache", "*.log"]
EOF
}
{
  printf '[backup]\nname = "web1"\nchunk_mib = 1\nmetrics_file = "%s"\n' "$WORK/metrics.prom"
  printf 'pre_hooks = ["echo pre >%s"]\npost_hooks = ["echo $NODECTL_BACKUP_OUTCOME >%s"]\n' "$WORK/pre.out" "$WORK/post.out"
  common
  printf '[[backup.targets]]\nname = "nfs"\npath = "%s"\nmin_free_mib = 1\n' "$WORK/nfs"
  s3_target nodes/web1/
} >"$WORK/p.toml"

# --- 1. a run to both targets, argv watched ---------------------------------------------------
: >"$WORK/cmdlines"
# nodectl is started by the sampler itself, which records every distinct argv of nodectl and its
# children (from any of its threads) each half millisecond: a shell loop forking per sample, started
# after nodectl, missed the short dump on a busy machine. Exits with nodectl's status.
python3 - "$WORK/cmdlines" "$NODECTL" backup -p "$WORK/p.toml" run >"$WORK/run.out" 2>"$WORK/run.err" <<'PY'
import glob, subprocess, sys, time
out, seen = open(sys.argv[1], "a"), set()
run = subprocess.Popen(sys.argv[2:])
end = time.time() + 300
while run.poll() is None and time.time() < end:
    kids = []
    for f in glob.glob(f"/proc/{run.pid}/task/*/children"):
        try:
            kids += open(f).read().split()
        except OSError:
            pass
    for p in [run.pid] + kids:
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if argv and argv not in seen:
            seen.add(argv)
            print(argv, file=out, flush=True)
    time.sleep(0.0005)
sys.exit(run.wait())
PY
expect_rc_out "backup run to a directory and S3" 0 $? "$WORK/run.err"
contains "mariadb-dump ran while it was watched (argv sampled)" "$WORK/cmdlines" 'mariadb-dump --defaults-extra-file=[^ ]+ --single-transaction --routines --events --triggers'
lacks "the DB password never appears in the argv of nodectl or its children" "$WORK/cmdlines" "$DBPW"
lacks "the S3 keys never appear in argv" "$WORK/cmdlines" 'S3RVER'
contains "the run says both targets are ok" "$WORK/run.out" '^  s3: ok'
check "a database named --result-file=... is not read as an option by mariadb-dump" test ! -e "$WORK/pwned.sql"
contains "... it is skipped with a warning" "$WORK/run.err" "database '--result-file=.*' skipped"
contains_text "pre hook ran" "$WORK/pre.out" pre
contains_text "post hook ran and got the outcome" "$WORK/post.out" ok
ID=$(sed -n 's/^backup \(web1-[0-9T]*Z\):.*/\1/p' "$WORK/run.out")
check "the directory holds ID.tar.zst and nothing else" test "$(ls -A "$WORK/nfs")" = "$ID.tar.zst"
check "the archive file is 0600" test "$(stat -c %a "$WORK/nfs/$ID.tar.zst")" = 600
aws s3 ls s3://backups/nodes/web1/ >"$WORK/aws.ls" 2>&1
contains "awscli lists the archive on S3" "$WORK/aws.ls" " $ID\.tar\.zst$"
aws s3 cp "s3://backups/nodes/web1/$ID.tar.zst" "$WORK/from-s3.tar.zst" --only-show-errors
check "the S3 object and the directory file are the same bytes" cmp -s "$WORK/from-s3.tar.zst" "$WORK/nfs/$ID.tar.zst"
tar --zstd -tvf "$WORK/nfs/$ID.tar.zst" >"$WORK/tar.list" 2>&1
check "GNU tar reads it: manifest.json is the last entry" test "$(tail -n 1 "$WORK/tar.list" | awk '{print $NF}')" = manifest.json
contains "the dump is stored in 1 MiB pieces" "$WORK/tar.list" ' db/shop\.sql\.000001$'
contains "the blog database too" "$WORK/tar.list" ' db/blog\.sql\.000000$'
contains "the symlink is kept" "$WORK/tar.list" 'files/site/latest\.jpg -> media/img/photo\.jpg'
lacks "excluded: cache/ and *.log" "$WORK/tar.list" 'cache|debug\.log'
tar --zstd -xOf "$WORK/nfs/$ID.tar.zst" manifest.json >"$WORK/manifest.json"
check "manifest: sha256 of every entry as GNU tar extracts it" bash -c '
  mkdir -p "$1/x" && tar --zstd -xf "$2" -C "$1/x" && cd "$1/x" &&
  jq -r ".entries[] | select(.sha256 != \"\") | \"\(.sha256)  \(.path)\"" "$1/manifest.json" | sha256sum --quiet -c -' _ "$WORK" "$WORK/nfs/$ID.tar.zst"
check "manifest: server version, host and database list" bash -c \
  "jq -e '.sources.mariadb.server_version | test(\"MariaDB\")' $WORK/manifest.json >/dev/null &&
   jq -e '.host != \"\" and (.sources.mariadb.databases | map(.name) == [\"blog\",\"shop\"])' $WORK/manifest.json >/dev/null"
nodectl backup -p "$WORK/p.toml" list >"$WORK/list.out" 2>&1
check "backup list shows it on both targets" test "$(grep -c " $ID " "$WORK/list.out")" = 2
contains "metrics: success on s3" "$WORK/metrics.prom" '^nodectl_backup_last_outcome\{target="s3"\} 1$'
check "metrics file is world-readable but holds no secret" bash -c "! grep -q '$DBPW' $WORK/metrics.prom"

# --- 2. verify, restore into a fresh server --------------------------------------------------
nodectl backup -p "$WORK/p.toml" verify "$ID" --target s3 >"$WORK/v.out" 2>&1
expect_rc_out "verify (from S3)" 0 $? "$WORK/v.out"
nodectl backup -p "$WORK/p.toml" restore "$ID" --db shop >"$WORK/r0.out" 2>&1
expect_rc_out "restore over the original without --force is refused" 2 $? "$WORK/r0.out"
contains "... and says why" "$WORK/r0.out" 'needs --force'
nodectl backup -p "$WORK/p.toml" restore "$ID" --target s3 --db shop --into shop_copy --db-host 127.0.0.1 \
  --db-port "$DB_PORT_B" >"$WORK/r1.out" 2>&1
expect_rc_out "restore shop from S3 into the fresh server as shop_copy" 0 $? "$WORK/r1.out"
sums() { "$1" -e "CHECKSUM TABLE $2.customers, $2.orders, $2.audit EXTENDED" | awk '{print $2}'; }
check "CHECKSUM TABLE of every table matches" test "$(sums sqlA shop)" = "$(sums sqlB shop_copy)"
check "... and the checksums are real numbers" bash -c "[ \"\$(echo '$(sums sqlA shop)' | grep -c '^[0-9][0-9]*$')\" = 3 ]"
rt() { "$1" -e "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='$2' ORDER BY 1;
  SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='$2' ORDER BY 1;
  SELECT EVENT_NAME, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA='$2' ORDER BY 1;
  SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$2'"; }
rt sqlA shop >"$WORK/rt.a"; rt sqlB shop_copy >"$WORK/rt.b"
check "routines, trigger, event and collation match" cmp -s "$WORK/rt.a" "$WORK/rt.b"
contains "... and there are two routines and a trigger" "$WORK/rt.b" '^orders_audit	orders'
check "the blob with NUL/CR/LF/quote bytes came back" test "$(sqlB -e 'SELECT HEX(receipt) FROM shop_copy.orders WHERE id=7')" = 00FF0D0A1A27225C
nodectl backup -p "$WORK/p.toml" restore "$ID" --db shop --into shop_copy --db-port "$DB_PORT_B" --db-host 127.0.0.1 >"$WORK/r2.out" 2>&1
expect_rc_out "restoring into an existing database without --force is refused" 2 $? "$WORK/r2.out"
nodectl backup -p "$WORK/p.toml" restore "$ID" --target nfs --files --to "$WORK/restored" >"$WORK/rf.out" 2>&1
expect_rc_out "restore the files from the directory target" 0 $? "$WORK/rf.out"
rm -rf "$WORK/expected" && cp -a "$WORK/site" "$WORK/expected" && rm -rf "$WORK/expected/cache" "$WORK/expected/debug.log"
check "files byte for byte (diff -r, symlink kept)" diff -r --no-dereference "$WORK/expected" "$WORK/restored/site"
check "modes and mtimes kept" test "$(stat -c '%a %Y' "$WORK/restored/site/index.php" "$WORK/restored/site/media/nul.bin")" = \
  "$(stat -c '%a %Y' "$WORK/site/index.php" "$WORK/site/media/nul.bin")"
check "the empty directory came back" test -d "$WORK/restored/site/empty"

# A hostile archive on the shared target: a symbolic link to outside --to, then a setuid file
# and a directory entry through it (audit H1). Built with Python's tarfile, a valid manifest.
mkdir -p "$WORK/outside/keep" && chmod 700 "$WORK/outside/keep"
python3 - "$WORK/evil.tar" "$WORK/outside" "$WORK/hard.tar" <<'PY'
import hashlib, io, json, sys, tarfile
out, outside, hard = sys.argv[1], sys.argv[2], sys.argv[3]
entries = []
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, kind, data=b"", mode=0o755, link=""):
        i = tarfile.TarInfo(name); i.type = kind; i.mode = mode; i.linkname = link; i.size = len(data)
        t.addfile(i, io.BytesIO(data) if data else None)
        entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest() if kind == tarfile.REGTYPE else ""})
    add("files/site", tarfile.DIRTYPE)
    add("files/site/l", tarfile.SYMTYPE, link=outside)
    add("files/site/l/keep", tarfile.DIRTYPE, mode=0o777)
    add("files/site/l/planted", tarfile.REGTYPE, b"#!/bin/sh\nid\n", mode=0o4755)
    m = json.dumps({"format": 1, "sources": {}, "entries": entries}).encode()
    i = tarfile.TarInfo("manifest.json"); i.size = len(m); t.addfile(i, io.BytesIO(m))
with tarfile.open(hard, "w", format=tarfile.PAX_FORMAT) as t:  # a hard link to a file outside
    i = tarfile.TarInfo("files/site/h"); i.type = tarfile.LNKTYPE; i.linkname = "/etc/passwd"; t.addfile(i)
    m = json.dumps({"format": 1, "sources": {}, "entries": [{"path": "files/site/h", "size": 0, "sha256": ""}]}).encode()
    i = tarfile.TarInfo("manifest.json"); i.size = len(m); t.addfile(i, io.BytesIO(m))
PY
zstd -q -f "$WORK/evil.tar" -o "$WORK/nfs/web1-20200101T000000Z.tar.zst"
nodectl backup -p "$WORK/p.toml" restore web1-20200101T000000Z --target nfs --files --to "$WORK/evil-restored" >"$WORK/evil.out" 2>&1
expect_rc_out "restore of an archive that writes through its own symbolic link is refused" 8 $? "$WORK/evil.out"
contains "... saying a symbolic link is never followed" "$WORK/evil.out" 'symbolic link is never followed'
check "... nothing was planted outside --to" test ! -e "$WORK/outside/planted"
check "... the outside directory kept its mode" test "$(stat -c %a "$WORK/outside/keep")" = 700
check "... and --to was not created" test ! -e "$WORK/evil-restored"
rm -f "$WORK/nfs/web1-20200101T000000Z.tar.zst"
zstd -q -f "$WORK/hard.tar" -o "$WORK/nfs/web1-20200101T000001Z.tar.zst"
nodectl backup -p "$WORK/p.toml" restore web1-20200101T000001Z --target nfs --files --to "$WORK/hard-restored" >"$WORK/hard.out" 2>&1
expect_rc_out "restore of an archive with a hard link is refused" 8 $? "$WORK/hard.out"
contains "... naming it" "$WORK/hard.out" "entry 'files/site/h' is a hard link"
check "... and --to was not created" test ! -e "$WORK/hard-restored"
rm -f "$WORK/nfs/web1-20200101T000001Z.tar.zst"

# --- 3. a flipped byte ------------------------------------------------------------------------
cp "$WORK/nfs/$ID.tar.zst" "$WORK/good.tar.zst"
size=$(stat -c %s "$WORK/nfs/$ID.tar.zst")
python3 - "$WORK/nfs/$ID.tar.zst" $((size / 2)) <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x10]))
PY
nodectl backup -p "$WORK/p.toml" verify "$ID" --target nfs >"$WORK/flip.out" 2>&1
expect_rc_out "verify of an archive with one flipped byte fails" 8 $? "$WORK/flip.out"
contains "... and names the entry" "$WORK/flip.out" "entry '(db|files)/[^']+'"
nodectl backup -p "$WORK/p.toml" restore "$ID" --target nfs --db shop --into shop_bad --db-port "$DB_PORT_B" --db-host 127.0.0.1 >"$WORK/flipr.out" 2>&1
expect_rc_out "restore from it fails too" 8 $? "$WORK/flipr.out"
contains "... naming the entry" "$WORK/flipr.out" "entry '"
check "... and nothing reached the server" test -z "$(sqlB -e "SHOW DATABASES LIKE 'shop_bad'")"
cp "$WORK/good.tar.zst" "$WORK/nfs/$ID.tar.zst"

# --- 4. encryption ----------------------------------------------------------------------------
{
  printf '[backup]\nname = "web1"\nencryption_key_file = "%s"\n' "$WORK/key"
  common
  printf '[[backup.targets]]\nname = "enc"\npath = "%s"\nmin_free_mib = 1\n' "$WORK/enc"
} >"$WORK/e.toml"
sed "s|$WORK/key|$WORK/otherkey|" "$WORK/e.toml" >"$WORK/e2.toml"
sleep 1  # a new second: a new id
nodectl backup -p "$WORK/e.toml" run >"$WORK/e.out" 2>&1
expect_rc_out "encrypted backup" 0 $? "$WORK/e.out"
EID=$(sed -n 's/^backup \(web1-[0-9T]*Z\):.*/\1/p' "$WORK/e.out")
check "the object is ID.tar.zst.enc" test -f "$WORK/enc/$EID.tar.zst.enc"
check "it is not readable as tar/zstd" bash -c "! tar --zstd -tf $WORK/enc/$EID.tar.zst.enc >/dev/null 2>&1"
check "no database text in it in clear" bash -c "! grep -qa 'Kunde 4711' $WORK/enc/$EID.tar.zst.enc"
nodectl backup -p "$WORK/e.toml" verify "$EID" >"$WORK/ev.out" 2>&1
expect_rc_out "verify decrypts and checks" 0 $? "$WORK/ev.out"
# Plain archives planted beside it (audit H2): one under the same id, one under a newer id.
cp "$WORK/good.tar.zst" "$WORK/enc/$EID.tar.zst"
cp "$WORK/good.tar.zst" "$WORK/enc/web1-20300101T000000Z.tar.zst"
nodectl backup -p "$WORK/e.toml" list >"$WORK/el.out" 2>"$WORK/el.err"
expect_rc_out "list with planted unencrypted archives" 0 $? "$WORK/el.err"
check "... lists only the encrypted archive" test "$(grep -c ' web1-' "$WORK/el.out")" = 1
contains "... and warns about the plain ones" "$WORK/el.err" 'web1-20300101T000000Z\.tar\.zst is not encrypted'
nodectl backup -p "$WORK/e.toml" verify web1-20300101T000000Z >"$WORK/ep.out" 2>&1
expect_rc_out "verify of a planted unencrypted archive is refused when a key is set" 3 $? "$WORK/ep.out"
contains "... saying why" "$WORK/ep.out" 'not encrypted, but \[backup\] sets encryption_key_file'
nodectl backup -p "$WORK/e.toml" restore web1-20300101T000000Z --files --to "$WORK/ep-files" >"$WORK/epr.out" 2>&1
expect_rc_out "restore of it is refused too" 3 $? "$WORK/epr.out"
check "... and wrote nothing" test ! -e "$WORK/ep-files"
nodectl backup -p "$WORK/e.toml" verify "$EID" >"$WORK/ev2.out" 2>&1
expect_rc_out "the id with a plain twin still verifies: the encrypted archive is the one read" 0 $? "$WORK/ev2.out"
contains "... which is the .enc object" "$WORK/ev2.out" "$EID\.tar\.zst\.enc"
rm -f "$WORK/enc/$EID.tar.zst" "$WORK/enc/web1-20300101T000000Z.tar.zst"
nodectl backup -p "$WORK/e2.toml" verify "$EID" >"$WORK/wk.out" 2>&1
expect_rc_out "a wrong key is refused" 3 $? "$WORK/wk.out"
contains "... as a wrong key" "$WORK/wk.out" 'wrong encryption key'
nodectl backup -p "$WORK/e2.toml" restore "$EID" --files --to "$WORK/wk-files" >"$WORK/wkr.out" 2>&1
expect_rc_out "restore with the wrong key is refused" 3 $? "$WORK/wkr.out"
check "... and wrote nothing" test ! -e "$WORK/wk-files"
cp "$WORK/enc/$EID.tar.zst.enc" "$WORK/enc.good"
esize=$(stat -c %s "$WORK/enc/$EID.tar.zst.enc")
python3 - "$WORK/enc/$EID.tar.zst.enc" $((esize - 100)) <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
PY
nodectl backup -p "$WORK/e.toml" verify "$EID" >"$WORK/ef.out" 2>&1
expect_rc_out "one flipped bit in the encrypted archive" 8 $? "$WORK/ef.out"
contains "... fails the chunk's authentication, naming the entry" "$WORK/ef.out" "entry '.*chunk [0-9]+ failed authentication"
head -c $((esize - 3000)) "$WORK/enc.good" >"$WORK/enc/$EID.tar.zst.enc"
nodectl backup -p "$WORK/e.toml" verify "$EID" >"$WORK/et.out" 2>&1
expect_rc_out "a truncated encrypted archive" 8 $? "$WORK/et.out"
contains "... is reported as truncated" "$WORK/et.out" 'truncated'
cp "$WORK/enc.good" "$WORK/enc/$EID.tar.zst.enc"
chmod 644 "$WORK/key"
nodectl backup -p "$WORK/e.toml" verify "$EID" >"$WORK/kp.out" 2>&1
expect_rc_out "a world-readable key file is refused" 3 $? "$WORK/kp.out"
chmod 600 "$WORK/key"

# --- 5. a tiny tmpfs: clean failure, nothing under a final name; partial failure is exit 4 ---
TMPFS=$WORK/tiny
mkdir -p "$TMPFS" && mount -t tmpfs -o size=1m tmpfs "$TMPFS"
PYPORT=$(free_port)
python3 - "$PYPORT" "$WORK/hook.body" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "ab") as f: f.write(body + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
PIDS+=($!)
wait_until 5 "the webhook receiver on 127.0.0.1:$PYPORT" curl -s -o /dev/null "http://127.0.0.1:$PYPORT/"
{
  printf '[backup]\nname = "web1"\nwebhook_url = "http://127.0.0.1:%s/hook"\nmetrics_file = "%s"\n' "$PYPORT" "$WORK/metrics.prom"
  common
  printf '[[backup.targets]]\nname = "tiny"\npath = "%s"\nmin_free_mib = 0\n' "$TMPFS"
  printf '[[backup.targets]]\nname = "nfs"\npath = "%s"\nmin_free_mib = 1\n' "$WORK/nfs"
} >"$WORK/t.toml"
sleep 1
nodectl backup -p "$WORK/t.toml" run >"$WORK/t.out" 2>&1
expect_rc_out "one target full, the other fine: exit 4 (partial)" 4 $? "$WORK/t.out"
contains "the full target's error says why" "$WORK/t.out" 'tiny: FAILED: .*No space left on device'
check "nothing is left on the tmpfs (no partial, no final name)" test -z "$(ls -A "$TMPFS")"
contains "metrics: tiny failed" "$WORK/metrics.prom" '^nodectl_backup_last_outcome\{target="tiny"\} 0$'
contains "metrics: nfs succeeded" "$WORK/metrics.prom" '^nodectl_backup_last_outcome\{target="nfs"\} 1$'
contains "the webhook got a JSON report naming the failed target" "$WORK/hook.body" '"event":"nodectl.backup.failed".*"outcome":"partial".*"target":"tiny"'
nodectl backup -p "$WORK/t.toml" run --target tiny >"$WORK/t2.out" 2>&1
expect_rc_out "only the full target: exit 5 (every target failed)" 5 $? "$WORK/t2.out"
check "... still nothing on the tmpfs" test -z "$(ls -A "$TMPFS")"
lacks "no log or output holds the DB password" <(cat "$WORK"/*.out "$WORK"/*.err "$WORK/hook.body") "$DBPW"

# --- 6. s3rver killed mid-upload --------------------------------------------------------------
mkdir -p "$WORK/big"
head -c 60000000 /dev/urandom >"$WORK/big/blob.bin"
{
  printf '[backup]\nname = "big"\ncompression_level = 1\n'
  printf '[[backup.files]]\npath = "%s"\n' "$WORK/big"
  s3_target big/
} >"$WORK/k.toml"
nodectl backup -p "$WORK/k.toml" run >"$WORK/k.out" 2>&1 &
KPID=$!
# Killed as soon as s3rver holds the first part: mid-upload, before nodectl can send the
# CompleteMultipartUpload (s3rver assembles an object non-atomically, so a kill during that request
# would leave a partial object of its own making; a fixed sleep here reached it on a fast machine).
part_stored() { [ -n "$(find "$S3DIR/backups/._S3rver_uploads" -type f -print -quit 2>/dev/null)" ]; }
WAIT_STEP=0.01 wait_until 20 "s3rver to hold the first part" part_stored
stop_s3rver
wait $KPID
expect_rc_out "s3rver killed mid-upload: the run fails (exit 5)" 5 $? "$WORK/k.out"
contains "... with a clear error" "$WORK/k.out" 's3: FAILED: .*(upload|UploadPart|connect|Connection)'
start_s3rver "$S3DIR"
aws s3 ls s3://backups/big/ >"$WORK/k.ls" 2>&1
lacks "no completed object under big/ (awscli)" "$WORK/k.ls" 'tar\.zst'
sleep 1
nodectl backup -p "$WORK/k.toml" run >"$WORK/k2.out" 2>&1
expect_rc_out "a later run succeeds" 0 $? "$WORK/k2.out"
aws s3 ls s3://backups/big/ >"$WORK/k2.ls" 2>&1
check "... and awscli lists exactly one archive" test "$(grep -c 'tar\.zst' "$WORK/k2.ls")" = 1
KID=$(sed -n 's/^backup \(big-[0-9T]*Z\):.*/\1/p' "$WORK/k2.out")
nodectl backup -p "$WORK/k.toml" verify "$KID" >"$WORK/kv.out" 2>&1
expect_rc_out "... which verifies (multipart object read back from S3)" 0 $? "$WORK/kv.out"

# --- 7. retention and prune -------------------------------------------------------------------
mkdir -p "$WORK/ret"
for t in 20251231T020000Z 20260101T020000Z 20260115T020000Z 20260131T020000Z 20260201T020000Z \
         20260201T140000Z 20260202T020000Z 20260203T020000Z; do
  : >"$WORK/ret/web1-$t.tar.zst"
done
: >"$WORK/ret/.web1-20260204T020000Z.tar.zst.partial-1"
# Another host's archives in the same target, and a future-dated one (audit H3).
: >"$WORK/ret/web2-20260101T020000Z.tar.zst"
: >"$WORK/ret/web2-20260203T020000Z.tar.zst"
: >"$WORK/ret/web1-20990101T000000Z.tar.zst"
{
  printf '[backup]\nname = "web1"\n'
  printf '[[backup.files]]\npath = "%s"\n' "$WORK/site"
  printf '[[backup.targets]]\nname = "ret"\npath = "%s"\nkeep_daily = 3\nkeep_monthly = 3\n' "$WORK/ret"
} >"$WORK/ret.toml"
nodectl backup -p "$WORK/ret.toml" prune --dry-run >"$WORK/pd.out" 2>&1
expect_rc_out "prune --dry-run" 0 $? "$WORK/pd.out"
check "... would delete exactly the 3 archives no rule keeps" test "$(grep -c '^would delete' "$WORK/pd.out")" = 3
contains "... e.g. the earlier of two on one day" "$WORK/pd.out" 'would delete ret  web1-20260201T020000Z'
check "... and deleted nothing" test "$(ls "$WORK/ret" | wc -l)" = 11
contains "... warns about the future-dated archive" "$WORK/pd.out" 'web1-20990101T000000Z\.tar\.zst is dated in the future'
nodectl backup -p "$WORK/ret.toml" prune >"$WORK/pr.out" 2>&1
check "prune keeps the 3 newest days + the newest of 3 months, and never touches web2's or future archives" \
  test "$(ls "$WORK/ret" | tr '\n' ' ')" = \
  "web1-20251231T020000Z.tar.zst web1-20260131T020000Z.tar.zst web1-20260201T140000Z.tar.zst web1-20260202T020000Z.tar.zst web1-20260203T020000Z.tar.zst web1-20990101T000000Z.tar.zst web2-20260101T020000Z.tar.zst web2-20260203T020000Z.tar.zst "
check "... and left the temp file alone" test -e "$WORK/ret/.web1-20260204T020000Z.tar.zst.partial-1"

# --- 8. the units apply installs -------------------------------------------------------------
mkdir -p "$WORK/units"
sed "s|/usr/local/bin/nodectl|$NODECTL|" "$SRC/systemd/nodectl-backup.service" >"$WORK/units/nodectl-backup.service"
cp "$SRC/systemd/nodectl-backup.timer" "$WORK/units/"
systemd-analyze verify "$WORK/units/nodectl-backup.service" "$WORK/units/nodectl-backup.timer" >"$WORK/sav.out" 2>&1
expect_rc_out "systemd-analyze verify nodectl-backup.service and .timer" 0 $? "$WORK/sav.out"
systemd-analyze calendar '*-*-* 02:00:00' >/dev/null 2>&1
expect_rc "the default OnCalendar= parses" 0 $?

# --- secrets in files -------------------------------------------------------------------------
lacks "no world-readable file under the work dir holds the DB password" \
  <(find "$WORK" -type f -perm -o=r ! -path "$S3DIR/*" ! -path "$WORK/db-*" -exec grep -l -- "$DBPW" {} + 2>/dev/null) .
check "no nodectl-db-* option file is left in TMPDIR" bash -c '! ls -d ${TMPDIR:-/tmp}/nodectl-db-* 2>/dev/null | grep -q .'

finish

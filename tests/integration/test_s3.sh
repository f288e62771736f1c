#!/usr/bin/env bash
# util::s3 against a real s3rver on loopback, cross-checked with Debian's awscli: single PUT,
# streaming multipart upload (parallel parts) downloaded byte-identical by awscli, an awscli object
# read by the client, LIST over more than 1000 keys (pages), keys that need encoding, virtual-host
# addressing, wrong credentials (no secret in the message), credentials files, a source failing
# mid-upload (abort), s3rver down for a moment (retries), and s3rver killed mid-upload (clear
# failure, no object; a later run succeeds). The client is driven by the test-only
# nodectl_s3_tool (tests/tools/s3_tool.cpp), built next to nodectl.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_services.sh"

S3TOOL=${S3TOOL:-$(dirname "$NODECTL")/nodectl_s3_tool}
[ -x "$S3TOOL" ] || { echo "missing $S3TOOL (scripts/build.sh dynamic)"; exit 1; }

DATA_DIR=$WORK/s3rver
# --service-endpoint localhost: BUCKET.s3.localhost is virtual-host addressing (curl resolves
# *.localhost to loopback itself).
s3rver_up() { start_s3rver "$DATA_DIR" test --service-endpoint localhost; }
trap 'rc=$?; stop_services; (exit $rc); cleanup' EXIT
s3rver_up

# awscli in a private HOME, path-style, with the store's keys in its credentials file.
aws_env
EP=(--endpoint "http://127.0.0.1:$S3PORT" --bucket test --path-style)
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
s3() { "$S3TOOL" "${EP[@]}" "$@"; }

# --- 1. small objects: PUT, GET, HEAD, LIST, DELETE ------------------------------------------
echo "hello s3" | s3 put-small small/hello.txt
expect_rc "PUT a small object" 0 $?
check "GET returns it" test "$(s3 get small/hello.txt)" = "hello s3"
s3 head small/hello.txt >"$WORK/head" 2>&1
contains "HEAD gives size and md5 ETag" "$WORK/head" '^9 "?[0-9a-f]{32}"?$'
aws s3 cp s3://test/small/hello.txt "$WORK/hello.aws" --only-show-errors
check "awscli reads the client's object" test "$(cat "$WORK/hello.aws")" = "hello s3"
s3 rm small/hello.txt
expect_rc "DELETE" 0 $?
s3 head small/hello.txt >"$WORK/head" 2>&1
expect_rc_out "HEAD after DELETE fails" 1 $? "$WORK/head"
contains "... saying there is no such object" "$WORK/head" 'no such object \(HTTP 404\)'
s3 rm small/never-there
expect_rc "DELETE of a missing key succeeds (idempotent)" 0 $?

# --- 2. streaming multipart upload, byte-identical through awscli ----------------------------
head -c 41000000 /dev/urandom >"$WORK/big"
s3 --part-size 5242880 --parallel 3 put mp/big.bin <"$WORK/big" 2>"$WORK/put.err"
expect_rc_out "multipart upload of 41 MB from a pipe" 0 $? "$WORK/put.err"
contains "... in 8 parts of 5 MiB" "$WORK/put.err" 'bytes=41000000 parts=8'
aws s3 cp s3://test/mp/big.bin "$WORK/big.aws" --only-show-errors
check "awscli downloads it byte-identical" cmp -s "$WORK/big" "$WORK/big.aws"
aws s3api head-object --bucket test --key mp/big.bin >"$WORK/head.json"
contains_text "awscli sees its size, 41000000 bytes" "$WORK/head.json" '"ContentLength": 41000000'
s3 get mp/big.bin >"$WORK/big.get"
check "the client's GET streams it back identical" cmp -s "$WORK/big" "$WORK/big.get"
# A size hint makes the parts big enough for 9,000 parts; small inputs still go in one PUT.
head -c 300000 /dev/urandom >"$WORK/mid"
s3 put one/mid.bin <"$WORK/mid" 2>"$WORK/put.err"
contains "an object smaller than a part is one PUT (parts=0)" "$WORK/put.err" 'bytes=300000 parts=0'
aws s3 cp s3://test/one/mid.bin "$WORK/mid.aws" --only-show-errors
check "... identical through awscli" cmp -s "$WORK/mid" "$WORK/mid.aws"
: | s3 put one/empty.bin 2>"$WORK/put.err"
expect_rc_out "an empty object" 0 $? "$WORK/put.err"
aws s3api head-object --bucket test --key one/empty.bin >"$WORK/head.json"
contains_text "... is 0 bytes for awscli" "$WORK/head.json" '"ContentLength": 0'

# --- 3. an object written by awscli is read by the client -------------------------------------
head -c 12000000 /dev/urandom >"$WORK/from-aws"
aws s3 cp "$WORK/from-aws" s3://test/aws/obj.bin --only-show-errors
s3 get aws/obj.bin >"$WORK/from-aws.get"
check "client GET of awscli's (multipart) object is identical" cmp -s "$WORK/from-aws" "$WORK/from-aws.get"
s3 head aws/obj.bin >"$WORK/head"
contains "client HEAD gives awscli's object size" "$WORK/head" '^12000000 '

# --- 4. keys that need encoding (once, not twice) ---------------------------------------------
KEY1='odd/a b+c&d=é~(1).txt'
echo one | s3 put-small "$KEY1"
expect_rc "PUT a key with space, +, &, =, é, ~, ()" 0 $?
aws s3api list-objects-v2 --bucket test --prefix odd/ --query 'Contents[].Key' --output text >"$WORK/odd"
contains_text "awscli lists the key exactly" "$WORK/odd" "$KEY1"
aws s3 cp "s3://test/$KEY1" "$WORK/odd.aws" --only-show-errors
check "awscli reads it" test "$(cat "$WORK/odd.aws")" = one
check "client GET of the same key" test "$(s3 get "$KEY1")" = one
s3 ls odd/ >"$WORK/odd.ls"
contains_text "client LIST gives the key decoded" "$WORK/odd.ls" "$KEY1 4"

# --- 5. LIST over more than 1000 keys ---------------------------------------------------------
s3 put-many many/k 1100
expect_rc "1100 small objects" 0 $?
s3 ls many/ >"$WORK/many.ls"
check "client LIST returns all 1100 keys (two pages)" test "$(wc -l <"$WORK/many.ls")" = 1100
check "... each once, in order" test "$(sort -u "$WORK/many.ls" | wc -l)" = 1100
check "... first and last" test "$(head -1 "$WORK/many.ls")/$(tail -1 "$WORK/many.ls")" = "many/k00000 6/many/k01099 6"
contains "s3rver was asked for a second page (continuation-token)" "$WORK/s3rver.log" 'continuation-token='
check "awscli counts the same" test "$(aws s3api list-objects-v2 --bucket test --prefix many/ --query 'length(Contents)')" = 1100
check "a prefix narrows the listing (100 keys)" test "$(s3 ls many/k01 | wc -l)" = 100
check "an empty prefix result is empty, not an error" test "$(s3 ls nothing/ | wc -l)" = 0

# --- 6. virtual-host addressing and storage class ---------------------------------------------
echo vhost | "$S3TOOL" --endpoint "http://s3.localhost:$S3PORT" --bucket test put-small vh/x.txt 2>"$WORK/vh.err"
expect_rc_out "PUT with virtual-host addressing (test.s3.localhost)" 0 $? "$WORK/vh.err"
check "... awscli (path-style) reads it" test "$(aws s3 cp s3://test/vh/x.txt - --only-show-errors)" = vhost
echo cold | s3 --storage-class STANDARD_IA put-small sc/x.txt
aws s3api head-object --bucket test --key sc/x.txt >"$WORK/sc.json"
contains_text "x-amz-storage-class reaches the store" "$WORK/sc.json" '"StorageClass": "STANDARD_IA"'

# --- 7. signatures and credentials -------------------------------------------------------------
# s3rver does not check V4 signatures (its code says "unimplemented"): a botocore-based oracle
# (sigv4_check_server.py, the signer inside Debian's awscli) recomputes every request's signature.
/usr/bin/python3 "$(dirname "$0")/sigv4_check_server.py" "$WORK/oracle.port" "$WORK/oracle.log" S3RVER <<<"S3RVER" &
ORACLE=$!   # python itself (no subshell), so the trap ends it
PIDS+=("$ORACLE")
wait_until 10 "the signature oracle's port" test -s "$WORK/oracle.port"
OEP=(--endpoint "http://127.0.0.1:$(cat "$WORK/oracle.port")" --bucket test --path-style --attempts 1)
echo x | "$S3TOOL" "${OEP[@]}" put-small "$KEY1"
"$S3TOOL" "${OEP[@]}" get "$KEY1" >/dev/null
"$S3TOOL" "${OEP[@]}" head 'dots/./a/../b' >/dev/null
"$S3TOOL" "${OEP[@]}" ls 'a prefix/é&=' >/dev/null
"$S3TOOL" "${OEP[@]}" rm 'del/x' >/dev/null
head -c 11000000 "$WORK/big" | "$S3TOOL" "${OEP[@]}" --part-size 5242880 put mp/x 2>/dev/null
"$S3TOOL" "${OEP[@]}" --storage-class GLACIER put-small sc/y </dev/null
check "botocore verified 11 requests (PUT, GET, HEAD with dot segments, LIST, DELETE, multipart)" \
  test "$(grep -c '^OK ' "$WORK/oracle.log")" = 11
lacks "... and refused none" "$WORK/oracle.log" '^BAD'
AWS_SECRET_ACCESS_KEY=wrong-secret-4711x "$S3TOOL" "${OEP[@]}" put-small k </dev/null >"$WORK/bad" 2>&1
expect_rc_out "a wrong secret is refused (by the oracle)" 1 $? "$WORK/bad"
contains "... the message names the store's reason" "$WORK/bad" 'HTTP 403 SignatureDoesNotMatch'
lacks "... and holds no secret, no signature" "$WORK/bad" 'wrong-secret-4711x|Signature='
contains "the oracle saw that wrong signature" "$WORK/oracle.log" '^BAD PUT /test/k'
AWS_ACCESS_KEY_ID=NOSUCHKEY s3 put-small k </dev/null >"$WORK/bad" 2>&1
expect_rc_out "an unknown access key is refused by s3rver" 1 $? "$WORK/bad"
contains "... InvalidAccessKeyId" "$WORK/bad" 'HTTP 403 InvalidAccessKeyId'
printf 'AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY="S3RVER"\n' >"$WORK/creds.env"
chmod 644 "$WORK/creds.env"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$S3TOOL" "${EP[@]}" --credentials "$WORK/creds.env" head mp/big.bin >"$WORK/cf" 2>&1
expect_rc_out "KEY=VALUE credentials file" 0 $? "$WORK/cf"
contains "... a world-readable one is warned about" "$WORK/cf" 'has mode 0644; make it 0600'
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$S3TOOL" "${EP[@]}" --credentials "$HOME/.aws/credentials" head mp/big.bin >"$WORK/cf" 2>&1
expect_rc_out "awscli's credentials file (0600, no warning)" 0 $? "$WORK/cf"
lacks "... no warning" "$WORK/cf" 'warning'
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$S3TOOL" "${EP[@]}" head mp/big.bin >"$WORK/cf" 2>&1
expect_rc_out "no credentials at all" 1 $? "$WORK/cf"
contains "... says so" "$WORK/cf" 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set'

# --- 8. the source fails mid-upload: the multipart upload is aborted --------------------------
uploads_left() { find "$DATA_DIR/test/._S3rver_uploads" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
before=$(uploads_left)
s3 --part-size 5242880 --fail-after 16000000 put fail/src.bin <"$WORK/big" 2>"$WORK/fail.err"
expect_rc_out "a source failing after 16 MB" 3 $? "$WORK/fail.err"
contains "... after three parts were sent" "$WORK/fail.err" 'upload aborted, parts=3'
aws s3api head-object --bucket test --key fail/src.bin >"$WORK/fail.head" 2>&1
contains "no object under the key (awscli: 404)" "$WORK/fail.head" 'Not Found|404'
contains "AbortMultipartUpload was sent (DELETE ?uploadId, s3rver answers 405: not implemented)" \
  "$WORK/fail.err" 'AbortMultipartUpload s3://test/fail/src.bin: HTTP 405 MethodNotAllowed'
# s3rver 3.7 implements neither AbortMultipartUpload nor ListMultipartUploads: its parts stay in
# its uploads folder. On AWS the DELETE removes them.
check "s3rver keeps that upload's parts in its folder (its limitation, stated)" test "$(uploads_left)" = $((before + 1))
s3 uploads fail/ >"$WORK/lu" 2>&1
contains "ListMultipartUploads: s3rver says NotImplemented (not retried)" "$WORK/lu" 'HTTP 501 NotImplemented.*\(after 1 attempt\)'

# --- 9. s3rver down for a moment: retries carry the upload through ---------------------------
{ head -c 11000000 "$WORK/big"; sleep 2.5; tail -c +11000001 "$WORK/big"; } |
  s3 --part-size 5242880 --attempts 8 --backoff-ms 300 put flaky/big.bin 2>"$WORK/flaky.err" &
UP=$!
sleep 1
stop_s3rver
sleep 2.5
s3rver_up
wait $UP
expect_rc_out "an upload across a 3 s outage of s3rver succeeds" 0 $? "$WORK/flaky.err"
contains "... after retries" "$WORK/flaky.err" '^retry: S3 UploadPart [0-9]+ of s3://test/flaky/big.bin: .*retrying in'
aws s3 cp s3://test/flaky/big.bin "$WORK/flaky.aws" --only-show-errors
check "... and awscli downloads it identical" cmp -s "$WORK/big" "$WORK/flaky.aws"

# --- 10. s3rver killed mid-upload: clear failure, no object; a later run succeeds -------------
before=$(uploads_left)
{ head -c 11000000 "$WORK/big"; sleep 2; tail -c +11000001 "$WORK/big"; } |
  s3 --part-size 5242880 --attempts 3 --backoff-ms 200 put killed/big.bin 2>"$WORK/killed.err" &
UP=$!
sleep 1
stop_s3rver
wait $UP
rc=$?
expect_rc_out "upload with s3rver killed fails" 1 $rc "$WORK/killed.err"
contains "... naming the part, the object and the cause" "$WORK/killed.err" \
  '^error: S3 UploadPart [0-9]+ of s3://test/killed/big.bin: (Couldn.t connect|Failure when receiving|Send failure|Server returned nothing).*\(after 3 attempts\)'
contains "... and that the abort could not reach the store either" "$WORK/killed.err" \
  'AbortMultipartUpload s3://test/killed/big.bin: .*may stay open.*no object was completed'
s3rver_up
aws s3api head-object --bucket test --key killed/big.bin >"$WORK/killed.head" 2>&1
contains "after s3rver restarts on the same folder: no object (404)" "$WORK/killed.head" 'Not Found|404'
check "the unfinished upload is in s3rver's uploads folder (nothing could abort it)" test "$(uploads_left)" = $((before + 1))
s3 --part-size 5242880 put killed/big.bin <"$WORK/big" 2>"$WORK/again.err"
expect_rc_out "a later run succeeds" 0 $? "$WORK/again.err"
aws s3 cp s3://test/killed/big.bin "$WORK/killed.aws" --only-show-errors
check "... byte-identical through awscli" cmp -s "$WORK/big" "$WORK/killed.aws"

# --- 11. secrets never in argv ---------------------------------------------------------------
{ head -c 11000000 "$WORK/big"; sleep 1.5; } | s3 --part-size 5242880 put argv/x.bin 2>/dev/null &
UP=$!
sleep 0.7
ps -eo args | grep -F "$S3TOOL" | grep -v grep >"$WORK/ps"
wait $UP
check "the uploading process was seen" test -s "$WORK/ps"
check "the oracle is still running (ended by the trap)" kill -0 "$ORACLE"
lacks "... and its command line holds no secret" "$WORK/ps" 'S3RVER'
lacks "s3rver's command line neither" <(ps -eo args | grep -F "$S3RVER" | grep -v grep) 'S3RVER:|secret'


finish

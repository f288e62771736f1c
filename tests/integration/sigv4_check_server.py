#!/usr/bin/python3
"""A SigV4 oracle for test_s3.sh: s3rver 3.7 does not verify V4 signatures ("unimplemented"), so this
loopback server recomputes the signature of every request it receives with botocore (the signer
inside Debian's awscli, an independent implementation) from the credentials given on the command
line, checks that x-amz-content-sha256 is the body's sha256, and logs one verdict line per request
(OK / BAD, method, path?query) to LOG. It answers like S3 enough for the client to go on (ETags,
an UploadId, an empty listing); it stores nothing.

Usage: sigv4_check_server.py PORT_FILE LOG ACCESS_KEY  (the secret is read from stdin, not argv)
"""
import hashlib
import http.server
import socketserver
import sys
from urllib.parse import urlsplit

import awscli.clidriver  # noqa: F401  (makes awscli's bundled botocore importable as botocore)
import botocore.auth
import botocore.awsrequest
import botocore.credentials

port_file, log_file, access_key = sys.argv[1], sys.argv[2], sys.argv[3]
secret = sys.stdin.readline().rstrip("\n")
log = open(log_file, "a", buffering=1)


def verdict(method, path, headers, body):
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    ak, date, region, service, _ = fields["Credential"].split("/")
    if ak != access_key:
        return "unknown access key"
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed:
            return "header %s not signed" % required
    content_sha = headers.get("x-amz-content-sha256", "")
    if content_sha != "UNSIGNED-PAYLOAD" and content_sha != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the body's sha256"
    req = botocore.awsrequest.AWSRequest(method=method, url="http://" + headers["Host"] + path, data=body)
    for name in signed:
        # A header sent twice is signed as its values joined with ',' (what S3 computes).
        values = headers.get_all(name) or [""]
        req.headers[name] = ",".join(v.strip() for v in values)
    for name in headers.keys():
        if name.lower() not in signed and name.lower() not in ("authorization", "content-length", "expect",
                                                              "user-agent", "accept"):
            return "header %s sent but not signed" % name
    req.context["timestamp"] = headers["x-amz-date"]
    signer = botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(access_key, secret), service, region)
    canonical = signer.canonical_request(req)
    sts = signer.string_to_sign(req, canonical)
    if signer.signature(sts, req) != fields["Signature"]:
        return "signature differs from botocore's; botocore's canonical request:\n" + canonical
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        why = verdict(self.command, self.path, self.headers, body)
        log.write("%s %s %s%s\n" % ("OK " if why is None else "BAD", self.command, self.path,
                                    "" if why is None else "  " + why.replace("\n", " | ")))
        query = urlsplit(self.path).query
        extra, out, status = {}, b"", 200
        if why is not None:
            status = 403
            out = b"<Error><Code>SignatureDoesNotMatch</Code><Message>checked by botocore</Message></Error>"
        elif self.command == "POST" and query.startswith("uploads"):
            out = b"<InitiateMultipartUploadResult><UploadId>check-upload</UploadId></InitiateMultipartUploadResult>"
        elif self.command == "POST":
            out = b"<CompleteMultipartUploadResult><ETag>\"x-1\"</ETag></CompleteMultipartUploadResult>"
        elif self.command == "PUT":
            extra["ETag"] = '"%s"' % hashlib.md5(body).hexdigest()
        elif self.command == "GET" and "list-type=2" in query:
            out = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
        elif self.command == "GET":
            out = b"verified\n"
        elif self.command == "DELETE":
            status = 204
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", "0")
            self.send_header("ETag", '"0"')
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402
os.rename(port_file + ".tmp", port_file)
server.serve_forever()

#!/usr/bin/env python3
"""Does libcurl's own SigV4 (CURLOPT_AWS_SIGV4, through the curl tool built on the same libcurl)
pass AWS's SigV4 test suite? Sends each case of tests/data/aws-sigv4 with the case's
credentials, region, service and date to a capture server on 127.0.0.1 and compares the
Authorization header libcurl sent with the expected one. libcurl cannot show its canonical request
or string to sign, so only the signature is compared.

Usage: scripts/sigv4-libcurl-vectors.py [VECTORS_DIR]   (default: tests/data/aws-sigv4)
Prints one line per case (PASS / FAIL / CANNOT SEND) and a summary.
"""
import http.server, json, os, socketserver, subprocess, sys, threading

here = os.path.dirname(os.path.abspath(__file__))
vectors = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data", "aws-sigv4")
if not vectors or not os.path.isdir(vectors):
    sys.exit("aws-sigv4 vectors not found")

captured = {}

class Handler(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        captured["auth"] = self.headers.get("Authorization", "")
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_POST = do_PUT = do_HEAD = handle_one
    def log_message(self, *a):
        pass

server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()

def parse(text):
    lines = text.split("\n")
    first = lines[0]
    method, rest = first.split(" ", 1)
    target = rest[: rest.rfind(" HTTP/")]
    headers, body, i = [], b"", 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if line == "":
            body = "\n".join(lines[i:]).encode()
            break
        if line[0] in " \t" and headers:
            headers[-1][1] += " " + line.strip()
            continue
        k, v = line.split(":", 1)
        headers.append([k, v])
    return method, target, headers, body

results = {"PASS": [], "FAIL": [], "CANNOT SEND": []}
for case in sorted(os.listdir(vectors)):
    cdir = os.path.join(vectors, case)
    if not os.path.isfile(os.path.join(cdir, "request.txt")):
        continue
    ctx = json.load(open(os.path.join(cdir, "context.json")))
    method, target, headers, body = parse(open(os.path.join(cdir, "request.txt"), encoding="utf-8").read())
    expected = ""
    for line in open(os.path.join(cdir, "header-signed-request.txt"), encoding="utf-8"):
        if line.startswith("Authorization:"):
            expected = line[len("Authorization:"):].strip()
    date = ctx["timestamp"].replace("-", "").replace(":", "")
    cred = ctx["credentials"]
    host = "example.amazonaws.com"
    # --path-as-is for the unnormalized cases; for the others libcurl removes dot segments itself.
    args = ["curl", "-sS", "-o", "/dev/null"] + ([] if ctx.get("normalize", True) else ["--path-as-is"]) + ["-X", method,
            "--aws-sigv4", "aws:amz:%s:%s" % (ctx["region"], ctx["service"]),
            "--user", "%s:%s" % (cred["access_key_id"], cred["secret_access_key"]),
            "--connect-to", "%s:80:127.0.0.1:%d" % (host, port),
            "-H", "X-Amz-Date: " + date]
    for k, v in headers:
        if k.lower() in ("host", "content-length"):
            continue
        args += ["-H", "%s:%s" % (k, v)]
    if cred.get("token") and not ctx.get("omit_session_token"):
        args += ["-H", "X-Amz-Security-Token: " + cred["token"]]
    if ctx.get("sign_body"):
        import hashlib
        args += ["-H", "x-amz-content-sha256: " + hashlib.sha256(body).hexdigest()]
    if body:
        args += ["--data-binary", body.decode()]
    args.append("http://%s%s" % (host, target))
    captured.clear()
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0 or "auth" not in captured:
        results["CANNOT SEND"].append(case)
        print("CANNOT SEND %-45s %s" % (case, p.stderr.strip()[:100]))
        continue
    ok = captured["auth"] == expected
    results["PASS" if ok else "FAIL"].append(case)
    print("%-11s %-45s%s" % ("PASS" if ok else "FAIL", case, "" if ok else "  sent: " + captured["auth"][-120:]))

server.shutdown()
total = sum(len(v) for v in results.values())
print("libcurl %s: %d of %d pass, %d fail, %d cannot be sent" % (
    subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1],
    len(results["PASS"]), total, len(results["FAIL"]), len(results["CANNOT SEND"])))
sys.exit(0)

#!/usr/bin/env python3
"""An HTTP proxy on 127.0.0.1 in front of an S3 store (s3rver) that answers slowly or resets the
connection on command, for tests/integration/test_links.sh.

    faulty_s3.py --to HOST:PORT

Prints "port N" on stdout, then forwards every request unchanged (the Host header too, so the
client's signature still holds). Commands, one per line on stdin, each answered by "ok" (or a
number for `count`):
    rule ACTION METHOD REGEX COUNT [ARG]
        the next COUNT requests whose method is METHOD (or *) and whose path and query match
        REGEX (re.search) get ACTION instead of a plain forward:
          slow SECONDS   nothing is sent back for SECONDS, then the request goes on
          reset-before   the connection is reset (RST); the store never sees the request
          reset-after    the store gets the request and answers; the client gets a reset instead
          cut BYTES      the store's answer is sent up to BYTES of its body, then a reset
    clear              drops every rule
    count METHOD REGEX how many requests matched so far (faults included)
Every request is logged on stderr: "PUT /test/key?partNumber=1 -> 200 (reset-after)".
"""
import argparse
import http.client
import http.server
import re
import socket
import struct
import sys
import threading
import time

LOCK = threading.Lock()
RULES = []   # [action, method, regex, remaining, arg]
SEEN = []    # (method, path) of every request
TARGET = None


def take_rule(method, path):
    with LOCK:
        SEEN.append((method, path))
        for rule in RULES:
            if rule[3] > 0 and rule[1] in ("*", method) and re.search(rule[2], path):
                rule[3] -= 1
                return rule[0], rule[4]
    return None, None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reset(self):
        # Closed at once with a zero linger: a RST, with no FIN before it (socketserver would
        # shut the writing half down first, which the client reads as an empty reply).
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection")}
        upstream = http.client.HTTPConnection(*TARGET, timeout=60)
        upstream.request(self.command, self.path, body=body, headers=headers)
        resp = upstream.getresponse()
        data = resp.read()
        upstream.close()
        return resp, data

    def answer(self, resp, data, limit=None):
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            # A HEAD answer's Content-Length is the object's size: kept; others are the body's.
            if k.lower() not in ("connection", "transfer-encoding") and (k.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data if limit is None else data[:limit])
        self.wfile.flush()

    def handle_one(self):
        action, arg = take_rule(self.command, self.path)
        if action == "reset-before":
            self.log("-> reset before the store saw it")
            return self.reset()
        if action == "slow":
            time.sleep(float(arg))
        resp, data = self.forward()
        if action == "reset-after":
            self.log("-> %d from the store, reset instead" % resp.status)
            return self.reset()
        if action == "cut":
            self.log("-> %d, cut after %s of %d bytes" % (resp.status, arg, len(data)))
            self.answer(resp, data, int(arg))
            return self.reset()
        self.log("-> %d%s" % (resp.status, " (after %s s)" % arg if action == "slow" else ""))
        try:
            self.answer(resp, data)
        except OSError:
            self.close_connection = True   # the client gave up waiting

    def log(self, what):
        print("%s %s %s" % (self.command, self.path, what), file=sys.stderr, flush=True)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def control():
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        with LOCK:
            if w[0] == "rule" and len(w) in (5, 6):
                RULES.append([w[1], w[2], w[3], int(w[4]), w[5] if len(w) == 6 else None])
            elif w[0] == "clear":
                RULES.clear()
            elif w[0] == "count" and len(w) == 3:
                n = sum(1 for m, p in SEEN if w[1] in ("*", m) and re.search(w[2], p))
                print(n, flush=True)
                continue
            else:
                print("unknown command: " + line.strip(), flush=True)
                continue
        print("ok", flush=True)


def main():
    global TARGET
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True, help="HOST:PORT")
    host, port = ap.parse_args().to.rsplit(":", 1)
    TARGET = (host, int(port))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    print("port %d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control()


if __name__ == "__main__":
    main()

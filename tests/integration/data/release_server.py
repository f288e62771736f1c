#!/usr/bin/env python3
"""A stand-in for the k3s release and channel servers, for tests. Listens on 127.0.0.1 only.

    release_server.py --root DIR [--port 0] [--channel stable=v1.31.4+k3s1]...
                      [--truncate-first N] [--corrupt NAME]...

Prints the port it listens on as the first line of stdout, then serves until killed:

  GET /releases/download/<version>/<name>  the file DIR/<version>/<name> (percent-decoded path)
  GET /releases/tag/<version>              a small HTML page
  GET /channels/<name>                     302 to /releases/tag/<version of --channel name=...>
  GET /redirect/<path>                     302 to /<path>
  GET /loop                                302 to /loop, forever
  GET /status/<code>                       an empty response with that HTTP status
  GET /s3error/<code>/<S3 code>            that HTTP status with an S3 XML error body naming <S3 code>
  GET /stall/<bytes>                       announces <bytes>, sends half, then sends nothing more
  GET /_stats                              "total N" then "<count> <path>" lines: every request
                                           except /_stats itself

Fault injection, for assets (files under /releases/download not named sha256sum-*):
  --truncate-first N  the first N asset GETs announce the full Content-Length, send half of the
                      body, and close the connection
  --corrupt NAME      asset NAME is served with its first byte flipped
"""

import argparse
import collections
import http.server
import os
import sys
import threading
import time
import urllib.parse


class State:
    def __init__(self, args):
        self.root = args.root
        self.channels = dict(c.split("=", 1) for c in args.channel)
        self.truncate_left = args.truncate_first
        self.corrupt = set(args.corrupt)
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.total = 0
        self.port = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set before serving

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests read /_stats instead
        pass

    def send_body(self, status, body, content_type="application/octet-stream", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, path):
        location = "http://127.0.0.1:%d%s" % (self.state.port, path)
        self.send_body(302, b"redirecting\n", "text/plain", {"Location": location})

    def do_GET(self):  # noqa: N802 - http.server's naming
        st = self.state
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_stats":
            with st.lock:
                lines = ["total %d" % st.total] + ["%d %s" % (n, p) for p, n in sorted(st.counts.items())]
            self.send_body(200, ("\n".join(lines) + "\n").encode(), "text/plain")
            return
        with st.lock:
            st.total += 1
            st.counts[path] += 1

        parts = path.split("/")
        if path.startswith("/releases/download/") and len(parts) == 5:
            self.serve_asset(urllib.parse.unquote(parts[3]), urllib.parse.unquote(parts[4]))
        elif path.startswith("/releases/tag/") and len(parts) == 4:
            version = urllib.parse.unquote(parts[3])
            self.send_body(200, ("<html><body>k3s %s</body></html>\n" % version).encode(), "text/html")
        elif path.startswith("/channels/") and len(parts) == 3:
            version = st.channels.get(parts[2])
            if version is None:
                self.send_body(404, b"no such channel\n", "text/plain")
            else:
                self.redirect("/releases/tag/" + version)
        elif path.startswith("/redirect/"):
            self.redirect(path[len("/redirect"):])
        elif path == "/loop":
            self.redirect("/loop")
        elif path.startswith("/status/") and parts[2].isdigit():
            self.send_body(int(parts[2]), b"", "text/plain")
        elif path.startswith("/s3error/") and len(parts) == 4 and parts[2].isdigit():
            body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>injected</Message></Error>"
            self.send_body(int(parts[2]), (body % parts[3]).encode(), "application/xml")
        elif path.startswith("/stall/") and parts[2].isdigit():
            size = int(parts[2])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(b"s" * (size // 2))
            self.wfile.flush()
            time.sleep(60)
            self.close_connection = True
        else:
            self.send_body(404, b"not found\n", "text/plain")

    def serve_asset(self, version, name):
        st = self.state
        if "/" in version or "/" in name or version in ("", ".", "..") or name in ("", ".", ".."):
            self.send_body(404, b"not found\n", "text/plain")
            return
        file_path = os.path.join(st.root, version, name)
        try:
            with open(file_path, "rb") as f:
                body = f.read()
        except OSError:
            self.send_body(404, b"not found\n", "text/plain")
            return
        is_asset = not name.startswith("sha256sum-")
        if is_asset and name in st.corrupt:
            body = bytes([body[0] ^ 0xFF]) + body[1:] if body else b"x"
        truncate = False
        if is_asset:
            with st.lock:
                if st.truncate_left > 0:
                    st.truncate_left -= 1
                    truncate = True
        if not truncate:
            self.send_body(200, body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder holding <version>/<asset> files")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--channel", action="append", default=[], metavar="NAME=VERSION")
    parser.add_argument("--truncate-first", type=int, default=0, metavar="N")
    parser.add_argument("--corrupt", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    for c in args.channel:
        if "=" not in c:
            parser.error("--channel takes NAME=VERSION")

    Handler.state = State(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    Handler.state.port = server.server_address[1]
    print(Handler.state.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that breaks the link on command, for tests/integration/test_links.sh.

    faulty_link.py --to HOST:PORT

Listens on a free loopback port, prints "port N" on stdout, and forwards every connection to
HOST:PORT. Commands, one per line on stdin, each answered by one line on stdout:
    pass             forward normally (the start state); links already stalled stay stalled
    stall            from now on forward nothing, either way, on any link (open or new): the
                     sockets stay open and nobody is told, as when a peer or a path stops moving
    stall-at BYTES   each link stalls once BYTES went from the client towards the server
    drop-at BYTES    each link is reset (RST both ways) once BYTES went from client to server
    drop             reset every open link now
    stats            "links N up BYTES down BYTES": links accepted, bytes forwarded each way
Events go to stderr ("link 2: stalled after 5242880 bytes up").
"""
import argparse
import socket
import struct
import sys
import threading

LOCK = threading.Lock()
STATE = {"mode": "pass", "at": 0, "links": 0, "up": 0, "down": 0}
OPEN = []  # (client, server) of every open link


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class Link:
    def __init__(self, n, client, server):
        self.n, self.client, self.server = n, client, server
        self.up = 0
        self.stalled = False
        self.dead = False

    def kill(self, why):
        if not self.dead:
            self.dead = True
            log("link %d: %s" % (self.n, why))
            reset(self.client)
            reset(self.server)

    def pump(self, src, dst, upward):
        while not self.dead:
            with LOCK:
                mode, at = STATE["mode"], STATE["at"]
            if mode == "stall" or self.stalled:
                self.stalled = True
                threading.Event().wait(0.1)
                continue
            src.settimeout(0.1)
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                # One side closed: close the other side's writing half, as a TCP path would.
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if upward and mode in ("stall-at", "drop-at") and self.up + len(data) >= at:
                keep = max(0, at - self.up)
                self.forward(dst, data[:keep], upward)
                if mode == "drop-at":
                    self.kill("reset after %d bytes up" % self.up)
                    return
                self.stalled = True
                log("link %d: stalled after %d bytes up" % (self.n, self.up))
                continue
            self.forward(dst, data, upward)

    def forward(self, dst, data, upward):
        try:
            dst.sendall(data)
        except OSError:
            self.kill("the other side is gone")
            return
        with LOCK:
            STATE["up" if upward else "down"] += len(data)
        if upward:
            self.up += len(data)


def serve(listener, target):
    while True:
        client, _ = listener.accept()
        with LOCK:
            STATE["links"] += 1
            n = STATE["links"]
        try:
            server = socket.create_connection(target, timeout=10)
        except OSError as e:
            log("link %d: cannot reach %s:%d: %s" % (n, target[0], target[1], e))
            reset(client)
            continue
        link = Link(n, client, server)
        with LOCK:
            OPEN.append(link)
        threading.Thread(target=link.pump, args=(client, server, True), daemon=True).start()
        threading.Thread(target=link.pump, args=(server, client, False), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True, help="HOST:PORT")
    args = ap.parse_args()
    host, port = args.to.rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("port %d" % listener.getsockname()[1], flush=True)
    threading.Thread(target=serve, args=(listener, (host, int(port))), daemon=True).start()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        with LOCK:
            if words[0] in ("pass", "stall"):
                STATE["mode"] = words[0]
            elif words[0] in ("stall-at", "drop-at") and len(words) == 2:
                STATE["mode"], STATE["at"] = words[0], int(words[1])
            elif words[0] == "drop":
                for link in OPEN:
                    link.kill("reset by command")
            elif words[0] == "stats":
                print("links %d up %d down %d" % (STATE["links"], STATE["up"], STATE["down"]), flush=True)
                continue
            else:
                print("unknown command: " + line.strip(), flush=True)
                continue
        print("ok", flush=True)


if __name__ == "__main__":
    main()

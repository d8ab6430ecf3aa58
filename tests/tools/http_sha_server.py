#!/usr/bin/env python3
"""http_sha_server: a tiny HTTP/1.1 server for ferry's curl tests.

GET /data?bytes=N&seed=S  answers N pseudorandom bytes (the same bytes
tcp_xfer.py derives from S and N). PUT (any path) answers the sha256 hex of
the body it received, then a newline. Binds loopback only; serves until
killed or --lifetime seconds pass. Writes its port to --portfile.
"""
import argparse
import hashlib
import http.server
import os
import random
import socketserver
import sys
import threading
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        n = int(q.get("bytes", ["1048576"])[0])
        seed = int(q.get("seed", ["1"])[0])
        data = random.Random(seed).randbytes(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        mv = memoryview(data)
        for off in range(0, n, 1 << 20):
            self.wfile.write(mv[off:off + (1 << 20)])

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        left = n
        while left > 0:
            d = self.rfile.read(min(left, 1 << 20))
            if not d:
                break
            h.update(d)
            left -= len(d)
        body = (h.hexdigest() + "\n").encode()
        self.send_response(200 if left == 0 else 400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    p.add_argument("--portfile", required=True)
    p.add_argument("--lifetime", type=float, default=600)
    a = p.parse_args()
    if a.addr == "::1":
        Server.address_family = __import__("socket").AF_INET6
    srv = Server((a.addr, 0), Handler)
    with open(a.portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.portfile + ".tmp", a.portfile)
    threading.Timer(a.lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

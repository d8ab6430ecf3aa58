#!/usr/bin/env python3
"""fastpath_xfer: both sides of tests/e2e/fastpath_absorb.sh.

serve: on loopback, answers each HTTP GET with N pseudorandom bytes (16 MiB
chunks, chunk i from random.Random(seed * 1000 + i): Random.randbytes
cannot make 256 MiB at once), then closes; writes its port to --portfile.
sha: prints the sha256 of those N bytes.
fetch (the guest): downloads them on one TCP connection, and at a chosen point of the body (--dump-at bytes read) stops
reading for a moment and dumps the instance's pinned conn_hash with bpftool
(the connection is live and on the fast path then), then reads the rest.
--stats-at: bytes read (near the end) at which `ferry stats -j` is saved.
Prints the body's sha256 on stdout. Exit 1 on a short or broken transfer.
"""
import argparse
import hashlib
import os
import random
import socket
import subprocess
import sys


CHUNK = 16 << 20


def chunks(n, seed):
    """The body: n bytes, 16 MiB at a time."""
    i = 0
    while n > 0:
        c = random.Random(seed * 1000 + i).randbytes(min(CHUNK, n))
        yield c
        n -= len(c)
        i += 1


def serve(a):
    """Answers GET requests until --lifetime passes (one at a time)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, 0))
    ls.listen(4)
    ls.settimeout(a.timeout)
    with open(a.portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(a.portfile + ".tmp", a.portfile)
    while True:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            return 0
        c.settimeout(a.timeout)
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 8192:
            d = c.recv(4096)
            if not d:
                break
            req += d
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % a.bytes)
            for ch in chunks(a.bytes, a.seed):
                c.sendall(ch)
        except OSError:
            pass
        c.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["serve", "sha", "fetch"])
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--portfile")
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dump-at", type=int, default=1 << 20)
    p.add_argument("--dump-out")
    p.add_argument("--stats-at", type=int, default=0)
    p.add_argument("--stats-out")
    p.add_argument("--ferry")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--rcvbuf", type=int, default=0, help="fetch: SO_RCVBUF (a small window)")
    a = p.parse_args()
    if a.cmd == "serve":
        return serve(a)
    if a.cmd == "sha":
        h = hashlib.sha256()
        for ch in chunks(a.bytes, a.seed):
            h.update(ch)
        print(h.hexdigest())
        return 0
    inst = os.environ.get("FERRY_INSTANCE", "")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    s.settimeout(a.timeout)
    s.connect((a.addr, a.port))
    s.sendall(b"GET /data HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            print("no HTTP header", file=sys.stderr)
            return 1
        head += chunk
    head, body = head.split(b"\r\n\r\n", 1)
    h = hashlib.sha256(body)
    got = len(body)
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    dumped = statted = False
    while got < a.bytes:
        if not dumped and got >= a.dump_at:
            dumped = True
            r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                f"/sys/fs/bpf/ferry/{inst}/conn_hash"],
                               capture_output=True, text=True, timeout=20)
            with open(a.dump_out, "w") as f:
                f.write(r.stdout)
        if not statted and got >= a.stats_at:
            statted = True
            r = subprocess.run([a.ferry, "stats", "-j", inst], capture_output=True, text=True,
                               timeout=20)
            with open(a.stats_out, "w") as f:
                f.write(r.stdout)
        n = s.recv_into(mv, min(len(buf), a.bytes - got))
        if n == 0:
            break
        h.update(mv[:n])
        got += n
    s.close()
    if got != a.bytes:
        print(f"short body: {got} of {a.bytes}", file=sys.stderr)
        return 1
    print(h.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())

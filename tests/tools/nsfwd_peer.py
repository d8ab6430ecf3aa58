#!/usr/bin/env python3
"""Both ends of the -T/-U scenario (tests/e2e/run_ns_forward.sh).

  freeblock N            N consecutive ports free for TCP and UDP on both
                         127.0.0.1 and ::1 (below the ephemeral range)
  serve DIR PORT...      TCP on 127.0.0.1 and ::1 for each PORT, one
                         connection at a time: read to end of stream, log
                         "PORT FAMILY SHA256-OF-WHAT-CAME" to DIR/log, then
                         answer "P<PORT> <FAMILY>\\n" + DIR/reply and close
                         (the answer comes only after the client's
                         half-close). DIR/ready when listening. Bounded: 120 s.
  client ADDR PORT FILE  connect, send FILE, shutdown(SHUT_WR), read to end:
                         prints the answer's first line and the SHA-256 of the rest
  refused ADDR PORT      connect and read: prints "refused" (the connect was
                         refused), "reset" (accepted, then reset), "eof" or "data"
  udpecho PORT           UDP on 127.0.0.1 and ::1: answers "v4:"/"v6:" + datagram. 120 s.
  udp ADDR PORT MSG      sends MSG, prints the answer and the port it came from
"""
import hashlib
import os
import random
import select
import socket
import sys
import time


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def freeblock(n):
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        held = []
        try:
            for p in range(base, base + n):
                for addr in ("127.0.0.1", "::1"):
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        s = socket.socket(family_of(addr), kind)
                        held.append(s)
                        s.bind((addr, p))
            print(base)
            return 0
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    return 1


def serve(d, ports):
    reply = open(os.path.join(d, "reply"), "rb").read()
    listeners = {}
    for p in ports:
        for addr, fam in (("127.0.0.1", "v4"), ("::1", "v6")):
            s = socket.socket(family_of(addr), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, p))
            s.listen(16)
            listeners[s] = (p, fam)
    open(os.path.join(d, "ready"), "w").close()
    end = time.time() + 120
    with open(os.path.join(d, "log"), "a", buffering=1) as log:
        while time.time() < end:
            ready, _, _ = select.select(list(listeners), [], [], 1)
            for s in ready:
                c, _ = s.accept()
                c.settimeout(30)
                p, fam = listeners[s]
                h = hashlib.sha256()
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    h.update(b)
                log.write("%d %s %s\n" % (p, fam, h.hexdigest()))
                c.sendall(b"P%d %s\n" % (p, fam.encode()) + reply)
                c.close()
    return 0


def client(addr, port, path):
    s = socket.socket(family_of(addr), socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect((addr, int(port)))
    s.sendall(open(path, "rb").read())
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    line, _, rest = bytes(got).partition(b"\n")
    print(line.decode(), hashlib.sha256(rest).hexdigest())
    return 0


def refused(addr, port):
    s = socket.socket(family_of(addr), socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((addr, int(port)))
        s.sendall(b"x")
        print("data" if s.recv(100) else "eof")
    except ConnectionRefusedError:
        print("refused")
    except ConnectionResetError:
        print("reset")
    return 0


def udpecho(port):
    socks = {}
    for addr, fam in (("127.0.0.1", b"v4:"), ("::1", b"v6:")):
        s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
        s.bind((addr, int(port)))
        socks[s] = fam
    end = time.time() + 120
    while time.time() < end:
        ready, _, _ = select.select(list(socks), [], [], 1)
        for s in ready:
            d, peer = s.recvfrom(65536)
            s.sendto(socks[s] + d, peer)
    return 0


def udp(addr, port, msg):
    s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    s.settimeout(3)
    for _ in range(3):  # a datagram may be lost; the answer is what counts
        s.sendto(msg.encode(), (addr, int(port)))
        try:
            d, peer = s.recvfrom(65536)
            print(d.decode(), peer[1])
            return 0
        except socket.timeout:
            continue
    print("timeout")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeblock":
        sys.exit(freeblock(int(args[0])))
    if cmd == "serve":
        sys.exit(serve(args[0], [int(p) for p in args[1:]]))
    sys.exit({"client": client, "refused": refused, "udpecho": udpecho, "udp": udp}[cmd](*args))

#!/usr/bin/env python3
"""tcp_xfer: data source and sink with sha256 checks, for ferry's TCP tests.

Both ends derive the same pseudorandom bytes from --seed and --bytes, so each
side knows the sha256 of what it must receive. One connection moves data one
way and then answers the other way, which also exercises half-close:

  listen --mode sink:    read to EOF, check, reply "OK <sha>" (or "BAD"), close
  connect --mode send:   send, shutdown(SHUT_WR), expect "OK"
  listen --mode source:  send, shutdown(SHUT_WR), expect "OK" from the client
  connect --mode recv:   read to EOF, check, reply "OK <sha>", wait until it is ACKed

Extras: --count K connections (threads, concurrent; --sequential: one
after the other), --pause S (receiver stops
reading for S seconds after the first MiB, then resumes), --slow (receiver
reads 16 KiB per 1 ms), --rst-after N (abort with SO_LINGER {1,0} after N
bytes; the other side must see a reset), --expect-error (connect must fail:
prints the errno name and exits 0 when it did), --peerfile F (listen: write
each accepted peer address to F). Exit status 0 only if every connection
verified. Listens on loopback, on the guest's own addresses, or inside a
namespace the test made (a remote peer, tests/e2e/remote_*.sh) only.
"""
import argparse
import errno
import fcntl
import hashlib
import random
import socket
import struct
import sys
import termios
import threading
import time

CHUNK = 256 * 1024


def data_for(seed, n):
    return random.Random(seed).randbytes(n)


def recv_all(sock, args, want_len):
    """Reads to EOF; returns (sha hexdigest, byte count)."""
    h = hashlib.sha256()
    got = 0
    paused = args.pause <= 0
    bufsize = 16384 if args.slow else CHUNK
    while True:
        if args.rst_after and got >= args.rst_after:
            abort(sock)
            return None, got
        d = sock.recv(bufsize)
        if not d:
            break
        h.update(d)
        got += len(d)
        if not paused and got >= (1 << 20):
            paused = True
            time.sleep(args.pause)
        if args.slow:
            time.sleep(0.001)
    return h.hexdigest(), got


def send_all(sock, args, data):
    mv = memoryview(data)
    off = 0
    while off < len(mv):
        if args.rst_after and off >= args.rst_after:
            abort(sock)
            return False
        n = sock.send(mv[off:off + CHUNK])
        off += n
    return True


def abort(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_acked(sock, timeout):
    """Waits until the peer acknowledged everything sent on sock (its send
    queue, SIOCOUTQ, is empty); False after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        if queued == 0:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)


def read_line(sock):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < 256:
        d = sock.recv(256)
        if not d:
            break
        buf += d
    return buf.decode(errors="replace").strip()


class Result:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.bad = []

    def good(self):
        with self.lock:
            self.ok += 1

    def fail(self, msg):
        with self.lock:
            self.bad.append(msg)


def serve_one(conn, args, expected, data, res, idx):
    try:
        with conn:
            if args.mode == "sink":
                sha, got = recv_all(conn, args, args.bytes)
                if sha is None:
                    res.good()  # we reset it on purpose
                    return
                if sha == expected and got == args.bytes:
                    conn.sendall(("OK %s\n" % sha).encode())
                    res.good()
                else:
                    conn.sendall(b"BAD\n")
                    res.fail("conn %d: got %d bytes sha %s" % (idx, got, sha))
            elif args.mode == "source":
                if not send_all(conn, args, data):
                    res.good()
                    return
                conn.shutdown(socket.SHUT_WR)
                line = read_line(conn)
                if line.startswith("OK "):
                    res.good()
                else:
                    res.fail("conn %d: client said %r" % (idx, line))
            elif args.mode == "reset-check":
                # The peer resets: we must see ECONNRESET, not a clean EOF.
                try:
                    while conn.recv(CHUNK):
                        pass
                    res.fail("conn %d: clean EOF instead of reset" % idx)
                except ConnectionResetError:
                    res.good()
    except ConnectionResetError as e:
        if args.mode == "reset-check":
            res.good()
        else:
            res.fail("conn %d: %s" % (idx, e))
    except OSError as e:
        res.fail("conn %d: %s" % (idx, e))


def cmd_listen(args):
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.addr, args.port))
    s.listen(1024)
    if args.portfile:
        with open(args.portfile + ".tmp", "w") as f:
            f.write(str(s.getsockname()[1]))
        import os
        os.rename(args.portfile + ".tmp", args.portfile)
    data = data_for(args.seed, args.bytes)
    expected = hashlib.sha256(data).hexdigest()
    res = Result()
    threads = []
    s.settimeout(args.timeout)
    peers = []
    for i in range(args.count):
        try:
            c, peer = s.accept()
        except socket.timeout:
            res.fail("accept timed out after %d connections" % i)
            break
        c.settimeout(args.timeout)
        peers.append(peer[0])
        t = threading.Thread(target=serve_one, args=(c, args, expected, data, res, i), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(args.timeout)
    if args.peerfile:
        with open(args.peerfile, "w") as f:
            f.write("\n".join(peers) + "\n")
    return report(res, args)


def client_one(args, expected, data, res, idx):
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(args.timeout)
    try:
        for attempt in range(args.retries + 1):
            try:
                c.connect((args.addr, args.port))
                break
            except (ConnectionRefusedError, socket.timeout, OSError) as e:
                if args.expect_error:
                    name = errno.errorcode.get(getattr(e, "errno", 0) or 0, type(e).__name__)
                    print("connect failed as expected: %s" % name)
                    res.good()
                    c.close()
                    return
                if attempt == args.retries:
                    raise
                c.close()
                c = socket.socket(fam, socket.SOCK_STREAM)
                c.settimeout(args.timeout)
                time.sleep(0.2)
        if args.expect_error:
            res.fail("conn %d: connect succeeded" % idx)
            c.close()
            return
        if args.mode == "send":
            if not send_all(c, args, data):
                res.good()
                return
            c.shutdown(socket.SHUT_WR)
            line = read_line(c)
            if line.startswith("OK ") and line[3:] == expected:
                res.good()
            else:
                res.fail("conn %d: server said %r" % (idx, line))
        elif args.mode == "recv":
            sha, got = recv_all(c, args, args.bytes)
            if sha is None:
                res.good()
                return
            if sha == expected and got == args.bytes:
                c.sendall(("OK %s\n" % sha).encode())
                # Returns once the line was acknowledged, so it does not
                # rest on a retransmission after this process exits (a
                # guest's namespace may be gone by then: a lost line
                # failed the server of tcp_loss at 5 %).
                if wait_acked(c, args.timeout):
                    res.good()
                else:
                    res.fail("conn %d: our OK line was not acknowledged" % idx)
            else:
                c.sendall(b"BAD\n")
                res.fail("conn %d: got %d bytes sha %s" % (idx, got, sha))
        elif args.mode == "reset-check":
            try:
                c.sendall(b"x" * 1000)
                while c.recv(CHUNK):
                    pass
                res.fail("conn %d: clean EOF instead of reset" % idx)
            except ConnectionResetError:
                res.good()
        c.close()
    except ConnectionResetError as e:
        if args.mode == "reset-check":
            res.good()
        else:
            res.fail("conn %d: %s" % (idx, e))
    except OSError as e:
        res.fail("conn %d: %s" % (idx, e))


def cmd_connect(args):
    data = data_for(args.seed, args.bytes)
    expected = hashlib.sha256(data).hexdigest()
    res = Result()
    if args.sequential:
        for i in range(args.count):
            client_one(args, expected, data, res, i)
        return report(res, args)
    threads = [threading.Thread(target=client_one, args=(args, expected, data, res, i), daemon=True)
               for i in range(args.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.timeout * 2)
    return report(res, args)


def report(res, args):
    for b in res.bad[:10]:
        print("tcp_xfer: " + b, file=sys.stderr)
    print("tcp_xfer %s %s: %d/%d ok" % (args.cmd, args.mode, res.ok, args.count))
    return 0 if res.ok == args.count and not res.bad else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["listen", "connect"])
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--portfile")
    p.add_argument("--peerfile")
    p.add_argument("--mode", required=True, choices=["sink", "source", "send", "recv", "reset-check"])
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--pause", type=float, default=0)
    p.add_argument("--slow", action="store_true")
    p.add_argument("--rst-after", type=int, default=0)
    p.add_argument("--expect-error", action="store_true")
    p.add_argument("--sequential", action="store_true")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    sys.exit(cmd_listen(args) if args.cmd == "listen" else cmd_connect(args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""soak_xfer: many TCP transfers both ways over IPv4 and IPv6, timed, with
stalls counted and a snapshot taken while a stall lasts (issue 19).

  serve --port P [--addr A ...]         one server per address (threads):
      a client sends b"D" or b"U" and a 64-bit big-endian length; for "D" the
      server sends that many bytes and closes; for "U" it reads to EOF and
      answers the count (8 bytes) and the sha256 (32 bytes) of what it read.
  run --count N --bytes B --gw4 A --gw6 A --port P [--hook CMD] [--json F]
      N transfers, cycling download/upload x IPv4/IPv6, one after the other,
      (--pause-every N --pause-s S, on serve and run: the receiver of an
      upload or a download sleeps up to S s after every N bytes),
      each verified (length, sha256) and bounded by --timeout. While a
      transfer runs longer than --stall-factor (5) times the median of its
      kind so far (and at least --min-stall s), CMD runs once (in the
      background; env SOAK_INDEX, SOAK_KIND, SOAK_ELAPSED) to record what
      ferry, the tap and the guest saw. At the end a stall is a transfer over
      stall-factor x its kind's median (and over median + min-stall);
      a summary line per kind; exit 0 only with no failure and no stall.

The payload is a fixed pseudorandom 1 MiB block repeated: both sides know
its sha256 without storing the stream. Listens on loopback only (the host
side of `ferry attach`, inside the test's own namespace).
"""
import argparse
import hashlib
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

BLOCK = random.Random(19).randbytes(1 << 20)


def expected_sha(n):
    h = hashlib.sha256()
    full, rest = divmod(n, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.digest()


def send_stream(sock, n):
    mv = memoryview(BLOCK)
    while n > 0:
        k = min(n, len(BLOCK))
        sock.sendall(mv[:k])
        n -= k


# A reader that stalls now and then (a loaded host's sink, a busy guest's
# application): after every PAUSE_EVERY bytes it sleeps up to PAUSE_S
# seconds (random), so the receive window closes and reopens.
PAUSE_EVERY = 0
PAUSE_S = 0.0
_rng = random.Random(1919)


def recv_stream(sock):
    h = hashlib.sha256()
    got = 0
    next_pause = PAUSE_EVERY
    while True:
        d = sock.recv(256 * 1024)
        if not d:
            return got, h.digest()
        h.update(d)
        got += len(d)
        if PAUSE_EVERY and got >= next_pause:
            next_pause += PAUSE_EVERY
            time.sleep(_rng.uniform(0, PAUSE_S))


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        d = sock.recv(n - len(out))
        if not d:
            raise ConnectionError("short read")
        out += d
    return out


# ---- server -----------------------------------------------------------------

def handle(conn):
    with conn:
        conn.settimeout(600)
        try:
            hdr = recv_exact(conn, 9)
            mode, n = hdr[:1], struct.unpack("!Q", hdr[1:])[0]
            if mode == b"D":
                send_stream(conn, n)
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)  # the client closes after reading everything
            elif mode == b"U":
                got, sha = recv_stream(conn)
                conn.sendall(struct.pack("!Q", got) + sha)
        except OSError:
            pass


def serve_one(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def serve(args):
    for a in args.addr:
        threading.Thread(target=serve_one, args=(a, args.port), daemon=True).start()
    if args.ready:
        time.sleep(0.2)
        open(args.ready, "w").write("ready\n")
    time.sleep(args.life)


# ---- client -----------------------------------------------------------------

def one_transfer(kind, addr, port, n, timeout, result):
    """kind: 'down4', 'up6', ...; fills result['ok'] / result['error']."""
    fam = socket.AF_INET6 if kind.endswith("6") else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((addr, port))
            if kind.startswith("down"):
                s.sendall(b"D" + struct.pack("!Q", n))
                got, sha = recv_stream(s)
                ok = got == n and sha == expected_sha(n)
                result["error"] = None if ok else f"got {got} bytes, sha {'ok' if sha == expected_sha(n) else 'bad'}"
            else:
                s.sendall(b"U" + struct.pack("!Q", n))
                send_stream(s, n)
                s.shutdown(socket.SHUT_WR)
                ans = recv_exact(s, 40)
                got = struct.unpack("!Q", ans[:8])[0]
                ok = got == n and ans[8:] == expected_sha(n)
                result["error"] = None if ok else f"server got {got} bytes"
    except OSError as e:
        result["error"] = f"{type(e).__name__}: {e}"


def run(args):
    kinds = [k for k in ("down4", "up4", "down6", "up6")
             if (k.endswith("4") and args.gw4) or (k.endswith("6") and args.gw6)]
    times = {k: [] for k in kinds}
    records = []
    failures = 0
    hooks = []
    deadline = time.monotonic() + args.time_limit if args.time_limit else None
    for i in range(args.count):
        if deadline and time.monotonic() > deadline:
            print(f"soak: time limit reached after {i} transfers", flush=True)
            break
        kind = kinds[i % len(kinds)]
        addr = args.gw6 if kind.endswith("6") else args.gw4
        so_far = times[kind]
        soft = max(args.stall_factor * statistics.median(so_far), args.min_stall) if len(so_far) >= 3 else None
        result = {"error": "unfinished"}
        t0 = time.monotonic()
        th = threading.Thread(target=one_transfer, args=(kind, addr, args.port, args.bytes, args.timeout, result),
                              daemon=True)
        th.start()
        hooked = False
        while th.is_alive():
            th.join(0.05)
            el = time.monotonic() - t0
            if th.is_alive() and soft is not None and el > soft and not hooked and args.hook:
                hooked = True
                env = dict(os.environ, SOAK_INDEX=str(i), SOAK_KIND=kind, SOAK_ELAPSED=f"{el:.2f}")
                hooks.append(subprocess.Popen(args.hook, shell=True, env=env))
                print(f"soak: transfer {i} {kind} still running after {el:.1f} s: snapshot", flush=True)
        el = time.monotonic() - t0
        rec = {"i": i, "kind": kind, "s": round(el, 4), "error": result["error"], "snapshot": hooked}
        records.append(rec)
        if result["error"]:
            failures += 1
            print(f"soak: transfer {i} {kind} FAILED after {el:.2f} s: {result['error']}", flush=True)
            if args.hook and not hooked:
                env = dict(os.environ, SOAK_INDEX=str(i), SOAK_KIND=kind, SOAK_ELAPSED=f"{el:.2f}")
                hooks.append(subprocess.Popen(args.hook, shell=True, env=env))
        else:
            so_far.append(el)
        if args.verbose:
            print(f"soak: {i} {kind} {el:.3f} s", flush=True)
    for h in hooks:
        h.wait()
    stalls = []
    summary = {}
    for k in kinds:
        if not times[k]:
            continue
        med = statistics.median(times[k])
        limit = max(args.stall_factor * med, med + args.min_stall)
        ks = [r for r in records if r["kind"] == k and r["error"] is None and r["s"] > limit]
        stalls += ks
        summary[k] = {"n": len(times[k]), "median": round(med, 3), "max": round(max(times[k]), 3),
                      "stall_limit": round(limit, 3), "stalls": len(ks)}
        print(f"soak: {k}: {len(times[k])} ok, median {med:.3f} s, max {max(times[k]):.3f} s, "
              f"stalls (> {limit:.2f} s) {len(ks)}", flush=True)
    for r in stalls:
        print(f"soak: STALL transfer {r['i']} {r['kind']} took {r['s']:.2f} s", flush=True)
    print(f"soak: {len(records)} transfers of {args.bytes} bytes, {failures} failed, {len(stalls)} stalled",
          flush=True)
    if args.json:
        json.dump({"records": records, "summary": summary, "failures": failures, "stalls": len(stalls)},
                  open(args.json, "w"))
    return 0 if failures == 0 and not stalls and records else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--addr", action="append", default=[])
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ready")
    s.add_argument("--life", type=float, default=3600)
    s.add_argument("--pause-every", type=int, default=0, help="uploads: sleep after every N bytes read")
    s.add_argument("--pause-s", type=float, default=0.0, help="... for up to S seconds")
    r = sub.add_parser("run")
    r.add_argument("--count", type=int, default=20)
    r.add_argument("--bytes", type=int, default=4 << 20)
    r.add_argument("--gw4")
    r.add_argument("--gw6")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--timeout", type=float, default=60)
    r.add_argument("--time-limit", type=float, default=0)
    r.add_argument("--stall-factor", type=float, default=5)
    r.add_argument("--min-stall", type=float, default=1.0)
    r.add_argument("--hook")
    r.add_argument("--json")
    r.add_argument("--pause-every", type=int, default=0, help="downloads: sleep after every N bytes read")
    r.add_argument("--pause-s", type=float, default=0.0, help="... for up to S seconds")
    r.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    global PAUSE_EVERY, PAUSE_S
    PAUSE_EVERY, PAUSE_S = a.pause_every, a.pause_s
    if a.cmd == "serve":
        if not a.addr:
            a.addr = ["127.0.0.1", "::1"]
        for x in a.addr:
            if x not in ("127.0.0.1", "::1"):
                sys.exit("soak_xfer: serve listens on loopback only")
        serve(a)
        return 0
    return run(a)


if __name__ == "__main__":
    sys.exit(main())

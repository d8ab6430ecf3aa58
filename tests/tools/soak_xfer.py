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
      ferry, the tap and the guest saw. --counters CMD (optional) prints a
      JSON object of counters (name -> integer); it runs before and after
      every transfer, and each record keeps the deltas ("d"), with the
      transfer's local port and wall-clock start (for the ferry -v log and
      tcpdump).
      The rule (issue 19): a stall is a transfer over stall-factor (5) x
      its kind's median, with one discount: the time the stand-in itself
      withheld the guest's frames on purpose during that transfer (the
      counter reader_long_pause_us, the reader's injected long pauses, a
      vCPU descheduled: 100 ms each with offloads off, 30 ms on) is taken
      off first; a transfer that merely sat through an injected pause is
      not a ferry stall, and nothing else is discounted (not the machine's
      load, not an RTO). --floor F (default 0) also requires a stall to
      last F s beyond the median (the CI's short soak, which runs beside
      other tests: lib_soak.sh). Printed per kind: the plain 5x count and
      the stalls; exit 0 only with no failure and no stall.
  explain --json F --log L
      joins each record of F (run's --json) with its flow's close line in
      ferry's -v log L (by the guest's port: the loss-recovery tally,
      recovery=rtx:N,rto:N,...), writes it back into F ("ferry"), and prints
      every transfer over stall-factor x its kind's median with what it met:
      its counter deltas, ferry's tally and a cause class.

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
    """kind: 'down4', 'up6', ...; fills result['error'] and result['port']."""
    fam = socket.AF_INET6 if kind.endswith("6") else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((addr, port))
            result["port"] = s.getsockname()[1]
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


def read_counters(cmd):
    """The --counters command's JSON object, {} when it fails."""
    if not cmd:
        return {}
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, timeout=10, text=True).stdout
        return {k: int(v) for k, v in json.loads(out).items()}
    except (OSError, ValueError, subprocess.SubprocessError, AttributeError):
        return {}


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
        result = {"error": "unfinished", "port": 0}
        before = read_counters(args.counters)
        wall = time.time()
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
        after = read_counters(args.counters)
        rec = {"i": i, "kind": kind, "s": round(el, 4), "error": result["error"], "snapshot": hooked,
               "port": result["port"], "start": round(wall, 4),
               "d": {k: after[k] - before[k] for k in after if k in before and after[k] != before[k]}}
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
    strict_n = 0
    summary = {}
    for k in kinds:
        if not times[k]:
            continue
        med = statistics.median(times[k])
        strict = args.stall_factor * med
        ok = [r for r in records if r["kind"] == k and r["error"] is None]
        for r in ok:
            r["x_median"] = round(r["s"] / med, 2) if med > 0 else 0
            r["strict"] = r["s"] > strict
            r["injected_s"] = r["d"].get("reader_long_pause_us", 0) / 1e6
        ks = [r for r in ok if r["s"] - r["injected_s"] > max(strict, med + args.floor)]
        for r in ok:
            r["stall"] = r in ks
        n_strict = sum(r["strict"] for r in ok)
        strict_n += n_strict
        stalls += ks
        summary[k] = {"n": len(times[k]), "median": round(med, 3), "max": round(max(times[k]), 3),
                      "strict_limit": round(strict, 3), "strict": n_strict, "stalls": len(ks)}
        print(f"soak: {k}: {len(times[k])} ok, median {med:.3f} s, max {max(times[k]):.3f} s "
              f"({max(times[k]) / med if med else 0:.1f}x), over 5x (> {strict:.3f} s) {n_strict}, "
              f"stalls (the same less injected pauses{f', and over median + {args.floor} s' if args.floor else ''}) "
              f"{len(ks)}", flush=True)
    for r in records:
        if r.get("strict"):
            d = " ".join(f"{k}={v}" for k, v in sorted(r["d"].items()))
            print(f"soak: {'STALL' if r in stalls else 'over 5x'} transfer {r['i']} {r['kind']} port {r['port']} "
                  f"took {r['s']:.3f} s ({r['x_median']}x); counters: {d or '-'}", flush=True)
    print(f"soak: {len(records)} transfers of {args.bytes} bytes, {failures} failed, {strict_n} over 5x the "
          f"median, {len(stalls)} stalled (over 5x less the reader's injected pauses)", flush=True)
    if args.json:
        json.dump({"records": records, "summary": summary, "failures": failures, "strict": strict_n,
                   "stalls": len(stalls)}, open(args.json, "w"))
    return 0 if failures == 0 and not stalls and records else 1


def close_tallies(log):
    """{guest port: {rtx: N, rto: N, ...}} from ferry's -v close lines."""
    out = {}
    for line in open(log, errors="replace"):
        if not line.startswith("ferry: tcp close "):
            continue
        f = line.split()
        try:
            port = int(f[3].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        tally = {}
        for w in f:
            if w.startswith("recovery="):
                for kv in w[len("recovery="):].split(","):
                    k, _, v = kv.partition(":")
                    tally[k] = int(v) if v.isdigit() else v
        out[port] = tally
    return out


def cause(r):
    """A first reading of what an over-5x transfer met (the report checks it)."""
    d, t = r.get("d", {}), r.get("ferry") or {}
    why = []
    if d.get("cpu_wait_us", 0) > 500000 * r["s"]:
        why.append(f"tasks waited {d['cpu_wait_us'] / 1e3:.0f} ms for a CPU in these {r['s'] * 1e3:.0f} ms "
                   f"(the machine's load)")
    if t.get("rto"):
        why.append(f"{t['rto']} RTO")
    if t.get("lost_rtx"):
        why.append(f"{t['lost_rtx']} lost retransmission(s)")
    if t.get("tlp"):
        why.append(f"{t['tlp']} loss probe(s)")
    if t.get("fast"):
        why.append(f"{t['fast']} fast recovery(ies)")
    if d.get("reader_long_pauses"):
        why.append(f"{d['reader_long_pauses']} injected long pause(s) of the reader "
                   f"({d.get('reader_long_pause_us', 0) / 1e3:.0f} ms, discounted)")
    return "; ".join(why) or "no recovery event, no injected long pause (the client or the machine)"


def explain(args):
    data = json.load(open(args.json))
    tallies = close_tallies(args.log) if args.log and os.path.exists(args.log) else {}
    for r in data["records"]:
        r["ferry"] = tallies.get(r.get("port"), {})
    for r in data["records"]:
        if r.get("strict"):
            d = " ".join(f"{k}={v}" for k, v in sorted(r["d"].items()))
            t = " ".join(f"{k}={v}" for k, v in r["ferry"].items()) or "nothing resent"
            print(f"soak: over 5x{' (STALL)' if r.get('stall') else ' (not a stall: injected pause or floor)'}: "
                  f"transfer {r['i']} {r['kind']} port {r['port']} {r['s']:.3f} s "
                  f"({r['x_median']}x): counters {d or '-'}; ferry: {t}; cause: {cause(r)}", flush=True)
    json.dump(data, open(args.json, "w"))
    return 0


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
    r.add_argument("--min-stall", type=float, default=1.0, help="the snapshot hook runs only after this long")
    r.add_argument("--floor", type=float, default=0.0, help="a stall also lasts this long beyond the median")
    r.add_argument("--hook")
    r.add_argument("--counters", help="prints a JSON object of counters; run before and after each transfer")
    r.add_argument("--json")
    r.add_argument("--pause-every", type=int, default=0, help="downloads: sleep after every N bytes read")
    r.add_argument("--pause-s", type=float, default=0.0, help="... for up to S seconds")
    r.add_argument("-v", "--verbose", action="store_true")
    e = sub.add_parser("explain")
    e.add_argument("--json", required=True)
    e.add_argument("--log")
    a = p.parse_args()
    if a.cmd == "explain":
        return explain(a)
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

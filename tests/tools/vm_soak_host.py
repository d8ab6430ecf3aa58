#!/usr/bin/env python3
"""vm_soak_host: the host's side of the real-VM soak (issue 19,
tests/e2e/lib_vm_soak.sh).

  sink --addr A --port-file F --bytes N [--life S]
      an upload sink on A (threads): reads N bytes from each client, answers
      their sha256 in hex and a newline, closes. Per connection, a read that
      waits longer than 300 s ends it.
  watch --console LOG --pid QEMU --json OUT [--hook CMD] [--fwd PORT
        --inbound N --done FILE] [--deadline S] [--stall-factor 5]
        [--min-stall 3] [--rule strict|soft] [--freeze I:S]
      follows the guest's serial console. The guest prints
        "VM: start I KIND"             before transfer I (d4 u4 d6 u6)
        "VM: xfer I KIND CS ok|bad"    after it; CS: hundredths of a second,
                                       the guest's own clock (/proc/uptime)
        "VM: httpd-ready SHA256"       its httpd serves /big (16 MiB)
        "VM: nud4|nud6 ok|FAIL TEXT"   the gateway's neighbour re-resolved
        "VM: END"                      before poweroff
      While a transfer runs (by the host's clock) longer than stall-factor x
      the median of its kind so far (at least 3 done), CMD runs once, in the
      background (env SOAK_INDEX, SOAK_KIND, SOAK_ELAPSED), to snapshot what
      ferry, the tap and the pcap saw. After "httpd-ready": N fetches of
      http://127.0.0.1:PORT/big (ferry's -t forward to the guest's port 80),
      timed here, sha256 checked (kind "in"), then FILE is written (the guest
      waits for it before powering off). At the end, per kind: count, median,
      max; a stall by the strict rule (the issue's) is a transfer over
      stall-factor x its kind's median; by the soft rule (lib_soak.sh's), also
      over median + min-stall s. Exit 0 when every transfer verified, both
      neighbour checks passed, the guest said END, and no stall by --rule.
      --freeze I:S (the soak's self-check): 0.3 s after transfer I started, QEMU (the
      child of --pid, which is vm_boot's `timeout`) is stopped for S seconds
      (SIGSTOP, SIGCONT), a TCG guest that stops reading its ring; that
      transfer must then be found as a stall and snapshotted.

Listens and connects on loopback only (inside the scenario's namespace).
"""
import argparse
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def sink(args):
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.addr, 0))
    s.listen(16)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)

    def one(c):
        h, n = hashlib.sha256(), 0
        c.settimeout(300)
        try:
            while n < args.bytes:
                d = c.recv(min(1 << 16, args.bytes - n))
                if not d:
                    break
                h.update(d)
                n += len(d)
            print(args.addr, "received", n, h.hexdigest(), flush=True)
            c.sendall((h.hexdigest() + "\n").encode())
        except OSError as e:
            print(args.addr, "after", n, "bytes:", e, flush=True)
        c.close()

    s.settimeout(args.life)
    end = time.time() + args.life
    while time.time() < end:
        try:
            c, _ = s.accept()
        except OSError:
            break
        threading.Thread(target=one, args=(c,), daemon=True).start()


class Watch:
    """What the console said so far, and the transfer running now."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.done = []          # dicts: index kind secs ok
        self.running = {}       # (index, kind) -> host monotonic start
        self.hooked = set()
        self.nud = {}
        self.end = False
        self.httpd_sha = None
        self.notes = []

    def durations(self, kind):
        return [d["secs"] for d in self.done if d["kind"] == kind]

    def start(self, index, kind):
        with self.lock:
            self.running[(index, kind)] = time.monotonic()
        if self.args.freeze and self.args.freeze[0] == index and kind != "in":
            threading.Thread(target=freeze, args=(self.args.pid, self.args.freeze[1]), daemon=True).start()

    def finish(self, index, kind, secs, ok):
        with self.lock:
            self.running.pop((index, kind), None)
            self.done.append({"index": index, "kind": kind, "secs": secs, "ok": ok})
        print(f"soak: {index} {kind} {secs:.2f} s{'' if ok else ' FAILED'}", flush=True)

    def check_stalls(self):
        """Runs the hook once for a transfer over stall-factor x its median."""
        if not self.args.hook:
            return
        with self.lock:
            now = time.monotonic()
            for (index, kind), t0 in self.running.items():
                d = self.durations(kind)
                if len(d) < 3 or (index, kind) in self.hooked:
                    continue
                elapsed = now - t0
                if elapsed > self.args.stall_factor * statistics.median(d):
                    self.hooked.add((index, kind))
                    env = dict(os.environ, SOAK_INDEX=str(index), SOAK_KIND=kind,
                               SOAK_ELAPSED=f"{elapsed:.1f}")
                    subprocess.Popen([self.args.hook], env=env)
                    print(f"soak: {index} {kind} running {elapsed:.1f} s: snapshot", flush=True)


def fetch_inbound(w, args):
    """The host's fetches through ferry's -t forward, timed here."""
    for i in range(args.inbound):
        w.start(i, "in")
        t0 = time.monotonic()
        ok = False
        try:
            h, n = hashlib.sha256(), 0
            with urllib.request.urlopen(f"http://127.0.0.1:{args.fwd}/big", timeout=args.timeout) as r:
                while True:
                    d = r.read(1 << 16)
                    if not d:
                        break
                    h.update(d)
                    n += len(d)
            ok = h.hexdigest() == w.httpd_sha
            if not ok:
                w.notes.append(f"inbound {i}: {n} bytes, sha256 {h.hexdigest()[:16]}")
        except (OSError, ValueError) as e:
            w.notes.append(f"inbound {i}: {e}")
        w.finish(i, "in", time.monotonic() - t0, ok)
    with open(args.done, "w") as f:
        f.write("done\n")


def freeze(pid, secs):
    """Stops QEMU (pid's child) for secs seconds, 0.3 s into a transfer (its
    connection open, data in flight)."""
    time.sleep(0.3)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            qemu = int(f.read().split()[0])
        os.kill(qemu, signal.SIGSTOP)
        print(f"soak: QEMU {qemu} stopped for {secs:.0f} s", flush=True)
        time.sleep(secs)
        os.kill(qemu, signal.SIGCONT)
    except (OSError, ValueError, IndexError) as e:
        print("soak: freeze:", e, flush=True)


def qemu_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def watch(args):
    w = Watch(args)
    deadline = time.monotonic() + args.deadline
    pos, buf, inbound = 0, b"", None
    start_re = re.compile(r"VM: start (\d+) (\w+)")
    xfer_re = re.compile(r"VM: xfer (\d+) (\w+) (\d+) (ok|bad)")
    while time.monotonic() < deadline and not w.end:
        try:
            with open(args.console, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            chunk = b""
        pos += len(chunk)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if m := start_re.search(line):
                w.start(int(m[1]), m[2])
            elif m := xfer_re.search(line):
                w.finish(int(m[1]), m[2], int(m[3]) / 100.0, m[4] == "ok")
            elif m := re.search(r"VM: (nud[46]) (ok|FAIL) ?(.*)", line):
                w.nud[m[1]] = m[2] == "ok"
                print(f"soak: {m[1]} {m[2]} {m[3]}", flush=True)
            elif m := re.search(r"VM: httpd-ready (\w+)", line):
                w.httpd_sha = m[1]
                if args.inbound and args.fwd:
                    inbound = threading.Thread(target=fetch_inbound, args=(w, args), daemon=True)
                    inbound.start()
                elif args.done:
                    open(args.done, "w").write("done\n")
            elif "VM: FAIL" in line:
                w.notes.append("guest: " + line[line.index("VM: ") + 4:])
            elif "VM: ok" in line or "VM: note" in line:
                print("soak: guest:", line[line.index("VM: ") + 4:], flush=True)
            elif "VM: END" in line:
                w.end = True
        w.check_stalls()
        if not w.end and not qemu_alive(args.pid):
            w.notes.append("QEMU ended before the guest said END")
            break
        time.sleep(0.2)
    if not w.end and time.monotonic() >= deadline:
        w.notes.append(f"the guest did not finish within {args.deadline:.0f} s")
    if inbound is not None:
        inbound.join(timeout=1)
    return report(w, args)


def report(w, args):
    kinds = {}
    for d in w.done:
        kinds.setdefault(d["kind"], []).append(d)
    summary, strict, soft, failed = {}, [], [], []
    for kind, ds in sorted(kinds.items()):
        secs = [d["secs"] for d in ds]
        med = statistics.median(secs)
        for d in ds:
            if not d["ok"]:
                failed.append(d)
            if d["secs"] > args.stall_factor * med:
                strict.append(d)
                if d["secs"] > med + args.min_stall:
                    soft.append(d)
        summary[kind] = {"n": len(ds), "median": round(med, 3), "max": round(max(secs), 3)}
        print(f"soak: {kind}: {len(ds)} transfers, median {med:.2f} s, max {max(secs):.2f} s", flush=True)
    for d in strict:
        print(f"soak: STALL (strict{', soft' if d in soft else ''}) {d['index']} {d['kind']} {d['secs']:.2f} s "
              f"(median {summary[d['kind']]['median']:.2f} s)", flush=True)
    for d in failed:
        print(f"soak: FAILED {d['index']} {d['kind']} after {d['secs']:.2f} s", flush=True)
    for n in w.notes:
        print("soak:", n, flush=True)
    nud_ok = w.nud.get("nud4") is True and w.nud.get("nud6") is True
    if not nud_ok:
        print(f"soak: neighbour re-resolution: {w.nud or 'not reported'}", flush=True)
    stalls = strict if args.rule == "strict" else soft
    result = {"kinds": summary, "transfers": len(w.done), "failed": len(failed),
              "stalls_strict": len(strict), "stalls_soft": len(soft), "nud": w.nud,
              "end": w.end, "notes": w.notes, "all": w.done}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if w.end and not failed and not stalls and nud_ok and not w.notes else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--addr", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--life", type=float, default=7200)
    w = sub.add_parser("watch")
    w.add_argument("--console", required=True)
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--json")
    w.add_argument("--hook")
    w.add_argument("--fwd", type=int, default=0)
    w.add_argument("--inbound", type=int, default=0)
    w.add_argument("--done")
    w.add_argument("--timeout", type=float, default=180)
    w.add_argument("--deadline", type=float, default=900)
    w.add_argument("--stall-factor", type=float, default=5)
    w.add_argument("--min-stall", type=float, default=3)
    w.add_argument("--rule", choices=("strict", "soft"), default="strict")
    w.add_argument("--freeze", type=lambda v: (int(v.split(":")[0]), float(v.split(":")[1])))
    a = p.parse_args()
    if a.cmd == "sink":
        sink(a)
        return 0
    return watch(a)


if __name__ == "__main__":
    sys.exit(main())

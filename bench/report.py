#!/usr/bin/env python3
"""bench/report.py: turns bench/run's raw repetitions into the report.

Theory of operation: raw.tsv has one line per repetition (system, metric,
mtu, pinned, value, note, rep), value "n/a" with a reason in note when that
repetition failed; rep is the repetition's index (bench/run runs every
system once per repetition, interleaved). For every (system, metric, mtu,
pinned) the figure is the median of the good repetitions; a figure with no
good repetition is n/a and keeps the first reason.

Paired ratios: for ferry against each other system (and ferry against
ferry-nofastpath: the fast path's effect; against ferry-baseline, another
ferry binary given to bench/run --baseline: a change's effect), the ratio is taken within each
repetition (ferry_i / peer_i, both measured minutes apart under the same
load), and reported as the median with its min..max across repetitions.
A ratio is a "win" only when its whole spread lies on the good side of 1.0
(above for throughput and rates, below for latency, CPU, memory and ACKs
per GB), a "loss" when it lies wholly on the bad side, else "~" (the
spread crosses 1.0: no claim either way); fewer than two pairs give no
verdict. From the figures it writes

  --json  a list of {system, metric, mtu, pinned, value} records (value null
          when n/a, then with "error"; "reps" = good repetitions),
  --md    a markdown table: one row per metric, one column per system, each
          cell "value (ratio to pasta / ratio to veth)"; the paired ratios
          (the fast path's effect first); the BPF micro-benchmark and the
          reasons behind every n/a,
  --png   a gnuplot chart of the throughput figures per system.

Issue 18's targets (TARGETS), under the table of every run and in the JSON
(records with a "target" key): each from the paired per-repetition ratios,
"met" only when every repetition meets it (for RR: the largest ratio is
<= 0.75), "not met" otherwise, "n/a" when no repetition has both figures.
`report.py --combine DIR1 DIR2 ...` prints the same targets over several
runs' raw.tsv (met in every run or not) and the fast path's effect per
ACK-heavy scenario pooled over all their repetitions, for RESULTS.md.

A figure with fewer good repetitions than the most any figure had is marked
with "*" in the table.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile

SYSTEMS = ["ferry", "ferry-baseline", "ferry-nosandbox", "ferry-nofastpath", "pasta", "pasta-tuned", "slirp4netns", "veth"]

# (metric, mtu, pinned, label, decimals), in table order.
ROWS = [
    ("tcp_guest_to_host_gbps", "65520", "false", "TCP guest->host, Gbit/s, MTU 65520", 2),
    ("tcp_host_to_guest_gbps", "65520", "false", "TCP host->guest, Gbit/s, MTU 65520", 2),
    ("tcp_guest_to_host_gbps", "1500", "false", "TCP guest->host, Gbit/s, MTU 1500", 2),
    ("tcp_host_to_guest_gbps", "1500", "false", "TCP host->guest, Gbit/s, MTU 1500", 2),
    ("tcp_rr_us", "65520", "false", "TCP RR mean, us, free-running", 1),
    ("tcp_rr_us_p99", "65520", "false", "TCP RR p99, us, free-running", 1),
    ("tcp_rr_us", "65520", "true", "TCP RR mean, us, pinned to CPU 0", 1),
    ("tcp_rr_us_p99", "65520", "true", "TCP RR p99, us, pinned to CPU 0", 1),
    ("tcp_crr_per_s", "65520", "false", "TCP CRR, conn/s, free-running", 0),
    ("tcp_crr_per_s", "65520", "true", "TCP CRR, conn/s, pinned to CPU 0", 0),
    ("cpu_s_per_gb_guest_to_host", "65520", "false", "CPU s/GB guest->host, MTU 65520", 3),
    ("cpu_s_per_gb_host_to_guest", "65520", "false", "CPU s/GB host->guest, MTU 65520", 3),
    ("cpu_s_per_gb_guest_to_host", "1500", "false", "CPU s/GB guest->host, MTU 1500", 3),
    ("cpu_s_per_gb_host_to_guest", "1500", "false", "CPU s/GB host->guest, MTU 1500", 3),
    ("scale_conns_open_10k", "65520", "false", "connections opened of 10k (bounded setup time)", 0),
    ("scale_conn_setup_per_s", "65520", "false", "setup rate, conn/s (10k, 128 in flight)", 0),
    ("scale_rss_mib_10k_idle", "65520", "false", "RSS MiB, 10k idle connections", 1),
    ("scale_cpu_pct_10k_idle", "65520", "false", "CPU %, 10k idle connections", 2),
    ("scale_rss_mib_1k_active", "65520", "false", "RSS MiB, 1k active connections", 1),
    ("scale_cpu_pct_1k_active", "65520", "false", "CPU %, 1k active connections", 1),
    ("scale_tps_1k_active", "65520", "false", "transactions/s, 1k active connections", 0),
    ("remote_tcp_guest_to_host_gbps", "65520", "false", "remote peer, 1500-MTU hop: TCP guest->peer, Gbit/s", 2),
    ("remote_tcp_host_to_guest_gbps", "65520", "false", "remote peer, 1500-MTU hop: TCP peer->guest, Gbit/s", 2),
    ("remote_tcp_rr_us", "65520", "false", "remote peer, 1500-MTU hop: TCP RR mean, us, free-running", 1),
    ("remote_tcp_rr_us_p99", "65520", "false", "remote peer, 1500-MTU hop: TCP RR p99, us, free-running", 1),
    ("remote_tcp_rr_us", "65520", "true", "remote peer, 1500-MTU hop: TCP RR mean, us, pinned to CPU 0", 1),
    ("remote_cpu_s_per_gb_guest_to_host", "65520", "false", "remote peer, 1500-MTU hop: CPU s/GB guest->peer", 3),
    ("remote_cpu_s_per_gb_host_to_guest", "65520", "false", "remote peer, 1500-MTU hop: CPU s/GB peer->guest", 3),
]

# The ACK-heavy scenarios (host->guest bulk where the guest ACKs often):
# (metric prefix, mtu, label).
ACK_SCENARIOS = [
    ("ack_offloads_off", "1500", "guest offloads off, MTU 1500"),
    ("ack_100_downloads", "65520", "100 concurrent downloads, MTU 65520"),
    ("ack_attach_tap", "1500", "ferry attach, tap guest (offloads on), MTU 1500"),
    ("ack_attach_tap_offloads_off", "1500", "ferry attach, tap guest, offloads off, MTU 1500"),
]
for _scen, _mtu, _label in ACK_SCENARIOS:
    ROWS += [
        (f"{_scen}_gbps", _mtu, "false", f"ACK-heavy, {_label}: host->guest Gbit/s", 2),
        (f"{_scen}_machine_cpu_s_per_gb", _mtu, "false", f"ACK-heavy, {_label}: whole-machine CPU s/GB", 3),
        (f"{_scen}_cpu_s_per_gb", _mtu, "false", f"ACK-heavy, {_label}: translator CPU s/GB", 3),
        (f"{_scen}_guest_acks_per_gb", _mtu, "false", f"ACK-heavy, {_label}: guest ACKs per GB", 0),
        (f"{_scen}_absorbed_pct", _mtu, "false", f"ACK-heavy, {_label}: % of pure ACKs BPF absorbed", 1),
    ]

HIGHER_IS_BETTER = ("_gbps", "_per_s", "_tps_1k_active", "_conns_open_10k")
NEUTRAL = ("_absorbed_pct", "_guest_acks_per_gb")  # descriptive: no verdict


def direction(metric):
    """+1 when a higher value is better, -1 when lower is, 0 when neither."""
    if metric.endswith(NEUTRAL):
        return 0
    return 1 if metric.endswith(HIGHER_IS_BETTER) else -1


def load(raw_path):
    """Groups the raw lines by (system, metric, mtu, pinned): good values, reasons, values by rep."""
    good = collections.defaultdict(list)
    why = collections.defaultdict(list)
    order = []
    global BY_REP
    BY_REP = collections.defaultdict(dict)
    with open(raw_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            system, metric, mtu, pinned, value = parts[:5]
            note = parts[5] if len(parts) > 5 else ""
            key = (system, metric, mtu, pinned)
            if key not in good and key not in why:
                order.append(key)
            try:
                good[key].append(float(value))
                if len(parts) > 6 and parts[6] != "":
                    BY_REP[key][parts[6]] = float(value)
            except ValueError:
                why[key].append(note or "failed")
    return good, why, order


def figures(good, why, order):
    """The median per key, or None with the first reason."""
    out = {}
    for key in order:
        vals = good.get(key, [])
        if vals:
            out[key] = (statistics.median(vals), len(vals), None)
        else:
            out[key] = (None, 0, (why.get(key) or ["no data"])[0])
    return out


BY_REP = collections.defaultdict(dict)


def paired(sys_a, sys_b, metric, mtu, pinned, by_rep=None):
    """The per-repetition ratios a_i / b_i over the repetitions both have."""
    by_rep = BY_REP if by_rep is None else by_rep
    a = by_rep.get((sys_a, metric, mtu, pinned), {})
    b = by_rep.get((sys_b, metric, mtu, pinned), {})
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r] != 0]


def verdict(ratios, metric):
    """win / loss / ~ from the spread of the ratios (see the module comment)."""
    d = direction(metric)
    if len(ratios) < 2 or d == 0:
        return ""
    lo, hi = min(ratios), max(ratios)
    if (d > 0 and lo > 1) or (d < 0 and hi < 1):
        return "win"
    if (d > 0 and hi < 1) or (d < 0 and lo > 1):
        return "loss"
    return "~"


def paired_cell(ratios, metric):
    """'median [min..max] verdict' of the ratios, or '-'."""
    if not ratios:
        return "-"
    v = verdict(ratios, metric)
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}..{max(ratios):.2f}]" + (f" {v}" if v else "")


# Issue 18's targets on ratios ferry / peer taken within one repetition:
# (name, label, peer, metric, mtu, pinned, op, threshold). "<=" is met when
# every repetition's ratio is at most the threshold, ">=" when at least.
TARGETS = [
    ("rr_pinned", "RR mean, pinned, ferry / pasta", "pasta", "tcp_rr_us", "65520", "true", "<=", 0.75),
    ("crr_pinned", "CRR, pinned, ferry / pasta", "pasta", "tcp_crr_per_s", "65520", "true", ">=", 1.3),
    ("guest_to_host_65520", "guest->host Gbit/s at MTU 65520, ferry / pasta-tuned", "pasta-tuned",
     "tcp_guest_to_host_gbps", "65520", "false", ">=", 1.0),
]
# The fast path's target in each ACK-heavy scenario (ferry / ferry-nofastpath,
# per repetition): whole-machine CPU per GB <= 0.70, or throughput >= 1.3 at
# a CPU per GB ratio <= 1.0.
FASTPATH_CPU_MAX = 0.70
FASTPATH_TPUT_MIN = 1.3
FASTPATH_TPUT_CPU_MAX = 1.0
# ... "with every other metric within the spread": ferry / ferry-nofastpath
# on these is met when no spread lies wholly on the bad side of 1.0 (no
# `loss` in the paired table's sense): (metric, mtu, pinned, short label).
FASTPATH_OTHERS = [
    ("tcp_rr_us", "65520", "true", "RR pinned"),
    ("tcp_crr_per_s", "65520", "true", "CRR pinned"),
    ("scale_tps_1k_active", "65520", "false", "1k active tps"),
    ("scale_rss_mib_10k_idle", "65520", "false", "RSS"),
]


def spread(ratios, dec=3):
    """'median [min..max]' of some ratios, or 'n/a' (3 decimals: a target's bound must not round away)."""
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.{dec}f} [{min(ratios):.{dec}f}..{max(ratios):.{dec}f}]"


def fastpath_pairs(scen, by_rep=None):
    """Per repetition both have: (cpu ratio, throughput ratio) of ferry / ferry-nofastpath in scenario scen."""
    mtu = next(m for s, m, _ in ACK_SCENARIOS if s == scen)
    by_rep = BY_REP if by_rep is None else by_rep
    def get(sys_, metric):
        return by_rep.get((sys_, metric, mtu, "false"), {})
    cpu_f, cpu_n = get("ferry", f"{scen}_machine_cpu_s_per_gb"), get("ferry-nofastpath", f"{scen}_machine_cpu_s_per_gb")
    tput_f, tput_n = get("ferry", f"{scen}_gbps"), get("ferry-nofastpath", f"{scen}_gbps")
    return [(cpu_f[r] / cpu_n[r], tput_f[r] / tput_n[r]) for r in sorted(cpu_f)
            if r in cpu_n and r in tput_f and r in tput_n and cpu_n[r] > 0 and tput_n[r] > 0]


def fastpath_met(cpu, tput):
    """Whether one repetition meets the fast path's target."""
    return cpu <= FASTPATH_CPU_MAX or (tput >= FASTPATH_TPUT_MIN and cpu <= FASTPATH_TPUT_CPU_MAX)


def target_results(by_rep=None):
    """Every target of issue 18 for one run: a list of dicts (see write_targets)."""
    res = []
    for name, label, peer, metric, mtu, pinned, op, thr in TARGETS:
        ratios = paired("ferry", peer, metric, mtu, pinned, by_rep)
        if not ratios:
            verdict_ = "n/a"
        elif op == "<=":
            verdict_ = "met" if max(ratios) <= thr else "not met"
        else:
            verdict_ = "met" if min(ratios) >= thr else "not met"
        res.append({"target": name, "label": label, "peer": peer, "metric": metric, "mtu": int(mtu),
                    "pinned": pinned == "true", "want": f"{op} {thr}", "ratios": ratios,
                    "cell": spread(ratios), "verdict": verdict_})
    for scen, _mtu, slabel in ACK_SCENARIOS:
        pairs = fastpath_pairs(scen, by_rep)
        cpu = [c for c, _ in pairs]
        tput = [t for _, t in pairs]
        if not pairs:
            verdict_ = "n/a"
        else:
            verdict_ = "met" if all(fastpath_met(c, t) for c, t in pairs) else "not met"
        res.append({"target": f"fastpath_{scen}", "label": f"fast path, {slabel}: ferry / ferry-nofastpath",
                    "peer": "ferry-nofastpath", "metric": f"{scen}_machine_cpu_s_per_gb", "mtu": int(_mtu),
                    "pinned": False,
                    "want": f"CPU/GB <= {FASTPATH_CPU_MAX}, or Gbit/s >= {FASTPATH_TPUT_MIN} at CPU/GB <= "
                            f"{FASTPATH_TPUT_CPU_MAX}",
                    "ratios": cpu, "tput_ratios": tput,
                    "cell": f"CPU/GB {spread(cpu)}, Gbit/s {spread(tput)}" if pairs else "n/a",
                    "verdict": verdict_})
    cells, verdicts, npairs = [], [], 0
    for metric, mtu, pinned, short in FASTPATH_OTHERS:
        ratios = paired("ferry", "ferry-nofastpath", metric, mtu, pinned, by_rep)
        if ratios:
            npairs = max(npairs, len(ratios))
            verdicts.append(verdict(ratios, metric))
            cells.append(f"{short} {spread(ratios, 2)}" + (" loss" if verdicts[-1] == "loss" else ""))
    res.append({"target": "fastpath_others", "label": "fast path, every other metric: ferry / ferry-nofastpath",
                "peer": "ferry-nofastpath", "metric": ",".join(m for m, _, _, _ in FASTPATH_OTHERS), "mtu": 65520,
                "pinned": False, "want": "no spread wholly on the bad side of 1.0", "ratios": [], "pairs": npairs,
                "cell": ", ".join(cells) if cells else "n/a",
                "verdict": "n/a" if not cells else ("not met" if "loss" in verdicts else "met")})
    return res


TARGETS_HEAD = ("Issue 18 targets (ratios ferry / peer taken within each repetition: median [min..max]; "
                "`met` only when every repetition meets the target, `n/a` when no repetition has both "
                "figures; the fast path's whole-machine CPU per GB and throughput are ferry / "
                "ferry-nofastpath in the same repetition):")


def targets_md(results):
    """The markdown lines of the targets section of one run."""
    lines = ["", TARGETS_HEAD, "", "| target | wanted | pairs | ratio | verdict |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['label']} | {r['want']} | {r.get('pairs', len(r['ratios']))} | {r['cell']} | "
                     f"{r['verdict']} |")
    return lines


def combine(dirs):
    """Prints the targets over several runs' raw.tsv (markdown) and returns 0, or 2 when one is unreadable."""
    runs = []
    for d in dirs:
        raw = d if d.endswith(".tsv") else os.path.join(d, "raw.tsv")
        if not os.path.exists(raw):
            print(f"report.py: no raw.tsv in {d}")
            return 2
        load(raw)
        runs.append((d, dict(BY_REP), target_results(dict(BY_REP))))
    names = [os.path.basename(os.path.normpath(d)) for d, _, _ in runs]
    lines = [f"Issue 18 targets over {len(runs)} runs ({', '.join(names)}): each run's paired ratios median "
             "[min..max] and verdict; `all runs` = met in every run (and `n/a` in none).", "",
             "| target | wanted | " + " | ".join(names) + " | all runs |",
             "| --- | --- |" + " --- |" * (len(runs) + 1)]
    for i, first in enumerate(runs[0][2]):
        per_run = [res[i] for _, _, res in runs]
        verdicts = [r["verdict"] for r in per_run]
        if all(v == "met" for v in verdicts):
            overall = f"met in all {len(runs)}"
        elif all(v == "n/a" for v in verdicts):
            overall = "n/a"
        else:
            overall = f"not met (met in {verdicts.count('met')} of {len(runs)}" + \
                (f", n/a in {verdicts.count('n/a')}" if "n/a" in verdicts else "") + ")"
        cells = [r["cell"] if r["verdict"] == "n/a" else f"{r['cell']} {r['verdict']}" for r in per_run]
        lines.append(f"| {first['label']} | {first['want']} | " + " | ".join(cells) + f" | {overall} |")
    # The fast path's effect per ACK-heavy scenario, every repetition of every run pooled.
    lines += ["", f"The fast path's effect per ACK-heavy scenario, ferry / ferry-nofastpath within each "
              f"repetition, pooled over the {len(runs)} runs: median [min..max] (pairs); `win` / `loss` / `~` "
              "as in the paired table.", "",
              "| scenario | Gbit/s | whole-machine CPU s/GB | translator CPU s/GB | guest ACKs per GB |",
              "| --- | --- | --- | --- | --- |"]
    for scen, mtu, slabel in ACK_SCENARIOS:
        cells = []
        for metric in (f"{scen}_gbps", f"{scen}_machine_cpu_s_per_gb", f"{scen}_cpu_s_per_gb",
                       f"{scen}_guest_acks_per_gb"):
            ratios = []
            for _, by_rep, _ in runs:
                ratios += paired("ferry", "ferry-nofastpath", metric, mtu, "false", by_rep)
            v = verdict(ratios, metric)
            cells.append(f"{spread(ratios, 2)} ({len(ratios)})" + (f" {v}" if v else "") if ratios else "n/a")
        lines.append(f"| {slabel} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return 0


def fmt(v, decimals):
    """A figure with its decimals; n/a for None."""
    return "n/a" if v is None else f"{v:.{decimals}f}"


def ratio(v, ref):
    """v/ref with two decimals, or '-' when either is missing."""
    if v is None or ref is None or ref == 0:
        return "-"
    return f"{v / ref:.2f}"


def write_md(path, figs, systems, title, meta, bpf_classes, notes):
    """The markdown report: main table, BPF table, n/a reasons."""
    max_reps = max((n for _, n, _ in figs.values()), default=0)
    lines = [f"## {title}", "", meta, "",
             "Each cell: median (ratio to pasta / ratio to veth). Higher is better for Gbit/s, conn/s and "
             "transactions/s; lower is better for us, CPU and MiB. `*` = fewer good repetitions than the others; "
             "`-` = not applicable.", ""]
    lines.append("| metric | " + " | ".join(systems) + " |")
    lines.append("| --- |" + " --- |" * len(systems))
    for metric, mtu, pinned, label, dec in ROWS:
        cells = []
        present = False
        pasta = figs.get(("pasta", metric, mtu, pinned), (None, 0, None))[0]
        veth = figs.get(("veth", metric, mtu, pinned), (None, 0, None))[0]
        for s in systems:
            if (s, metric, mtu, pinned) not in figs:
                cells.append("-")
                continue
            present = True
            v, n, _ = figs[(s, metric, mtu, pinned)]
            cell = fmt(v, dec) + ("*" if v is not None and n < max_reps else "")
            if v is not None and (pasta is not None or veth is not None):
                cell += f" ({ratio(v, pasta)} / {ratio(v, veth)})"
            cells.append(cell)
        if present:
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    # The paired ratios: ferry against every other system, per repetition.
    peers = [s for s in ["ferry-baseline", "ferry-nofastpath", "pasta", "pasta-tuned", "slirp4netns", "veth", "ferry-nosandbox"]
             if s in systems]
    if "ferry" in systems and peers:
        lines += ["", "Paired ratios ferry / system, taken within each repetition: median [min..max] across "
                  "repetitions; `win` = the whole spread is on ferry's good side of 1.0, `loss` = wholly on "
                  "the bad side, `~` = the spread crosses 1.0 (no claim). The `ferry-nofastpath` column is "
                  "the fast path's effect" + ("; the `ferry-baseline` column is the change's effect (ferry "
                  "against the --baseline binary)" if "ferry-baseline" in peers else "") + ".", "",
                  "| metric | " + " | ".join(peers) + " |", "| --- |" + " --- |" * len(peers)]
        for metric, mtu, pinned, label, dec in ROWS:
            if direction(metric) == 0:
                continue
            cells = [paired_cell(paired("ferry", p, metric, mtu, pinned), metric) for p in peers]
            if any(c != "-" for c in cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "ferry" in systems:
        lines += targets_md(target_results())
    pairs = []  # the sandbox's cost: ferry / ferry-nosandbox, taken back to back
    for metric, mtu, pinned, label, dec in ROWS:
        on = figs.get(("ferry", metric, mtu, pinned), (None, 0, None))[0]
        off = figs.get(("ferry-nosandbox", metric, mtu, pinned), (None, 0, None))[0]
        if on is not None and off is not None:
            pairs.append(f"| {label} | {fmt(on, dec)} | {fmt(off, dec)} | {ratio(on, off)} |")
    if pairs:
        lines += ["", "Sandbox on vs off (`ferry` and `ferry-nosandbox`, run back to back; ratio on/off):", "",
                  "| metric | sandbox on | off | on/off |", "| --- | --- | --- | --- |"] + pairs
    bpf = [k for k in figs if k[1].startswith("bpf_ns_") and k[1] != "bpf_ns_per_frame"]
    if bpf or any(k[1] == "bpf_ns_per_frame" for k in figs):
        lines += ["", "BPF classifier, ns per frame (BPF_PROG_TEST_RUN, median of the repetitions; "
                  "`counted as` = the stats counter the frame landed in):", "",
                  "| frame | ns | counted as |", "| --- | --- | --- |"]
        for (s, metric, mtu, pinned), (v, n, err) in figs.items():
            if metric == "bpf_ns_per_frame":
                if v is None:
                    lines.append(f"| all | n/a | {err} |")
            elif metric.startswith("bpf_ns_"):
                cls = metric[len("bpf_ns_"):]
                lines.append(f"| {cls} | {fmt(v, 1)} | {bpf_classes.get(cls, '')} |")
    reasons = collections.OrderedDict()
    for (s, metric, mtu, pinned), (v, n, err) in figs.items():
        if v is None and err:
            reasons.setdefault((s, err), []).append(metric if not mtu else f"{metric}@{mtu}")
    if reasons:
        lines += ["", "n/a:", ""]
        for (s, err), metrics in reasons.items():
            lines.append(f"- {s}: {err} ({len(metrics)} figures)")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_json(path, figs):
    """The records {system, metric, mtu, pinned, value}, then issue 18's targets (records with "target")."""
    recs = []
    for (s, metric, mtu, pinned), (v, n, err) in figs.items():
        rec = {"system": s, "metric": metric, "mtu": int(mtu) if mtu else None,
               "pinned": pinned == "true", "value": v, "reps": n}
        if v is None:
            rec["error"] = err
        recs.append(rec)
    if any(k[0] == "ferry" for k in figs):
        for t in target_results():
            recs.append({"target": t["target"], "label": t["label"], "system": "ferry", "peer": t["peer"],
                         "metric": t["metric"], "mtu": t["mtu"], "pinned": t["pinned"], "want": t["want"],
                         "ratios": t["ratios"], **({"tput_ratios": t["tput_ratios"]} if "tput_ratios" in t else {}),
                         "verdict": t["verdict"]})
    with open(path, "w") as f:
        json.dump(recs, f, indent=1)
        f.write("\n")


def write_png(path, figs, systems, title):
    """Clustered bars of the four throughput figures per system (gnuplot)."""
    cols = [("tcp_guest_to_host_gbps", "65520", "guest->host, MTU 65520"),
            ("tcp_host_to_guest_gbps", "65520", "host->guest, MTU 65520"),
            ("tcp_guest_to_host_gbps", "1500", "guest->host, MTU 1500"),
            ("tcp_host_to_guest_gbps", "1500", "host->guest, MTU 1500")]
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as dat:
        for s in systems:
            vals = []
            for metric, mtu, _ in cols:
                v = figs.get((s, metric, mtu, "false"), (None, 0, None))[0]
                vals.append("0" if v is None else f"{v:.3f}")
            label = s if any(v != "0" for v in vals) else s + " (n/a)"
            dat.write(f'"{label}" ' + " ".join(vals) + "\n")
        dat_path = dat.name
    plot = ", ".join(f"'{dat_path}' using {i + 2}:xtic(1) title '{c[2]}'" for i, c in enumerate(cols))
    script = f"""
set terminal pngcairo size 1100,560 noenhanced
set output '{path}'
set title '{title}: TCP throughput, one stream (iperf3)'
set ylabel 'Gbit/s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key outside right top vertical
set xtics nomirror
plot {plot}
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        # pngcairo needs gnuplot's cairo build; fall back to the plain png terminal.
        script = script.replace("pngcairo size 1100,560 noenhanced", "png size 1100,560")
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e2:
            print(f"report.py: gnuplot failed: {e2}")
    finally:
        os.unlink(dat_path)


def main():
    """Reads raw.tsv and writes the outputs that were asked for."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--combine", nargs="+", metavar="DIR",
                    help="print issue 18's targets over these runs' output directories (or raw.tsv files) and exit")
    ap.add_argument("--raw")
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--png")
    ap.add_argument("--title", default="ferry bench")
    ap.add_argument("--meta", default="")
    args = ap.parse_args()
    if args.combine:
        return combine(args.combine)
    if not args.raw:
        ap.error("--raw or --combine is required")
    good, why, order = load(args.raw)
    figs = figures(good, why, order)
    seen = {k[0] for k in figs if not k[1].startswith("bpf_")}
    systems = [s for s in SYSTEMS if s in seen]
    bpf_classes = {}
    cls_path = os.path.join(os.path.dirname(args.raw), "bpf-classes.tsv")
    if os.path.exists(cls_path):
        with open(cls_path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 2:
                    bpf_classes[parts[0]] = parts[1]
    if args.md:
        notes = []
        notes_path = os.path.join(os.path.dirname(args.raw), "notes.txt")
        if os.path.exists(notes_path):
            with open(notes_path) as f:
                notes = [line.strip() for line in f if line.strip()]
        write_md(args.md, figs, systems, args.title, args.meta, bpf_classes, notes)
    if args.json:
        write_json(args.json, figs)
    if args.png:
        write_png(args.png, figs, systems, args.title)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench/report_test.py: self-test of report.py's issue-18 targets (no root, no network).

Theory of operation: writes small raw.tsv files (three repetitions, the
systems the targets pair) whose per-repetition ratios sit just inside or
just outside each target, runs report.py on them as bench/run does
(--raw/--md/--json) and through --combine, and checks every verdict: "met"
only when every repetition meets the target, "not met" when one does not,
"n/a" when a peer is missing. Run: python3 bench/report_test.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.py")


def raw_lines(rr_ferry, crr_ferry, up_ferry, cpu_ferry, tput_ferry, with_pasta_tuned=True, rss_ferry=None):
    """raw.tsv lines of three repetitions; each argument is ferry's value per repetition, the peers fixed."""
    lines = []
    for rep in range(3):
        def rec(system, metric, mtu, pinned, value):
            lines.append(f"{system}\t{metric}\t{mtu}\t{pinned}\t{value}\t\t{rep}")
        rec("pasta", "tcp_rr_us", "65520", "true", 40.0)
        rec("ferry", "tcp_rr_us", "65520", "true", rr_ferry[rep])
        rec("pasta", "tcp_crr_per_s", "65520", "true", 5000.0)
        rec("ferry", "tcp_crr_per_s", "65520", "true", crr_ferry[rep])
        if with_pasta_tuned:
            rec("pasta-tuned", "tcp_guest_to_host_gbps", "65520", "false", 10.0)
        rec("ferry", "tcp_guest_to_host_gbps", "65520", "false", up_ferry[rep])
        if rss_ferry:
            rec("ferry-nofastpath", "scale_rss_mib_10k_idle", "65520", "false", 20.0)
            rec("ferry", "scale_rss_mib_10k_idle", "65520", "false", rss_ferry[rep])
        for scen, mtu in (("ack_offloads_off", "1500"), ("ack_100_downloads", "65520")):
            rec("ferry-nofastpath", f"{scen}_machine_cpu_s_per_gb", mtu, "false", 1.0)
            rec("ferry-nofastpath", f"{scen}_gbps", mtu, "false", 10.0)
            rec("ferry", f"{scen}_machine_cpu_s_per_gb", mtu, "false", cpu_ferry[scen][rep])
            rec("ferry", f"{scen}_gbps", mtu, "false", tput_ferry[scen][rep])
    return "\n".join(lines) + "\n"


class TargetsTest(unittest.TestCase):
    """The targets table of one run and of several combined."""

    def run_report(self, text):
        """Writes text as DIR/raw.tsv, runs report.py; returns (dir, table.md text, target records by name)."""
        d = tempfile.mkdtemp(prefix="report-test-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d], check=False))
        with open(os.path.join(d, "raw.tsv"), "w") as f:
            f.write(text)
        subprocess.run([sys.executable, REPORT, "--raw", os.path.join(d, "raw.tsv"), "--md",
                        os.path.join(d, "table.md"), "--json", os.path.join(d, "results.json")], check=True)
        with open(os.path.join(d, "table.md")) as f:
            md = f.read()
        with open(os.path.join(d, "results.json")) as f:
            targets = {r["target"]: r for r in json.load(f) if "target" in r}
        return d, md, targets

    def test_verdicts_follow_every_repetition(self):
        # RR: 0.70, 0.74, 0.76 of pasta: one repetition over 0.75 -> not met.
        # CRR: 1.30, 1.32, 1.40: every one >= 1.3 -> met.
        # guest->host: 1.0, 1.1, 1.2 of pasta-tuned -> met.
        # offloads off: CPU 0.69/0.70/0.60 -> met by CPU.
        # 100 downloads: CPU 0.95 with throughput 1.35 in two, CPU 0.80 with 1.2 in one -> not met.
        text = raw_lines([28.0, 29.6, 30.4], [6500, 6600, 7000], [10.0, 11.0, 12.0],
                         {"ack_offloads_off": [0.69, 0.70, 0.60], "ack_100_downloads": [0.95, 0.95, 0.80]},
                         {"ack_offloads_off": [10.0, 10.0, 10.0], "ack_100_downloads": [13.5, 13.5, 12.0]})
        _, md, t = self.run_report(text)
        self.assertIn("Issue 18 targets", md)
        self.assertEqual(t["rr_pinned"]["verdict"], "not met")
        self.assertEqual(len(t["rr_pinned"]["ratios"]), 3)
        self.assertEqual(t["crr_pinned"]["verdict"], "met")
        self.assertEqual(t["guest_to_host_65520"]["verdict"], "met")
        self.assertEqual(t["fastpath_ack_offloads_off"]["verdict"], "met")
        self.assertEqual(t["fastpath_ack_100_downloads"]["verdict"], "not met")
        self.assertEqual(t["fastpath_ack_attach_tap"]["verdict"], "n/a")
        self.assertEqual(t["fastpath_others"]["verdict"], "n/a")
        self.assertIn("| RR mean, pinned, ferry / pasta | <= 0.75 | 3 | 0.740 [0.700..0.760] | not met |", md)

    def test_missing_peer_is_na_and_combine_needs_every_run(self):
        good = raw_lines([28.0, 28.0, 28.0], [6600, 6600, 6600], [11.0, 11.0, 11.0],
                         {"ack_offloads_off": [0.6] * 3, "ack_100_downloads": [0.9] * 3},
                         {"ack_offloads_off": [10.0] * 3, "ack_100_downloads": [13.5] * 3})
        d1, _, t1 = self.run_report(good)
        self.assertEqual(t1["rr_pinned"]["verdict"], "met")
        self.assertEqual(t1["fastpath_ack_100_downloads"]["verdict"], "met")  # 1.35x at CPU 0.9
        # RSS with the fast path 0.95-1.2x of without: the spread crosses 1.0 -> met; 1.1-1.2x -> not met.
        _, _, t3 = self.run_report(raw_lines([28.0] * 3, [6600] * 3, [11.0] * 3,
                                             {"ack_offloads_off": [0.6] * 3, "ack_100_downloads": [0.9] * 3},
                                             {"ack_offloads_off": [10.0] * 3, "ack_100_downloads": [13.5] * 3},
                                             rss_ferry=[19.0, 22.0, 24.0]))
        self.assertEqual(t3["fastpath_others"]["verdict"], "met")
        _, _, t4 = self.run_report(raw_lines([28.0] * 3, [6600] * 3, [11.0] * 3,
                                             {"ack_offloads_off": [0.6] * 3, "ack_100_downloads": [0.9] * 3},
                                             {"ack_offloads_off": [10.0] * 3, "ack_100_downloads": [13.5] * 3},
                                             rss_ferry=[22.0, 23.0, 24.0]))
        self.assertEqual(t4["fastpath_others"]["verdict"], "not met")
        no_tuned = raw_lines([28.0, 28.0, 31.0], [6600, 6600, 6600], [11.0, 11.0, 11.0],
                             {"ack_offloads_off": [0.6] * 3, "ack_100_downloads": [0.9] * 3},
                             {"ack_offloads_off": [10.0] * 3, "ack_100_downloads": [13.5] * 3},
                             with_pasta_tuned=False)
        d2, _, t2 = self.run_report(no_tuned)
        self.assertEqual(t2["guest_to_host_65520"]["verdict"], "n/a")
        out = subprocess.run([sys.executable, REPORT, "--combine", d1, d1, d2], check=True, capture_output=True,
                             text=True).stdout
        rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| ")}
        self.assertTrue(rows["CRR, pinned, ferry / pasta"].endswith("| met in all 3 |"))
        self.assertTrue(rows["RR mean, pinned, ferry / pasta"].endswith("| not met (met in 2 of 3) |"))
        self.assertTrue(rows["guest->host Gbit/s at MTU 65520, ferry / pasta-tuned"].endswith(
            "| not met (met in 2 of 3, n/a in 1) |"))
        self.assertIn("| guest offloads off, MTU 1500 | 1.00 [1.00..1.00] (9) ~ | 0.60 [0.60..0.60] (9) win |", out)
        bad = subprocess.run([sys.executable, REPORT, "--combine", d1, "/nonexistent-dir"], capture_output=True,
                             text=True)
        self.assertEqual(bad.returncode, 2)


if __name__ == "__main__":
    unittest.main()

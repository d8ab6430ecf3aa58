#!/usr/bin/env python3
"""tcp_loss_counts.py DEV: the counters of the tcp_loss programs (tests/tools/
tcp_loss.bpf.c) on DEV's TC ingress and egress, one line per hook:
  loss ingress tcp_frames=N dropped=N data_frames=N data_dropped=N sure_dropped=N
Run it in the namespace of DEV. The programs are found through tc (the filter
whose program is named tcp_loss) and their counters through bpftool (the
program's .bss map, with its BTF names); a hook with no such filter prints
nothing, so a missing line means the loss was not injected there."""
import json
import subprocess
import sys


def run_json(*cmd):
    return json.loads(subprocess.check_output(cmd))


def main():
    dev = sys.argv[1]
    for hook in ("ingress", "egress"):
        for f in run_json("tc", "-j", "filter", "show", "dev", dev, hook):
            prog = f.get("options", {}).get("prog", {})
            if prog.get("name") != "tcp_loss":
                continue
            info = run_json("bpftool", "-j", "prog", "show", "id", str(prog["id"]))
            for map_id in info.get("map_ids", []):
                for entry in run_json("bpftool", "-j", "map", "dump", "id", str(map_id)):
                    section = entry.get("formatted", {}).get("value", {}).get(".bss")
                    if section is None:
                        continue
                    counts = {k: v for var in section for k, v in var.items()}
                    print("loss", hook, " ".join(f"{k}={counts[k]}" for k in
                                                 ("tcp_frames", "dropped", "data_frames", "data_dropped", "sure_dropped")))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# run_stats: from inside the guest, `ferry stats -j` for its own instance
# (FERRY_INSTANCE) shows the classifier counted the guest's frames, and the
# pinned stats map is there while ferry runs.
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_ferry 20 run -- sh -c '
  ping -c 1 -W 2 198.18.0.1 >/dev/null 2>&1
  inst=${FERRY_INSTANCE:-run-$PPID}
  [ -e "/sys/fs/bpf/ferry/$inst/stats" ] || echo "no pinned stats map for $inst" >&2
  "$FERRY" stats -j "$inst"'
e2e_expect_rc 0 "ferry stats -j in the guest"
if ! /usr/bin/python3 - "$OUT" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
doc = json.loads(text)
found = []
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "guest_frames" and isinstance(v, int):
                found.append(v)
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(doc)
print("guest_frames:", found)
sys.exit(0 if found and max(found) > 0 else 1)
PY
then
  e2e_fail "no guest_frames > 0 in ferry stats -j"
  e2e_show_output
fi
e2e_expect "no stats error" bash -c "! grep -q 'no pinned stats map' '$ERR'"
e2e_check_clean "$FERRY_PID"

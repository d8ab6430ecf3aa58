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

# The translator's counters (the file `ferry run` rewrites every second)
# show what userspace made of the frames: a frame whose IPv4 header checksum
# is wrong passes the classifier (it does not verify headers it does not
# act on) but the translator counts it malformed and drops it; a connection
# to a closed port is counted as opened and answered with a RST.
e2e_ferry 30 run -- sh -c '
  ping -c 1 -W 2 198.18.0.1 >/dev/null 2>&1
  python3 - <<PY
import socket, struct, subprocess
mac = subprocess.run(["ip", "neigh", "show", "198.18.0.1"], capture_output=True, text=True).stdout.split()[4]
dst = bytes.fromhex(mac.replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = s.getsockname()[4]
tcp = struct.pack("!HHIIBBHHH", 40000, 9, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0x1234,
                 socket.inet_aton("198.18.0.2"), socket.inet_aton("198.18.0.1"))
s.send(dst + src + b"\x08\x00" + ip + tcp)
c = socket.socket()
c.settimeout(2)
try:
    c.connect(("198.18.0.1", 1))
except OSError:
    pass
PY
  sleep 1.5
  "$FERRY" stats -j "${FERRY_INSTANCE:-run-$PPID}"'
e2e_expect_rc 0 "ferry stats -j with translator counters"
if ! /usr/bin/python3 - "$OUT" <<'PY'
import json, sys
doc = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t = doc["instances"][0]["translator"]
print("translator:", {k: t[k] for k in ("frames", "malformed", "tcp_conns_outbound", "tcp_rst_to_guest")})
sys.exit(0 if t["malformed"] >= 1 and t["tcp_conns_outbound"] >= 1 and t["tcp_rst_to_guest"] >= 1 else 1)
PY
then
  e2e_fail "translator counters missing or wrong in ferry stats -j"
  e2e_show_output
fi
e2e_expect "the counters directory went with ferry" bash -c "[ ! -e /run/ferry-run/run-$FERRY_PID ]"
e2e_check_clean "$FERRY_PID"

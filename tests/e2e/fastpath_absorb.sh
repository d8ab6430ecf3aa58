#!/usr/bin/env bash
# fastpath_absorb: the BPF fast path carries a bulk download. A guest
# downloads 256 MiB from a host HTTP server through `ferry run`; near the
# end of the transfer `ferry stats -j` (inside the guest) must show that at
# least 90 % of the guest's pure ACKs were absorbed by the classifier
# (acks_absorbed / guest_pure_acks); the body's sha256 must match; and
# `bpftool map dump pinned .../conn_hash`, taken while the connection is
# live, must show it with field names. ferry runs with -v, so the fast
# path's wake-up counters (ring-buffer events: it has no periodic scan) are
# logged for the record.
# FASTPATH_MIB overrides the size (MiB) for quick runs; FASTPATH_RCVBUF sets
# the guest socket's SO_RCVBUF (a small window: a window-limited transfer,
# where wake_room matters; FERRY_WAKE_DIVISOR=0 turns the threshold off).
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

MIB=${FASTPATH_MIB:-256}
N=$((MIB << 20))
FX="$TOOLS/fastpath_xfer.py"
/usr/bin/python3 "$FX" serve --addr 127.0.0.1 --portfile "$E2E_TMP/http.port" --bytes "$N" --seed 21 \
  --timeout 200 >"$E2E_TMP/http.log" 2>&1 &
HPID=$!
e2e_on_exit "e2e_kill_pid $HPID"
e2e_wait_file "$E2E_TMP/http.port" 10 || e2e_die "http server did not start"
HP=$(cat "$E2E_TMP/http.port")
want=$(/usr/bin/python3 "$FX" sha --bytes "$N" --seed 21)
[[ -n $want ]] || e2e_die "cannot compute the expected sha256"

e2e_ferry 240 run -v -- /usr/bin/python3 "$FX" fetch --addr 198.18.0.1 --port "$HP" \
  --bytes "$N" --seed 21 --dump-at $((4 << 20)) --dump-out "$E2E_TMP/conn_hash.json" \
  --stats-at $((N - (N >> 5))) --stats-out "$E2E_TMP/stats.json" --ferry "$FERRY" --timeout 120 --rcvbuf "${FASTPATH_RCVBUF:-0}"
e2e_expect_rc 0 "guest downloaded $MIB MiB"
e2e_expect "sha256 of the download matches" test "$(head -1 "$OUT" 2>/dev/null)" = "$want"

share=$(/usr/bin/python3 - "$E2E_TMP/stats.json" <<'PY'
import json, sys
found = {}
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("guest_pure_acks", "acks_absorbed") and isinstance(v, int):
                found[k] = max(found.get(k, 0), v)
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
try:
    walk(json.load(open(sys.argv[1])))
except Exception:
    pass
p, a = found.get("guest_pure_acks", 0), found.get("acks_absorbed", 0)
print(f"{a} {p} {100.0 * a / p if p else 0:.1f}")
PY
)
read -r absorbed pure pct <<<"$share"
e2e_log "pure ACKs absorbed: $absorbed of $pure ($pct %)"
e2e_expect "at least 90 % of the guest's pure ACKs absorbed" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if $pure > 0 and $absorbed * 10 >= $pure * 9 else 1)"

e2e_expect "bpftool shows the live connection in conn_hash, with field names" \
  /usr/bin/python3 - "$E2E_TMP/conn_hash.json" "$HP" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
port = int(sys.argv[2])
for e in doc:
    k = e.get("formatted", {}).get("key", {})
    if "guest_addr" in k and "peer_port" in k:
        # network order, printed as a host-order integer
        pp = k["peer_port"]
        if pp in (port, ((port & 0xff) << 8) | (port >> 8)):
            sys.exit(0)
print(json.dumps(doc)[:400], file=sys.stderr)
sys.exit(1)
PY
fp_line=$(grep -h "fast path:" "$ERR" | tail -1)
e2e_log "${fp_line#ferry run: }"
ev=$(sed -n 's/.* event_wakeups=\([0-9]*\).*/\1/p' <<<"$fp_line")
e2e_log "userspace wake-ups for ACKs: ${ev:-?} events for $MIB MiB ($(awk -v e="${ev:-0}" -v m="$MIB" 'BEGIN {printf "%.2f", e / m}') per MiB); pure ACKs $pure ($(awk -v p="$pure" -v m="$MIB" 'BEGIN {printf "%.2f", p / m}') per MiB)"
if [[ $E2E_FAILED != 0 ]]; then e2e_show_output; fi
e2e_check_clean "$FERRY_PID"

#!/usr/bin/env bash
# vm_rootless: `ferry vm` run by an ordinary user (uid 65534) keeps a
# counters file under that user's own directory ($XDG_RUNTIME_DIR/ferry-run/
# vm-PID, counters_file.h), so `ferry stats` run by that user lists the
# instance and its translator counters, as for a rootless `ferry run`; the
# directory goes when ferry stops. Before, a non-root `ferry vm` wrote no
# counters file at all ("no counters file for ferry stats").
# No QEMU: a client of the test's own speaks the stream protocol (each frame
# behind its 32-bit length) and asks for the gateway's MAC (ARP), which
# ferry answers itself. ferry runs in a namespace of the test's own (lo only);
# the binary is copied where uid 65534 may read it.
source "$(dirname "$0")/lib.sh"
e2e_init
command -v setpriv >/dev/null || e2e_die "setpriv missing"
USER_ID=65534
NS=$(e2e_unique v)
ip netns add "$NS" || e2e_die "ip netns add $NS"
e2e_on_exit "ip netns del $NS"
ip -n "$NS" link set lo up

RL=$E2E_TMP/rootless
mkdir -p "$RL/bin" "$RL/xdg"
cp "$FERRY" "$RL/bin/ferry"
chmod 755 "$RL" "$RL/bin" "$RL/bin/ferry"
chown "$USER_ID:$USER_ID" "$RL/xdg"
chmod 700 "$RL/xdg"
SOCK=$RL/xdg/vm.sock
as_user() {
  nsenter --net="/run/netns/$NS" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent XDG_RUNTIME_DIR="$RL/xdg" "$@"
}

timeout -k 5 60 nsenter --net="/run/netns/$NS" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent XDG_RUNTIME_DIR="$RL/xdg" \
  bash -c 'echo $$ >"$0"; exec "$@"' "$RL/xdg/ferry.pid" "$RL/bin/ferry" vm --socket "$SOCK" >"$OUT" 2>"$ERR" </dev/null &
TIMEOUT_PID=$!
e2e_on_exit "e2e_kill_pid $TIMEOUT_PID"
for ((i = 0; i < 100; i++)); do [[ -S $SOCK ]] && break; sleep 0.1; done
[[ -S $SOCK ]] || { e2e_show_output; e2e_die "ferry vm (uid $USER_ID) did not listen on $SOCK"; }
PID=$(cat "$RL/xdg/ferry.pid")
e2e_log "ferry vm as uid $USER_ID: pid $PID; $(head -2 "$ERR" | tr '\n' ' ')"

got=$(timeout 20 python3 - "$SOCK" <<'PY' 2>&1
import socket, struct, sys
mac = bytes.fromhex("020000000042")
arp = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac +
       socket.inet_aton("198.18.0.2") + b"\x00" * 6 + socket.inet_aton("198.18.0.1"))
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(struct.pack("!I", len(arp)) + arp)
s.settimeout(10)
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        print("closed"); break
    buf += d
    done = False
    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
        n = struct.unpack("!I", buf[:4])[0]
        f, buf = buf[4:4 + n], buf[4 + n:]
        if f[12:14] == b"\x08\x06" and struct.unpack("!H", f[20:22])[0] == 2:
            done = True
    if done:
        print("arp-reply"); break
PY
)
e2e_expect "the gateway answered the client's ARP ($got)" test "$got" = arp-reply

# ferry stats as the same user: the vm-PID row with the ARP counted (the
# file is rewritten every second: 10 s at most).
for ((i = 0; i < 50; i++)); do
  as_user "$RL/bin/ferry" stats -j >"$E2E_TMP/stats.json" 2>"$E2E_TMP/stats.err"
  grep -q '"gateway_arp_replies":[1-9]' "$E2E_TMP/stats.json" && break
  sleep 0.2
done
e2e_expect "ferry stats (uid $USER_ID) lists vm-$PID with its translator counters: $(head -c 300 "$E2E_TMP/stats.json") $(head -1 "$E2E_TMP/stats.err")" \
  python3 -c '
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["instances"]}
r = rows["vm-" + sys.argv[2]]
assert r["bpf"] is False and r["translator"]["gateway_arp_replies"] >= 1 and r["translator"]["port_rx_frames"] >= 1, r' \
  "$E2E_TMP/stats.json" "$PID"
e2e_expect "its directory is under the user's own XDG_RUNTIME_DIR" test -f "$RL/xdg/ferry-run/vm-$PID/counters"
e2e_expect "no note that there is no counters file" bash -c "! grep -q 'no counters file' '$ERR'"

kill -TERM "$PID" 2>/dev/null
RC=0
wait "$TIMEOUT_PID" || RC=$?
e2e_expect_rc 0 "ferry vm stopped by SIGTERM"
e2e_expect "its counters directory removed at exit" test ! -e "$RL/xdg/ferry-run/vm-$PID"

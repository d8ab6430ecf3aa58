#!/usr/bin/env bash
# vm_stream: a real QEMU guest on `ferry vm --socket PATH`, QEMU's
# `-netdev stream` (the protocol passt serves: each frame behind its 32-bit
# big-endian length). Same guest and checks as vm_tap (static addresses,
# ping over IPv4 and IPv6, 16 MiB down and up with sha256, the same with a
# peer one veth hop away at MTU 1500, the guest's httpd through `-t`), one
# boot. Then, with real ferry:
#   * `ferry stats` lists the vm-PID instance, says it has no BPF, and shows
#     the bytes the guest moved;
#   * after QEMU left, a new client on the same socket is served (reconnect):
#     an ARP request for the gateway gets ferry's answer, framed;
#   * a second client while one is connected is closed at once;
#   * a length above the MTU limit drops that connection and is counted
#     (stream_protocol_errors), and the next client is served again;
#   * `--fd N`: a connected socket handed over by a parent is served, and
#     ferry exits 0 when that guest leaves;
#   * the translator child runs sandboxed (nobody, no capabilities, seccomp);
#   * usage: neither or both of --socket/--fd, a bad fd -> 2; a socket path
#     in use by a live ferry -> 1; the socket file is removed at exit.
# Everything runs in a namespace of its own (only lo).
# Skips (exit 0, saying why) only where QEMU cannot run.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
# shellcheck source=tests/e2e/lib_vm.sh
source "$(dirname "$0")/lib_vm.sh"
vm_require
vm_kernel  # before the namespace, which cannot reach Debian's mirror
vm_enter_namespace "$@"
# A peer one veth hop away at MTU 1500 (RP), reached through ferry's sockets.
e2e_remote_topology -H "$VM_NS" 1500

# ---- usage
timeout 10 "$FERRY" vm 2>"$ERR"
e2e_expect "no --socket/--fd -> 2" test $? -eq 2
timeout 10 "$FERRY" vm --socket "$E2E_TMP/x" --fd 0 2>"$ERR"
e2e_expect "--socket and --fd together -> 2" test $? -eq 2
timeout 10 "$FERRY" vm --fd 977 2>"$ERR"
e2e_expect "--fd of a closed descriptor -> 2" test $? -eq 2
timeout 10 "$FERRY" vm --socket "$E2E_TMP/x" -m 99 2>"$ERR"
e2e_expect "bad -m -> 2" test $? -eq 2
timeout 5 "$FERRY" vm --help >"$OUT" 2>&1
e2e_expect "vm --help" grep -q "usage: ferry vm" "$OUT"

vm_serve_host 900
vm_initramfs "$E2E_TMP/initrd.gz" "$VM_CONF"

SOCK=$E2E_TMP/ferry.sock
FWD=$(e2e_free_port)
e2e_ferry_bg 900 vm --socket "$SOCK" -t "$FWD:80"
for ((i = 0; i < 100; i++)); do [[ -S $SOCK ]] && break; sleep 0.1; done
e2e_expect "ferry vm listens on $SOCK" test -S "$SOCK"
# The translator (ferry's child) reads guest frames sandboxed, as ferry run's.
for ((i = 0; i < 50; i++)); do
  tr_pid=$(awk '{print $1}' "/proc/$FERRY_PID/task/$FERRY_PID/children" 2>/dev/null)
  [[ -n $tr_pid ]] && grep -q '^Seccomp:[[:space:]]*2' "/proc/$tr_pid/status" 2>/dev/null && break
  sleep 0.1
done
e2e_expect "the translator is sandboxed (pid ${tr_pid:-none}: Uid 65534, CapEff 0, Seccomp 2)" \
  bash -c "grep -qE '^Uid:[[:space:]]+65534' /proc/$tr_pid/status && grep -qE '^CapEff:[[:space:]]+0+$' /proc/$tr_pid/status && grep -qE '^Seccomp:[[:space:]]+2' /proc/$tr_pid/status"
timeout 10 "$FERRY" vm --socket "$SOCK" 2>"$E2E_TMP/err2"
rc=$?
e2e_expect "a second ferry on a live socket -> 1, saying so" \
  bash -c "[[ $rc -eq 1 ]] && grep -q 'in use' '$E2E_TMP/err2'"

LOG=$E2E_TMP/console.log
start=$(date +%s)
vm_boot "$LOG" 600 -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$SOCK" \
  -device "virtio-net-pci,netdev=n0,mac=$VM_MAC"
vm_inbound_check "$FWD" "$LOG"
vm_wait_line "$LOG" "VM: END" 300 || true
"$FERRY" stats >"$E2E_TMP/stats.txt" 2>&1
wait "$VM_PID" 2>/dev/null
e2e_log "guest ran $(($(date +%s) - start)) s (boot to poweroff)"
vm_collect "$LOG"
features=$(tr -d '\r' <"$LOG" | sed -n 's/.*VM: features \([01]*\).*/\1/p' | head -1)
e2e_expect "no offloads over a stream: the guest's driver has no CSUM (${features:0:12})" \
  bash -c "[[ -n '$features' && '${features:0:1}' == 0 && '${features:11:1}' == 0 ]]"
e2e_expect "ferry stats lists vm-$FERRY_PID and says it has no BPF" \
  bash -c "grep -q 'vm-$FERRY_PID' '$E2E_TMP/stats.txt' && grep -q 'vm-$FERRY_PID: no BPF' '$E2E_TMP/stats.txt'"
cat >"$E2E_TMP/check_stats.py" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))["instances"][0]
t = i["translator"] or {}
print("   ", {k: t.get(k) for k in ("tcp_bytes_to_guest", "tcp_bytes_to_host", "tcp_conns_inbound",
                                   "tcp_retransmits", "port_tx_dropped", "stream_connections",
                                   "stream_rx_reads", "port_rx_frames", "malformed")})
sys.exit(0 if i["bpf"] is False and i["counters"] is None and t.get("tcp_bytes_to_guest", 0) >= 16 << 20
         and t.get("tcp_bytes_to_host", 0) >= 16 << 20 and t.get("stream_connections", 0) >= 1 else 1)
PY
# The counters file is rewritten once a second: the last second's traffic
# may not be in it yet.
check_stats() {
  "$FERRY" stats -j "vm-$FERRY_PID" >"$E2E_TMP/stats.json" 2>&1 && python3 "$E2E_TMP/check_stats.py" "$E2E_TMP/stats.json"
}
vm_retry 5 check_stats >/dev/null
e2e_expect "ferry stats -j: bpf false, the guest's bytes counted" check_stats
((E2E_FAILED)) && { vm_show_console "$LOG"; e2e_show_output; }

# ---- the stream protocol with a client of our own, against the same ferry
# (the second ferry's probe above was a connection too: hence ">= 1")
# client.py SOCK arp|busy|badlen: connects, sends an ARP request for the
# gateway, prints what the answer says (or why there is none).
cat >"$E2E_TMP/client.py" <<'PY'
import socket, struct, sys, time
path, what = sys.argv[1], sys.argv[2]
mac = bytes.fromhex("020000000042")
arp = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac +
       socket.inet_aton("198.18.0.2") + b"\x00" * 6 + socket.inet_aton("198.18.0.1"))
def frame(f): return struct.pack("!I", len(f)) + f
def ask(s):
    s.sendall(frame(arp))
    s.settimeout(10)
    buf = b""
    while True:
        d = s.recv(65536)
        if not d: return "closed"
        buf += d
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
            n = struct.unpack("!I", buf[:4])[0]
            f, buf = buf[4:4 + n], buf[4 + n:]
            if f[12:14] == b"\x08\x06" and struct.unpack("!H", f[20:22])[0] == 2 and f[28:32] == socket.inet_aton("198.18.0.1"):
                return "arp-reply " + f[22:28].hex(":")
s = socket.socket(socket.AF_UNIX)
s.connect(path)
if what == "arp":
    print(ask(s))
elif what == "busy":  # a second client while s is served
    time.sleep(0.5)
    t = socket.socket(socket.AF_UNIX)
    t.connect(path)
    t.settimeout(10)
    print("second:", "closed" if t.recv(1) == b"" else "open", "first:", ask(s))
elif what == "badlen":
    s.sendall(struct.pack("!I", 1500 + 18 + 1))
    s.settimeout(10)
    print("closed" if s.recv(1) == b"" else "open")
PY
got=$(timeout 30 python3 "$E2E_TMP/client.py" "$SOCK" arp 2>&1)
e2e_expect "reconnect: a new client after QEMU left gets an ARP reply ($got)" grep -q "^arp-reply" <<<"$got"
got=$(timeout 30 python3 "$E2E_TMP/client.py" "$SOCK" busy 2>&1)
e2e_expect "one guest at a time: a second client is closed, the first served ($got)" \
  grep -q "^second: closed first: arp-reply" <<<"$got"
got=$(timeout 30 python3 "$E2E_TMP/client.py" "$SOCK" badlen 2>&1)
e2e_expect "a length above the MTU limit closes the connection ($got)" test "$got" = closed
got=$(timeout 30 python3 "$E2E_TMP/client.py" "$SOCK" arp 2>&1)
e2e_expect "and the next client is served ($got)" grep -q "^arp-reply" <<<"$got"
# (the counters file is rewritten every second)
check_errors() {
  "$FERRY" stats -j "vm-$FERRY_PID" >"$E2E_TMP/stats.json" 2>&1 && python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["instances"][0]["translator"]
sys.exit(0 if t["stream_protocol_errors"] == 1 and t["stream_refused"] == 1 else 1)' "$E2E_TMP/stats.json"
}
vm_retry 5 check_errors
e2e_expect "stream_protocol_errors 1, refused 1" check_errors

kill -TERM "$FERRY_PID"
e2e_ferry_wait
e2e_expect_rc 0 "ferry vm ends on SIGTERM"
e2e_expect "the socket file is gone" test ! -e "$SOCK"
e2e_expect "its counters dir is gone" test ! -e "/run/ferry-run/vm-$FERRY_PID"

# ---- --fd: a connected socket from a parent (libvirt style)
got=$(timeout 60 python3 - "$FERRY" <<'PY' 2>&1
import socket, struct, subprocess, sys, time
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
p = subprocess.Popen([sys.argv[1], "vm", "--fd", str(b.fileno()), "-q"], pass_fds=[b.fileno()])
b.close()
mac = bytes.fromhex("020000000042")
arp = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac +
       socket.inet_aton("198.18.0.2") + b"\x00" * 6 + socket.inet_aton("198.18.0.1"))
a.sendall(struct.pack("!I", len(arp)) + arp)
a.settimeout(10)
hdr = a.recv(4, socket.MSG_WAITALL)
n = struct.unpack("!I", hdr)[0]
f = a.recv(n, socket.MSG_WAITALL)
ok = f[12:14] == b"\x08\x06" and f[28:32] == socket.inet_aton("198.18.0.1")
a.close()
rc = p.wait(timeout=20)
print("reply" if ok else "no-reply", "exit", rc)
PY
)
e2e_expect "--fd: a handed-over connected socket is served, ferry exits 0 when it closes ($got)" \
  test "$got" = "reply exit 0"

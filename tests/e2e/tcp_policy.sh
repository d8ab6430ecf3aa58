#!/usr/bin/env bash
# tcp_policy: a guest's TCP connections go through the destination policy
# (userspace/policy/): refused ones get a RST at once (the guest's connect()
# fails with ECONNREFUSED, no timeout) and are counted per reason; allowed
# ones leave from a host socket that carries --mark.
#
# Topology (e2e_remote_topology, MTU 1500): ferry runs in host namespace RH;
# the peer RP is one veth hop away (10.77.X.2, fd77:X::2) and also holds
# 169.254.169.254 (a stand-in metadata service, routed by RH over the veth).
# RH's loopback has a service on 127.0.0.1 and ::1 (reached by the guest
# through the gateway address). RH has no other routes: nothing leaves.
#
# Run A, `ferry run --mark 0x1234` (defaults): the peer (both families) and
# the loopback service through the gateway connect; the metadata address is
# refused (policy_refused_default_deny); RH's OUTPUT sees the peer's
# connection marked 0x1234.
# Run B, `--allow 169.254.169.254 --no-map-gw --deny 10.77.X.0/24
# --allow 10.77.X.2:PORT2 --deny fd77:X::/64`: the metadata address
# connects; the gateway (both families) is refused (policy_refused_gateway);
# the peer's subnet is refused (policy_refused_rule) but for the one port the
# more specific --allow opens.
# The peer's servers log every accepted connection: the metadata server sees
# none in run A, one in run B.
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")
P4=${REMOTE_P4[0]} P6=${REMOTE_P6[0]}
NET4=${P4%.*}.0/24 NET6=${P6%::2}::/64
ip -n "$RP" addr add 169.254.169.254/32 dev lo || e2e_die "metadata address in RP"
ip -n "$RH" route add 169.254.169.254/32 via "${REMOTE_P4[0]}" || e2e_die "route to the metadata address"

PORT=$(e2e_free_port)
PORT2=$((PORT + 1))
# Servers: in RP on every address (the peer, the metadata address), ports
# PORT and PORT2; in RH on its loopback, PORT. Each accepted connection is
# one line "ADDR PORT" (the local end) in its log.
cat >"$E2E_TMP/servers.py" <<'PY'
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def serve(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port)); s.listen(16)
    while True:
        c, _ = s.accept()
        log.write("%s %d\n" % c.getsockname()[:2])
        c.sendall(b"hi\n"); c.close()
for spec in sys.argv[3:]:
    fam, addr, port = spec.split(",")
    threading.Thread(target=serve, daemon=True,
                     args=(socket.AF_INET6 if fam == "6" else socket.AF_INET, addr, int(port))).start()
open(sys.argv[2], "w").write("ready")
threading.Event().wait(120)
PY
touch "$E2E_TMP/rp.log" "$E2E_TMP/rh.log"
"${RPN[@]}" timeout 150 python3 "$E2E_TMP/servers.py" "$E2E_TMP/rp.log" "$E2E_TMP/rp.ready" \
  "4,0.0.0.0,$PORT" "4,0.0.0.0,$PORT2" "6,::,$PORT" "6,::,$PORT2" &
e2e_on_exit "e2e_kill_pid $!"
"${RHN[@]}" timeout 150 python3 "$E2E_TMP/servers.py" "$E2E_TMP/rh.log" "$E2E_TMP/rh.ready" \
  "4,127.0.0.1,$PORT" "6,::1,$PORT" &
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$E2E_TMP/rp.ready" 10 || e2e_die "RP's servers did not start"
e2e_wait_file "$E2E_TMP/rh.ready" 10 || e2e_die "RH's servers did not start"

# The guest: one line per target, "NAME connected" or "NAME ERRNO" (a
# timeout would say "NAME timeout" after 5 s); then ferry's counters.
cat >"$E2E_TMP/guest.py" <<'PY'
import errno, socket, sys, time
for spec in sys.argv[1:]:
    name, addr, port = spec.split(",")
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    t0 = time.time()
    try:
        s.connect((addr, int(port)))
        ok = s.recv(3) == b"hi\n"
        print(name, "connected" if ok else "no-greeting", flush=True)
    except socket.timeout:
        print(name, "timeout", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno), "%.1fs" % (time.time() - t0), flush=True)
    s.close()
PY
chmod 644 "$E2E_TMP/guest.py"
# guest_run TIMEOUT FERRY-OPTIONS... -- TARGETS...: one `ferry run` in RH.
guest_run() {
  local opts=() targets=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  targets=("$@")
  e2e_ferry 60 run "${opts[@]}" -- sh -c \
    "python3 '$E2E_TMP/guest.py' ${targets[*]}; sleep 1.5; cat /run/ferry-run/\$FERRY_INSTANCE/counters"
  sed 's/^/    /' "$OUT" | grep -v '=0$' || true
  e2e_expect_rc 0 "ferry run ${opts[*]} exited 0"
}
# counter NAME: its value in the counters ferry wrote (0 when absent).
counter() { local v; v=$(sed -n "s/^$1=//p" "$OUT" | head -1); echo "${v:-0}"; }

# ---- run A: defaults, --mark 0x1234
"${RHN[@]}" iptables -t mangle -A OUTPUT -d "$P4" -p tcp -m mark --mark 0x1234 -j ACCEPT ||
  e2e_die "iptables in RH"
guest_run --mark 0x1234 -- "peer4,$P4,$PORT" "peer6,$P6,$PORT" "gw4,198.18.0.1,$PORT" "gw6,fd00:f::1,$PORT" \
  "metadata,169.254.169.254,$PORT"
e2e_expect "A: the peer over IPv4 connects" grep -qx "peer4 connected" "$OUT"
e2e_expect "A: the peer over IPv6 connects" grep -qx "peer6 connected" "$OUT"
e2e_expect "A: RH's loopback service through the gateway (IPv4)" grep -qx "gw4 connected" "$OUT"
e2e_expect "A: RH's loopback service through the gateway (IPv6)" grep -qx "gw6 connected" "$OUT"
e2e_expect "A: the metadata address is refused at once" grep -qE "^metadata ECONNREFUSED 0\.[0-9]s$" "$OUT"
e2e_expect "A: counted as policy_refused_default_deny ($(counter policy_refused_default_deny))" \
  test "$(counter policy_refused_default_deny)" -eq 1
marked=$("${RHN[@]}" iptables -t mangle -L OUTPUT -v -x -n | awk '/mark match 0x1234/ {print $1}')
e2e_expect "A: RH's OUTPUT saw the peer connection's packets marked 0x1234 (${marked:-none})" \
  test "${marked:-0}" -gt 0
e2e_expect "A: nothing reached the metadata server" bash -c "! grep -q '^169.254.169.254 ' '$E2E_TMP/rp.log'"

# ---- run B: metadata allowed, no gateway mapping, the peer's subnet denied
# but for one port
guest_run --allow 169.254.169.254 --no-map-gw --deny "$NET4" --allow "$P4:$PORT2" --deny "$NET6" -- \
  "metadata,169.254.169.254,$PORT" "gw4,198.18.0.1,$PORT" "gw6,fd00:f::1,$PORT" \
  "peer4,$P4,$PORT" "peer4b,$P4,$PORT2" "peer6,$P6,$PORT"
e2e_expect "B: the metadata address connects with --allow" grep -qx "metadata connected" "$OUT"
e2e_expect "B: the gateway (IPv4) is refused with --no-map-gw" grep -qE "^gw4 ECONNREFUSED 0\.[0-9]s$" "$OUT"
e2e_expect "B: the gateway (IPv6) is refused with --no-map-gw" grep -qE "^gw6 ECONNREFUSED 0\.[0-9]s$" "$OUT"
e2e_expect "B: the denied peer subnet (IPv4) is refused" grep -qE "^peer4 ECONNREFUSED 0\.[0-9]s$" "$OUT"
e2e_expect "B: ... but for the port a more specific --allow opens" grep -qx "peer4b connected" "$OUT"
e2e_expect "B: the denied peer subnet (IPv6) is refused" grep -qE "^peer6 ECONNREFUSED 0\.[0-9]s$" "$OUT"
e2e_expect "B: counted as policy_refused_gateway ($(counter policy_refused_gateway))" \
  test "$(counter policy_refused_gateway)" -eq 2
e2e_expect "B: counted as policy_refused_rule ($(counter policy_refused_rule))" \
  test "$(counter policy_refused_rule)" -eq 2
e2e_expect "B: the metadata server saw one connection" \
  test "$(grep -c '^169.254.169.254 ' "$E2E_TMP/rp.log")" -eq 1
e2e_expect "B: the peer saw only the allowed port ($(tr '\n' ' ' <"$E2E_TMP/rp.log"))" \
  test "$(grep -cE "^($P4|$P6) $PORT\$" "$E2E_TMP/rp.log")" -eq 2 -a \
  "$(grep -c "^$P4 $PORT2\$" "$E2E_TMP/rp.log")" -eq 1  # PORT: run A's two, none from B
if ((E2E_FAILED)); then e2e_show_output; fi
true

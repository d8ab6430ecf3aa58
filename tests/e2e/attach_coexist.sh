#!/usr/bin/env bash
# attach_coexist: ferry attach next to other owners' programs, the XDP hook,
# and a device in another namespace (--netns).
#   * another XDP program on DEV: refused with one line, exit 1, nothing left;
#     with --force (hook tc) ferry attaches, traffic flows (the other program
#     passes), and detach leaves that program and another owner's clsact
#     qdisc and filter exactly as they were;
#   * --hook xdp: status says xdp, a download is intact, detach leaves no XDP
#     program. (XDP loses the kernel's checksum-offload state, so the guest
#     must send full checksums: `ethtool -K eth0 tx off` in the guest. The
#     default tc hook has no such requirement.)
#   * --netns: ferry runs in namespace S (its host sockets and the server are
#     there), DEV lives in H;
#   * DEV deleted under a live service: the service cleans up and exits;
#   * DEV a tap whose other side a "VM" (a python process holding the tap's
#     fd) drives: ARP and ping of the gateway answered through the tap.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
command -v clang-19 >/dev/null || e2e_die "clang-19 missing"

U=$(e2e_unique a)
H=${U}h G=${U}g S=${U}s
DEV=fc$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")
SN=(nsenter "--net=/run/netns/$S")
e2e_on_exit "ip netns del $S"
e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G" && ip netns add "$S"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
for n in "$H" "$G" "$S"; do ip -n "$n" link set lo up; done
ip link add "$DEV" netns "$H" type veth peer name eth0 netns "$G" || e2e_die "veth"
ip -n "$H" link set "$DEV" up
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1

WWW=$E2E_TMP/www
mkdir -p "$WWW"
head -c $((8 << 20)) /dev/urandom >"$WWW/blob"
WANT=$(sha256sum <"$WWW/blob" | cut -d' ' -f1)
for ns in "$H" "$S"; do
  nsenter "--net=/run/netns/$ns" timeout 120 python3 -m http.server --bind 127.0.0.1 --directory "$WWW" 8080 \
    >"$E2E_TMP/http.$ns.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
  for _ in $(seq 50); do
    nsenter "--net=/run/netns/$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null && break
    sleep 0.1
  done
done
# download NAME: fetches the blob from the guest and checks it.
download() {
  rm -f "$E2E_TMP/got"
  timeout 30 ip netns exec "$G" curl -sS -o "$E2E_TMP/got" "http://198.18.0.1:8080/blob" &&
    [[ $(sha256sum <"$E2E_TMP/got" | cut -d' ' -f1) == "$WANT" ]]
}

# ---- another owner's XDP program and clsact filter
cat >"$E2E_TMP/pass.c" <<'C'
struct xdp_md;
__attribute__((section("xdp"), used)) int xdp_pass_other(struct xdp_md *ctx) { return 2; /* XDP_PASS */ }
char _license[] __attribute__((section("license"), used)) = "GPL";
C
clang-19 -O2 -g -target bpf -c "$E2E_TMP/pass.c" -o "$E2E_TMP/pass.o" || e2e_die "compile pass.o"
ip -n "$H" link set dev "$DEV" xdpgeneric obj "$E2E_TMP/pass.o" sec xdp || e2e_die "foreign XDP"
OTHER_XDP=$(ip -n "$H" -d link show "$DEV" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
tc -n "$H" qdisc add dev "$DEV" clsact || e2e_die "clsact"
tc -n "$H" filter add dev "$DEV" ingress prio 7 protocol all u32 match u32 0 0 flowid 1:1 || e2e_die "filter"
FILTERS_BEFORE=$(tc -n "$H" filter show dev "$DEV" ingress)
e2e_log "foreign XDP program id $OTHER_XDP"

timeout 10 "${HN[@]}" "$FERRY" attach "$DEV" 2>"$ERR"
e2e_expect "foreign XDP: refused with 1" test $? -eq 1
e2e_expect "foreign XDP: one line naming it" bash -c "[[ \$(wc -l <'$ERR') -eq 1 ]] && grep -q 'already has an XDP program' '$ERR'"
e2e_expect "foreign XDP: nothing left" test ! -e "/run/ferry/$DEV" -a ! -e "/sys/fs/bpf/ferry/$DEV"

timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" --force -q 2>"$ERR"
e2e_expect "--force (tc) attaches" test $? -eq 0
e2e_expect "download with a foreign XDP_PASS program in front" download
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
e2e_expect "foreign XDP program still there" bash -c "ip -n $H -d link show $DEV | grep -q 'prog/xdp id $OTHER_XDP'"
e2e_expect "foreign clsact filter unchanged" test "$(tc -n "$H" filter show dev "$DEV" ingress)" = "$FILTERS_BEFORE"
e2e_expect "foreign clsact qdisc still there" bash -c "tc -n $H qdisc show dev $DEV | grep -q clsact"
# --force with --hook xdp replaces the other program (documented): ours runs.
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" --hook xdp --force -q 2>"$ERR"
e2e_expect "--force --hook xdp attaches" test $? -eq 0
e2e_expect "our XDP program replaced the other" bash -c "ip -n $H link show $DEV | grep -q 'prog/xdp.*ferry_attach'"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
ip -n "$H" link set dev "$DEV" xdpgeneric off 2>/dev/null
tc -n "$H" qdisc del dev "$DEV" clsact

# ---- hook xdp
ip netns exec "$G" ethtool -K eth0 tx off >/dev/null 2>&1 || e2e_log "note: ethtool -K tx off failed"
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" --hook xdp -q 2>"$ERR"
e2e_expect "--hook xdp attaches" test $? -eq 0
timeout 5 "$FERRY" status "$DEV" -j >"$OUT"
e2e_expect "status says hook xdp" python3 -c "
import json; a = json.load(open('$OUT'))['attachments'][0]; assert a['hook'] == 'xdp' and a['attach_mode'].startswith('xdp-'), a"
e2e_expect "download through the XDP hook" download
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "xdp detach -> 0" test $? -eq 0
e2e_expect "no XDP program left on $DEV" bash -c "! ip -n $H link show $DEV | grep -q prog/xdp"
ip netns exec "$G" ethtool -K eth0 tx on >/dev/null 2>&1

# ---- --netns: ferry (and its sockets) in S, DEV in H
timeout 30 "${SN[@]}" "$FERRY" attach "$DEV" --netns "$H" -q 2>"$ERR"
e2e_expect "--netns attaches" test $? -eq 0
e2e_expect "the private tap lives in DEV's namespace" bash -c "ip -n $H -o link show | grep -q ': fy'"
e2e_expect "download with DEV in another namespace" download
timeout 20 "${SN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "--netns detach -> 0" test $? -eq 0
e2e_expect "--netns: nothing left" bash -c "[[ ! -e /run/ferry/$DEV && ! -e /sys/fs/bpf/ferry/$DEV ]] && ! ip -n $H -o link show | grep -q ': fy'"

# ---- DEV deleted under a live service (the pod went away): it cleans up
DEV2=${DEV:0:13}z2
ip link add "$DEV2" netns "$H" type veth peer name eth1 netns "$G" || e2e_die "veth 2"
ip -n "$H" link set "$DEV2" up
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV2 -q"
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV2" -q 2>"$ERR"
e2e_expect "attach to a second device" test $? -eq 0
ip -n "$H" link del "$DEV2"
for _ in $(seq 50); do [[ -e /run/ferry/$DEV2 ]] || break; sleep 0.1; done
e2e_expect "service stopped and cleaned up after its device vanished" \
  test ! -e "/run/ferry/$DEV2" -a ! -e "/sys/fs/bpf/ferry/$DEV2"

# ---- a tap whose guest side is elsewhere (a VM's): a python "VM" holds the
# tap's fd in H, sends ARP for the gateway and a ping, and must get ferry's
# answers back through the tap.
TAP=${DEV:0:12}tap
cat >"$E2E_TMP/vm.py" <<'PY'
import fcntl, os, select, struct, sys, time
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454ca, 0x0002, 0x1000
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TAP | IFF_NO_PI))
open(sys.argv[2], "w").write("ready")
mac = bytes.fromhex("525400abcdef")
gw, me = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
arp = b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + me + b"\0" * 6 + gw
end = time.time() + 10
got_arp = got_echo = False
ferry_mac = None
def send(frame):
    try:
        os.write(fd, frame)
    except OSError:  # EIO while the tap is still down
        time.sleep(0.1)
while time.time() < end and not (got_arp and got_echo):
    if not got_arp:
        send(arp)
    elif not got_echo:
        icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"ferry"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, me, gw)
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        send(ferry_mac + mac + b"\x08\x00" + iph + icmp)
    r, _, _ = select.select([fd], [], [], 0.5)
    if not r: continue
    f = os.read(fd, 65536)
    if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == gw:
        got_arp, ferry_mac = True, f[22:28]
    elif f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 0 and f[26:30] == gw:
        got_echo = True
print("arp" if got_arp else "no-arp", "echo" if got_echo else "no-echo")
sys.exit(0 if got_arp and got_echo else 1)
PY
"${HN[@]}" timeout 20 python3 "$E2E_TMP/vm.py" "$TAP" "$E2E_TMP/vm.ready" >"$E2E_TMP/vm.out" 2>&1 &
VM=$!
e2e_on_exit "e2e_kill_pid $VM"
e2e_wait_file "$E2E_TMP/vm.ready" 10 || e2e_die "the python VM did not start: $(cat "$E2E_TMP/vm.out")"
ip -n "$H" link set "$TAP" up
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $TAP -q"
timeout 30 "${HN[@]}" "$FERRY" attach "$TAP" -q 2>"$ERR"
e2e_expect "attach to a tap" test $? -eq 0
timeout 5 "$FERRY" status "$TAP" -j >"$OUT"
e2e_expect "status says mode tap" python3 -c "
import json; a = json.load(open('$OUT'))['attachments'][0]; assert a['mode'] == 'tap', a"
wait $VM
e2e_expect "the VM behind the tap got ARP and echo replies from ferry" test $? -eq 0
cat "$E2E_TMP/vm.out"
timeout 20 "${HN[@]}" "$FERRY" detach "$TAP" -q
e2e_expect "tap detach -> 0" test $? -eq 0

#!/usr/bin/python3
"""rfc_probes.py: RFC conformance probes from inside a `ferry run` guest,
one table row each: a name, the RFC section that says what must happen,
and a function that sends the crafted frames and judges ferry's answer (or
its silence). It goes where guest_hostile.py does not: TCP states beyond
ESTABLISHED (TIME-WAIT, simultaneous close, SYN-RECEIVED), RFC 5961's ACK
check, odd SYN options, the gateway as a host (protocols it does not
speak), ARP/NDP duplicate-address defence, DHCP/DHCPv6 message kinds.

Run as: ferry run -- /usr/bin/python3 rfc_probes.py --echo PORT --closer PORT
   or, in the namespace of a guest of `ferry attach` (GUEST_IF names its
   interface): rfc_probes.py --echo PORT --closer PORT --peer ADDR

  --echo    TCP echo server on the host's 127.0.0.1 (or on --peer)
  --closer  TCP server there that sends "bye" and closes at once
  --peer    the servers' IPv4 address when they are not the gateway's
            (a peer one hop beyond ferry)

Frames, links and hand-driven flows come from guest_hostile.py (same
addresses, same canary rule for "must be silent"). Prints "ok: ..." or
"FAIL: ..." per row, then "rfc probes: N ok, M failed" and
"services_malformed_sent N"; exits 1 when a row failed.
"""
import argparse
import socket
import struct
import sys
import time

import guest_hostile as gh
from guest_hostile import GUEST4, GUEST6, GW4, GW6, Flow
from scapy.all import (ARP, ICMP, IP, TCP, UDP, Ether, HBHOptUnknown, ICMPv6EchoReply,
                       ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                       ICMPv6NDOptSrcLLAddr, ICMPv6ParamProblem, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrHopByHop, Raw, raw)

RAW_PORTS = "40400:40599"  # this tool's hand-driven flows (guest_hostile uses 40000-40399)
A = None
services_malformed = 0


def L():
    return gh.L


# ------------------------------------------------------------------ helpers


def silence(frames, listen=0.3, about=lambda p: True):
    """Sends frames, then a canary echo; returns ferry's answers to the
    frames (before the canary's reply, or listen seconds after it) that
    about(packet) claims (by default: every frame from ferry)."""
    gh.canary_id += 1
    cid = gh.canary_id
    L().drain()
    for f in frames:
        L().send(f)
    L().send(gh.echo4(cid, b"canary"))
    stray, got = [], False
    for f in L().frames(3.0):
        p = f.pkt
        if p.src != L().gw_mac or gh.periodic_ra(p):
            continue
        if ICMP in p and p[ICMP].type == 0 and p[ICMP].id == cid:
            got = True
            break
        if about(p):
            stray.append(p.summary())
    for f in L().frames(listen if got else 0):
        if f.pkt.src == L().gw_mac and not gh.periodic_ra(f.pkt) and about(f.pkt):
            stray.append(f.pkt.summary())
    if not got:
        stray.append("no canary reply")
    return stray


def link_local(mac):
    """fe80:: + the modified EUI-64 of a MAC (RFC 4291 2.5.1)."""
    b = bytearray(bytes.fromhex(mac.replace(":", "")))
    b[0] ^= 0x02
    eui = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return socket.inet_ntop(socket.AF_INET6, b"\xfe\x80" + bytes(6) + eui)


def tcp_of(r):
    return None if r is None else r.pkt[TCP]


def desc(t):
    return "nothing" if t is None else f"{t.flags} seq {t.seq} ack {t.ack}"


def until_fin(f, timeout=3.0):
    """Takes ferry's data on flow f up to its FIN (not ACKed); returns the
    FIN segment or None. f.rcv_nxt then covers the FIN."""
    for fr in L().frames(timeout):
        p = fr.pkt
        if not f.mine(p):
            continue
        f.absorb(p)
        t = p[TCP]
        if t.flags & 0x01 and (t.seq + len(raw(t.payload))) & 0xffffffff == f.rcv_nxt:
            f.rcv_nxt = (f.rcv_nxt + 1) & 0xffffffff
            return t
    return None


def flow(sport, dport):
    """A hand-driven flow to the servers: on the gateway (the host's
    loopback), or on --peer when the servers are one hop beyond ferry."""
    f = Flow(sport, dport)
    if A.peer:
        f.dst = A.peer
    return f


def fresh(sport, dport=None):
    f = flow(sport, A.echo if dport is None else dport)
    return f if f.connect() is not None else None


# ---------------------------------------------------------------------- TCP


def tcp_time_wait():
    """The host closes first; after the guest's FIN is ACKed, a
    retransmission of that FIN (our ACK was lost) is ACKed again, not reset."""
    f = flow(40400, A.closer)
    if f.connect() is None:
        return False, "no handshake"
    fin = until_fin(f)
    if fin is None or f.received != b"bye":
        return False, f"no 'bye' and FIN from the host (got {f.received!r})"
    L().send(f.seg("A"))
    L().send(f.seg("FA"))
    f.snd_nxt += 1
    t = tcp_of(f.wait(timeout=3.0))
    if t is None or t.flags != "A" or t.ack != f.snd_nxt:
        return False, f"the guest's FIN: want ACK {f.snd_nxt}, got {desc(t)}"
    L().drain()
    L().send(f.seg("FA", seq=f.snd_nxt - 1))  # the same FIN again
    t = tcp_of(f.wait(timeout=3.0))
    return (t is not None and t.flags == "A" and t.ack == f.snd_nxt and t.seq == f.rcv_nxt,
            f"retransmitted FIN in TIME-WAIT: want ACK seq {f.rcv_nxt} ack {f.snd_nxt}, got {desc(t)}")


def tcp_simultaneous_close():
    """Both FINs cross: ferry ACKs the guest's FIN that did not ACK its own,
    the guest's ACK of ferry's FIN then closes, and a retransmitted FIN is
    still ACKed (both ends in TIME-WAIT)."""
    f = flow(40401, A.closer)
    if f.connect() is None:
        return False, "no handshake"
    fin = until_fin(f)
    if fin is None:
        return False, "no FIN from the host"
    L().drain()
    L().send(f.seg("FA", ack=(f.rcv_nxt - 1) & 0xffffffff))  # ours, not ACKing theirs
    f.snd_nxt += 1
    t = tcp_of(f.wait(lambda p: p[TCP].ack == f.snd_nxt, timeout=3.0))
    if t is None or t.flags & 0x04:
        return False, f"crossing FINs: want ACK {f.snd_nxt}, got {desc(t)}"
    L().send(f.seg("A"))
    time.sleep(0.1)
    L().drain()
    L().send(f.seg("FA", seq=f.snd_nxt - 1))
    t = tcp_of(f.wait(timeout=3.0))
    return (t is not None and t.flags == "A" and t.ack == f.snd_nxt,
            f"FIN again after a simultaneous close: want ACK {f.snd_nxt}, got {desc(t)}")


def tcp_time_wait_new_syn():
    """TIME-WAIT does not block a new connection on the same ports: a SYN
    opens it, even one below the old sequence numbers (a guest reusing its
    port at once: no old duplicates on a tap, and RFC 6191's rule needs
    timestamps, which ferry does not offer)."""
    f = flow(40402, A.closer)
    if f.connect() is None or until_fin(f) is None:
        return False, "no handshake and FIN"
    L().send(f.seg("A"))
    L().send(f.seg("FA"))
    f.snd_nxt += 1
    if f.wait(lambda p: p[TCP].ack == f.snd_nxt, timeout=3.0) is None:
        return False, "the guest's FIN was not ACKed"
    g = flow(40402, A.closer)
    g.isn = (f.isn - 100000) & 0xffffffff
    L().drain()
    L().send(g.seg("S", seq=g.isn, ack=0, options=[("MSS", 1000)]))
    t = tcp_of(g.wait(timeout=3.0))
    if t is not None and t.flags == "SA":
        L().send(g.seg("R", seq=g.isn + 1, ack=0))
    return (t is not None and t.flags == "SA" and t.ack == (g.isn + 1) & 0xffffffff,
            f"new SYN on a TIME-WAIT tuple: want SYN-ACK, got {desc(t)}")


def tcp_old_ack():
    """An ACK below SND.UNA - MAX.SND.WND: the segment is dropped (its data
    not delivered) and an ACK sent back (RFC 5961 5.2)."""
    f = fresh(40410)
    if f is None or not f.alive(b"warm-up"):
        return False, "no working flow"
    L().drain()
    L().send(f.seg("PA", ack=(f.rcv_nxt - 0x20000000) & 0xffffffff, data=b"INJECTED"))
    t = tcp_of(f.wait(timeout=3.0))
    got = f.exchange(b"after", expect_len=5)
    return (t is not None and t.flags == "A" and t.ack == f.snd_nxt - 5 and got == b"after",
            f"want an ACK of {f.snd_nxt - 5} and the echo 'after' only; got {desc(t)}, echo {got!r}")


def tcp_old_ack_window():
    """An old ACK (below SND.UNA) does not update the send window (RFC 9293
    3.10.7.4: only SND.UNA =< SEG.ACK =< SND.NXT does): a zero window in a
    later segment with an old ACK does not stop ferry's data, which comes
    back whole (not as 1-byte window probes)."""
    f = fresh(40411)
    if f is None or not f.alive(b"warm-up"):
        return False, "no working flow"
    L().drain()
    L().send(f.seg("PA", data=b"a"))  # SND.WL1 moves here
    f.snd_nxt += 1
    data = b"0123456789"
    L().send(f.seg("PA", ack=(f.rcv_nxt - 3) & 0xffffffff, data=data, window=0))
    f.snd_nxt += len(data)
    got = b""
    for fr in L().frames(4.0):  # nothing ACKed: only what the window allows comes
        if f.mine(fr.pkt):
            got += raw(fr.pkt[TCP].payload)
            if len(got) >= 11:
                break
    L().send(f.seg("RA"))
    return got[:11] == b"a" + data, f"echo after an old ACK with window 0: {got!r} (want {b'a' + data!r})"


def tcp_syn_rcvd_bad_seq():
    """SYN-RECEIVED: an ACK of the SYN-ACK whose sequence number is outside
    the window is not acceptable: answered with an ACK, and the flow not
    established by it (RFC 9293 3.10.7.4, first check)."""
    f = flow(40420, A.echo)
    L().drain()
    L().send(f.seg("S", seq=f.isn, ack=0, options=[("MSS", 1000)]))
    sa = tcp_of(f.wait(lambda p: p[TCP].flags == "SA"))
    if sa is None:
        return False, "no SYN-ACK"
    f.rcv_nxt = (sa.seq + 1) & 0xffffffff
    L().drain()
    L().send(f.seg("A", seq=(f.isn + 1 + 0x10000000) & 0xffffffff))
    t = tcp_of(f.wait(timeout=3.0))
    f.snd_nxt = f.isn + 1
    ok_ack = t is not None and t.flags == "A" and t.ack == f.isn + 1
    # Still SYN-RECEIVED: data with an ACK of the SYN-ACK establishes now.
    got = f.exchange(b"near")
    return (ok_ack and got == b"near",
            f"want an ACK of {f.isn + 1} and then a working flow; got {desc(t)}, echo {got!r}")


def tcp_syn_options_odd():
    """SYN options in an odd order, an unknown option, and bytes after EOL
    (RFC 9293 3.2: options after End of Option List are not read): the
    handshake works, the MSS is the guest's."""
    f = flow(40430, A.echo)
    opts = (b"\x01\x63\x04\xab\xcd"    # NOP, unknown kind 99 length 4
            b"\x03\x03\x07"            # window scale 7
            b"\x02\x04\x04\x00"        # MSS 1024
            b"\x00\x02\x01\x00")       # EOL, then what would be a bad MSS
    L().drain()
    L().send(gh.tcp_raw(f.src, f.dst, f.sport, f.dport, 0x02, f.isn, 0, opts, b""))
    r = f.wait(lambda p: p[TCP].flags == "SA")
    if r is None:
        return False, "no SYN-ACK"
    o = dict((k, v) for k, v in r.pkt[TCP].options)
    f.snd_nxt = f.isn + 1
    f.rcv_nxt = (r.pkt[TCP].seq + 1) & 0xffffffff
    L().send(f.seg("A"))
    return ("WScale" in o and f.alive(b"odd options"),
            f"SYN-ACK options {r.pkt[TCP].options}; echo on the flow")


def tcp_wscale_over_14():
    """Window scale 15 in a SYN: used as 14 (RFC 7323 2.3), the flow works."""
    f = flow(40431, A.echo)
    if f.connect(options=[("MSS", 1000), ("WScale", 15)]) is None:
        return False, "no SYN-ACK"
    return f.alive(b"scale 15"), "echo on a flow with window scale 15"


def tcp_mss_tiny():
    """MSS option 0 and 1: the flow still works (ferry sends segments of its
    floor, 88 bytes, never empty ones)."""
    for port, mss in ((40432, 0), (40433, 1)):
        f = flow(port, A.echo)
        if f.connect(options=[("MSS", mss)]) is None:
            return False, f"MSS {mss}: no SYN-ACK"
        blob = bytes(range(200))
        if f.exchange(blob) != blob:
            return False, f"MSS {mss}: 200 bytes not echoed"
        L().send(f.seg("RA"))
    return True, "MSS 0 and 1: 200 bytes echoed"


def tcp_syn_data():
    """Data in the SYN is not acknowledged by the SYN-ACK (ferry does not
    keep it); sent again after the handshake it arrives once."""
    f = flow(40434, A.echo)
    L().drain()
    L().send(f.seg("S", seq=f.isn, ack=0, data=b"early", options=[("MSS", 1000)]))
    r = f.wait(lambda p: p[TCP].flags == "SA")
    if r is None:
        return False, "no SYN-ACK"
    f.snd_nxt = f.isn + 1
    f.rcv_nxt = (r.pkt[TCP].seq + 1) & 0xffffffff
    L().send(f.seg("A"))
    got = f.exchange(b"early")
    return (r.pkt[TCP].ack == f.isn + 1 and got == b"early",
            f"SYN-ACK ack {r.pkt[TCP].ack} (want {f.isn + 1}); echo {got!r}")


def tcp_no_ack_flag():
    """ESTABLISHED: a data segment without ACK is dropped, not delivered
    (RFC 9293 3.10.7.4, fifth check)."""
    f = fresh(40440)
    if f is None:
        return False, "no flow"
    stray = silence([f.seg("P", data=b"NOACK")], about=f.mine)
    got = f.exchange(b"fine")
    return not stray and got == b"fine", f"answers {stray[:3]}; echo {got!r}"


def tcp_data_after_fin():
    """Data after the guest's FIN is not delivered; it is answered with an
    ACK of the FIN (RFC 9293 3.10.7.4, CLOSE-WAIT and later: ignore text)."""
    f = flow(40441, A.closer)
    if f.connect() is None or until_fin(f) is None:
        return False, "no handshake and FIN"
    L().drain()
    L().send(f.seg("FA"))
    f.snd_nxt += 1
    if f.wait(lambda p: p[TCP].ack == f.snd_nxt, timeout=3.0) is None:
        return False, "FIN not ACKed"
    L().drain()
    L().send(f.seg("PA", data=b"late"))
    t = tcp_of(f.wait(timeout=3.0))
    return (t is not None and not (t.flags & 0x04) and t.ack == f.snd_nxt,
            f"data after FIN: want ACK {f.snd_nxt}, got {desc(t)}")


def tcp_rst_ack_ignored():
    """A RST at exactly RCV.NXT resets whatever its ACK field says (RFC 5961
    3.2); later data gets a RST."""
    f = fresh(40442)
    if f is None:
        return False, "no flow"
    L().drain()
    L().send(f.seg("RA", ack=(f.rcv_nxt + 12345) & 0xffffffff))
    L().send(f.seg("PA", data=b"gone?"))
    t = tcp_of(f.wait(timeout=3.0))
    return t is not None and t.flags & 0x04, f"data after the RST: want RST, got {desc(t)}"


# --------------------------------------------------------------------- IP


def ttl_low():
    """TTL 1 and 0, hop limit 1, to the gateway (the destination itself):
    answered (RFC 1122 3.2.1.7: a host does not discard them)."""
    bad = []
    for ttl in (1, 0):
        L().drain()
        L().send(gh.eth() / IP(src=GUEST4, dst=GW4, ttl=ttl) / ICMP(type=8, id=0x700 + ttl) / Raw(b"t"))
        if L().wait(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == 0x700 + ttl, 3.0) is None:
            bad.append(f"TTL {ttl}")
    L().drain()
    L().send(gh.eth() / IPv6(src=GUEST6, dst=GW6, hlim=1) / ICMPv6EchoRequest(id=0x702, data=b"h"))
    if L().wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == 0x702, 3.0) is None:
        bad.append("hop limit 1")
    return not bad, f"echoes not answered: {bad}"


def proto_unreachable4():
    """An IPv4 protocol the gateway does not speak: ICMP protocol unreachable
    quoting the datagram (RFC 1122 3.2.2.1, RFC 792)."""
    L().drain()
    L().send(gh.eth() / IP(src=GUEST4, dst=GW4, proto=253) / Raw(b"experimental-253"))
    r = L().wait(lambda p: ICMP in p and p[ICMP].type == 3, 3.0)
    if r is None:
        return False, "no ICMP destination unreachable"
    m = r.pkt[ICMP]
    q = IP(raw(m.payload))
    return (m.code == 2 and r.pkt[IP].src == GW4 and q.proto == 253 and q.src == GUEST4 and
            gh.csum(raw(m)) == 0, f"got type {m.type} code {m.code}, quoting proto {q.proto}")


def proto_unreachable6():
    """An IPv6 next header the gateway does not know: ICMPv6 parameter
    problem, code 1, pointing at the Next Header field (RFC 8200 4, RFC 4443
    3.4)."""
    L().drain()
    L().send(gh.eth() / IPv6(src=GUEST6, dst=GW6, nh=253) / Raw(b"experimental-253"))
    r = L().wait(lambda p: ICMPv6ParamProblem in p, 3.0)
    if r is None:
        return False, "no ICMPv6 parameter problem"
    m = r.pkt[ICMPv6ParamProblem]
    return (m.code == 1 and m.ptr == 6 and r.pkt[IPv6].src == GW6 and r.pkt[IPv6].dst == GUEST6,
            f"got code {m.code} pointer {m.ptr}")


def no_icmp_about_icmp_errors():
    """No ICMP error about an ICMP error, a broadcast or a multicast
    destination (RFC 1122 3.2.2): unknown protocols sent there stay
    unanswered."""
    stray = silence([
        gh.eth() / IP(src=GUEST4, dst="198.18.0.255", proto=253) / Raw(b"bcast"),
        gh.eth() / IP(src=GUEST4, dst="255.255.255.255", proto=253) / Raw(b"bcast"),
        gh.eth() / IP(src=GUEST4, dst="224.0.0.1", proto=253) / Raw(b"mcast"),
        gh.eth() / IPv6(src=GUEST6, dst="ff02::1", nh=253) / Raw(b"mcast"),
    ])
    return not stray, f"answers: {stray[:4]}"


def gw_link_local():
    """The gateway's link-local address (fe80:: + EUI-64 of its MAC: where
    its router advertisements come from, the guest's IPv6 default route)
    answers echo, from that address, as any router's does (RFC 4443 4.2)."""
    ll = link_local(L().gw_mac)
    L().drain()
    L().send(gh.eth() / IPv6(src=GUEST6, dst=ll) / ICMPv6EchoRequest(id=0x720, data=b"ll"))
    r = L().wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == 0x720, 3.0)
    return (r is not None and r.pkt[IPv6].src == ll and r.pkt[ICMPv6EchoReply].data == b"ll",
            f"echo to {ll}: {None if r is None else r.pkt.summary()}")


def ipv6_option_actions():
    """IPv6 options ferry does not process: skipped when the type's high
    bits are 00, the packet discarded when they are 01, 10 or 11 (RFC 8200
    4.2), in hop-by-hop and destination options alike."""
    def echo(ident, hdr, otype):
        return (gh.eth() / IPv6(src=GUEST6, dst=GW6) /
                hdr(options=[HBHOptUnknown(otype=otype, optdata=b"\0\0")]) /
                ICMPv6EchoRequest(id=ident, data=b"opt"))
    L().drain()
    L().send(echo(0x730, IPv6ExtHdrDestOpt, 0x1e))
    L().send(echo(0x731, IPv6ExtHdrHopByHop, 0x1e))
    got = set()
    for f in L().frames(3.0):
        if ICMPv6EchoReply in f.pkt:
            got.add(f.pkt[ICMPv6EchoReply].id)
        if got == {0x730, 0x731}:
            break
    stray = silence([echo(0x732 + i, hdr, t) for i, (hdr, t) in enumerate(
        (h, t) for h in (IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop) for t in (0x5e, 0x9e, 0xde))])
    return (got == {0x730, 0x731} and not stray,
            f"answered with a skippable option: {sorted(got)}; answers to discard-me options: {stray[:3]}")


def echo_broadcast():
    """An echo request to a broadcast or multicast address is not answered
    (RFC 1122 3.2.2.6: MAY be discarded; Linux's icmp_echo_ignore_broadcasts)
    and ferry stays up."""
    stray = silence([
        gh.eth() / IP(src=GUEST4, dst="255.255.255.255") / ICMP(type=8, id=0x710) / Raw(b"b"),
        gh.eth() / IP(src=GUEST4, dst="198.18.0.255") / ICMP(type=8, id=0x711) / Raw(b"b"),
        gh.eth() / IP(src=GUEST4, dst="224.0.0.1") / ICMP(type=8, id=0x712) / Raw(b"m"),
    ])
    return not stray, f"answers: {stray[:3]}"


# ---------------------------------------------------------------- ARP, NDP


def arp_probe_gateway():
    """An ARP probe (sender 0.0.0.0, RFC 5227 2.1.1) for the gateway's own
    address is answered, so a guest configured with it sees the conflict;
    one for any other address is not (the guest's own, or one it may take)."""
    def probe(tpa):
        return Ether(dst="ff:ff:ff:ff:ff:ff", src=L().mac) / ARP(
            op=1, hwsrc=L().mac, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=tpa)
    L().drain()
    L().send(probe(GW4))
    r = L().wait(lambda p: ARP in p and p[ARP].op == 2 and p[ARP].psrc == GW4, 3.0)
    if r is None:
        return False, "no ARP reply to a probe for the gateway's address"
    a = r.pkt[ARP]
    good = a.hwsrc == L().gw_mac and a.hwdst == L().mac and r.pkt.dst == L().mac
    stray = silence([probe(GUEST4), probe("198.18.0.77")])
    return good and not stray, f"reply {r.pkt.summary()}; answers to other probes {stray[:2]}"


def ndp_dad_gateway():
    """DAD for the gateway's address (NS from ::, RFC 4862 5.4): ferry
    defends it with an NA to all-nodes, Solicited 0 (RFC 4861 7.2.4); DAD
    for another address gets nothing."""
    def dad(target, sllao=False):
        t = socket.inet_pton(socket.AF_INET6, target)
        grp = "ff02::1:ff" + t[13:14].hex() + ":" + t[14:16].hex()
        mac = "33:33:ff:" + t[13:14].hex() + ":" + t[14:15].hex() + ":" + t[15:16].hex()
        p = Ether(dst=mac, src=L().mac) / IPv6(src="::", dst=grp, hlim=255) / ICMPv6ND_NS(tgt=target)
        return p / ICMPv6NDOptSrcLLAddr(lladdr=L().mac) if sllao else p
    L().drain()
    L().send(dad(GW6))
    r = L().wait(lambda p: ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == GW6, 3.0)
    if r is None:
        return False, "no NA defending the gateway's address"
    na = r.pkt
    good = (na[IPv6].dst == "ff02::1" and na[IPv6].hlim == 255 and na[ICMPv6ND_NA].S == 0 and
            na[ICMPv6ND_NA].O == 1 and ICMPv6NDOptDstLLAddr in na and
            na[ICMPv6NDOptDstLLAddr].lladdr == L().gw_mac)
    # Not the guest's address, nor another it may pick; a DAD NS with a
    # source link-layer option is invalid (RFC 4861 7.1.1).
    stray = silence([dad(GUEST6), dad("fd00:f::1234"), dad(GW6, sllao=True)])
    return good and not stray, f"NA {na.summary()} S={na[ICMPv6ND_NA].S} O={na[ICMPv6ND_NA].O}; " \
                               f"answers to other DAD probes {stray[:3]}"


def arp_unicast_refresh():
    """A unicast ARP request to ferry's MAC (Linux's neighbour refresh) is
    answered like a broadcast one."""
    L().drain()
    L().send(Ether(dst=L().gw_mac, src=L().mac) / ARP(op=1, hwsrc=L().mac, psrc=GUEST4,
                                                      hwdst=L().gw_mac, pdst=GW4))
    r = L().wait(lambda p: ARP in p and p[ARP].op == 2 and p[ARP].psrc == GW4, 3.0)
    return r is not None, "unicast ARP request answered"


def ndp_unicast_ns():
    """A unicast NS to the gateway without a source link-layer option
    (neighbour unreachability detection) is answered."""
    L().drain()
    L().send(gh.eth() / IPv6(src=GUEST6, dst=GW6, hlim=255) / ICMPv6ND_NS(tgt=GW6))
    r = L().wait(lambda p: ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == GW6, 3.0)
    return (r is not None and r.pkt[ICMPv6ND_NA].S == 1 and r.pkt[IPv6].dst == GUEST6,
            "NUD probe answered with a solicited NA")


# -------------------------------------------------------------------- DHCP


def dhcp_opts(payload):
    """Options of a DHCPv4 message as {code: bytes} (first instance)."""
    out, i = {}, 240
    while i < len(payload):
        c = payload[i]
        if c == 0:
            i += 1
            continue
        if c == 255 or i + 1 >= len(payload):
            break
        n = payload[i + 1]
        out.setdefault(c, payload[i + 2:i + 2 + n])
        i += 2 + n
    return out


def dhcp_ask(mtype, opts=b"", ciaddr=None, src="0.0.0.0", dst="255.255.255.255", xid=0x1234, msg=None):
    m = bytearray(msg if msg is not None else gh.dhcp4_msg(mtype, opts))
    m[4:8] = struct.pack("!I", xid)
    if ciaddr:
        m[12:16] = socket.inet_aton(ciaddr)
    L().drain()
    L().send(Ether(dst="ff:ff:ff:ff:ff:ff" if dst.endswith("255") else L().gw_mac, src=L().mac) /
             IP(src=src, dst=dst) / UDP(sport=68, dport=67) / Raw(bytes(m)))
    r = L().wait(lambda p: UDP in p and p[UDP].sport == 67 and
                 raw(p[UDP].payload)[4:8] == struct.pack("!I", xid), 3.0)
    return None if r is None else (r.pkt, raw(r.pkt[UDP].payload))


def dhcp_client_id():
    """A client identifier (option 61) is returned in OFFER and ACK as sent
    (RFC 6842 3)."""
    cid = b"\x3d\x07\x01" + bytes.fromhex(L().mac.replace(":", ""))
    bad = []
    for mtype, xid in ((1, 0x6100), (3, 0x6101)):
        extra = b"" if mtype == 1 else b"\x32\x04" + socket.inet_aton(GUEST4) + b"\x36\x04" + socket.inet_aton(GW4)
        got = dhcp_ask(mtype, cid + extra, xid=xid)
        if got is None:
            bad.append(f"type {mtype}: no answer")
            continue
        o = dhcp_opts(got[1])
        if o.get(61) != cid[2:]:
            bad.append(f"type {mtype}: option 61 {o.get(61)!r}")
    return not bad, f"{bad}"


def dhcp_overload():
    """Option overload (52): the message type in the file field is read
    (RFC 2131 4.1, RFC 2132 9.3), and the DISCOVER gets its OFFER."""
    m = bytearray(gh.dhcp4_msg(0, b"\x34\x01\x01"))
    m[108:112] = b"\x35\x01\x01\xff"
    got = dhcp_ask(0, xid=0x6050, msg=bytes(m))
    if got is None:
        return False, "no answer"
    o = dhcp_opts(got[1])
    return o.get(53) == b"\x02", f"type {o.get(53)}"


def dhcp_inform():
    """DHCPINFORM: a DHCPACK to ciaddr with configuration, no yiaddr and no
    lease time (RFC 2131 3.4, 4.3.5)."""
    got = dhcp_ask(8, ciaddr=GUEST4, src=GUEST4, dst=GW4, xid=0x6200)
    if got is None:
        return False, "no answer"
    pkt, m = got
    o = dhcp_opts(m)
    return (o.get(53) == b"\x05" and m[16:20] == b"\0\0\0\0" and 51 not in o and 3 in o and
            pkt[IP].dst == GUEST4, f"type {o.get(53)}, yiaddr {m[16:20].hex()}, lease {51 in o}, to {pkt[IP].dst}")


def dhcp_request_other():
    """A DHCPREQUEST for an address that is not the guest's: DHCPNAK,
    broadcast, without yiaddr (RFC 2131 4.3.2, table 3)."""
    req = b"\x32\x04" + socket.inet_aton("198.18.0.99") + b"\x36\x04" + socket.inet_aton(GW4)
    got = dhcp_ask(3, req, xid=0x6300)
    if got is None:
        return False, "no answer"
    pkt, m = got
    o = dhcp_opts(m)
    return (o.get(53) == b"\x06" and m[16:20] == b"\0\0\0\0" and pkt[IP].dst == "255.255.255.255" and
            51 not in o, f"type {o.get(53)}, yiaddr {m[16:20].hex()}, to {pkt[IP].dst}")


def dhcp_release_decline():
    """DHCPRELEASE and DHCPDECLINE are not answered (RFC 2131 4.3.3, 4.3.4)."""
    srv = b"\x36\x04" + socket.inet_aton(GW4)
    rel = bytearray(gh.dhcp4_msg(7, srv))
    rel[12:16] = socket.inet_aton(GUEST4)
    dec = gh.dhcp4_msg(4, srv + b"\x32\x04" + socket.inet_aton(GUEST4))
    stray = silence([gh.eth() / IP(src=GUEST4, dst=GW4) / UDP(sport=68, dport=67) / Raw(bytes(rel)),
                     gh.dhcp4(dec)])
    return not stray, f"answers: {stray[:2]}"


def dhcp6_msg(mtype, *opts, xid=b"\x00\x00\x01"):
    duid = b"\x00\x03\x00\x01" + bytes.fromhex(L().mac.replace(":", ""))
    body = b"\x00\x01" + struct.pack("!H", len(duid)) + duid
    for code, data in opts:
        body += struct.pack("!HH", code, len(data)) + data
    return bytes([mtype]) + xid + body


def dhcp6_opts(payload):
    out, i = {}, 4
    while i + 4 <= len(payload):
        code, n = struct.unpack("!HH", payload[i:i + 4])
        out.setdefault(code, payload[i + 4:i + 4 + n])
        i += 4 + n
    return out


def dhcp6_ask(msg):
    L().drain()
    L().send(gh.dhcp6(msg))
    r = L().wait(lambda p: UDP in p and p[UDP].sport == 547 and raw(p[UDP].payload)[1:4] == msg[1:4], 3.0)
    return None if r is None else raw(r.pkt[UDP].payload)


def dhcp6_info_request():
    """Information-Request: a Reply with DNS servers and no address (RFC 8415
    18.3.6); one that carries an IA is discarded (RFC 8415 16.12)."""
    m = dhcp6_ask(dhcp6_msg(11, (6, b"\x00\x17"), xid=b"\x11\x00\x01"))
    if m is None:
        return False, "no Reply"
    o = dhcp6_opts(m)
    ia = b"\x00\x00\x00\x07" + b"\x00" * 8
    stray = silence([gh.dhcp6(dhcp6_msg(11, (3, ia), xid=b"\x11\x00\x02"))])
    return (m[0] == 7 and 23 in o and 3 not in o and 2 in o and not stray,
            f"type {m[0]}, options {sorted(o)}; answers to one with an IA_NA: {stray[:2]}")


def dhcp6_rapid_commit():
    """Solicit with Rapid Commit: a Reply (not an Advertise) with Rapid
    Commit and the address (RFC 8415 18.3.1)."""
    ia = b"\x00\x00\x00\x09" + b"\x00" * 8
    m = dhcp6_ask(dhcp6_msg(1, (14, b""), (3, ia), xid=b"\x12\x00\x01"))
    if m is None:
        return False, "no answer"
    o = dhcp6_opts(m)
    return (m[0] == 7 and 14 in o and 3 in o and o[3][:4] == ia[:4],
            f"type {m[0]}, options {sorted(o)}")


def dhcp6_foreign_server():
    """Messages for another server (Request/Renew naming its DUID) and a
    Solicit naming a server are discarded (RFC 8415 16.2, 16.4, 16.6)."""
    other = b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x99"
    ia = b"\x00\x00\x00\x0a" + b"\x00" * 8
    stray = silence([gh.dhcp6(dhcp6_msg(3, (2, other), (3, ia), xid=b"\x13\x00\x01")),
                     gh.dhcp6(dhcp6_msg(5, (2, other), (3, ia), xid=b"\x13\x00\x02")),
                     gh.dhcp6(dhcp6_msg(1, (2, other), (3, ia), xid=b"\x13\x00\x03"))])
    return not stray, f"answers: {stray[:3]}"


# -------------------------------------------------------------------- table

PROBES = [
    ("TCP TIME-WAIT re-ACKs a retransmitted FIN", "RFC 9293 3.10.7.4 (TIME-WAIT)", tcp_time_wait),
    ("TCP simultaneous close", "RFC 9293 3.6, 3.10.7.4 (CLOSING)", tcp_simultaneous_close),
    ("TCP new SYN on a TIME-WAIT tuple", "RFC 9293 3.6.1, RFC 6191", tcp_time_wait_new_syn),
    ("TCP ACK older than SND.UNA - MAX.SND.WND dropped", "RFC 5961 5.2", tcp_old_ack),
    ("TCP old ACK does not move the send window", "RFC 9293 3.10.7.4", tcp_old_ack_window),
    ("TCP SYN-RECEIVED: unacceptable sequence number", "RFC 9293 3.10.7.4", tcp_syn_rcvd_bad_seq),
    ("TCP SYN options in odd order, unknown, after EOL", "RFC 9293 3.2, 3.7.1", tcp_syn_options_odd),
    ("TCP window scale 15 used as 14", "RFC 7323 2.3", tcp_wscale_over_14),
    ("TCP MSS 0 and 1", "RFC 9293 3.7.1, RFC 6691", tcp_mss_tiny),
    ("TCP SYN with data", "RFC 9293 3.10.7.3", tcp_syn_data),
    ("TCP segment without ACK in ESTABLISHED", "RFC 9293 3.10.7.4", tcp_no_ack_flag),
    ("TCP data after FIN", "RFC 9293 3.10.7.4", tcp_data_after_fin),
    ("TCP exact RST whatever its ACK", "RFC 5961 3.2", tcp_rst_ack_ignored),
    ("IP TTL 0/1 to the gateway answered", "RFC 1122 3.2.1.7", ttl_low),
    ("IPv4 unknown protocol: protocol unreachable", "RFC 1122 3.2.2.1", proto_unreachable4),
    ("IPv6 unknown next header: parameter problem", "RFC 8200 4, RFC 4443 3.4", proto_unreachable6),
    ("no ICMP error to broadcast or multicast", "RFC 1122 3.2.2, RFC 4443 2.4", no_icmp_about_icmp_errors),
    ("IPv6 unknown options: skipped or discarded by type", "RFC 8200 4.2", ipv6_option_actions),
    ("echo to broadcast or multicast not answered", "RFC 1122 3.2.2.6", echo_broadcast),
    ("echo to the gateway's link-local address", "RFC 4443 4.2, RFC 4861 6.2.8", gw_link_local),
    ("ARP probe for the gateway answered", "RFC 5227 2.1.1, RFC 826", arp_probe_gateway),
    ("NDP DAD for the gateway defended", "RFC 4861 7.2.4, RFC 4862 5.4", ndp_dad_gateway),
    ("ARP unicast refresh answered", "RFC 826, RFC 1122 2.3.2.1", arp_unicast_refresh),
    ("NDP unicast NS (NUD) answered", "RFC 4861 7.2.4", ndp_unicast_ns),
    ("DHCP client identifier echoed", "RFC 6842 3", dhcp_client_id),
    ("DHCP option overload: options in file", "RFC 2131 4.1, RFC 2132 9.3", dhcp_overload),
    ("DHCPINFORM answered without a lease", "RFC 2131 4.3.5", dhcp_inform),
    ("DHCPREQUEST for another address: NAK", "RFC 2131 4.3.2", dhcp_request_other),
    ("DHCPRELEASE / DHCPDECLINE not answered", "RFC 2131 4.3.3, 4.3.4", dhcp_release_decline),
    ("DHCPv6 Information-Request", "RFC 8415 18.3.6, 16.12", dhcp6_info_request),
    ("DHCPv6 Solicit with Rapid Commit", "RFC 8415 18.3.1", dhcp6_rapid_commit),
    ("DHCPv6 messages for another server ignored", "RFC 8415 16.2, 16.4, 16.6", dhcp6_foreign_server),
]


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", type=int, required=True)
    ap.add_argument("--closer", type=int, required=True)
    ap.add_argument("--peer", default="", help="the servers' IPv4 address (default: the gateway)")
    ap.add_argument("--only", default="", help="run only the rows whose name contains this")
    A = ap.parse_args()
    gh.DEADLINE = time.time() + 90
    if not gh.prepare_guest(RAW_PORTS):
        return 1
    gh.L = gh.Link()
    if not gh.learn_gateway():
        return 1
    passed = failed = 0
    for name, rfc, fn in PROBES:
        if A.only and A.only not in name:
            continue
        if time.time() > gh.DEADLINE:
            print(f"FAIL: out of time before '{name}'", flush=True)
            failed += 1
            break
        try:
            good, detail = fn()
        except Exception as e:  # a probe's own bug must not hide the others
            import traceback
            traceback.print_exc()
            good, detail = False, f"raised {e!r}"
        if good:
            passed += 1
            print(f"ok: {name} [{rfc}]", flush=True)
        else:
            failed += 1
            print(f"FAIL: {name} [{rfc}]: {detail}", flush=True)
    print(f"rfc probes: {passed} ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""guest_hostile.py: hostile frames and RFC conformance probes, from inside a
`ferry run` guest, on the guest's tap interface (raw AF_PACKET sockets; scapy
builds and dissects the frames).

Run as: ferry run -- /usr/bin/python3 guest_hostile.py --echo PORT --udp PORT
        --closed PORT --sink PORT

  --echo    TCP echo server on the host's 127.0.0.1
  --udp     UDP echo server on the host's 127.0.0.1
  --closed  a TCP port nothing listens on (127.0.0.1)
  --sink    a TCP server that accepts and never reads (small receive buffer)

Every frame goes to ferry (the gateway's MAC) or is one ferry must drop; the
gateway address stands for the host's loopback, so nothing leaves the machine.

How "must be dropped" is checked: a batch of such frames is followed by a
canary (an echo request to the gateway with a fresh id). ferry handles guest
frames in order, so anything it answered at once arrives before the canary's
reply, and an answer that waits for the host (a SYN-ACK after connect())
within 0.3 s after it; every frame from ferry in that time is a failure.

Raw TCP flows use guest addresses the guest's kernel does not own
(198.18.0.3, fd00:f::3): ferry answers them like any other guest address,
and the kernel drops the answers silently instead of resetting flows it does
not know.

Prints "ok: ..." / "FAIL: ...", then "malformed_sent N",
"not_for_us_sent N" (frames that ferry's translator must count as malformed
or not for us) and "services_malformed_sent N" (DHCP, DHCPv6, DNS and router
solicitations that ferry's guest services must count as malformed); exits 1
when any check failed. Router advertisements ferry sends on its own schedule
are not answers and are ignored by the silence checks. No well-formed DNS
query is sent: the forwarder would relay it to the host's resolvers.
"""
import argparse
import errno
import os
import select
import socket
import struct
import subprocess
import sys
import time

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6DestUnreach,
                       ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
                       ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr,
                       ICMPv6PacketTooBig, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting,
                       IPv6ExtHdrHopByHop, Jumbo, PadN, Raw, raw)

IFACE = os.environ.get("GUEST_IF", "eth0")
GUEST4, GW4 = "198.18.0.2", "198.18.0.1"
GUEST6, GW6 = "fd00:f::2", "fd00:f::1"
# The raw TCP flows come from the guest's own address (ferry serves no
# other source) and from ports 40000-40399, where the guest kernel's resets
# are dropped (main(): iptables) and its own sockets never bind.
RAW4, RAW6 = GUEST4, GUEST6
RAW_PORTS = "40000:40399"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_VNET_HDR = 15
SOL_PACKET = 263
VNET_HDR_LEN = 10
DEADLINE = time.time() + 45  # the whole run, a backstop

failures = []
counts = {"malformed": 0, "not_for_us": 0, "services_malformed": 0, "spoofed": 0}


def ok(what):
    print("ok: " + what, flush=True)


def fail(what):
    print("FAIL: " + what, flush=True)
    failures.append(what)


def check(cond, what):
    (ok if cond else fail)(what)
    return cond


class Rx:
    """A received frame: scapy packet plus the vnet header's GSO fields."""

    def __init__(self, data):
        flags, gso_type, hdr_len, gso_size, csum_start, csum_off = struct.unpack(
            "<BBHHHH", data[:VNET_HDR_LEN])
        self.gso_type = gso_type & 0x7f
        self.gso_size = gso_size
        self.partial = bool(flags & 1)
        self.raw = data[VNET_HDR_LEN:]
        self.pkt = Ether(self.raw)


class Link:
    def __init__(self):
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.tx.bind((IFACE, 0))
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.rx.bind((IFACE, ETH_P_ALL))
        self.mac = self.rx.getsockname()[4].hex(":")
        self.nobufs = 0
        self.gw_mac = None

    def send(self, frame):
        data = frame if isinstance(frame, (bytes, bytearray)) else raw(frame)
        try:
            self.tx.send(bytes(data))
        except OSError as e:
            # ENOBUFS: the device reported the frame dropped (NET_XMIT_DROP).
            # A guest's TCP takes that as congestion (tcp_enter_cwr), so
            # ferry's classifier must not report frames it absorbed that way.
            if e.errno != errno.ENOBUFS:
                raise
            self.nobufs += 1

    def frames(self, timeout):
        """Frames ferry sent to the guest, until timeout (seconds)."""
        end = min(time.time() + timeout, DEADLINE)
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([self.rx], [], [], left)
            if not r:
                return
            data, addr = self.rx.recvfrom(1 << 17)
            if addr[2] == PACKET_OUTGOING or len(data) < VNET_HDR_LEN + 14:
                continue
            yield Rx(data)

    def drain(self):
        while select.select([self.rx], [], [], 0)[0]:
            self.rx.recvfrom(1 << 17)

    def wait(self, pred, timeout=2.0):
        for f in self.frames(timeout):
            try:
                if pred(f.pkt):
                    return f
            except (IndexError, AttributeError):
                continue
        return None


L = None
canary_id = 0x5a00


def eth(dst=None, src=None, type=None):
    e = Ether(dst=dst or L.gw_mac, src=src or L.mac)
    if type is not None:
        e.type = type
    return e


def echo4(ident, payload=b"", seq=1, src=GUEST4, dst=GW4):
    return eth() / IP(src=src, dst=dst) / ICMP(type=8, id=ident, seq=seq) / Raw(payload)


def echo6(ident, payload=b"", seq=1, src=GUEST6, dst=GW6):
    return eth() / IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=ident, seq=seq, data=payload)


def periodic_ra(p):
    """A router advertisement to all nodes: ferry's own schedule, not an answer."""
    return IPv6 in p and p[IPv6].dst == "ff02::1" and p[IPv6].nh == 58 and raw(p[IPv6].payload)[:1] == b"\x86"


def must_drop(name, frames, malformed=0, not_for_us=0, services_malformed=0, spoofed=0):
    """Sends frames ferry must not answer, then a canary; checks silence."""
    global canary_id
    canary_id += 1
    L.drain()
    for f in frames:
        L.send(f)
    cid = canary_id
    L.send(echo4(cid, b"canary"))
    stray = []
    got = False
    for f in L.frames(3.0):
        p = f.pkt
        if p.src != L.gw_mac or periodic_ra(p):
            continue
        if ICMP in p and p[ICMP].type == 0 and p[ICMP].id == cid:
            got = True
            break
        stray.append(p.summary())
    # An answer that waits for the host (a SYN-ACK after connect()) may come
    # after the canary's: listen a little longer.
    for f in L.frames(0.3 if got else 0):
        if f.pkt.src == L.gw_mac and not periodic_ra(f.pkt):
            stray.append(f.pkt.summary())
    counts["malformed"] += malformed
    counts["not_for_us"] += not_for_us
    counts["services_malformed"] += services_malformed
    counts["spoofed"] += spoofed
    if not got:
        fail(f"{name}: ferry did not answer the canary after the batch (stuck or dead?)")
        return
    check(not stray, f"{name}: {len(frames)} frames dropped silently" +
          (f" (answered: {stray[:4]})" if stray else ""))


def csum(b):
    """RFC 1071 sum of b; 0 when b (with its checksum field) is valid."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return 0xffff - s


def tcp_raw(src, dst, sport, dport, flags, seq, ack, opts, data, window=65535):
    """An IPv4 TCP segment built byte by byte (options as given, even
    malformed ones), with a correct checksum."""
    hl = 20 + len(opts)
    assert hl % 4 == 0
    t = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                              (hl // 4) << 4, flags, window, 0, 0) + opts + data)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(t))
    t[16:18] = struct.pack("!H", csum(pseudo + bytes(t)))
    return raw(eth() / IP(src=src, dst=dst, proto=6) / Raw(bytes(t)))


def with_bytes(frame, off, data):
    b = bytearray(frame if isinstance(frame, (bytes, bytearray)) else raw(frame))
    b[off:off + len(data)] = data
    return bytes(b)


# ---------------------------------------------------------------- set-up


def learn_gateway():
    L.gw_mac = "ff:ff:ff:ff:ff:ff"
    req = Ether(dst="ff:ff:ff:ff:ff:ff", src=L.mac) / ARP(
        op=1, hwsrc=L.mac, psrc=GUEST4, hwdst="00:00:00:00:00:00", pdst=GW4)
    for _ in range(3):
        L.drain()
        L.send(req)
        r = L.wait(lambda p: ARP in p and p[ARP].op == 2 and p[ARP].psrc == GW4, 1.0)
        if r:
            a = r.pkt[ARP]
            L.gw_mac = a.hwsrc
            check(r.pkt.dst == L.mac and a.hwdst == L.mac and a.pdst == GUEST4 and
                  r.pkt.src == a.hwsrc, "ARP reply for the gateway is addressed to the asker")
            return True
    fail("no ARP reply for the gateway")
    return False


# ---------------------------------------------------------------- malformed


def probes_malformed():
    v4 = echo4(0x100, b"x" * 20)
    n = []
    # Ethernet
    n.append(bytes(raw(eth(type=0x0800))[:14]))       # no IPv4 header at all
    # ARP: truncated, wrong hlen, wrong plen, unknown op
    arp = eth(type=0x0806) / ARP(op=1, hwsrc=L.mac, psrc=GUEST4, pdst=GW4)
    n.append(raw(arp)[:14 + 20])
    n.append(with_bytes(arp, 14 + 4, b"\x08"))         # hlen 8
    n.append(with_bytes(arp, 14 + 5, b"\x10"))         # plen 16
    n.append(with_bytes(arp, 14 + 6, b"\x00\x03"))     # op 3 (RARP)
    # IPv4
    n.append(raw(v4)[:14 + 12])                        # truncated header
    n.append(with_bytes(v4, 14, b"\x43"))              # IHL 3
    n.append(with_bytes(raw(v4)[:14 + 24], 14, b"\x4f"))  # IHL 15 > frame
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, len=200) / ICMP(id=0x101)))  # total > frame
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, len=12) / ICMP(id=0x102)))   # total < IHL
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, chksum=0x1234) / ICMP(id=0x103)))  # header csum
    n.append(raw(eth(type=0x0800) / IPv6(src=GUEST6, dst=GW6) / ICMPv6EchoRequest(id=0x104)))
    n.append(raw(eth() / IP(src="255.255.255.255", dst=GW4) / ICMP(id=0x107)))
    n.append(raw(eth() / IP(src="224.0.0.9", dst=GW4) / ICMP(id=0x108)))
    # loose source route via the gateway to another address (not ours to follow)
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, options=[b"\x83\x07\x04\xc6\x12\x00\x4d\x00"]) /
                 ICMP(id=0x109)))
    # TCP
    t = eth() / IP(src=RAW4, dst=GW4) / TCP(sport=40001, dport=A.echo, flags="S", seq=7)
    n.append(raw(eth() / IP(src=RAW4, dst=GW4, proto=6) / Raw(b"\x9c\x41" + b"\0" * 8)))  # 10 bytes
    n.append(with_bytes(t, 14 + 20 + 12, b"\x40"))     # data offset 4
    n.append(with_bytes(t, 14 + 20 + 12, b"\xf0"))     # data offset 15 > segment
    tb = bytearray(raw(t))
    tb[14 + 20 + 16] ^= 0xff
    n.append(bytes(tb))                                # bad checksum
    for opts in (b"\x02\x00\x00\x00", b"\x03\x01\x00\x00", b"\x01\x01\x08\x0c"):
        # option length 0, length 1, timestamps running past the header
        n.append(tcp_raw(RAW4, GW4, 40002, A.echo, 0x02, 9, 0, opts, b""))
    # UDP
    u = eth() / IP(src=GUEST4, dst=GW4) / UDP(sport=40003, dport=A.udp) / Raw(b"udp-bad")
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, proto=17) / Raw(b"\x9c\x43\x00")))  # 3 bytes
    n.append(with_bytes(u, 14 + 20 + 4, b"\x00\x04"))  # UDP length 4 < 8
    n.append(with_bytes(u, 14 + 20 + 4, b"\x00\x00"))  # UDP length 0
    n.append(with_bytes(u, 14 + 20 + 4, b"\x01\x00"))  # UDP length > IP payload
    ub = bytearray(raw(u))
    ub[14 + 20 + 6] ^= 0x55
    n.append(bytes(ub))                                # bad checksum
    u6 = bytearray(raw(eth() / IPv6(src=GUEST6, dst=GW6) / UDP(sport=40004, dport=A.udp) / Raw(b"six")))
    u6[14 + 40 + 6:14 + 40 + 8] = b"\0\0"
    n.append(bytes(u6))                                # IPv6 UDP without checksum
    # ICMP
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, proto=1) / Raw(b"\x08\x00")))  # 2 bytes
    n.append(raw(eth() / IP(src=GUEST4, dst=GW4, proto=1) / Raw(b"\x08\x00\xf7\xff\x01\x09")))  # echo of 6
    e = bytearray(raw(echo4(0x10a, b"sum")))
    e[14 + 20 + 2] ^= 0x01
    n.append(bytes(e))                                 # bad ICMP checksum
    e6 = bytearray(raw(echo6(0x10b, b"sum6")))
    e6[14 + 40 + 2] ^= 0x01
    n.append(bytes(e6))                                # bad ICMPv6 checksum
    # IPv6
    n.append(raw(echo6(0x10c))[:14 + 30])              # truncated header
    n.append(raw(eth() / IPv6(src=GUEST6, dst=GW6, plen=500) / ICMPv6EchoRequest(id=0x10d)))
    n.append(raw(eth(type=0x86dd) / IP(src=GUEST4, dst=GW4) / ICMP(id=0x10e) / Raw(b"x" * 40)))
    n.append(raw(eth() / IPv6(src="ff02::1", dst=GW6) / ICMPv6EchoRequest(id=0x10f)))
    # extension headers: hop-by-hop not first, a chain of 10, one past the end,
    # a jumbo payload (payload length 0)
    n.append(raw(eth() / IPv6(src=GUEST6, dst=GW6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() /
                 ICMPv6EchoRequest(id=0x110)))
    chain = IPv6ExtHdrDestOpt()
    for _ in range(9):
        chain = chain / IPv6ExtHdrDestOpt()
    n.append(raw(eth() / IPv6(src=GUEST6, dst=GW6) / chain / ICMPv6EchoRequest(id=0x111)))
    x = bytearray(raw(eth() / IPv6(src=GUEST6, dst=GW6) / IPv6ExtHdrDestOpt() /
                      ICMPv6EchoRequest(id=0x112)))
    x[14 + 40 + 1] = 20                                # 168 bytes: past the end
    n.append(bytes(x))
    j = eth() / IPv6(src=GUEST6, dst=GW6, plen=0) / IPv6ExtHdrHopByHop(
        options=[Jumbo(jumboplen=8 + 8 + 16)]) / ICMPv6EchoRequest(id=0x114, data=b"j" * 8)
    n.append(raw(j))
    bad_tlv = bytearray(raw(eth() / IPv6(src=GUEST6, dst=GW6) /
                            IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")]) /
                            ICMPv6EchoRequest(id=0x115)))
    bad_tlv[14 + 40 + 3] = 9                           # PadN running past its header
    n.append(bytes(bad_tlv))
    # a routing header (type 0) with a segment left: not at its end yet
    n.append(raw(eth() / IPv6(src=GUEST6, dst=GW6) /
                 IPv6ExtHdrRouting(type=0, segleft=1, addresses=["fd00:f::1"]) /
                 ICMPv6EchoRequest(id=0x116)))
    must_drop("malformed frames", n, malformed=len(n))

    # Well-formed but not for ferry: multicast/broadcast source MACs, other
    # destination MACs.
    nf = [
        Ether(dst=L.gw_mac, src="01:00:5e:00:00:01") / IP(src=GUEST4, dst=GW4) / ICMP(id=0x120),
        Ether(dst=L.gw_mac, src="ff:ff:ff:ff:ff:ff") / IP(src=GUEST4, dst=GW4) / ICMP(id=0x121),
        Ether(dst="02:00:00:00:00:99", src=L.mac) / IP(src=GUEST4, dst=GW4) / ICMP(id=0x122),
        Ether(dst="02:00:00:00:00:99", src=L.mac) / ARP(op=1, hwsrc=L.mac, psrc=GUEST4, pdst=GW4),
        Ether(dst="ff:ff:ff:ff:ff:ff", src="33:33:00:00:00:01") /
        ARP(op=1, hwsrc=L.mac, psrc=GUEST4, pdst=GW4),
    ]
    must_drop("frames from multicast MACs or to other MACs", nf, not_for_us=len(nf))

    # 802.1Q: ferry's link is untagged; a tagged frame belongs to a VLAN ferry
    # is not on (an untagged answer would reach the wrong interface).
    vl = [
        Ether(dst=L.gw_mac, src=L.mac) / Dot1Q(vlan=5) / IP(src=GUEST4, dst=GW4) / ICMP(id=0x130),
        Ether(dst="ff:ff:ff:ff:ff:ff", src=L.mac) / Dot1Q(vlan=5) /
        ARP(op=1, hwsrc=L.mac, psrc=GUEST4, pdst=GW4),
        Ether(dst=L.gw_mac, src=L.mac) / Dot1Q(vlan=5) / IP(src=RAW4, dst=GW4) /
        TCP(sport=40005, dport=A.echo, flags="S", seq=1),
    ]
    must_drop("VLAN-tagged frames", vl, not_for_us=len(vl))


# ------------------------------------------------------------ guest services


def dhcp4_msg(mtype, opts=b"", cookie=b"\x63\x82\x53\x63"):
    fixed = bytearray(236)
    fixed[0:4] = b"\x01\x01\x06\x00"
    fixed[4:8] = b"\x12\x34\x56\x78"
    fixed[28:34] = bytes.fromhex(L.mac.replace(":", ""))
    body = (b"\x35\x01" + bytes([mtype])) if mtype else b""
    return bytes(fixed) + cookie + body + opts + b"\xff"


def dhcp4(payload):
    return (Ether(dst="ff:ff:ff:ff:ff:ff", src=L.mac) / IP(src="0.0.0.0", dst="255.255.255.255") /
            UDP(sport=68, dport=67) / Raw(payload))


def dhcp6(payload):
    return (Ether(dst="33:33:00:01:00:02", src=L.mac) / IPv6(src="fe80::5ee:f00d", dst="ff02::1:2") /
            UDP(sport=546, dport=547) / Raw(payload))


def dns(payload, v6=False):
    ip = IPv6(src=GUEST6, dst=GW6) if v6 else IP(src=GUEST4, dst=GW4)
    return eth() / ip / UDP(sport=40053, dport=53) / Raw(payload)


def probes_services():
    # Well-formed requests are answered: DHCP DISCOVER -> OFFER of the guest's
    # address, DHCPv6 SOLICIT -> ADVERTISE, RS -> RA.
    L.drain()
    L.send(dhcp4(dhcp4_msg(1)))
    r = L.wait(lambda p: UDP in p and p[UDP].sport == 67 and p[UDP].dport == 68)
    check(r is not None and raw(r.pkt[UDP].payload)[16:20] == socket.inet_aton(GUEST4),
          "DHCP DISCOVER answered with an OFFER of the guest's address")
    duid = b"\x00\x03\x00\x01" + bytes.fromhex(L.mac.replace(":", ""))  # DUID-LL
    client_id = b"\x00\x01\x00\x0a" + duid
    L.send(dhcp6(b"\x01\xab\xcd\xef" + client_id + b"\x00\x03\x00\x0c" + b"\x00" * 12))
    r = L.wait(lambda p: UDP in p and p[UDP].sport == 547)
    check(r is not None and raw(r.pkt[UDP].payload)[:1] == b"\x02", "DHCPv6 SOLICIT answered with an ADVERTISE")
    L.send(Ether(dst="33:33:00:00:00:02", src=L.mac) / IPv6(src="fe80::5ee:f00d", dst="ff02::2", hlim=255) /
           ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=L.mac))
    r = L.wait(lambda p: periodic_ra(p), timeout=4.0)
    check(r is not None, "router solicitation answered with an advertisement")

    bad = []
    d = dhcp4_msg(1)
    bad.append(dhcp4(d[:100]))                                       # truncated
    bad.append(dhcp4(dhcp4_msg(1, cookie=b"\x63\x82\x53\x00")))     # bad magic cookie
    bad.append(dhcp4(dhcp4_msg(1)[:-1] + b"\x0c\x28x"))                 # option past the end
    bad.append(dhcp4(dhcp4_msg(0, b"\x35\x02\x01\x01")))               # type of length 2
    bad.append(dhcp4(dhcp4_msg(0)))                                  # no type at all
    bad.append(dhcp4(dhcp4_msg(3, b"\x32\x03\x01\x02\x03")))          # requested IP of 3 bytes
    bad.append(dhcp6(b"\x01\x00\x00"))                                # 3 bytes
    bad.append(dhcp6(b"\x01\x00\x00\x01\x00\x01\x00\xc8" + duid))      # client id longer than the message
    bad.append(dhcp6(b"\x01\x00\x00\x01\x00\x01\x00\x01\x00"))        # client id of 1 byte
    bad.append(dhcp6(b"\x01\x00\x00\x01\x00\x03\x00\x0b" + b"\x00" * 11))  # IA_NA of 11 bytes
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    bad.append(dns(q[:5]))                                           # shorter than a header
    bad.append(dns(b"\x12\x34\x81\x00" + q[4:] + b"\x00\x00\x01\x00\x01"))  # a response (QR)
    bad.append(dns(q[:4] + b"\x00\x02" + q[6:] + b"\x00\x00\x01\x00\x01"))  # two questions
    bad.append(dns(q + b"\xc0\x0c\x00\x01\x00\x01"))                  # name pointing at itself
    bad.append(dns(q + b"\x01a\xc0\x0c\x00\x01\x00\x01", v6=True))      # label then a loop
    bad.append(dns(q + b"\x3fabc"))                                    # label past the end
    rs = Ether(dst="33:33:00:00:00:02", src=L.mac) / IPv6(src="fe80::5ee:f00d", dst="ff02::2", hlim=64) / ICMPv6ND_RS()
    bad.append(rs)                                                   # RS with hop limit 64
    rs0 = bytearray(raw(Ether(dst="33:33:00:00:00:02", src=L.mac) /
                        IPv6(src="fe80::5ee:f00d", dst="ff02::2", hlim=255) / ICMPv6ND_RS() /
                        ICMPv6NDOptSrcLLAddr(lladdr=L.mac)))
    rs0[14 + 40 + 8 + 1] = 0                                         # option of length 0
    rs0[14 + 40 + 2:14 + 40 + 4] = b"\0\0"
    rs0[14 + 40 + 2:14 + 40 + 4] = struct.pack("!H", csum6(rs0[14:]))
    bad.append(bytes(rs0))
    must_drop("malformed DHCP, DHCPv6, DNS and router solicitations", bad, services_malformed=len(bad))


def csum6(ip6):
    """ICMPv6 checksum of an IPv6 packet (header + ICMPv6 with a zero checksum)."""
    plen = struct.unpack("!H", bytes(ip6[4:6]))[0]
    pseudo = bytes(ip6[8:40]) + struct.pack("!IxxxB", plen, 58)
    return csum(pseudo + bytes(ip6[40:40 + plen]))


# ---------------------------------------------------------------- ARP and NDP


def probes_spoofed():
    """Another source than the guest's address: never served, never answered."""
    other4, other6 = "198.18.0.3", "fd00:1::3"  # IPv6: outside the guest's /64 (SLAAC may use any of it)
    frames = [
        eth() / IP(src=other4, dst=GW4) / TCP(sport=40390, dport=A.echo, flags="S", seq=1),
        eth() / IP(src=other4, dst=GW4) / TCP(sport=40391, dport=A.echo, flags="A", seq=1, ack=1),
        eth() / IP(src=other4, dst=GW4) / UDP(sport=40392, dport=A.udp) / Raw(b"spoofed"),
        echo4(0x5b0f, b"spoofed", src=other4),
        eth() / IP(src="10.1.2.3", dst=GW4) / ICMP(type=8, id=0x5b10),
        eth() / IPv6(src=other6, dst=GW6) / TCP(sport=40393, dport=A.echo, flags="S", seq=1),
        eth() / IPv6(src=other6, dst=GW6) / UDP(sport=40394, dport=A.udp) / Raw(b"spoofed"),
        echo6(0x5b11, b"spoofed", src=other6),
        Ether(dst="ff:ff:ff:ff:ff:ff", src=L.mac) / ARP(op=1, hwsrc=L.mac, psrc=other4,
                                                        hwdst="00:00:00:00:00:00", pdst=GW4),
    ]
    must_drop("frames from another source address than the guest's", frames, spoofed=len(frames))


def probes_arp_ndp():
    def arp(op=1, psrc=GUEST4, pdst=GW4, hwsrc=None, dst="ff:ff:ff:ff:ff:ff"):
        return Ether(dst=dst, src=L.mac) / ARP(op=op, hwsrc=hwsrc or L.mac, psrc=psrc,
                                               hwdst="00:00:00:00:00:00", pdst=pdst)
    must_drop("ARP that needs no answer", [
        arp(pdst=GUEST4),                       # the guest's own address
        arp(psrc=GUEST4, pdst=GUEST4),          # gratuitous
        arp(psrc="0.0.0.0", pdst=GUEST4),       # probe (RFC 5227) of the guest's address
        arp(psrc="0.0.0.0", pdst="198.18.0.78"),  # ... of one it may take (the gateway's: rfc_probes)
        arp(op=2, psrc=GUEST4, pdst=GW4),       # unsolicited reply
        arp(pdst="198.18.0.255"),               # subnet broadcast
        arp(pdst="224.0.0.1"),                  # multicast
        arp(hwsrc="01:00:5e:00:00:01"),         # multicast sender hardware address
    ])
    # Any other address of the subnet is ferry's to answer (gateway.h: the
    # passt model, every destination is reached through ferry).
    L.drain()
    L.send(arp(pdst="198.18.0.77"))
    r = L.wait(lambda p: ARP in p and p[ARP].op == 2 and p[ARP].psrc == "198.18.0.77", 1.0)
    check(r is not None and r.pkt[ARP].hwsrc == L.gw_mac,
          "ARP for another subnet address is answered with ferry's MAC (documented proxy)")

    def ns(target=GW6, hlim=255, src=GUEST6, code=0, opts=True, dst=None):
        p = (Ether(dst="33:33:ff:00:00:01", src=L.mac) /
             IPv6(src=src, dst=dst or "ff02::1:ff00:1", hlim=hlim) / ICMPv6ND_NS(tgt=target, code=code))
        if opts:
            p = p / ICMPv6NDOptSrcLLAddr(lladdr=L.mac)
        return p
    L.drain()
    L.send(ns())
    r = L.wait(lambda p: ICMPv6ND_NA in p, 1.0)
    if check(r is not None, "NS for the gateway is answered"):
        na = r.pkt
        check(na[IPv6].hlim == 255 and na[ICMPv6ND_NA].tgt == GW6 and na[ICMPv6ND_NA].R == 1 and
              na[ICMPv6ND_NA].S == 1 and na[IPv6].dst == GUEST6 and
              ICMPv6NDOptDstLLAddr in na and na[ICMPv6NDOptDstLLAddr].lladdr == L.gw_mac,
              "NA: hop limit 255, R/S set, target and link-layer address right")
    bad_opt = ns(opts=False) / ICMPv6NDOptSrcLLAddr(len=0, lladdr=L.mac)  # option length 0
    must_drop("NDP that must be ignored (RFC 4861 7.1.1)", [
        ns(hlim=254), ns(hlim=64), ns(hlim=1),
        ns(code=1),
        bad_opt,
        ns(target="ff02::1"),
        ns(src="::", opts=False, target="fd00:f::1234", dst="ff02::1:ff00:1234"),  # DAD (the gateway's: rfc_probes)
        ns(target=GUEST6),                      # the guest's own address
        Ether(dst="33:33:00:00:00:02", src=L.mac) / IPv6(src=GUEST6, dst="ff02::2", hlim=255) /
        ICMPv6ND_RS(),
    ])


# ---------------------------------------------------------------- ICMP echo


def probes_echo():
    pat = bytes(range(256)) * 300
    for v6, sizes in ((False, (0, 1, 7, 56, 1473, 9001, 65000)), (True, (0, 1, 7, 1233, 65000))):
        for i, size in enumerate(sizes):
            ident = 0x300 + i + (0x80 if v6 else 0)
            data = pat[i:i + size]
            L.drain()
            L.send(echo6(ident, data, seq=size & 0xffff) if v6 else echo4(ident, data, seq=size & 0xffff))
            if v6:
                r = L.wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == ident, 2.0)
            else:
                r = L.wait(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == ident, 2.0)
            what = f"echo {'v6' if v6 else 'v4'} with {size} bytes"
            if not check(r is not None, what + ": answered"):
                continue
            p = r.pkt
            if v6:
                m = p[ICMPv6EchoReply]
                body = raw(p[IPv6].payload)[8:]
                again = IPv6(raw(p[IPv6]))
                del again[ICMPv6EchoReply].cksum
                good_sum = raw(IPv6(raw(again)))[40 + 2:40 + 4] == raw(p[IPv6])[40 + 2:40 + 4]
                addrs = p[IPv6].src == GW6 and p[IPv6].dst == GUEST6
            else:
                m = p[ICMP]
                body = raw(p[IP].payload)[8:]
                again = ICMP(raw(p[ICMP]))
                del again.chksum
                good_sum = raw(ICMP(raw(again)))[2:4] == raw(p[ICMP])[2:4]
                addrs = (p[IP].src == GW4 and p[IP].dst == GUEST4 and
                         csum(raw(p[IP])[:4 * p[IP].ihl]) == 0)
            check(body == data and m.seq == (size & 0xffff) and good_sum and addrs and
                  m.code == 0 and p.dst == L.mac,
                  what + ": reply byte-exact (id, seq, data, checksum, addresses)")
    # IPv4 options are legal: the echo still gets its reply
    L.drain()
    L.send(eth() / IP(src=GUEST4, dst=GW4, options=[b"\x01\x01\x01\x00"]) /
           ICMP(type=8, id=0x3ff, seq=1) / Raw(b"opts"))
    r = L.wait(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == 0x3ff, 2.0)
    check(r is not None and raw(r.pkt[ICMP].payload) == b"opts", "echo with IPv4 options answered")
    # hop-by-hop first is legal too
    L.drain()
    L.send(eth() / IPv6(src=GUEST6, dst=GW6) / IPv6ExtHdrHopByHop() /
           ICMPv6EchoRequest(id=0x3fe, data=b"hbh"))
    r = L.wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == 0x3fe, 2.0)
    check(r is not None and r.pkt[ICMPv6EchoReply].data == b"hbh", "echo v6 after hop-by-hop answered")
    # ... and a routing header whose segments are all done
    L.drain()
    L.send(eth() / IPv6(src=GUEST6, dst=GW6) /
           IPv6ExtHdrRouting(type=0, segleft=0, addresses=["fd00:f::1"]) /
           ICMPv6EchoRequest(id=0x3fb, data=b"rh"))
    r = L.wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == 0x3fb, 2.0)
    check(r is not None and r.pkt[ICMPv6EchoReply].data == b"rh",
          "echo v6 with a routing header, no segments left, answered")
    # ICMP errors quoting flows ferry never saw, and stray echo replies
    quote4 = IP(src=GW4, dst=GUEST4) / TCP(sport=A.echo, dport=44444, flags="A")
    quote6 = IPv6(src=GW6, dst=GUEST6) / UDP(sport=53, dport=44445)
    must_drop("ICMP errors for unknown flows", [
        eth() / IP(src=GUEST4, dst=GW4) / ICMP(type=3, code=3) / raw(quote4),
        eth() / IP(src=GUEST4, dst=GW4) / ICMP(type=11, code=0) / raw(quote4),
        eth() / IP(src=GUEST4, dst=GW4) / ICMP(type=0, id=0x3fd, seq=1),
        eth() / IPv6(src=GUEST6, dst=GW6) / ICMPv6DestUnreach(code=4) / raw(quote6),
        eth() / IPv6(src=GUEST6, dst=GW6) / ICMPv6PacketTooBig(mtu=1280) / raw(quote6),
        eth() / IPv6(src=GUEST6, dst=GW6) / ICMPv6EchoReply(id=0x3fc),
    ])


# ---------------------------------------------------------------- fragments


def frag4(ident, data, cut, first_opts=b"", ipid=0x4242):
    """An echo request to the gateway in two IPv4 fragments split at `cut`
    (a multiple of 8); options, if any, in the first fragment only (RFC 791:
    options without the copy flag are not copied)."""
    icmp = raw(ICMP(type=8, id=ident, seq=1) / Raw(data))
    a = IP(src=GUEST4, dst=GW4, id=ipid, flags="MF", frag=0, proto=1,
           options=[first_opts] if first_opts else []) / Raw(icmp[:cut])
    b = IP(src=GUEST4, dst=GW4, id=ipid, flags=0, frag=cut // 8, proto=1) / Raw(icmp[cut:])
    return eth() / a, eth() / b


def frag6_header(nh, offset, more, ident):
    return struct.pack("!BBHI", nh, 0, (offset & 0xfff8) | (1 if more else 0), ident)


def frag6(ident, data, cut, fid=0x51):
    """An echo request to the gateway in two IPv6 fragments split at `cut`."""
    icmp = raw(IPv6(src=GUEST6, dst=GW6) / ICMPv6EchoRequest(id=ident, seq=1, data=data))[40:]
    a = IPv6(src=GUEST6, dst=GW6, nh=44) / Raw(frag6_header(58, 0, True, fid) + icmp[:cut])
    b = IPv6(src=GUEST6, dst=GW6, nh=44) / Raw(frag6_header(58, cut, False, fid) + icmp[cut:])
    return eth() / a, eth() / b


def probes_fragments():
    data = bytes(range(256)) * 12
    for v6, maker in ((False, frag4), (True, frag6)):
        fam = "v6" if v6 else "v4"
        ident = 0x600 + v6
        a, b = maker(ident, data, 1008)
        for order, frames in (("in order", (a, b)), ("out of order", (b, a))):
            L.drain()
            for fr in frames:
                L.send(fr)
            if v6:
                r = L.wait(lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == ident, 2.0)
                ok_ = r is not None and r.pkt[ICMPv6EchoReply].data == data
            else:
                r = L.wait(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == ident, 2.0)
                ok_ = r is not None and raw(r.pkt[ICMP].payload) == data
            check(ok_, f"echo {fam} in two fragments ({order}): reassembled, reply byte-exact")
    # Options in the first fragment only: the datagram keeps the first's header.
    a, b = frag4(0x610, data, 1008, first_opts=b"\x01\x01\x01\x00", ipid=0x4343)
    L.drain()
    L.send(a)
    L.send(b)
    r = L.wait(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == 0x610, 2.0)
    check(r is not None and raw(r.pkt[ICMP].payload) == data,
          "echo v4 in two fragments, IP options in the first only: reassembled")
    # What must not come back: overlaps (RFC 5722), a lone first fragment,
    # nested atomic fragment headers (a fragment inside a fragment).
    a, b = frag4(0x620, data, 1008, ipid=0x4444)
    over = IP(raw(b[IP]))
    over.frag = 1000 // 8
    del over.chksum
    a6, b6 = frag6(0x621, data, 1008, fid=0x52)
    b6o = bytearray(raw(b6))
    b6o[14 + 40 + 2:14 + 40 + 4] = struct.pack("!H", 1000)
    lone, _ = frag4(0x622, data, 1008, ipid=0x4545)
    must_drop("overlapping and lone fragments", [a, eth() / over, a6, bytes(b6o), lone])
    # Atomic fragments (RFC 6946) nested in one another, up to thousands
    # deep: each is a whole datagram again; ferry may answer the echo inside
    # (once per frame at most) but must stay up.
    icmp = raw(IPv6(src=GUEST6, dst=GW6) / ICMPv6EchoRequest(id=0x623, seq=1, data=b"nest"))[40:]
    L.drain()
    for depth in (2, 64, 4000):
        body = b"".join(frag6_header(44 if i < depth - 1 else 58, 0, False, 0x60 + i)
                        for i in range(depth))
        L.send(eth() / IPv6(src=GUEST6, dst=GW6, nh=44) / Raw(body + icmp))
    L.send(echo4(0x624, b"alive"))
    replies, alive = 0, False
    for f in L.frames(3.0):
        p = f.pkt
        if ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == 0x623:
            replies += 1
        if ICMP in p and p[ICMP].type == 0 and p[ICMP].id == 0x624:
            alive = True
            break
    check(alive and replies <= 3, f"nested atomic fragments: ferry alive ({replies} replies)")


# ---------------------------------------------------------------- UDP


def probes_udp():
    def udp_reply(sport, v6=False, timeout=2.0):
        if v6:
            return L.wait(lambda p: UDP in p and IPv6 in p and p[UDP].dport == sport, timeout)
        return L.wait(lambda p: UDP in p and IP in p and p[UDP].dport == sport, timeout)
    L.drain()
    L.send(eth() / IP(src=GUEST4, dst=GW4) / UDP(sport=40100, dport=A.udp))
    r = udp_reply(40100)
    check(r is not None and raw(r.pkt[UDP].payload) == b"",
          "zero-length UDP datagram reaches the host and its empty echo returns")
    # A closed host port: ICMP port unreachable from the gateway, quoting the
    # datagram (RFC 792 / RFC 4443: IP header and the first 8 bytes of it).
    for v6 in (False, True):
        sport = 40110 + v6
        L.drain()
        if v6:
            L.send(eth() / IPv6(src=GUEST6, dst=GW6) / UDP(sport=sport, dport=A.closed) / Raw(b"closed"))
            r = L.wait(lambda p: ICMPv6DestUnreach in p, 2.0)
        else:
            L.send(eth() / IP(src=GUEST4, dst=GW4) / UDP(sport=sport, dport=A.closed) / Raw(b"closed"))
            r = L.wait(lambda p: ICMP in p and p[ICMP].type == 3, 2.0)
        fam = "v6" if v6 else "v4"
        good = False
        if r is not None:
            p = r.pkt
            if v6:
                m, q = p[ICMPv6DestUnreach], IPv6(raw(p[ICMPv6DestUnreach].payload))
                again = IPv6(raw(p[IPv6]))
                del again[ICMPv6DestUnreach].cksum
                summed = raw(IPv6(raw(again)))[42:44] == raw(p[IPv6])[42:44]
                good = (m.code == 4 and p[IPv6].src == GW6 and p[IPv6].dst == GUEST6 and
                        q.src == GUEST6 and q.dst == GW6 and q.nh == 17)
            else:
                m, q = p[ICMP], IP(raw(p[ICMP].payload))
                summed = csum(raw(p[ICMP])) == 0
                good = (m.code == 3 and p[IP].src == GW4 and p[IP].dst == GUEST4 and
                        q.src == GUEST4 and q.dst == GW4 and q.proto == 17)
            good = good and summed and UDP in q and q[UDP].sport == sport and q[UDP].dport == A.closed
        check(good, f"UDP to a closed port ({fam}): port unreachable quoting the datagram" +
              ("" if r is None else f" ({r.pkt.summary()})"))
    L.drain()
    u = eth() / IP(src=GUEST4, dst=GW4) / UDP(sport=40101, dport=A.udp, chksum=0) / Raw(b"nosum")
    L.send(with_bytes(u, 14 + 20 + 6, b"\0\0"))
    r = udp_reply(40101)
    check(r is not None and raw(r.pkt[UDP].payload) == b"nosum",
          "IPv4 UDP with checksum 0 (RFC 768: none) is accepted")


# ---------------------------------------------------------------- TCP


class Flow:
    """A guest TCP flow driven by hand."""

    def __init__(self, sport, dport, v6=False, src=None):
        self.sport, self.dport, self.v6 = sport, dport, v6
        self.src = src or (RAW6 if v6 else RAW4)
        self.dst = GW6 if v6 else GW4
        self.isn = 0x10000000 + sport * 7919
        self.snd_nxt = self.isn
        self.rcv_nxt = None
        self.peer_wnd = 0
        self.received = b""
        self.synack = None

    def seg(self, flags, seq=None, ack=None, data=b"", window=65535, options=None, urgptr=0):
        ip = IPv6(src=self.src, dst=self.dst) if self.v6 else IP(src=self.src, dst=self.dst)
        t = TCP(sport=self.sport, dport=self.dport, flags=flags,
                seq=self.snd_nxt if seq is None else seq,
                ack=(self.rcv_nxt or 0) if ack is None else ack, window=window, urgptr=urgptr,
                options=options or [])
        return eth() / ip / t / Raw(data) if data else eth() / ip / t

    def mine(self, p):
        return (TCP in p and p[TCP].dport == self.sport and p[TCP].sport == self.dport and
                (IPv6 if self.v6 else IP) in p and p[IPv6 if self.v6 else IP].dst == self.src)

    def wait(self, pred=lambda p: True, timeout=2.0):
        return L.wait(lambda p: self.mine(p) and pred(p), timeout)

    def connect(self, options=None):
        L.drain()
        L.send(self.seg("S", seq=self.isn, ack=0, options=options or [("MSS", 1000)]))
        r = self.wait(lambda p: p[TCP].flags == "SA")
        if r is None:
            return None
        self.synack = r.pkt
        self.snd_nxt = self.isn + 1
        self.rcv_nxt = (r.pkt[TCP].seq + 1) & 0xffffffff
        self.peer_wnd = r.pkt[TCP].window
        L.send(self.seg("A"))
        return r.pkt

    def absorb(self, p):
        """Takes in-order data from a segment of ferry's, returns True if new."""
        t = p[TCP]
        data = raw(t.payload)
        self.peer_wnd = t.window
        if data and t.seq == self.rcv_nxt:
            self.received += data
            self.rcv_nxt = (self.rcv_nxt + len(data)) & 0xffffffff
            return True
        return False

    def exchange(self, data, expect_len=None, timeout=3.0, mss_check=None):
        """Sends data, collects the echo; returns the echoed bytes."""
        start = len(self.received)
        want = len(data) if expect_len is None else expect_len
        L.drain()
        for off in range(0, len(data), 1000):
            L.send(self.seg("PA", data=data[off:off + 1000]))
            self.snd_nxt = (self.snd_nxt + len(data[off:off + 1000])) & 0xffffffff
        end = time.time() + timeout
        for f in L.frames(timeout):
            if not self.mine(f.pkt):
                continue
            if mss_check is not None:
                mss_check(f)
            if self.absorb(f.pkt):
                L.send(self.seg("A"))
            if len(self.received) - start >= want or time.time() > end:
                break
        return self.received[start:]

    def alive(self, tag):
        got = self.exchange(tag)
        return got == tag


def probes_tcp():
    # SYN to a closed port: RST/ACK, SEQ 0, ACK = SEG.SEQ + SEG.LEN (RFC 9293 3.10.7.1)
    for v6 in (False, True):
        f = Flow(40200 + v6, A.closed, v6=v6)
        L.drain()
        L.send(f.seg("S", seq=f.isn, ack=0, options=[("MSS", 1000)]))
        r = f.wait()
        fam = "v6" if v6 else "v4"
        check(r is not None and r.pkt[TCP].flags == "RA" and r.pkt[TCP].seq == 0 and
              r.pkt[TCP].ack == f.isn + 1,
              f"SYN to a closed host port ({fam}): RST/ACK seq 0 ack SEG.SEQ+1" +
              ("" if r is None else f" (got {r.pkt[TCP].flags} seq {r.pkt[TCP].seq} ack "
                                    f"{r.pkt[TCP].ack}, want ack {f.isn + 1})"))

    # Segments of no connection (RFC 9293 3.10.7.1): ACK set -> <SEQ=SEG.ACK><RST>;
    # otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>; a RST is never answered.
    cases = [
        ("A", 40210, b"", lambda t, s: t.flags == "R" and t.seq == 0x01020304),
        ("PA", 40211, b"data", lambda t, s: t.flags == "R" and t.seq == 0x01020304),
        ("", 40212, b"", lambda t, s: t.flags == "RA" and t.seq == 0 and t.ack == s),
        ("FPU", 40213, b"", lambda t, s: t.flags == "RA" and t.seq == 0 and t.ack == s + 1),
        ("SA", 40214, b"", lambda t, s: t.flags == "R" and t.seq == 0x01020304),
        ("F", 40215, b"xy", lambda t, s: t.flags == "RA" and t.seq == 0 and t.ack == s + 3),
    ]
    for flags, sport, data, good in cases:
        f = Flow(sport, A.echo)
        L.drain()
        L.send(f.seg(flags, seq=f.isn, ack=0x01020304, data=data))
        r = f.wait()
        check(r is not None and good(r.pkt[TCP], f.isn),
              f"segment '{flags or 'none'}' of no connection: RST per RFC 9293 3.10.7.1" +
              ("" if r is None else f" (got {r.pkt[TCP].flags} seq {r.pkt[TCP].seq} ack {r.pkt[TCP].ack})"))
    xmas = Flow(40220, A.echo)
    synfin = Flow(40221, A.echo)
    synrst = Flow(40222, A.echo)
    rst = Flow(40223, A.echo)
    must_drop("SYN+FIN, SYN+RST, xmas with RST, bare RST of no connection open nothing", [
        synfin.seg("SF", seq=synfin.isn, ack=0),
        synrst.seg("SR", seq=synrst.isn, ack=0),
        xmas.seg("FSRPAUEC", seq=xmas.isn, ack=1),
        rst.seg("R", seq=rst.isn, ack=0),
    ])

    # The host's loopback is reached through the gateway address only: a
    # SYN naming 127.0.0.1 or ::1 is refused by the destination policy with
    # a RST (RST/ACK acknowledging the SYN), although the echo server
    # listens there.
    for lo in (Flow(40224, A.echo), Flow(40225, A.echo, v6=True)):
        lo.dst = "::1" if lo.v6 else "127.0.0.1"
        L.drain()
        L.send(lo.seg("S", seq=lo.isn, ack=0))
        r = lo.wait()
        check(r is not None and r.pkt[TCP].flags == "RA" and r.pkt[TCP].ack == lo.isn + 1,
              f"SYN to {lo.dst} (not the gateway): RST/ACK from the destination policy" +
              ("" if r is None else f" (got {r.pkt[TCP].flags} ack {r.pkt[TCP].ack})"))
    # A segment whose source is its destination ("LAND") opens nothing and
    # is not answered.
    land = Flow(A.echo, A.echo, src=GW4)
    must_drop("a SYN from its own destination opens nothing", [
        land.seg("S", seq=land.isn, ack=0)], spoofed=1)  # LAND's source is not the guest's

    # Handshake: options echo what the guest offered, never timestamps.
    f = Flow(40230, A.echo)
    sa = f.connect(options=[("MSS", 1000), ("Timestamp", (12345, 0))])
    if not check(sa is not None, "handshake with the echo server"):
        return
    o = dict((k, v) for k, v in sa[TCP].options)
    check("MSS" in o and "WScale" not in o and "SAckOK" not in o and "Timestamp" not in o,
          f"SYN-ACK options: MSS only, when the guest offered MSS and timestamps ({sa[TCP].options})")
    check(sa[TCP].ack == f.isn + 1, "SYN-ACK acknowledges the SYN")
    g = Flow(40231, A.echo)
    sa2 = g.connect(options=[("MSS", 1400), ("SAckOK", b""), ("WScale", 7), ("NOP", None)])
    if sa2 is not None:
        o2 = dict((k, v) for k, v in sa2[TCP].options)
        check("WScale" in o2 and "SAckOK" in o2,
              f"SYN-ACK offers window scaling and SACK when the guest did ({sa2[TCP].options})")
    check(f.alive(b"first bytes"), "data echoed on the hand-driven flow")

    # RFC 5961 3.2: RST in the window but not at RCV.NXT -> challenge ACK.
    L.drain()
    L.send(f.seg("R", seq=f.snd_nxt + 10, ack=0))
    r = f.wait(timeout=1.0)
    check(r is not None and r.pkt[TCP].flags == "A" and r.pkt[TCP].ack == f.snd_nxt and
          r.pkt[TCP].seq == f.rcv_nxt, "in-window inexact RST: challenge ACK")
    check(f.alive(b"after rst in window"), "connection survives an inexact RST")
    # RST outside the window: dropped silently (RFC 5961 3.2), never a reset.
    L.drain()
    L.send(f.seg("R", seq=(f.snd_nxt + 0x40000000) & 0xffffffff, ack=0))
    L.send(f.seg("RA", seq=(f.snd_nxt - 5000) & 0xffffffff))
    r = f.wait(lambda p: p[TCP].flags & 0x04, timeout=0.5)
    check(r is None, "out-of-window RSTs do not reset (nothing sent back)")
    check(f.alive(b"after rst out of window"), "connection survives out-of-window RSTs")
    # RFC 5961 4: SYN in a synchronized state -> challenge ACK, whatever its seq.
    for seqno, what in ((f.isn, "old ISN"), (f.snd_nxt, "RCV.NXT"), (f.snd_nxt + 100, "in window")):
        L.drain()
        L.send(f.seg("S", seq=seqno, ack=0, options=[("MSS", 1000)]))
        r = f.wait(timeout=1.0)
        check(r is not None and r.pkt[TCP].flags == "A" and r.pkt[TCP].ack == f.snd_nxt,
              f"SYN ({what}) on an established flow: challenge ACK" +
              ("" if r is None else f" (got {r.pkt[TCP].flags} ack {r.pkt[TCP].ack})"))
    check(f.alive(b"after syn"), "connection survives SYNs")
    # Data beyond the window: not accepted, the ACK repeats RCV.NXT.
    L.drain()
    far = (f.snd_nxt + 0x01000000) & 0xffffffff
    L.send(f.seg("PA", seq=far, data=b"far away"))
    r = f.wait(timeout=1.0)
    check(r is not None and r.pkt[TCP].ack == f.snd_nxt, "data beyond the window: ACK of RCV.NXT")
    # An old duplicate: re-ACKed, not delivered twice.
    L.drain()
    L.send(f.seg("PA", seq=(f.snd_nxt - 5) & 0xffffffff, data=b"again"))
    r = f.wait(timeout=1.0)
    check(r is not None and r.pkt[TCP].ack == f.snd_nxt, "old duplicate data: ACK of RCV.NXT")
    # A keep-alive (RCV.NXT - 1, one garbage byte): ACKed, the byte not taken.
    L.drain()
    L.send(f.seg("A", seq=(f.snd_nxt - 1) & 0xffffffff, data=b"K"))
    r = f.wait(timeout=1.0)
    check(r is not None and r.pkt[TCP].ack == f.snd_nxt, "keep-alive: ACK of RCV.NXT")
    # Data whose ACK acknowledges what ferry never sent: an ACK, the segment
    # dropped (RFC 9293 3.10.7.4), its data not delivered.
    L.drain()
    L.send(f.seg("PA", ack=(f.rcv_nxt + 100000) & 0xffffffff, data=b"bogus ack"))
    r = f.wait(timeout=1.0)
    check(r is not None and r.pkt[TCP].ack == f.snd_nxt and r.pkt[TCP].seq == f.rcv_nxt,
          "ACK of unsent data: answered with an ACK, data not taken")
    check(f.alive(b"in order"), "only in-order data reaches the host (echo exact)")
    # Urgent data passes inline.
    L.drain()
    L.send(f.seg("PAU", data=b"urgent!", urgptr=7))
    f.snd_nxt += 7
    got = f.exchange(b"", expect_len=7)
    check(got == b"urgent!", f"urgent data echoed inline ({got!r})")
    # A data segment with a malformed option list: dropped, not acknowledged.
    L.drain()
    L.send(tcp_raw(f.src, f.dst, f.sport, f.dport, 0x18, f.snd_nxt, f.rcv_nxt,
                   b"\x02\x00\x00\x00", b"BADOPT"))
    counts["malformed"] += 1
    r = f.wait(timeout=0.5)
    check(r is None, "data with an option of length 0: dropped, nothing acknowledged")
    check(f.alive(b"still fine"), "connection fine after a malformed segment")

    # MSS: nothing ferry sends is larger than the guest's MSS (1000) as the
    # guest's stack sees it: a plain segment's payload, or a GSO
    # super-segment's gso_size.
    sizes = []

    def mss_check(fr):
        p = fr.pkt
        n = len(raw(p[TCP].payload)) if Raw in p else 0
        sizes.append((n, fr.gso_type, fr.gso_size))
    blob = bytes((i * 13) & 0xff for i in range(20000))
    got = f.exchange(blob, timeout=5.0, mss_check=mss_check)
    check(got == blob, f"20000 bytes echoed intact ({len(got)})")
    too_big = [s for s in sizes if (s[1] == 0 and s[0] > 1000) or (s[1] != 0 and s[2] > 1000)]
    check(sizes and not too_big, f"segments toward the guest respect its MSS 1000 (largest frame "
          f"{max(s[0] for s in sizes)} bytes, gso_size {max(s[2] for s in sizes)}; {too_big[:3]})")

    # No MSS option: RFC 9293 3.7.1's default of 536 bytes applies.
    h = Flow(40232, A.echo)
    if check(h.connect(options=[("NOP", None)]) is not None, "handshake without an MSS option"):
        sizes.clear()
        got = h.exchange(blob[:3000], timeout=5.0, mss_check=mss_check)
        big = [x for x in sizes if (x[1] == 0 and x[0] > 536) or (x[1] != 0 and x[2] > 536)]
        check(got == blob[:3000] and sizes and not big,
              f"without an MSS option segments toward the guest carry at most 536 bytes (largest "
              f"frame {max(s[0] for s in sizes)}, gso_size {max(s[2] for s in sizes)}; {big[:3]})")
        L.send(h.seg("RA"))

    # Orderly close.
    L.drain()
    L.send(f.seg("FA"))
    f.snd_nxt += 1
    r = f.wait(lambda p: p[TCP].flags & 0x01, timeout=2.0)
    check(r is not None and r.pkt[TCP].ack == f.snd_nxt, "FIN answered by the host's FIN")
    if r is not None:
        f.rcv_nxt = (r.pkt[TCP].seq + 1) & 0xffffffff
        L.send(f.seg("A"))

    # Exact RST tears the connection down; later segments get a RST.
    if sa2 is not None:
        L.drain()
        L.send(g.seg("R", ack=0))
        time.sleep(0.05)
        L.send(g.seg("PA", data=b"after reset"))
        r = g.wait(timeout=1.0)
        check(r is not None and r.pkt[TCP].flags == "R" and r.pkt[TCP].seq == g.rcv_nxt,
              "exact RST closes the flow; data after it gets a RST (seq = its ACK)")


def probes_window():
    """Right edge of the window: bytes beyond it are neither taken nor ACKed."""
    f = Flow(40300, A.sink)
    sa = f.connect(options=[("MSS", 60000)])
    if not check(sa is not None, "handshake with the sink server"):
        return
    right = (f.snd_nxt + f.peer_wnd) & 0xffffffff
    chunk = b"w" * 60000
    # ferry's window is the free space of its host socket's send buffer,
    # which grows up to net.ipv4.tcp_wmem's maximum (4 MiB by default):
    # read it, and send that much and a half at most.
    try:
        wmem = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 4 << 20
    sent = 0
    for _ in range((wmem * 3 // 2) // len(chunk) + 20):
        if time.time() > DEADLINE - 10:
            break
        room = (right - f.snd_nxt) & 0xffffffff
        if room < len(chunk):
            break
        L.drain()
        L.send(f.seg("A", data=chunk))
        r = f.wait(lambda p: p[TCP].ack == (f.snd_nxt + len(chunk)) & 0xffffffff, 2.0)
        if r is None:
            fail("sink: a segment inside the window was not acknowledged")
            return
        f.snd_nxt = (f.snd_nxt + len(chunk)) & 0xffffffff
        sent += len(chunk)
        right = max(right, (f.snd_nxt + r.pkt[TCP].window) & 0xffffffff,
                    key=lambda x: (x - f.isn) & 0xffffffff)
    room = (right - f.snd_nxt) & 0xffffffff
    if not check(room < len(chunk), f"sink: the window closed to {room} bytes after {sent}"):
        return
    L.drain()
    L.send(f.seg("A", data=chunk))
    r = f.wait(timeout=1.0)
    acked = None if r is None else (r.pkt[TCP].ack - f.snd_nxt) & 0xffffffff
    check(r is not None and acked <= room,
          f"segment straddling the right edge: at most the {room} bytes in the window acknowledged "
          f"(acked {acked})")


# ---------------------------------------------------------------- main


def prepare_guest(raw_ports=RAW_PORTS):
    """Readies the guest's namespace for hand-driven frames: no forwarding,
    the guest kernel's resets from raw_ports ("first:last") dropped, its
    own sockets kept out of them. False (and a failure) when it cannot."""
    # The namespace may inherit IPv4 forwarding from the host (with
    # net.core.devconf_inherit_init_net = 0, IPv4 settings are copied): then
    # the guest's kernel would route ferry's answers to addresses it does not
    # own (probes_spoofed's) back to ferry.
    for knob in ("ipv4/conf/all/forwarding", "ipv4/conf/%s/forwarding" % IFACE,
                 "ipv6/conf/all/forwarding"):
        try:
            with open("/proc/sys/net/" + knob, "w") as fh:
                fh.write("0")
        except OSError as e:
            print(f"note: cannot turn off {knob}: {e}")
    # The guest kernel owns RAW4/RAW6 and would reset the raw flows' SYN-ACKs.
    for tool in ("iptables", "ip6tables"):
        r = subprocess.run([tool, "-A", "OUTPUT", "-p", "tcp", "--sport", raw_ports, "--tcp-flags", "RST", "RST",
                            "-j", "DROP"], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{tool}: cannot drop the guest kernel's resets: {r.stderr.strip()}")
            return False
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as fh:
        fh.write("50000 60999")  # the kernel's own connections stay out of RAW_PORTS
    return True


def main():
    global L, A
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", type=int, required=True)
    ap.add_argument("--udp", type=int, required=True)
    ap.add_argument("--closed", type=int, required=True)
    ap.add_argument("--sink", type=int, required=True)
    A = ap.parse_args()
    if not prepare_guest():
        return 1
    L = Link()
    if not learn_gateway():
        return 1
    for probe in (probes_malformed, probes_spoofed, probes_services, probes_arp_ndp, probes_echo,
                  probes_fragments, probes_udp, probes_tcp, probes_window):
        if time.time() > DEADLINE:
            fail("out of time before " + probe.__name__)
            break
        try:
            probe()
        except Exception as e:  # a probe's own bug must not hide the others
            import traceback
            traceback.print_exc()
            fail(f"{probe.__name__} raised {e!r}")
    # Finally an ordinary connection through the guest's own stack.
    try:
        with socket.create_connection((GW4, A.echo), timeout=5) as s:
            s.sendall(b"ordinary connection after the barrage")
            got = b""
            while len(got) < 37:
                d = s.recv(100)
                if not d:
                    break
                got += d
        check(got == b"ordinary connection after the barrage", "kernel TCP connection after the barrage")
    except OSError as e:
        fail(f"kernel TCP connection after the barrage: {e}")
    check(L.nobufs == 0, f"no frame sent to ferry was reported dropped to the sender "
          f"(ENOBUFS {L.nobufs} times)")
    print(f"malformed_sent {counts['malformed']}")
    print(f"not_for_us_sent {counts['not_for_us']}")
    print(f"services_malformed_sent {counts['services_malformed']}")
    print(f"spoofed_sent {counts['spoofed']}")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


A = None
if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/ (run once; the seeds are in the tree).

frame/        single guest frames: ARP, ICMP and ICMPv6 echo, NDP, TCP SYN
              with options, UDP, IPv4 with options, IPv6 with extension
              headers, a VLAN tag
reassembly/   records (fuzz_records.h) of IPv4 and IPv6 fragments
guest_input/  a configuration byte and records: a TCP handshake with data to
              the gateway's port 8080 (following ferry's sequence numbers),
              UDP to port 5353, pings, ARP, fragments
Guest 198.18.0.2 / fd00:f::2, gateway 198.18.0.1 / fd00:f::1, ferry's MAC
02:66:65:72:72:79 (ferry's defaults).
"""
import os
import struct
import sys

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, ICMPv6ND_NS,
                       ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPOption_RR, Raw,
                       fragment, fragment6, IPv6ExtHdrFragment)

GUEST_MAC = "52:54:00:12:34:56"
FERRY_MAC = "02:66:65:72:72:79"
G4, GW4, G6, GW6 = "198.18.0.2", "198.18.0.1", "fd00:f::2", "fd00:f::1"
here = os.path.dirname(os.path.abspath(__file__))


def eth():
    return Ether(src=GUEST_MAC, dst=FERRY_MAC)


def record(frame, flags=0):
    b = bytes(frame)
    return struct.pack(">HB", len(b), flags) + b


def write(kind, name, data):
    d = os.path.join(here, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


frames = {
    "arp": Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GUEST_MAC, psrc=G4, pdst=GW4),
    "ping4": eth() / IP(src=G4, dst=GW4) / ICMP(id=7, seq=1) / b"ping",
    "ping6": eth() / IPv6(src=G6, dst=GW6) / ICMPv6EchoRequest(id=7, seq=1, data=b"ping"),
    "ns": Ether(src=GUEST_MAC, dst="33:33:ff:00:00:01") / IPv6(src=G6, dst="ff02::1:ff00:1", hlim=255)
    / ICMPv6ND_NS(tgt=GW6) / ICMPv6NDOptSrcLLAddr(lladdr=GUEST_MAC),
    "syn4": eth() / IP(src=G4, dst=GW4) / TCP(sport=40000, dport=8080, flags="S", seq=1000,
                                             options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)),
                                                      ("NOP", None), ("WScale", 7)]),
    "syn6": eth() / IPv6(src=G6, dst=GW6) / TCP(sport=40001, dport=8080, flags="S", seq=2000,
                                               options=[("MSS", 1440), ("WScale", 7)]),
    "udp4": eth() / IP(src=G4, dst=GW4) / UDP(sport=5000, dport=5353) / b"hello",
    "udp6": eth() / IPv6(src=G6, dst=GW6) / UDP(sport=5001, dport=5353) / b"hello",
    "ipopts": eth() / IP(src=G4, dst=GW4, options=[IPOption_RR()]) / UDP(sport=5002, dport=5353) / b"x",
    "hbh6": eth() / IPv6(src=G6, dst=GW6) / IPv6ExtHdrHopByHop() / UDP(sport=5003, dport=5353) / b"x",
    "vlan": Ether(src=GUEST_MAC, dst=FERRY_MAC) / Dot1Q(vlan=5) / IP(src=G4, dst=GW4) / ICMP() / b"v",
    # rfc_probes' rows: an ARP probe and DAD for the gateway, protocols
    # the gateway does not speak, DHCP with a client identifier, a DHCPv6
    # Information-Request carrying an IA
    "arp_probe": Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GUEST_MAC, psrc="0.0.0.0", pdst=GW4),
    "dad6": Ether(src=GUEST_MAC, dst="33:33:ff:00:00:01") / IPv6(src="::", dst="ff02::1:ff00:1", hlim=255)
    / ICMPv6ND_NS(tgt=GW6),
    "proto4": eth() / IP(src=G4, dst=GW4, proto=253) / b"experimental",
    "proto6_ext": eth() / IPv6(src=G6, dst=GW6) / IPv6ExtHdrDestOpt(nh=253) / b"experimental",
    "dhcp_cid": Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
    / UDP(sport=68, dport=67) / (b"\x01\x01\x06\x00" + b"\x12\x34\x56\x78" + bytes(20)
                                 + bytes.fromhex(GUEST_MAC.replace(":", "")) + bytes(202) + b"\x63\x82\x53\x63"
                                 + b"\x35\x01\x01" + b"\x3d\x07\x01" + bytes.fromhex(GUEST_MAC.replace(":", ""))
                                 + b"\xff"),
    "dhcp6_info_ia": Ether(src=GUEST_MAC, dst="33:33:00:01:00:02") / IPv6(src="fe80::5054:ff:fe12:3456", dst="ff02::1:2")
    / UDP(sport=546, dport=547) / (b"\x0b\x00\x00\x01" + b"\x00\x01\x00\x0a\x00\x03\x00\x01"
                                   + bytes.fromhex(GUEST_MAC.replace(":", "")) + b"\x00\x03\x00\x0c" + bytes(12)),
}
for name, f in frames.items():
    write("frame", name, bytes(f))

frag4 = fragment(eth() / IP(src=G4, dst=GW4, id=77) / UDP(sport=5004, dport=5353) / (b"a" * 3000), fragsize=1200)
frag6 = fragment6(eth() / IPv6(src=G6, dst=GW6) / IPv6ExtHdrFragment(id=78) / UDP(sport=5005, dport=5353)
                  / (b"b" * 3000), 1280)
write("reassembly", "v4", b"".join(record(f) for f in frag4))
write("reassembly", "v6", b"".join(record(f) for f in frag6))
write("reassembly", "v4_reversed", b"".join(record(f, 1) for f in reversed(frag4)))
for name, f in (("frag4", frag4[0]), ("frag6", frag6[0])):
    write("frame", name, bytes(f))

ROUNDS = 0x30  # three loop rounds after the frame


def tcp4(flags, payload=b"", sport=40000):
    return eth() / IP(src=G4, dst=GW4) / TCP(sport=sport, dport=8080, flags=flags, window=65535) / payload


def tcp6(flags, payload=b"", sport=40001):
    return eth() / IPv6(src=G6, dst=GW6) / TCP(sport=sport, dport=8080, flags=flags, window=65535) / payload


FOLLOW = 0x02 | 0x01  # follow ferry's sequence numbers; checksum trusted (patched fields)
session4 = [record(frames["syn4"], ROUNDS), record(tcp4("A"), FOLLOW | ROUNDS),
            record(tcp4("PA", b"GET / HTTP/1.0\r\n\r\n"), FOLLOW | ROUNDS),
            record(tcp4("A"), FOLLOW | ROUNDS), record(tcp4("FA"), FOLLOW | ROUNDS),
            record(tcp4("A"), FOLLOW | ROUNDS)]
write("guest_input", "tcp4_session", b"\x00" + b"".join(session4))
write("guest_input", "tcp4_session_offload", b"\x01" + b"".join(session4))
session6 = [record(frames["syn6"], ROUNDS), record(tcp6("A"), FOLLOW | ROUNDS),
            record(tcp6("PA", b"x" * 2000), FOLLOW | 0x04 | ROUNDS), record(tcp6("R"), FOLLOW)]
write("guest_input", "tcp6_session", b"\x01" + b"".join(session6))
write("guest_input", "udp", b"\x00" + record(frames["udp4"], ROUNDS) + record(frames["udp6"], ROUNDS)
      + record(frames["ipopts"], ROUNDS) + record(frames["hbh6"], ROUNDS))
write("guest_input", "gateway", b"\x00" + b"".join(record(frames[n], ROUNDS) for n in ("arp", "ping4", "ping6", "ns", "vlan")))
write("guest_input", "fragments", b"\x00" + b"".join(record(f, ROUNDS) for f in frag4 + frag6))
write("guest_input", "rfc_probes", b"\x00" + b"".join(
    record(frames[n], ROUNDS) for n in ("arp_probe", "dad6", "proto4", "proto6_ext", "dhcp_cid", "dhcp6_info_ia")))
print("seeds written under", os.path.join(here, "corpus"), file=sys.stderr)

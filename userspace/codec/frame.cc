// Frame codec: parse and build Ethernet/ARP/IPv4/IPv6/ICMP/TCP/UDP frames.
//
// Theory of operation (parsing): a Reader is the span of bytes a layer may
// look at. Each layer first checks that its fixed header fits the span, then
// narrows the span to what its own length fields declare (IPv4 total length,
// IPv6 payload length, TCP data offset, UDP length), checks that the
// declaration fits, and hands the narrowed span on. Nothing is read through
// a raw pointer without such a check: every multi-byte read goes through
// get16/get32 on an offset already known to be inside the span. The first
// failed check sets the status and returns; fields of later layers stay zero.
//
// Layers and their checks:
//   Ethernet  14 bytes; one optional 802.1Q tag (4 bytes); a second tag is
//             unsupported.
//   ARP       28 bytes; Ethernet/IPv4 only (htype 1, ptype 0x0800, 6, 4);
//             op 1 or 2.
//   IPv4      version 4, IHL >= 5 and within the span, total length >= IHL
//             and within the span, options well formed (each option length
//             >= 2 and inside the header) and no source route (131, 137:
//             unsupported), header checksum, source not
//             multicast/broadcast, MF or fragment offset -> fragment.
//   IPv6      version 6, payload length within the span, extension headers
//             hop-by-hop (first only), routing (segments left 0),
//             destination options (their TLV options well formed, none
//             that ferry does not know and must discard for),
//             fragment -> fragment; at most
//             kMaxExtHeaders; source not multicast.
//   TCP       20 bytes, 5 <= data offset and header within the L4 length,
//             every option's length >= 2 and inside the header; a known
//             option with a wrong length is ignored (as Linux does) and
//             flagged has_unknown.
//   UDP       8 bytes, 8 <= UDP length <= L4 length (bytes beyond the UDP
//             length are ignored), checksum 0 allowed for IPv4 only.
//   ICMP(v6)  4 bytes; echo request/reply need 8 (id, seq).
//
// Theory of operation (building): each builder writes Ethernet, IP and L4
// headers front to back into `out`, after checking that the whole frame
// fits, then sums the L4 checksum over pseudo-header, L4 header and payload.
// A payload that already sits at its final offset in `out` is not copied;
// one elsewhere is moved with memmove, so overlapping spans are safe too.
#include "codec/frame.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "codec/bytes.h"
#include "codec/checksum.h"

namespace ferry {

namespace {

constexpr int kMaxExtHeaders = 8;

constexpr uint8_t kIpProtoHopOpts = 0;
constexpr uint8_t kIpProtoRouting = 43;
constexpr uint8_t kIpProtoFragment = 44;
constexpr uint8_t kIpProtoDstOpts = 60;

// 6 bytes into a MacAddr.
inline MacAddr get_mac(const uint8_t* p) {
  MacAddr m;
  std::memcpy(m.b.data(), p, 6);
  return m;
}

// Checks the TLV options of an IPv6 hop-by-hop or destination options
// header (p points at the header, len its full length): bad_header_length
// when an option runs past it; unsupported when an option ferry does not
// process (all but Pad1 and PadN) has a type whose two high bits say
// "discard the packet" (RFC 8200 4.2: 01, 10 and 11; only 00 says skip
// the option); else ok.
ParseStatus ipv6_tlv_check(const uint8_t* p, size_t len) {
  size_t i = 2;
  bool discard = false;
  while (i < len) {
    if (p[i] == 0) {  // Pad1
      i++;
      continue;
    }
    if (i + 2 > len) return ParseStatus::bad_header_length;
    size_t olen = size_t{2} + p[i + 1];
    if (i + olen > len) return ParseStatus::bad_header_length;
    if (p[i] != 1 && (p[i] >> 6) != 0) discard = true;
    i += olen;
  }
  return discard ? ParseStatus::unsupported : ParseStatus::ok;
}

// Validates IPv4 options (p at the first option byte, len bytes of options).
bool ipv4_options_ok(const uint8_t* p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = p[i];
    if (kind == 0) return true;  // end of option list
    if (kind == 1) {             // NOP
      i++;
      continue;
    }
    if (i + 2 > len) return false;
    uint8_t olen = p[i + 1];
    if (olen < 2 || i + olen > len) return false;
    i += olen;
  }
  return true;
}

// True when well-formed IPv4 options (p, len) hold a loose or strict source
// route (131, 137): the packet would have to go on to the next hop listed.
bool ipv4_source_routed(const uint8_t* p, size_t len) {
  for (size_t i = 0; i < len;) {
    if (p[i] == 0) return false;
    if (p[i] == 1) {
      i++;
      continue;
    }
    if (p[i] == 131 || p[i] == 137) return true;
    i += p[i + 1];  // ipv4_options_ok() checked every length
  }
  return false;
}

// Parses TCP options in [p, p+len); false on a malformed option length.
bool parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& o) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = p[i];
    if (kind == 0) return true;  // EOL
    if (kind == 1) {             // NOP
      i++;
      continue;
    }
    if (i + 2 > len) return false;
    uint8_t olen = p[i + 1];
    if (olen < 2 || i + olen > len) return false;
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case 2:
        if (olen == 4) {
          o.has_mss = true;
          o.mss = get16(v);
        } else {
          o.has_unknown = true;
        }
        break;
      case 3:
        if (olen == 3) {
          o.has_wscale = true;
          o.wscale = v[0];
        } else {
          o.has_unknown = true;
        }
        break;
      case 4:
        if (olen == 2)
          o.sack_permitted = true;
        else
          o.has_unknown = true;
        break;
      case 5:
        if (olen >= 10 && (olen - 2) % 8 == 0) {
          // Decoded from the first SACK option (at most 4 blocks fit in 40
          // bytes of options; a second option, which no sender sends, is
          // ignored).
          for (int k = 0; k < (olen - 2) / 8 && k < 4 && !o.has_sack_blocks; k++) {
            o.sack[k][0] = get32(v + 8 * k);
            o.sack[k][1] = get32(v + 8 * k + 4);
            o.sack_count = static_cast<uint8_t>(k + 1);
          }
          o.has_sack_blocks = true;
        } else
          o.has_unknown = true;
        break;
      case 8:
        if (olen == 10) {
          o.has_timestamps = true;
          o.ts_val = get32(v);
          o.ts_ecr = get32(v + 4);
        } else {
          o.has_unknown = true;
        }
        break;
      default:
        o.has_unknown = true;
        break;
    }
    i += olen;
  }
  return true;
}

// True when the 16-bit checksum field at `field` holds the folded pseudo-header
// sum uncomplemented: what a stack that offloads the TCP/UDP checksum writes
// there for the device to finish (Linux: ~tcp_v4_check(len, saddr, daddr, 0)).
bool is_partial_checksum(const uint8_t* field, uint32_t pseudo_sum) {
  uint16_t stored;
  std::memcpy(&stored, field, sizeof(stored));
  return stored == static_cast<uint16_t>(~csum_fold(pseudo_sum));
}

// L4 (TCP, UDP, ICMP, ICMPv6) over the already length-checked IP payload.
void parse_l4(std::span<const uint8_t> f, ParsedFrame& r, bool v6, ChecksumPolicy policy) {
  const bool verify = policy == ChecksumPolicy::all || policy == ChecksumPolicy::all_or_partial;
  const bool partial_ok = policy == ChecksumPolicy::all_or_partial;
  const uint8_t* l4 = f.data() + r.l4_offset;
  const size_t len = r.l4_len;
  auto pseudo = [&]() {
    return csum_pseudo(r.src, r.dst, r.protocol, static_cast<uint32_t>(len));
  };

  if (r.protocol == IPPROTO_TCP) {
    if (len < kTcpHeaderLen) {
      r.status = ParseStatus::truncated;
      return;
    }
    size_t doff = size_t{4} * (l4[12] >> 4);
    if (doff < kTcpHeaderLen || doff > len) {
      r.status = ParseStatus::bad_header_length;
      return;
    }
    TcpOptions opts;
    if (!parse_tcp_options(l4 + kTcpHeaderLen, doff - kTcpHeaderLen, opts)) {
      r.status = ParseStatus::bad_header_length;
      return;
    }
    if (verify && !csum_valid(l4, len, pseudo())) {
      if (!partial_ok || !is_partial_checksum(l4 + 16, pseudo())) {
        r.status = ParseStatus::bad_checksum;
        return;
      }
      r.l4_checksum_partial = true;
    }
    r.tcp.sport = get16(l4);
    r.tcp.dport = get16(l4 + 2);
    r.tcp.seq = get32(l4 + 4);
    r.tcp.ack = get32(l4 + 8);
    r.tcp.flags = l4[13];
    r.tcp.window = get16(l4 + 14);
    r.tcp.urgent = get16(l4 + 18);
    r.tcp.opts = opts;
    r.tcp.payload_offset = r.l4_offset + doff;
    r.tcp.payload_len = len - doff;
    r.status = ParseStatus::ok;
    return;
  }

  if (r.protocol == IPPROTO_UDP) {
    if (len < kUdpHeaderLen) {
      r.status = ParseStatus::truncated;
      return;
    }
    size_t ulen = get16(l4 + 4);
    if (ulen < kUdpHeaderLen || ulen > len) {
      r.status = ParseStatus::bad_total_length;
      return;
    }
    if (verify) {
      uint16_t stored = get16(l4 + 6);
      bool zero_ok = !v6 && stored == 0;
      const uint32_t upseudo = csum_pseudo(r.src, r.dst, IPPROTO_UDP, static_cast<uint32_t>(ulen));
      if (!zero_ok && !csum_valid(l4, ulen, upseudo)) {
        if (!partial_ok || !is_partial_checksum(l4 + 6, upseudo)) {
          r.status = ParseStatus::bad_checksum;
          return;
        }
        r.l4_checksum_partial = true;
      }
    }
    r.udp.sport = get16(l4);
    r.udp.dport = get16(l4 + 2);
    r.udp.payload_offset = r.l4_offset + kUdpHeaderLen;
    r.udp.payload_len = ulen - kUdpHeaderLen;
    r.status = ParseStatus::ok;
    return;
  }

  const bool icmp4 = !v6 && r.protocol == IPPROTO_ICMP;
  const bool icmp6 = v6 && r.protocol == IPPROTO_ICMPV6;
  if (icmp4 || icmp6) {
    if (len < 4) {
      r.status = ParseStatus::truncated;
      return;
    }
    uint8_t type = l4[0];
    bool echo = icmp4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
    if (echo && len < 8) {
      r.status = ParseStatus::truncated;
      return;
    }
    if (verify && !csum_valid(l4, len, icmp6 ? pseudo() : 0)) {
      r.status = ParseStatus::bad_checksum;
      return;
    }
    r.icmp.type = type;
    r.icmp.code = l4[1];
    if (echo) {
      r.icmp.id = get16(l4 + 4);
      r.icmp.seq = get16(l4 + 6);
    }
    r.icmp.body_offset = r.l4_offset + 4;
    r.icmp.body_len = len - 4;
    r.status = ParseStatus::ok;
    return;
  }

  r.status = ParseStatus::ok;  // other protocol: L3 is valid, L4 not examined
}

// IPv4 header at r.l3_offset.
void parse_ipv4(std::span<const uint8_t> f, ParsedFrame& r, ChecksumPolicy policy) {
  const size_t avail = f.size() - r.l3_offset;
  const uint8_t* ip = f.data() + r.l3_offset;
  if (avail < kIpv4HeaderLen) {
    r.status = ParseStatus::truncated;
    return;
  }
  if ((ip[0] >> 4) != 4) {
    r.status = ParseStatus::bad_version;
    return;
  }
  size_t ihl = size_t{4} * (ip[0] & 0x0f);
  if (ihl < kIpv4HeaderLen) {
    r.status = ParseStatus::bad_header_length;
    return;
  }
  if (ihl > avail) {
    r.status = ParseStatus::truncated;
    return;
  }
  size_t total = get16(ip + 2);
  if (total < ihl) {
    r.status = ParseStatus::bad_total_length;
    return;
  }
  if (total > avail) {
    r.status = ParseStatus::truncated;
    return;
  }
  if (!ipv4_options_ok(ip + kIpv4HeaderLen, ihl - kIpv4HeaderLen)) {
    r.status = ParseStatus::bad_header_length;
    return;
  }
  // Source-routed packets are not for us to act on (as Linux with
  // accept_source_route = 0; RFC 7126 recommends dropping them).
  if (ipv4_source_routed(ip + kIpv4HeaderLen, ihl - kIpv4HeaderLen)) {
    r.status = ParseStatus::unsupported;
    return;
  }
  if (policy != ChecksumPolicy::none && !csum_valid(ip, ihl, 0)) {
    r.status = ParseStatus::bad_checksum;
    return;
  }
  r.l3 = L3Kind::ipv4;
  r.tos = ip[1];
  r.ttl = ip[8];
  r.protocol = ip[9];
  r.src = InetAddr::from_v4_bytes(ip + 12);
  r.dst = InetAddr::from_v4_bytes(ip + 16);
  r.l4_offset = r.l3_offset + ihl;
  r.l4_len = total - ihl;
  if (r.src.is_multicast() || (ip[12] & ip[13] & ip[14] & ip[15]) == 0xff) {
    r.status = ParseStatus::bad_address;
    return;
  }
  uint16_t frag = get16(ip + 6);
  if ((frag & 0x2000) || (frag & 0x1fff)) {  // MF or offset
    r.status = ParseStatus::fragment;
    return;
  }
  parse_l4(f, r, false, policy);
}

// IPv6 header and extension header chain at r.l3_offset.
void parse_ipv6(std::span<const uint8_t> f, ParsedFrame& r, ChecksumPolicy policy) {
  const size_t avail = f.size() - r.l3_offset;
  const uint8_t* ip = f.data() + r.l3_offset;
  if (avail < kIpv6HeaderLen) {
    r.status = ParseStatus::truncated;
    return;
  }
  if ((ip[0] >> 4) != 6) {
    r.status = ParseStatus::bad_version;
    return;
  }
  size_t plen = get16(ip + 4);
  if (kIpv6HeaderLen + plen > avail) {
    r.status = ParseStatus::truncated;
    return;
  }
  r.l3 = L3Kind::ipv6;
  r.tos = static_cast<uint8_t>(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
  r.ttl = ip[7];
  r.src = InetAddr::from_v6_bytes(ip + 8);
  r.dst = InetAddr::from_v6_bytes(ip + 24);
  if (r.src.is_multicast()) {
    r.status = ParseStatus::bad_address;
    return;
  }

  // Walk the chain inside [off, end), the declared payload.
  uint8_t next = ip[6];
  size_t off = r.l3_offset + kIpv6HeaderLen;
  const size_t end = off + plen;
  for (int n = 0;; n++) {
    if (next != kIpProtoHopOpts && next != kIpProtoRouting && next != kIpProtoDstOpts &&
        next != kIpProtoFragment)
      break;
    if (n >= kMaxExtHeaders || (next == kIpProtoHopOpts && n != 0)) {
      r.status = ParseStatus::unsupported;
      return;
    }
    if (end - off < 8) {  // every extension header is at least 8 bytes
      r.status = ParseStatus::truncated;
      return;
    }
    const uint8_t* h = f.data() + off;
    if (next == kIpProtoFragment) {
      r.protocol = h[0];
      r.l4_offset = off + 8;
      r.l4_len = end - (off + 8);
      r.status = ParseStatus::fragment;
      return;
    }
    size_t hlen = (size_t{h[1]} + 1) * 8;
    if (hlen > end - off) {
      r.status = ParseStatus::truncated;
      return;
    }
    if (next != kIpProtoRouting) {
      if (const ParseStatus tlv = ipv6_tlv_check(h, hlen); tlv != ParseStatus::ok) {
        r.status = tlv;
        return;
      }
    }
    // RFC 8200 4.4: with Segments Left > 0 we would have to route the
    // packet on (type 0 is deprecated, RFC 5095; no other type is ours to
    // process), so it is not for us as it stands.
    if (next == kIpProtoRouting && h[3] != 0) {
      r.status = ParseStatus::unsupported;
      return;
    }
    next = h[0];
    off += hlen;
  }
  r.protocol = next;
  r.l4_offset = off;
  r.l4_len = end - off;
  parse_l4(f, r, true, policy);
}

// ARP at r.l3_offset.
void parse_arp(std::span<const uint8_t> f, ParsedFrame& r) {
  if (f.size() - r.l3_offset < 28) {
    r.status = ParseStatus::truncated;
    return;
  }
  const uint8_t* a = f.data() + r.l3_offset;
  if (get16(a) != 1 || get16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4) {
    r.status = ParseStatus::unsupported;
    return;
  }
  r.l3 = L3Kind::arp;
  r.arp.op = get16(a + 6);
  r.arp.sha = get_mac(a + 8);
  r.arp.spa = InetAddr::from_v4_bytes(a + 14);
  r.arp.tha = get_mac(a + 18);
  r.arp.tpa = InetAddr::from_v4_bytes(a + 24);
  r.status = (r.arp.op == 1 || r.arp.op == 2) ? ParseStatus::ok : ParseStatus::unsupported;
}

// Ethernet header (and optional VLAN tag) into r; the L3 offset, or 0 when cut.
size_t parse_eth(std::span<const uint8_t> f, ParsedFrame& r) {
  if (f.size() < kEthHeaderLen) return 0;
  const uint8_t* e = f.data();
  uint16_t type = get16(e + 12);
  size_t off = kEthHeaderLen;
  if (type == kEtherTypeVlan) {
    if (f.size() < kEthHeaderLen + 4) return 0;
    type = get16(e + 16);
    off += 4;
    r.vlan = true;
  }
  r.eth_dst = get_mac(e);
  r.eth_src = get_mac(e + 6);
  r.ethertype = type;
  return off;
}

// Writes the Ethernet header; returns its length.
size_t put_eth(uint8_t* p, const MacAddr& dst, const MacAddr& src, uint16_t type) {
  std::memcpy(p, dst.b.data(), 6);
  std::memcpy(p + 6, src.b.data(), 6);
  put16(p + 12, type);
  return kEthHeaderLen;
}

// Writes Ethernet + IPv4/IPv6 headers for an L4 of l4_len bytes; returns the
// L4 offset, or 0 when l4_len does not fit the IP length fields.
size_t put_l2l3(uint8_t* p, const L2L3& ip, uint8_t protocol, size_t l4_len) {
  bool v6 = !ip.src.is_v4();
  size_t off = put_eth(p, ip.eth_dst, ip.eth_src, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
  uint8_t* h = p + off;
  if (!v6) {
    if (l4_len > 65535 - kIpv4HeaderLen) return 0;
    h[0] = 0x45;
    h[1] = 0;
    put16(h + 2, static_cast<uint16_t>(kIpv4HeaderLen + l4_len));
    put16(h + 4, 0);       // id: DF is set, so no fragment needs it
    put16(h + 6, 0x4000);  // DF
    h[8] = ip.ttl;
    h[9] = protocol;
    put16(h + 10, 0);
    std::memcpy(h + 12, ip.src.v4_bytes(), 4);
    std::memcpy(h + 16, ip.dst.v4_bytes(), 4);
    uint16_t c = csum_fold(csum_partial(h, kIpv4HeaderLen, 0));
    std::memcpy(h + 10, &c, 2);
    return off + kIpv4HeaderLen;
  }
  if (l4_len > 65535) return 0;
  put32(h, 0x60000000u);  // traffic class 0, flow label 0
  put16(h + 4, static_cast<uint16_t>(l4_len));
  h[6] = protocol;
  h[7] = ip.ttl;
  std::memcpy(h + 8, ip.src.b.data(), 16);
  std::memcpy(h + 24, ip.dst.b.data(), 16);
  return off + kIpv6HeaderLen;
}

// Ethernet + IP header length for the family.
inline size_t l2l3_len(bool v6) { return kEthHeaderLen + (v6 ? kIpv6HeaderLen : kIpv4HeaderLen); }

// Bytes of TCP options the builder emits for opts (always a multiple of 4).
size_t tcp_options_len(const TcpOptions& o) {
  size_t n = 0;
  if (o.has_mss) n += 4;
  if (o.has_wscale) n += 4;
  if (o.has_timestamps)
    n += 12;  // SACK-permitted + TS, or NOP NOP TS
  else if (o.sack_permitted)
    n += 4;
  if (o.sack_count) n += 4 + 8 * size_t{std::min<uint8_t>(o.sack_count, o.has_timestamps ? 3 : 4)};
  return n;
}

// Places the payload at dst unless it is already there.
inline void place_payload(uint8_t* dst, std::span<const uint8_t> payload) {
  if (!payload.empty() && payload.data() != dst) std::memmove(dst, payload.data(), payload.size());
}

}  // namespace

// Human-readable status name.
const char* to_string(ParseStatus s) {
  switch (s) {
    case ParseStatus::ok: return "ok";
    case ParseStatus::truncated: return "truncated";
    case ParseStatus::bad_version: return "bad_version";
    case ParseStatus::bad_header_length: return "bad_header_length";
    case ParseStatus::bad_total_length: return "bad_total_length";
    case ParseStatus::bad_checksum: return "bad_checksum";
    case ParseStatus::bad_address: return "bad_address";
    case ParseStatus::fragment: return "fragment";
    case ParseStatus::unsupported: return "unsupported";
  }
  return "unknown";
}

// Entry point: Ethernet, then the L3 the EtherType names.
ParsedFrame parse_frame(std::span<const uint8_t> frame, bool verify_checksums) {
  return parse_frame(frame, verify_checksums ? ChecksumPolicy::all : ChecksumPolicy::none);
}

// Entry point with an explicit checksum policy.
ParsedFrame parse_frame(std::span<const uint8_t> frame, ChecksumPolicy policy) {
  ParsedFrame r;
  size_t off = parse_eth(frame, r);
  if (off == 0) {
    r.status = ParseStatus::truncated;
    return r;
  }
  r.l3_offset = off;
  switch (r.ethertype) {
    case kEtherTypeArp: parse_arp(frame, r); break;
    case kEtherTypeIpv4: parse_ipv4(frame, r, policy); break;
    case kEtherTypeIpv6: parse_ipv6(frame, r, policy); break;
    default: r.status = ParseStatus::unsupported; break;
  }
  return r;
}

// Ethernet + IP + TCP header with the options the builder emits.
size_t tcp_frame_header_len(bool v6, const TcpOptions& opts) {
  return l2l3_len(v6) + kTcpHeaderLen + tcp_options_len(opts);
}

// TCP segment: headers, options, payload (in place or moved), checksums.
size_t build_tcp_frame(std::span<uint8_t> out, const TcpSegment& seg) {
  const bool v6 = !seg.ip.src.is_v4();
  const size_t optlen = tcp_options_len(seg.opts);
  const size_t thl = kTcpHeaderLen + optlen;
  const size_t hdr = l2l3_len(v6) + thl;
  const size_t total = hdr + seg.payload.size();
  if (out.size() < total) return 0;
  uint8_t* p = out.data();
  place_payload(p + hdr, seg.payload);  // first: the headers may overlap its old place
  size_t l4off = put_l2l3(p, seg.ip, IPPROTO_TCP, thl + seg.payload.size());
  if (l4off == 0) return 0;
  uint8_t* t = p + l4off;
  put16(t, seg.sport);
  put16(t + 2, seg.dport);
  put32(t + 4, seg.seq);
  put32(t + 8, seg.ack);
  t[12] = static_cast<uint8_t>((thl / 4) << 4);
  t[13] = seg.flags;
  put16(t + 14, seg.window);
  put16(t + 16, 0);
  put16(t + 18, 0);
  uint8_t* o = t + kTcpHeaderLen;
  const TcpOptions& op = seg.opts;
  if (op.has_mss) {
    o[0] = 2;
    o[1] = 4;
    put16(o + 2, op.mss);
    o += 4;
  }
  if (op.has_wscale) {
    o[0] = 1;
    o[1] = 3;
    o[2] = 3;
    o[3] = op.wscale;
    o += 4;
  }
  if (op.has_timestamps) {
    if (op.sack_permitted) {
      o[0] = 4;
      o[1] = 2;
    } else {
      o[0] = 1;
      o[1] = 1;
    }
    o[2] = 8;
    o[3] = 10;
    put32(o + 4, op.ts_val);
    put32(o + 8, op.ts_ecr);
    o += 12;
  } else if (op.sack_permitted) {
    o[0] = 1;
    o[1] = 1;
    o[2] = 4;
    o[3] = 2;
    o += 4;
  }
  if (op.sack_count) {
    const uint8_t nb = std::min<uint8_t>(op.sack_count, op.has_timestamps ? 3 : 4);
    o[0] = 1;
    o[1] = 1;
    o[2] = 5;
    o[3] = static_cast<uint8_t>(2 + 8 * nb);
    o += 4;
    for (uint8_t i = 0; i < nb; i++) {
      put32(o, op.sack[i][0]);
      put32(o + 4, op.sack[i][1]);
      o += 8;
    }
  }
  const size_t l4len = thl + seg.payload.size();
  uint32_t s = csum_pseudo(seg.ip.src, seg.ip.dst, IPPROTO_TCP, static_cast<uint32_t>(l4len));
  if (seg.partial_checksum) {
    // CHECKSUM_PARTIAL convention: the folded pseudo-header sum, not
    // complemented; whoever completes it adds the segment from the TCP header.
    const uint16_t c = static_cast<uint16_t>(~csum_fold(s));
    std::memcpy(t + 16, &c, 2);
    return total;
  }
  uint16_t c = csum_fold(csum_partial(t, l4len, s));
  std::memcpy(t + 16, &c, 2);
  return total;
}

// Ethernet + IP + UDP header.
size_t udp_frame_header_len(bool v6) { return l2l3_len(v6) + kUdpHeaderLen; }

// UDP datagram: headers, payload (in place or moved), checksums.
size_t build_udp_frame(std::span<uint8_t> out, const UdpDatagram& d) {
  const bool v6 = !d.ip.src.is_v4();
  const size_t hdr = udp_frame_header_len(v6);
  const size_t total = hdr + d.payload.size();
  const size_t l4len = kUdpHeaderLen + d.payload.size();
  if (out.size() < total || l4len > 65535) return 0;
  uint8_t* p = out.data();
  place_payload(p + hdr, d.payload);
  size_t l4off = put_l2l3(p, d.ip, IPPROTO_UDP, l4len);
  if (l4off == 0) return 0;
  uint8_t* u = p + l4off;
  put16(u, d.sport);
  put16(u + 2, d.dport);
  put16(u + 4, static_cast<uint16_t>(l4len));
  put16(u + 6, 0);
  uint32_t s = csum_pseudo(d.ip.src, d.ip.dst, IPPROTO_UDP, static_cast<uint32_t>(l4len));
  uint16_t c = csum_fold(csum_partial(u, l4len, s));
  if (c == 0) c = 0xffff;  // 0 means "no checksum" (RFC 768)
  std::memcpy(u + 6, &c, 2);
  return total;
}

// ICMP for IPv4 sources, ICMPv6 (with pseudo-header) for IPv6.
size_t build_icmp_frame(std::span<uint8_t> out, const L2L3& ip, uint8_t type, uint8_t code,
                        std::span<const uint8_t> body) {
  const bool v6 = !ip.src.is_v4();
  const size_t hdr = l2l3_len(v6) + 4;
  const size_t total = hdr + body.size();
  const size_t l4len = 4 + body.size();
  if (out.size() < total) return 0;
  uint8_t* p = out.data();
  place_payload(p + hdr, body);
  const uint8_t proto = v6 ? uint8_t{IPPROTO_ICMPV6} : uint8_t{IPPROTO_ICMP};
  size_t l4off = put_l2l3(p, ip, proto, l4len);
  if (l4off == 0) return 0;
  uint8_t* m = p + l4off;
  m[0] = type;
  m[1] = code;
  put16(m + 2, 0);
  uint32_t s = v6 ? csum_pseudo(ip.src, ip.dst, proto, static_cast<uint32_t>(l4len)) : 0;
  uint16_t c = csum_fold(csum_partial(m, l4len, s));
  std::memcpy(m + 2, &c, 2);
  return total;
}

namespace {

// An ARP packet for IPv4 over Ethernet (RFC 826) behind an Ethernet header
// from sha to eth_dst.
size_t build_arp(std::span<uint8_t> out, uint16_t op, const MacAddr& eth_dst, const MacAddr& sha,
                 const InetAddr& spa, const MacAddr& tha, const InetAddr& tpa) {
  constexpr size_t kLen = kEthHeaderLen + 28;
  if (out.size() < kLen || !spa.is_v4() || !tpa.is_v4()) return 0;
  uint8_t* p = out.data();
  uint8_t* a = p + put_eth(p, eth_dst, sha, kEtherTypeArp);
  put16(a, 1);
  put16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  std::memcpy(a + 8, sha.b.data(), 6);
  std::memcpy(a + 14, spa.v4_bytes(), 4);
  std::memcpy(a + 18, tha.b.data(), 6);
  std::memcpy(a + 24, tpa.v4_bytes(), 4);
  return kLen;
}

}  // namespace

// ARP reply: Ethernet from sha to tha, "spa is at sha".
size_t build_arp_reply(std::span<uint8_t> out, const MacAddr& sha, const InetAddr& spa,
                       const MacAddr& tha, const InetAddr& tpa) {
  return build_arp(out, 2, tha, sha, spa, tha, tpa);
}

// ARP request: broadcast, target hardware address zero.
size_t build_arp_request(std::span<uint8_t> out, const MacAddr& sha, const InetAddr& spa, const InetAddr& tpa) {
  return build_arp(out, 1, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, sha, spa, MacAddr{}, tpa);
}

// Neighbour solicitation (RFC 4861 4.3, 7.2.2): to ff02::1:ffXX:XXXX (MAC
// 33:33:ff:XX:XX:XX) with the source link-layer address option.
size_t build_ndp_ns(std::span<uint8_t> out, const MacAddr& mac, const InetAddr& src, const InetAddr& target) {
  if (src.is_v4() || target.is_v4()) return 0;
  uint8_t body[4 + 16 + 8] = {};
  std::memcpy(body + 4, target.b.data(), 16);
  body[20] = 1;  // source link-layer address
  body[21] = 1;  // length in units of 8 bytes
  std::memcpy(body + 22, mac.b.data(), 6);
  L2L3 l;
  l.eth_src = mac;
  l.eth_dst = MacAddr{{0x33, 0x33, 0xff, target.b[13], target.b[14], target.b[15]}};
  l.src = src;
  l.dst = InetAddr::from_v6_bytes(std::array<uint8_t, 16>{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target.b[13],
                                                          target.b[14], target.b[15]}.data());
  l.ttl = 255;
  return build_icmp_frame(out, l, 135, 0, body);
}

// Neighbour advertisement (RFC 4861 4.4) with the target link-layer option.
size_t build_ndp_na(std::span<uint8_t> out, const L2L3& ip, const InetAddr& target,
                    const MacAddr& mac, bool router, bool solicited) {
  if (ip.src.is_v4() || target.is_v4()) return 0;
  uint8_t body[4 + 16 + 8];
  uint32_t flags = (router ? 0x80000000u : 0) | (solicited ? 0x40000000u : 0) | 0x20000000u;  // R, S, O
  put32(body, flags);
  std::memcpy(body + 4, target.b.data(), 16);
  body[20] = 2;  // target link-layer address
  body[21] = 1;  // length in units of 8 bytes
  std::memcpy(body + 22, mac.b.data(), 6);
  L2L3 l = ip;
  l.ttl = 255;  // RFC 4861: receivers drop NDP with any other hop limit
  return build_icmp_frame(out, l, 136, 0, body);
}

}  // namespace ferry

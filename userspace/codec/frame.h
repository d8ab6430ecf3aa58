// Frame codec: parse and build Ethernet frames carrying ARP, IPv4, IPv6,
// ICMP, ICMPv6, TCP (with options) and UDP.
//
// Parsing takes a byte span and never reads outside it. It validates every
// length and offset (Ethernet, IP header and total lengths, IPv6 extension
// header chain, TCP data offset and option lengths, UDP length) and, when
// asked, the L3/L4 checksums. A frame that fails a check gets a non-ok
// status naming the reason; the fields parsed before the failure are still
// filled in, those after it are zero. Trailing Ethernet padding beyond the IP
// total length is ignored. IPv4 fragments are reported (status fragment),
// not reassembled.
//
// Building writes into a caller-provided buffer and returns the frame length,
// or 0 when the buffer is too small. Builders compute every checksum. A TCP or
// UDP payload may already sit in place in the output buffer (at the offset the
// header length functions return): then no byte is copied, which is how the
// TCP translator peeks socket data straight into frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/addr.h"

namespace ferry {

inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kIpv4HeaderLen = 20;
inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kTcpHeaderLen = 20;
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kMaxFrameLen = 65535 + kEthHeaderLen;  // MTU 65520 fits

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10,
                         kUrg = 0x20, kEce = 0x40, kCwr = 0x80;
}

enum class ParseStatus : uint8_t {
  ok,
  truncated,          // shorter than a header or a declared length needs
  bad_version,        // IP version nibble does not match the EtherType
  bad_header_length,  // IPv4 IHL < 5, TCP data offset < 5, option length 0/overflow
  bad_total_length,   // IP total/payload length or UDP length inconsistent
  bad_checksum,       // IPv4 header or L4 checksum wrong (only when verified)
  bad_address,        // source multicast/broadcast, or similar
  fragment,           // IPv4 fragment or IPv6 fragment header
  unsupported,        // well-formed but not handled (e.g. ARP for non-Ethernet/IPv4)
};
const char* to_string(ParseStatus s);

enum class L3Kind : uint8_t { none, arp, ipv4, ipv6 };

struct TcpOptions {
  bool has_mss = false;
  uint16_t mss = 0;
  bool has_wscale = false;
  uint8_t wscale = 0;
  bool sack_permitted = false;
  bool has_timestamps = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
  bool has_sack_blocks = false;  // SACK option present (its blocks below)
  bool has_unknown = false;      // any option kind other than the above and NOP/EOL
  // SACK blocks (RFC 2018), [start, end) in sequence numbers, at most 4 (3
  // with timestamps): emitted, and decoded from the first SACK option.
  uint8_t sack_count = 0;
  uint32_t sack[4][2] = {};
};

struct ParsedFrame {
  ParseStatus status = ParseStatus::truncated;
  MacAddr eth_dst, eth_src;
  uint16_t ethertype = 0;  // host order, after an optional VLAN tag
  bool vlan = false;       // the frame carried an 802.1Q tag
  L3Kind l3 = L3Kind::none;

  struct Arp {
    uint16_t op = 0;  // 1 request, 2 reply
    MacAddr sha, tha;
    InetAddr spa, tpa;
  } arp;

  // IPv4 / IPv6
  InetAddr src, dst;
  uint8_t ttl = 0;       // hop limit for IPv6
  uint8_t tos = 0;       // traffic class for IPv6
  uint8_t protocol = 0;  // IPv6: the final next header after extension headers
  size_t l3_offset = 0;
  size_t l4_offset = 0;
  size_t l4_len = 0;  // from the IP length fields, padding excluded

  struct Tcp {
    uint16_t sport = 0, dport = 0;  // host order
    uint32_t seq = 0, ack = 0;
    uint8_t flags = 0;
    uint16_t window = 0;  // raw, unscaled
    uint16_t urgent = 0;
    TcpOptions opts;
    size_t payload_offset = 0, payload_len = 0;
  } tcp;

  struct Udp {
    uint16_t sport = 0, dport = 0;
    size_t payload_offset = 0, payload_len = 0;
  } udp;

  struct Icmp {  // ICMP and ICMPv6
    uint8_t type = 0, code = 0;
    uint16_t id = 0, seq = 0;                  // echo only, host order
    size_t body_offset = 0, body_len = 0;       // after the 4-byte type/code/csum
  } icmp;

  // ChecksumPolicy::all_or_partial took the TCP/UDP checksum in its partial form.
  bool l4_checksum_partial = false;

  bool ok() const { return status == ParseStatus::ok; }
  bool is_tcp() const { return l3 >= L3Kind::ipv4 && protocol == IPPROTO_TCP; }
  bool is_udp() const { return l3 >= L3Kind::ipv4 && protocol == IPPROTO_UDP; }
};

// Which checksums parse_frame() verifies. l3_only is for frames whose L4
// checksum the sender left partial (a tap with a vnet header and checksum
// offload: the guest kernel never computed it, the link is memory).
// all_or_partial verifies every checksum but also takes a TCP or UDP one
// that holds the pseudo-header's sum alone, what a sender that offloaded
// the checksum left there (CHECKSUM_PARTIAL), and marks the frame
// (l4_checksum_partial): for a port that lost the offload's flag, such as
// native XDP, which has no way to tell the program or the next device.
enum class ChecksumPolicy : uint8_t { all, l3_only, none, all_or_partial };

// Parses an Ethernet frame. With verify_checksums, IPv4 header, TCP, UDP,
// ICMP and ICMPv6 checksums are checked (UDP over IPv4 with checksum 0 is
// accepted, as RFC 768 allows).
ParsedFrame parse_frame(std::span<const uint8_t> frame, bool verify_checksums = true);
ParsedFrame parse_frame(std::span<const uint8_t> frame, ChecksumPolicy policy);

// ---- building --------------------------------------------------------------

struct L2L3 {
  MacAddr eth_src, eth_dst;
  InetAddr src, dst;  // same family
  uint8_t ttl = 64;
};

struct TcpSegment {
  L2L3 ip;
  uint16_t sport = 0, dport = 0;  // host order
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // raw, already scaled down
  TcpOptions opts;      // emitted: MSS, window scale, SACK-permitted, timestamps
  std::span<const uint8_t> payload;  // may alias the output at its payload offset
  // Leave the TCP checksum partial (pseudo-header sum only) for a port that
  // completes it (tap checksum offload): the payload is then never summed.
  bool partial_checksum = false;
};

// Bytes in front of a TCP payload: Ethernet + IP + TCP header with options.
size_t tcp_frame_header_len(bool v6, const TcpOptions& opts);
size_t build_tcp_frame(std::span<uint8_t> out, const TcpSegment& seg);

struct UdpDatagram {
  L2L3 ip;
  uint16_t sport = 0, dport = 0;
  std::span<const uint8_t> payload;  // may alias the output at its payload offset
};
size_t udp_frame_header_len(bool v6);
size_t build_udp_frame(std::span<uint8_t> out, const UdpDatagram& dgram);

// ICMP (v4) or ICMPv6 (v6), by the family of ip.src. `body` follows the
// 4-byte type/code/checksum header (for echo: id, seq, data).
size_t build_icmp_frame(std::span<uint8_t> out, const L2L3& ip, uint8_t type, uint8_t code,
                        std::span<const uint8_t> body);

// ARP reply: "tpa is at sha", sent to the requester (tha/tpa).
size_t build_arp_reply(std::span<uint8_t> out, const MacAddr& sha, const InetAddr& spa,
                       const MacAddr& tha, const InetAddr& tpa);

// ARP request: "who has tpa? tell spa (at sha)", broadcast.
size_t build_arp_request(std::span<uint8_t> out, const MacAddr& sha, const InetAddr& spa, const InetAddr& tpa);

// NDP neighbour solicitation for `target` from `src` (our MAC as source
// link-layer option), to target's solicited-node multicast group.
size_t build_ndp_ns(std::span<uint8_t> out, const MacAddr& mac, const InetAddr& src, const InetAddr& target);

// NDP neighbour advertisement for `target` with target link-layer address
// `mac`, override flag set, router and solicited flags as given (not
// solicited: the defence of an address against DAD, RFC 4861 7.2.4).
size_t build_ndp_na(std::span<uint8_t> out, const L2L3& ip, const InetAddr& target,
                    const MacAddr& mac, bool router, bool solicited = true);

}  // namespace ferry

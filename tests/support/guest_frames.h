// Frames the default guest (Config::defaults()) sends to its gateway: what
// the translator and the BPF programs see on the wire. One TCP segment
// builder for every test (the BPF tests, the translator's), so that a frame
// is described by what the test varies and nothing else.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/frame.h"
#include "common/config.h"

namespace ferry::testing {

// Ethernet and IP of a guest -> gateway frame, IPv4 or IPv6, from guest_mac
// to ferry's MAC.
inline L2L3 guest_to_gateway(bool v6, const MacAddr& guest_mac) {
  const Config c = Config::defaults();
  L2L3 l;
  l.eth_src = guest_mac;
  l.eth_dst = c.our_mac;
  l.src = v6 ? c.guest6.addr : c.guest4.addr;
  l.dst = v6 ? c.gateway6 : c.gateway4;
  return l;
}

// A TCP segment (usually a guest's): what tests vary, the rest defaulted. Written
// with designated initializers: tcp_frame({.ip = ip4, .seq = 7, .flags = kSyn}).
struct TcpSpec {
  L2L3 ip;  // usually guest_to_gateway()
  uint16_t sport = 40000, dport = 80;
  uint32_t seq = 1000, ack = 2000;
  uint8_t flags = tcpflag::kAck;
  uint16_t window = 512;
  size_t payload = 0;  // bytes of data, each `fill`
  uint8_t fill = 0x61;
  TcpOptions opts;
};

// The frame of g, with valid checksums, exactly as long as it is.
inline std::vector<uint8_t> tcp_frame(const TcpSpec& g) {
  const std::vector<uint8_t> data(g.payload, g.fill);
  TcpSegment s;
  s.ip = g.ip;
  s.sport = g.sport;
  s.dport = g.dport;
  s.seq = g.seq;
  s.ack = g.ack;
  s.flags = g.flags;
  s.window = g.window;
  s.opts = g.opts;
  s.payload = data;
  std::vector<uint8_t> f(kMaxFrameLen);
  f.resize(build_tcp_frame(f, s));
  return f;
}

// The timestamps option (RFC 7323) with these values.
inline TcpOptions timestamps(uint32_t val, uint32_t ecr) {
  TcpOptions o;
  o.has_timestamps = true;
  o.ts_val = val;
  o.ts_ecr = ecr;
  return o;
}

}  // namespace ferry::testing

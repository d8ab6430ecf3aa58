// IP fragmentation of frames toward the guest (codec/fragment.h): a UDP
// datagram above the MTU splits into fragments of at most MTU bytes of IP,
// 8-byte aligned offsets, MF on all but the last, one identification, valid
// IPv4 header checksums, an IPv6 Fragment header; the pieces put back
// together are the original datagram, UDP checksum included.
// test-libs: ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codec/addr.h"
#include "codec/checksum.h"
#include "codec/fragment.h"
#include "codec/frame.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

Bytes Datagram(bool v6, size_t payload_len) {
  UdpDatagram d;
  d.ip.eth_src = MacAddr{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};
  d.ip.eth_dst = MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  d.ip.src = *InetAddr::parse(v6 ? "fd00:f::1" : "198.18.0.1");
  d.ip.dst = *InetAddr::parse(v6 ? "fd00:f::2" : "198.18.0.2");
  d.sport = 5201;
  d.dport = 40000;
  Bytes payload(payload_len);
  for (size_t i = 0; i < payload_len; i++) payload[i] = static_cast<uint8_t>(i * 7 + 3);
  d.payload = payload;
  Bytes out(kMaxFrameLen);
  size_t n = build_udp_frame(out, d);
  out.resize(n);
  return out;
}

// Fragments `frame` at `mtu`; checks each; returns the reassembled IP
// payload (what followed the IP header in the original).
Bytes FragmentAndCheck(const Bytes& frame, unsigned mtu, bool v6, size_t* count) {
  Bytes scratch(kMaxFrameLen);
  Bytes joined;
  size_t expect_off = 0;
  bool last_seen = false;
  *count = fragment_frame(frame, mtu, 0x12345678, scratch, [&](std::span<const uint8_t> f) {
    EXPECT_FALSE(last_seen) << "a fragment after the last";
    EXPECT_LE(f.size() - 14, mtu);
    EXPECT_EQ(0, std::memcmp(f.data(), frame.data(), 14));  // Ethernet header kept
    const uint8_t* ip = f.data() + 14;
    size_t off = 0, data_at = 0;
    bool more = false;
    if (!v6) {
      EXPECT_EQ(get16(ip + 2), f.size() - 14);
      EXPECT_EQ(get16(ip + 4), 0x5678);
      const uint16_t fo = get16(ip + 6);
      EXPECT_EQ(fo & 0x4000, 0) << "DF cleared";
      more = fo & 0x2000;
      off = static_cast<size_t>(fo & 0x1fff) * 8;
      EXPECT_EQ(csum_fold(csum_partial(ip, 20, 0)), 0) << "IPv4 header checksum";
      EXPECT_EQ(ip[9], 17);
      data_at = 14 + 20;
    } else {
      EXPECT_EQ(get16(ip + 4), f.size() - 14 - 40);
      EXPECT_EQ(ip[6], 44);  // Fragment header
      const uint8_t* fh = ip + 40;
      EXPECT_EQ(fh[0], 17);
      const uint16_t fo = get16(fh + 2);
      more = fo & 1;
      off = fo & 0xfff8;
      EXPECT_EQ((static_cast<uint32_t>(get16(fh + 4)) << 16) | get16(fh + 6), 0x12345678u);
      data_at = 14 + 48;
    }
    EXPECT_EQ(off, expect_off);
    if (more) {
      EXPECT_EQ((f.size() - data_at) % 8, 0u);
    } else {
      last_seen = true;
    }
    joined.insert(joined.end(), f.begin() + static_cast<long>(data_at), f.end());
    expect_off += f.size() - data_at;
    return true;
  });
  EXPECT_TRUE(last_seen || *count == 0);
  return joined;
}

TEST(Fragment, Ipv4DatagramAboveMtu) {
  Bytes frame = Datagram(false, 4000);
  size_t count = 0;
  Bytes joined = FragmentAndCheck(frame, 1500, false, &count);
  EXPECT_EQ(count, 3u);  // 4008 bytes of UDP in 1480-byte pieces
  ASSERT_EQ(joined.size(), frame.size() - 34);
  EXPECT_EQ(0, std::memcmp(joined.data(), frame.data() + 34, joined.size()));
}

TEST(Fragment, Ipv6DatagramAboveMtu) {
  Bytes frame = Datagram(true, 8000);
  size_t count = 0;
  Bytes joined = FragmentAndCheck(frame, 1280, true, &count);
  EXPECT_EQ(count, 7u);  // 8008 bytes of UDP in 1232-byte pieces
  ASSERT_EQ(joined.size(), frame.size() - 54);
  EXPECT_EQ(0, std::memcmp(joined.data(), frame.data() + 54, joined.size()));
}

TEST(Fragment, LargestDatagram) {
  for (bool v6 : {false, true}) {
    Bytes frame = Datagram(v6, v6 ? 65487 : 65507);  // what fits kMaxFrameLen
    size_t count = 0;
    Bytes joined = FragmentAndCheck(frame, 1500, v6, &count);
    EXPECT_EQ(joined.size(), frame.size() - (v6 ? 54 : 34));
    EXPECT_GT(count, 40u);
  }
}

TEST(Fragment, FitsOrCannot) {
  Bytes scratch(kMaxFrameLen);
  auto never = [](std::span<const uint8_t>) {
    ADD_FAILURE() << "nothing to emit";
    return true;
  };
  EXPECT_EQ(fragment_frame(Datagram(false, 1472), 1500, 1, scratch, never), 0u);  // fits
  EXPECT_EQ(fragment_frame(Datagram(true, 1452), 1500, 1, scratch, never), 0u);
  Bytes arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(fragment_frame(arp, 40, 1, scratch, never), 0u);  // not IP
  // the emitter may stop early
  size_t calls = 0;
  EXPECT_EQ(fragment_frame(Datagram(false, 4000), 1500, 1, scratch,
                           [&](std::span<const uint8_t>) { return ++calls < 2; }),
            2u);
}

}  // namespace
}  // namespace ferry

// Reassembly of the guest's IP fragments (translator/reassembly.h): a UDP
// datagram cut by fragment_frame() comes back whole and parses (checksum
// verified) in any order, over IPv4 and IPv6; overlapping fragments, a
// non-final fragment of odd length and a stale datagram are dropped;
// interleaved datagrams do not mix; more datagrams in progress than slots
// evict the oldest; the first fragment's header (options) wins, a Fragment
// header nested in another is dropped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "codec/addr.h"
#include "codec/checksum.h"
#include "codec/fragment.h"
#include "codec/frame.h"
#include "translator/reassembly.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Datagram(bool v6, size_t payload_len, uint8_t seed = 3) {
  UdpDatagram d;
  d.ip.eth_src = MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  d.ip.eth_dst = MacAddr{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};
  d.ip.src = *InetAddr::parse(v6 ? "fd00:f::2" : "198.18.0.2");
  d.ip.dst = *InetAddr::parse(v6 ? "fd00:f::1" : "198.18.0.1");
  d.sport = 40000;
  d.dport = 5201;
  Bytes payload(payload_len);
  for (size_t i = 0; i < payload_len; i++) payload[i] = static_cast<uint8_t>(i * 7 + seed);
  d.payload = payload;
  Bytes out(kMaxFrameLen);
  out.resize(build_udp_frame(out, d));
  return out;
}

std::vector<Bytes> Fragments(const Bytes& frame, unsigned mtu, uint32_t id) {
  std::vector<Bytes> out;
  Bytes scratch(kMaxFrameLen);
  fragment_frame(frame, mtu, id, scratch, [&](std::span<const uint8_t> f) {
    out.emplace_back(f.begin(), f.end());
    return true;
  });
  return out;
}

// The datagram's UDP payload after parsing the reassembled frame.
Bytes ParsedPayload(std::span<const uint8_t> whole) {
  ParsedFrame f = parse_frame(whole, ChecksumPolicy::all);
  EXPECT_TRUE(f.ok()) << to_string(f.status);
  EXPECT_EQ(f.protocol, 17);
  return Bytes(whole.begin() + static_cast<long>(f.udp.payload_offset),
               whole.begin() + static_cast<long>(f.udp.payload_offset + f.udp.payload_len));
}

TEST(Reassembly, InOrderAndReversedBothFamilies) {
  for (bool v6 : {false, true}) {
    for (bool reversed : {false, true}) {
      Reassembler r;
      Bytes frame = Datagram(v6, 4000);
      std::vector<Bytes> frags = Fragments(frame, 1500, 77);
      ASSERT_EQ(frags.size(), 3u);
      if (reversed) std::reverse(frags.begin(), frags.end());
      std::optional<std::span<const uint8_t>> whole;
      for (size_t i = 0; i < frags.size(); i++) {
        whole = r.add(frags[i], 1000);
        EXPECT_EQ(whole.has_value(), i + 1 == frags.size());
      }
      ASSERT_TRUE(whole);
      ASSERT_EQ(whole->size(), frame.size());
      Bytes want(frame.begin() + (v6 ? 62 : 42), frame.end());
      EXPECT_EQ(ParsedPayload(*whole), want);
      EXPECT_EQ(r.counters().datagrams, 1u);
      EXPECT_EQ(r.counters().dropped, 0u);
    }
  }
}

TEST(Reassembly, LargestDatagram) {
  Reassembler r;
  Bytes frame = Datagram(false, 65507);
  std::optional<std::span<const uint8_t>> whole;
  for (const Bytes& f : Fragments(frame, 1500, 9)) whole = r.add(f, 1);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->size(), frame.size());
  EXPECT_EQ(ParsedPayload(*whole).size(), 65507u);
}

TEST(Reassembly, InterleavedDatagramsDoNotMix) {
  Reassembler r;
  Bytes a = Datagram(false, 3000, 1), b = Datagram(false, 3000, 2);
  std::vector<Bytes> fa = Fragments(a, 1500, 1), fb = Fragments(b, 1500, 2);
  ASSERT_EQ(fa.size(), fb.size());
  for (size_t i = 0; i + 1 < fa.size(); i++) {
    EXPECT_FALSE(r.add(fa[i], 1));
    EXPECT_FALSE(r.add(fb[i], 1));
  }
  auto wa = r.add(fa.back(), 1);
  ASSERT_TRUE(wa);
  EXPECT_EQ(ParsedPayload(*wa), Bytes(a.begin() + 42, a.end()));
  auto wb = r.add(fb.back(), 1);
  ASSERT_TRUE(wb);
  EXPECT_EQ(ParsedPayload(*wb), Bytes(b.begin() + 42, b.end()));
}

TEST(Reassembly, OverlapDropsTheDatagram) {
  Reassembler r;
  std::vector<Bytes> f = Fragments(Datagram(true, 4000), 1500, 5);
  EXPECT_FALSE(r.add(f[0], 1));
  EXPECT_FALSE(r.add(f[0], 1));  // the same piece again: overlap
  EXPECT_EQ(r.counters().dropped, 1u);
  EXPECT_FALSE(r.add(f[1], 1));
  EXPECT_FALSE(r.add(f[2], 1));  // the first piece is gone: incomplete
  EXPECT_EQ(r.counters().datagrams, 0u);
}

TEST(Reassembly, OddNonFinalFragmentDropped) {
  Reassembler r;
  std::vector<Bytes> f = Fragments(Datagram(false, 4000), 1500, 6);
  Bytes odd = f[0];
  odd.pop_back();                                   // 1479 bytes of data
  odd[14 + 2] = static_cast<uint8_t>((odd.size() - 14) >> 8);
  odd[14 + 3] = static_cast<uint8_t>(odd.size() - 14);
  EXPECT_FALSE(r.add(odd, 1));
  EXPECT_EQ(r.counters().dropped, 1u);
}

TEST(Reassembly, StaleDatagramTimesOut) {
  Reassembler r;
  std::vector<Bytes> f = Fragments(Datagram(false, 4000), 1500, 7);
  EXPECT_FALSE(r.add(f[0], 1));
  EXPECT_FALSE(r.add(f[1], 1));
  // the last piece, too late: its datagram was dropped, this starts anew
  EXPECT_FALSE(r.add(f[2], 2 + Reassembler::kTimeoutNs));
  EXPECT_EQ(r.counters().dropped, 1u);
  EXPECT_EQ(r.counters().datagrams, 0u);
}

TEST(Reassembly, MoreDatagramsThanSlotsEvictTheOldest) {
  Reassembler r;
  std::vector<std::vector<Bytes>> all;
  for (uint32_t i = 0; i <= Reassembler::kSlots; i++) {
    all.push_back(Fragments(Datagram(false, 3000, static_cast<uint8_t>(i)), 1500, 100 + i));
    EXPECT_FALSE(r.add(all.back()[0], 10 + i));
  }
  EXPECT_EQ(r.counters().dropped, 1u);  // the first one
  for (uint32_t i = 1; i <= Reassembler::kSlots; i++) {
    std::optional<std::span<const uint8_t>> w;
    for (size_t k = 1; k < all[i].size(); k++) w = r.add(all[i][k], 20);
    EXPECT_TRUE(w) << i;
  }
}

TEST(Reassembly, NotAFragmentOrGarbage) {
  Reassembler r;
  Bytes junk(40, 0);
  EXPECT_FALSE(r.add(junk, 1));
  Bytes v6 = Datagram(true, 100);  // no Fragment header
  EXPECT_FALSE(r.add(v6, 1));
  EXPECT_EQ(r.counters().dropped, 2u);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// An IPv4 fragment of an ICMP datagram by hand: header of ihl bytes (options
// NOP-filled), the given flags/offset word, payload bytes.
Bytes Frag4(size_t ihl, uint16_t frag_word, std::span<const uint8_t> payload) {
  Bytes f(14 + ihl + payload.size());
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
  const size_t tot = ihl + payload.size();
  ip[2] = static_cast<uint8_t>(tot >> 8);
  ip[3] = static_cast<uint8_t>(tot);
  ip[4] = 0x12;
  ip[5] = 0x34;
  ip[6] = static_cast<uint8_t>(frag_word >> 8);
  ip[7] = static_cast<uint8_t>(frag_word);
  ip[8] = 64;
  ip[9] = 1;
  const uint8_t src[4] = {198, 18, 0, 2}, dst[4] = {198, 18, 0, 1};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  for (size_t i = 20; i < ihl; i++) ip[i] = 1;  // NOP
  uint16_t c = csum_fold(csum_partial(ip, ihl, 0));
  std::memcpy(ip + 10, &c, 2);
  std::memcpy(ip + ihl, payload.data(), payload.size());
  return f;
}

TEST(Reassembly, OptionsInTheFirstFragmentOnly) {
  // RFC 791: options without the copy flag travel in the first fragment
  // only, so the last fragment's header is shorter than the datagram's.
  Bytes icmp(1024 + 100);
  for (size_t i = 0; i < icmp.size(); i++) icmp[i] = static_cast<uint8_t>(i);
  icmp[0] = 8;  // echo request
  icmp[2] = icmp[3] = 0;
  uint16_t c = csum_fold(csum_partial(icmp.data(), icmp.size(), 0));
  std::memcpy(icmp.data() + 2, &c, 2);
  for (bool reversed : {false, true}) {
    Reassembler r;
    Bytes a = Frag4(24, 0x2000, std::span<const uint8_t>(icmp).first(1024));
    Bytes b = Frag4(20, 1024 / 8, std::span<const uint8_t>(icmp).subspan(1024));
    std::optional<std::span<const uint8_t>> whole;
    whole = r.add(reversed ? b : a, 1000);
    EXPECT_FALSE(whole);
    whole = r.add(reversed ? a : b, 1000);
    ASSERT_TRUE(whole);
    ParsedFrame f = parse_frame(*whole, ChecksumPolicy::all);
    ASSERT_TRUE(f.ok()) << to_string(f.status) << (reversed ? " reversed" : "");
    EXPECT_EQ(f.l4_len, icmp.size());
    EXPECT_EQ(f.icmp.type, 8);
  }
}

TEST(Reassembly, NestedFragmentHeaderDropped) {
  // IPv6 | Fragment (next: Fragment, atomic) | Fragment (atomic) | data:
  // reassembled once it would be a fragment again (and its bytes already
  // sit in the reassembly buffer): dropped at once.
  Bytes f(14 + 40 + 8 + 8 + 16);
  f[12] = 0x86;
  f[13] = 0xdd;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x60;
  ip[5] = 8 + 8 + 16;
  ip[6] = 44;
  ip[7] = 64;
  ip[8] = 0xfd;
  ip[24] = 0xfd;
  ip[8 + 15] = 2;
  ip[24 + 15] = 1;
  ip[40] = 44;      // next: another Fragment header
  ip[40 + 8] = 58;  // then ICMPv6
  Reassembler r;
  EXPECT_FALSE(r.add(f, 1000));
  EXPECT_EQ(r.counters().dropped, 1u);
  EXPECT_EQ(r.counters().datagrams, 0u);
}

}  // namespace
}  // namespace ferry

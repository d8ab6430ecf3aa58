// Router advertisements (services/ra.h) with a fake guest link: every field
// of the advertisement, the schedule (at once, then 16 s apart, then
// 200-600 s), answers to solicitations with the 3 s gap, and table-driven
// malformed solicitations.
// test-libs: ferry_services ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codec/frame.h"
#include "loop/event_loop.h"
#include "services/ra.h"
#include "support/fake_link.h"

namespace ferry::services {
namespace {

using ferry::testing::Bytes;
using ferry::testing::FakeLink;
using ferry::testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

Bytes Rs(const InetAddr& src, uint8_t hop = 255, uint8_t code = 0, Bytes opts = {1, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56}) {
  Bytes body(4, 0);
  body.insert(body.end(), opts.begin(), opts.end());
  L2L3 ip;
  ip.eth_src = kGuestMac;
  ip.eth_dst = MacAddr{{0x33, 0x33, 0, 0, 0, 2}};
  ip.src = src;
  ip.dst = A("ff02::2");
  ip.ttl = hop;
  Bytes f(200);
  f.resize(build_icmp_frame(f, ip, 133, code, body));
  return f;
}

class RaTest : public ::testing::Test {
 protected:
  void Solicit(const Bytes& f) { ra.on_solicit(parse_frame(f, true), f); }
  FakeLink link;
  EventLoop loop;
  RaServer ra{loop, link};
};

TEST_F(RaTest, AdvertisementCarriesEveryField) {
  link.cfg_.mtu = 1500;
  link.cfg_.services.search = {"corp.example"};
  ra.on_timer(now_ns());
  ASSERT_EQ(link.sent.size(), 1u);
  const Bytes& f = link.sent[0];
  const ParsedFrame p = parse_frame(f, true);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.eth_dst, (MacAddr{{0x33, 0x33, 0, 0, 0, 1}}));
  EXPECT_EQ(p.src, link_local_from_mac(link.cfg_.our_mac));
  EXPECT_EQ(p.src, A("fe80::66:65ff:fe72:7279"));
  EXPECT_EQ(p.dst, A("ff02::1"));
  EXPECT_EQ(p.ttl, 255);
  EXPECT_EQ(p.icmp.type, 134);
  const uint8_t* b = f.data() + p.icmp.body_offset;
  const size_t len = p.icmp.body_len;
  EXPECT_EQ(b[0], 64);
  EXPECT_EQ(b[1], 0xc0);                    // M and O: DHCPv6 runs
  EXPECT_EQ((b[2] << 8) | b[3], 1800);      // router lifetime
  bool slla = false, mtu = false, prefix = false, rdnss = false, dnssl = false;
  for (size_t off = 12; off + 2 <= len && b[off + 1] != 0; off += b[off + 1] * 8u) {
    const uint8_t* o = b + off;
    switch (o[0]) {
      case 1: slla = std::memcmp(o + 2, link.cfg_.our_mac.b.data(), 6) == 0; break;
      case 5: mtu = ((o[4] << 24) | (o[5] << 16) | (o[6] << 8) | o[7]) == 1500; break;
      case 3:
        prefix = o[2] == 64 && o[3] == 0xc0 && InetAddr::from_v6_bytes(o + 16) == A("fd00:f::");
        break;
      case 25: rdnss = o[1] == 3 && InetAddr::from_v6_bytes(o + 8) == A("fd00:f::1"); break;
      case 31: dnssl = o[1] == 3 && o[8] == 4 && o[13] == 7; break;
      default: ADD_FAILURE() << "unexpected option " << int{o[0]};
    }
  }
  EXPECT_TRUE(slla && mtu && prefix && rdnss && dnssl) << slla << mtu << prefix << rdnss << dnssl;
}

TEST_F(RaTest, FlagsAndAutonomousFollowConfiguration) {
  link.cfg_.services.dhcp6 = false;
  link.cfg_.guest6 = *InetPrefix::parse("fd00:f::2/80");
  link.cfg_.services.dns_forward = false;
  ra.on_timer(now_ns());
  ASSERT_EQ(link.sent.size(), 1u);
  const ParsedFrame p = parse_frame(link.sent[0], true);
  const uint8_t* b = link.sent[0].data() + p.icmp.body_offset;
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[12 + 16 + 3], 0x80);  // on-link only: SLAAC needs a /64
  EXPECT_EQ(p.icmp.body_len, 12u + 8 + 8 + 32);  // no RDNSS, no DNSSL
}

TEST_F(RaTest, ScheduleAndSolicitations) {
  const uint64_t t0 = now_ns();
  ra.on_timer(t0);
  EXPECT_EQ(link.sent.size(), 1u);
  const uint64_t second = ra.next_deadline_ns();
  EXPECT_EQ(second - t0 >= RaServer::kInitialInterval - 1'000'000'000 && second - t0 <= RaServer::kInitialInterval + 1'000'000'000, true);
  Solicit(Rs(A("fe80::5054:ff:fe12:3456")));  // inside the 3 s gap: moved, not sent
  EXPECT_EQ(link.sent.size(), 1u);
  EXPECT_LE(ra.next_deadline_ns(), t0 + RaServer::kMinDelayBetweenRas + 1'000'000'000);
  ra.on_timer(ra.next_deadline_ns());
  EXPECT_EQ(link.sent.size(), 2u);
  ra.on_timer(ra.next_deadline_ns());
  ra.on_timer(ra.next_deadline_ns());
  const uint64_t before = ra.next_deadline_ns();
  ra.on_timer(before);
  const uint64_t gap = ra.next_deadline_ns() - before;
  EXPECT_GE(gap, RaServer::kMinInterval);
  EXPECT_LE(gap, RaServer::kMaxInterval);
  EXPECT_EQ(ra.counters().solicitations, 1u);
}

TEST_F(RaTest, MalformedSolicitationsAreCountedAndDropped) {
  ra.on_timer(now_ns() - 10'000'000'000);  // long ago: a valid RS would be answered at once
  link.sent.clear();
  struct Case {
    const char* what;
    Bytes frame;
  };
  const std::vector<Case> cases = {
      {"hop limit 64", Rs(A("fe80::1"), 64)},
      {"code 1", Rs(A("fe80::1"), 255, 1)},
      {"option of length 0", Rs(A("fe80::1"), 255, 0, {1, 0, 0, 0, 0, 0, 0, 0})},
      {"option past the end", Rs(A("fe80::1"), 255, 0, {1, 2, 0, 0, 0, 0, 0, 0})},
      {"SLLA from ::", Rs(A("::"))},
  };
  uint64_t n = 0;
  for (const Case& c : cases) {
    Solicit(c.frame);
    EXPECT_EQ(ra.counters().malformed, ++n) << c.what;
  }
  EXPECT_TRUE(link.sent.empty());
  Solicit(Rs(A("::"), 255, 0, {}));  // valid: DAD-time solicitation without SLLA
  EXPECT_EQ(link.sent.size(), 1u);
}

}  // namespace
}  // namespace ferry::services

// Gateway tests with a fake GuestLink that captures what would go to the
// guest: ARP proxy replies and what is ignored, NDP neighbour advertisements
// and RFC 4861 validity checks, echo to the gateway (both families), echo
// forwarded through a host socket to one of this host's own addresses (needs
// ping sockets or root, and such an address; skipped otherwise), echo to
// loopback refused by the destination policy, and malformed input.
// test-libs: ferry_gateway ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>
#include <ifaddrs.h>

#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "codec/checksum.h"
#include "codec/frame.h"
#include "common/config.h"
#include "common/guest_link.h"
#include "support/fake_link.h"
#include "gateway/gateway.h"
#include "loop/event_loop.h"

namespace ferry {
namespace {

using testing::Bytes;

using testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

using testing::FakeLink;

// One of this host's own addresses (not loopback, not link-local): a ping
// to it never leaves the machine.
std::optional<InetAddr> LocalAddress(bool v6) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<InetAddr> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != (v6 ? AF_INET6 : AF_INET)) continue;
    InetAddr a = v6 ? InetAddr::from_v6(reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr)
                    : InetAddr::from_v4(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr);
    if (!a.is_loopback() && !a.is_link_local_v6()) found = a;
  }
  freeifaddrs(list);
  return found;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { gw = std::make_unique<Gateway>(loop, link); }
  void TearDown() override { gw.reset(); }

  // Parses like the Translator and hands the frame on.
  void Feed(const Bytes& f) { gw->on_guest_frame(parse_frame(f, true), f); }

  Bytes ArpRequest(const InetAddr& spa, const InetAddr& tpa, uint16_t op = 1) {
    Bytes f(64);
    size_t n = build_arp_reply(f, kGuestMac, spa, MacAddr{}, tpa);
    f.resize(n);
    f[0] = f[1] = f[2] = f[3] = f[4] = f[5] = 0xff;  // broadcast
    f[kEthHeaderLen + 7] = static_cast<uint8_t>(op);
    return f;
  }

  Bytes Ns(const InetAddr& src, const InetAddr& dst, const InetAddr& target, uint8_t hop = 255,
           uint8_t code = 0, Bytes opts = {1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56}) {
    Bytes body(20);
    std::memcpy(body.data() + 4, target.b.data(), 16);
    body.insert(body.end(), opts.begin(), opts.end());
    L2L3 ip;
    ip.eth_src = kGuestMac;
    ip.eth_dst = MacAddr{{0x33, 0x33, 0xff, 0, 0, 1}};
    ip.src = src;
    ip.dst = dst;
    ip.ttl = hop;
    Bytes f(200);
    f.resize(build_icmp_frame(f, ip, 135, code, body));
    return f;
  }

  Bytes Echo(bool v6, const InetAddr& dst, uint16_t id, uint16_t seq, size_t datalen) {
    Bytes body(4 + datalen);
    body[0] = static_cast<uint8_t>(id >> 8);
    body[1] = static_cast<uint8_t>(id);
    body[2] = static_cast<uint8_t>(seq >> 8);
    body[3] = static_cast<uint8_t>(seq);
    for (size_t i = 0; i < datalen; i++) body[4 + i] = static_cast<uint8_t>(i * 3 + 1);
    L2L3 ip;
    ip.eth_src = kGuestMac;
    ip.eth_dst = link.cfg_.our_mac;
    ip.src = v6 ? link.cfg_.guest6.addr : link.cfg_.guest4.addr;
    ip.dst = dst;
    Bytes f(kMaxFrameLen);
    f.resize(build_icmp_frame(f, ip, v6 ? 128 : 8, 0, body));
    return f;
  }

  EventLoop loop;
  FakeLink link;
  std::unique_ptr<Gateway> gw;
};

TEST_F(GatewayTest, ArpRequestForGatewayIsAnswered) {
  Feed(ArpRequest(A("198.18.0.2"), A("198.18.0.1")));
  ASSERT_EQ(link.sent.size(), 1u);
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.l3, L3Kind::arp);
  EXPECT_EQ(p.eth_dst, kGuestMac);
  EXPECT_EQ(p.eth_src, link.cfg_.our_mac);
  EXPECT_EQ(p.arp.op, 2);
  EXPECT_EQ(p.arp.sha, link.cfg_.our_mac);
  EXPECT_EQ(p.arp.spa, A("198.18.0.1"));
  EXPECT_EQ(p.arp.tha, kGuestMac);
  EXPECT_EQ(p.arp.tpa, A("198.18.0.2"));
  EXPECT_EQ(gw->counters().arp_replies, 1u);
}

TEST_F(GatewayTest, ArpRequestForAnyOtherAddressIsAnswered) {
  Feed(ArpRequest(A("198.18.0.2"), A("198.18.0.77")));
  ASSERT_EQ(link.sent.size(), 1u);
  ParsedFrame p = parse_frame(link.sent[0]);
  EXPECT_EQ(p.arp.spa, A("198.18.0.77"));
  EXPECT_EQ(p.arp.sha, link.cfg_.our_mac);
}

TEST_F(GatewayTest, ArpIgnored) {
  Feed(ArpRequest(A("198.18.0.2"), A("198.18.0.2")));  // gratuitous / own address
  Feed(ArpRequest(A("0.0.0.0"), A("198.18.0.2")));     // probe (DAD)
  Feed(ArpRequest(A("0.0.0.0"), A("198.18.0.77")));    // probe for another address
  Feed(ArpRequest(A("198.18.0.9"), A("198.18.0.2")));  // someone asking for the guest
  Feed(ArpRequest(A("198.18.0.2"), A("198.18.0.1"), 2));  // a reply
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(gw->counters().arp_ignored, 5u);
  Feed(ArpRequest(A("198.18.0.2"), A("255.255.255.255")));
  Feed(ArpRequest(A("198.18.0.2"), A("198.18.0.255")));
  Feed(ArpRequest(A("198.18.0.2"), A("224.0.0.1")));
  EXPECT_TRUE(link.sent.empty());
}

// RFC 5227 2.1.1: a probe for the gateway's own address is answered (as
// Linux answers one for its local addresses), to the prober's hardware
// address with target address 0.0.0.0.
TEST_F(GatewayTest, ArpProbeForTheGatewayIsAnswered) {
  Feed(ArpRequest(A("0.0.0.0"), A("198.18.0.1")));
  ASSERT_EQ(link.sent.size(), 1u);
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.arp.op, 2);
  EXPECT_EQ(p.eth_dst, kGuestMac);
  EXPECT_EQ(p.arp.sha, link.cfg_.our_mac);
  EXPECT_EQ(p.arp.spa, A("198.18.0.1"));
  EXPECT_EQ(p.arp.tha, kGuestMac);
  EXPECT_EQ(p.arp.tpa, A("0.0.0.0"));
  EXPECT_EQ(gw->counters().arp_replies, 1u);
}

// RFC 4861 7.2.4 / RFC 4862 5.4: DAD of the gateway's own addresses (global
// and link-local) is defended with an NA to all nodes, Solicited clear;
// DAD of any other address is not; an invalid DAD (with a source
// link-layer option, or not to the solicited-node group) is dropped.
TEST_F(GatewayTest, DadOfTheGatewaysAddressesIsDefended) {
  const InetAddr ll = link_local_from_mac(link.cfg_.our_mac);
  InetAddr ll_group = A("ff02::1:ff00:0");
  std::memcpy(ll_group.b.data() + 13, ll.b.data() + 13, 3);
  for (const InetAddr& target : {A("fd00:f::1"), ll}) {
    link.sent.clear();
    Feed(Ns(A("::"), target == ll ? ll_group : A("ff02::1:ff00:1"), target, 255, 0, {}));
    ASSERT_EQ(link.sent.size(), 1u) << target.str();
    const Bytes& r = link.sent[0];
    ParsedFrame p = parse_frame(r);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.dst, A("ff02::1"));
    EXPECT_EQ(p.eth_dst, (MacAddr{{0x33, 0x33, 0, 0, 0, 1}}));
    EXPECT_EQ(p.src, target);
    EXPECT_EQ(p.ttl, 255);
    EXPECT_EQ(p.icmp.type, 136);
    EXPECT_EQ(r[p.icmp.body_offset], 0xa0);  // router, override; not solicited
    EXPECT_EQ(0, std::memcmp(r.data() + p.icmp.body_offset + 4, target.b.data(), 16));
  }
  link.sent.clear();
  Feed(Ns(A("::"), A("ff02::1:ff00:1"), A("fd00:f::1")));  // with a source link-layer option
  Feed(Ns(A("::"), A("ff02::1"), A("fd00:f::1"), 255, 0, {}));  // not to the solicited-node group
  Feed(Ns(A("::"), A("ff02::1:ff00:1234"), A("fd00:f::1234"), 255, 0, {}));  // another address
  EXPECT_TRUE(link.sent.empty());
}

TEST_F(GatewayTest, NsForGatewayGetsRouterAdvertisement) {
  Feed(Ns(A("fd00:f::2"), A("ff02::1:ff00:1"), A("fd00:f::1")));
  ASSERT_EQ(link.sent.size(), 1u);
  const Bytes& r = link.sent[0];
  ParsedFrame p = parse_frame(r);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.eth_dst, kGuestMac);
  EXPECT_EQ(p.eth_src, link.cfg_.our_mac);
  EXPECT_EQ(p.src, A("fd00:f::1"));
  EXPECT_EQ(p.dst, A("fd00:f::2"));
  EXPECT_EQ(p.ttl, 255);
  EXPECT_EQ(p.icmp.type, 136);
  ASSERT_EQ(p.icmp.body_len, 28u);
  const uint8_t* b = r.data() + p.icmp.body_offset;
  EXPECT_EQ(b[0], 0xe0);  // router, solicited, override
  EXPECT_EQ(0, std::memcmp(b + 4, A("fd00:f::1").b.data(), 16));
  EXPECT_EQ(b[20], 2);
  EXPECT_EQ(b[21], 1);
  EXPECT_EQ(0, std::memcmp(b + 22, link.cfg_.our_mac.b.data(), 6));
  EXPECT_EQ(gw->counters().ndp_adverts, 1u);
}

TEST_F(GatewayTest, NsForOtherTargetNoRouterFlag) {
  Feed(Ns(A("fe80::5054:ff:fe12:3456"), A("ff02::1:ff00:99"), A("fd00:f::99"), 255, 0, {}));
  ASSERT_EQ(link.sent.size(), 1u);
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(link.sent[0][p.icmp.body_offset], 0x60);
  EXPECT_EQ(p.src, A("fd00:f::99"));
  EXPECT_EQ(p.dst, A("fe80::5054:ff:fe12:3456"));
}

TEST_F(GatewayTest, NsInvalidOrIgnored) {
  Feed(Ns(A("fd00:f::2"), A("fd00:f::1"), A("fd00:f::1"), 254));  // hop limit
  Feed(Ns(A("fd00:f::2"), A("fd00:f::1"), A("fd00:f::1"), 255, 1));  // code
  Feed(Ns(A("fd00:f::2"), A("fd00:f::1"), A("ff02::1")));  // multicast target
  Feed(Ns(A("fd00:f::2"), A("fd00:f::1"), A("fd00:f::1"), 255, 0, {1, 0, 0, 0, 0, 0, 0, 0}));
  Feed(Ns(A("fd00:f::2"), A("fd00:f::1"), A("fd00:f::1"), 255, 0, {1, 2, 0, 0, 0, 0, 0, 0}));
  Feed(Ns(A("::"), A("ff02::1:ff00:2"), A("fd00:f::2"), 255, 0, {}));  // DAD
  Feed(Ns(A("::"), A("ff02::1:ff00:99"), A("fd00:f::99"), 255, 0, {}));  // DAD, other addr
  Feed(Ns(A("fe80::1"), A("ff02::1:ff00:2"), A("fd00:f::2")));  // guest's own address
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(gw->counters().ndp_adverts, 0u);
  // Router solicitations are ignored: the guest is configured statically.
  Bytes rs(200);
  L2L3 ip;
  ip.eth_src = kGuestMac;
  ip.eth_dst = MacAddr{{0x33, 0x33, 0, 0, 0, 2}};
  ip.src = A("fe80::2");
  ip.dst = A("ff02::2");
  ip.ttl = 255;
  Bytes body(4);
  rs.resize(build_icmp_frame(rs, ip, 133, 0, body));
  Feed(rs);
  EXPECT_TRUE(link.sent.empty());
  EXPECT_GE(gw->counters().ndp_ignored, 1u);
}

TEST_F(GatewayTest, EchoToGatewayIsAnswered) {
  for (bool v6 : {false, true}) {
    link.sent.clear();
    InetAddr gwaddr = v6 ? link.cfg_.gateway6 : link.cfg_.gateway4;
    Bytes req = Echo(v6, gwaddr, 0x4242, 17, 56);
    Feed(req);
    ASSERT_EQ(link.sent.size(), 1u) << v6;
    const Bytes& r = link.sent[0];
    ParsedFrame p = parse_frame(r, /*verify_checksums=*/true);
    ASSERT_TRUE(p.ok()) << to_string(p.status);  // checksums valid
    ParsedFrame q = parse_frame(req);
    EXPECT_EQ(p.icmp.type, v6 ? 129 : 0);
    EXPECT_EQ(p.icmp.code, 0);
    EXPECT_EQ(p.icmp.id, 0x4242);
    EXPECT_EQ(p.icmp.seq, 17);
    EXPECT_EQ(p.src, gwaddr);
    EXPECT_EQ(p.dst, q.src);
    EXPECT_EQ(p.eth_dst, kGuestMac);
    EXPECT_EQ(p.eth_src, link.cfg_.our_mac);
    ASSERT_EQ(p.icmp.body_len, q.icmp.body_len);
    EXPECT_EQ(0, std::memcmp(r.data() + p.icmp.body_offset, req.data() + q.icmp.body_offset,
                             q.icmp.body_len));
  }
  EXPECT_EQ(gw->counters().echo_replies, 2u);
  // A big echo (64 KiB frame) too.
  link.sent.clear();
  Feed(Echo(false, link.cfg_.gateway4, 1, 1, 65535 - 28));
  ASSERT_EQ(link.sent.size(), 1u);
  EXPECT_TRUE(parse_frame(link.sent[0]).ok());
}

// The gateway's link-local address (the source of its router
// advertisements, the guest's IPv6 default route) answers echo from that
// address, with the gateway mapped to loopback or not. Before, such a ping
// went to the destination policy and was never answered.
TEST_F(GatewayTest, EchoToTheGatewaysLinkLocalIsAnswered) {
  const InetAddr ll = link_local_from_mac(link.cfg_.our_mac);
  for (bool mapped : {true, false}) {
    link.cfg_.map_gateway = mapped;
    link.sent.clear();
    Feed(Echo(true, ll, 0x4343, 3, 8));
    ASSERT_EQ(link.sent.size(), 1u) << mapped;
    ParsedFrame p = parse_frame(link.sent[0], true);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.icmp.type, 129);
    EXPECT_EQ(p.icmp.id, 0x4343);
    EXPECT_EQ(p.src, ll);
    EXPECT_EQ(p.dst, link.cfg_.guest6.addr);
  }
}

TEST_F(GatewayTest, EchoRepliesAndOtherIcmpAreNotAnswered) {
  Bytes f = Echo(false, link.cfg_.gateway4, 1, 1, 8);
  ParsedFrame p = parse_frame(f);
  f[p.l4_offset] = 0;  // echo reply
  uint16_t zero = 0;
  std::memcpy(f.data() + p.l4_offset + 2, &zero, 2);
  uint16_t c = csum_fold(csum_partial(f.data() + p.l4_offset, p.l4_len, 0));
  std::memcpy(f.data() + p.l4_offset + 2, &c, 2);
  Feed(f);
  EXPECT_EQ(gw->counters().icmp_ignored, 1u);
  Feed(Echo(false, A("198.18.0.255"), 1, 1, 8));  // directed broadcast
  Feed(Echo(false, A("224.0.0.1"), 1, 1, 8));
  Feed(Echo(true, A("ff02::1"), 1, 1, 8));
  EXPECT_TRUE(link.sent.empty());
}

TEST_F(GatewayTest, MalformedNeverAnswersNeverCrashes) {
  std::vector<Bytes> good = {ArpRequest(A("198.18.0.2"), A("198.18.0.1")),
                             Ns(A("fd00:f::2"), A("ff02::1:ff00:1"), A("fd00:f::1")),
                             Echo(false, link.cfg_.gateway4, 7, 7, 20),
                             Echo(true, link.cfg_.gateway6, 7, 7, 20)};
  // Every prefix: parse fails, nothing is sent.
  for (const Bytes& g : good) {
    for (size_t n = 0; n < g.size(); n++) {
      Bytes cut(g.begin(), g.begin() + static_cast<long>(n));
      Feed(cut);
    }
  }
  EXPECT_TRUE(link.sent.empty());
  // A ParsedFrame that claims more than the frame holds is refused.
  Bytes e = Echo(false, link.cfg_.gateway4, 7, 7, 20);
  ParsedFrame p = parse_frame(e);
  ASSERT_TRUE(p.ok());
  p.icmp.body_len += 100;
  gw->on_guest_frame(p, e);
  EXPECT_TRUE(link.sent.empty());
  // Random corruption: whatever is answered must itself be well formed.
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; i++) {
    Bytes f = good[rng() % good.size()];
    for (int k = 0; k < 3; k++) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    ParsedFrame q = parse_frame(f, (i & 1) != 0);
    gw->on_guest_frame(q, f);
  }
  for (const Bytes& s : link.sent) EXPECT_TRUE(parse_frame(s).ok());
}

// Runs the loop until a frame was sent to the guest or ~2 s passed.
bool WaitForFrame(EventLoop& loop, FakeLink& link, size_t want) {
  for (int i = 0; i < 40 && link.sent.size() < want; i++) loop.run_once(50);
  return link.sent.size() >= want;
}

TEST_F(GatewayTest, EchoForwardedToHostAddressV4) {
  std::optional<InetAddr> local = LocalAddress(false);
  if (!local) GTEST_SKIP() << "no IPv4 address of this host but loopback";
  Bytes req = Echo(false, *local, 0x1111, 5, 32);
  Feed(req);
  if (gw->counters().echo_forwarded == 0) GTEST_SKIP() << "no ping or raw ICMP socket here";
  ASSERT_TRUE(WaitForFrame(loop, link, 1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.icmp.type, 0);
  EXPECT_EQ(p.icmp.id, 0x1111);
  EXPECT_EQ(p.icmp.seq, 5);
  EXPECT_EQ(p.src, *local);
  EXPECT_EQ(p.dst, link.cfg_.guest4.addr);
  ParsedFrame q = parse_frame(req);
  ASSERT_EQ(p.icmp.body_len, q.icmp.body_len);
  EXPECT_EQ(0, std::memcmp(link.sent[0].data() + p.icmp.body_offset + 4,
                           req.data() + q.icmp.body_offset + 4, q.icmp.body_len - 4));
  EXPECT_EQ(gw->echo_flows(), 1u);
  // Same flow, next sequence number.
  Feed(Echo(false, *local, 0x1111, 6, 32));
  ASSERT_TRUE(WaitForFrame(loop, link, 2));
  EXPECT_EQ(parse_frame(link.sent[1]).icmp.seq, 6);
  EXPECT_EQ(gw->echo_flows(), 1u);
  EXPECT_EQ(gw->counters().echo_relayed, 2u);
  // Expiry.
  gw->set_echo_timeout_ns(1);
  gw->on_timer(now_ns() + 10);
  EXPECT_EQ(gw->echo_flows(), 0u);
}

TEST_F(GatewayTest, EchoForwardedToHostAddressV6) {
  std::optional<InetAddr> local = LocalAddress(true);
  if (!local) GTEST_SKIP() << "no IPv6 address of this host but loopback and link-local";
  Bytes req = Echo(true, *local, 0x2222, 9, 16);
  Feed(req);
  if (gw->counters().echo_forwarded == 0) GTEST_SKIP() << "no ping or raw ICMPv6 socket here";
  ASSERT_TRUE(WaitForFrame(loop, link, 1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.icmp.type, 129);
  EXPECT_EQ(p.icmp.id, 0x2222);
  EXPECT_EQ(p.icmp.seq, 9);
  EXPECT_EQ(p.src, *local);
  EXPECT_EQ(p.dst, link.cfg_.guest6.addr);
}

TEST_F(GatewayTest, EchoFlowTableIsBounded) {
  std::optional<InetAddr> local = LocalAddress(false);
  if (!local) GTEST_SKIP() << "no IPv4 address of this host but loopback";
  for (uint16_t id = 0; id < Gateway::kMaxEchoFlows + 10; id++)
    Feed(Echo(false, *local, id, 1, 8));
  if (gw->counters().echo_forwarded == 0) GTEST_SKIP() << "no ICMP socket here";
  EXPECT_EQ(gw->echo_flows(), Gateway::kMaxEchoFlows);
  EXPECT_EQ(gw->counters().echo_expired, 10u);
  for (int i = 0; i < 10; i++) loop.run_once(20);
}

// Loopback named by the guest, the metadata address and a --deny are
// refused by the destination policy: answered "administratively
// prohibited" (quoting the request), no host socket, counted.
TEST_F(GatewayTest, EchoRefusedByPolicyIsProhibited) {
  link.cfg_.destination_rules.push_back({*InetPrefix::parse("198.51.100.0/24"), 0, 0, false});
  const std::vector<InetAddr> refused = {A("127.0.0.2"), A("169.254.169.254"), A("198.51.100.7"), A("::1"),
                                         A("fe80::1")};
  for (const InetAddr& d : refused) Feed(Echo(!d.is_v4(), d, 0x3333, 1, 16));
  EXPECT_EQ(gw->counters().echo_forwarded, 0u);
  EXPECT_EQ(gw->echo_flows(), 0u);
  ASSERT_EQ(link.sent.size(), refused.size());
  for (size_t i = 0; i < refused.size(); i++) {
    ParsedFrame p = parse_frame(link.sent[i]);
    ASSERT_TRUE(p.ok());
    const bool v6 = !refused[i].is_v4();
    EXPECT_EQ(p.icmp.type, v6 ? 1 : 3);
    EXPECT_EQ(p.icmp.code, v6 ? 1 : 13);
    EXPECT_EQ(p.dst, v6 ? link.cfg_.guest6.addr : link.cfg_.guest4.addr);
    // The quote starts with the request's IP header: its destination is what was refused.
    const uint8_t* quote = link.sent[i].data() + p.icmp.body_offset + 4;
    InetAddr quoted = v6 ? InetAddr::from_v6_bytes(quote + 24) : InetAddr::from_v4_bytes(quote + 16);
    EXPECT_EQ(quoted, refused[i]);
  }
  const auto& pc = link.policy().counters();
  EXPECT_EQ(pc.refused[static_cast<size_t>(Refusal::loopback)], 2u);
  EXPECT_EQ(pc.refused[static_cast<size_t>(Refusal::default_deny)], 2u);
  EXPECT_EQ(pc.refused[static_cast<size_t>(Refusal::rule)], 1u);
}

// An ARP request from a neighbour with another address is not answered.
TEST_F(GatewayTest, ArpFromAnotherAddressIsSpoofed) {
  Feed(ArpRequest(A("198.18.0.77"), A("198.18.0.1")));
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(link.policy().counters().spoofed_source, 1u);
}

}  // namespace
}  // namespace ferry

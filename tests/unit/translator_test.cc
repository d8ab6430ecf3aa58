// Translator dispatch tests, unprivileged: a fake FramePort records what
// the translator sends to the guest; frames are fed to on_guest_frame()
// directly. Covered: what is "for us" (our MAC, untagged), counters of
// malformed and refused frames, the guest's MAC learned only from frames
// that are for us; frames for a guest whose MAC is unknown wait while ARP /
// NS ask for it; --no-map-gw refuses the gateway address.
// test-libs: ferry_translator ferry_gateway ferry_tcp ferry_udp ferry_codec ferry_loop ferry_port ferry_common
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <vector>

#include "codec/checksum.h"
#include "codec/frame.h"
#include "common/config.h"
#include "gateway/gateway.h"
#include "tcp/tcp_translator.h"
#include "udp/udp_translator.h"
#include "loop/event_loop.h"
#include "policy/refusal.h"
#include "port/frame_port.h"
#include "translator/translator.h"
#include "udp/udp_translator.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

// A port that keeps every frame sent to the guest.
class RecordingPort final : public FramePort {
 public:
  int fd() const override { return -1; }
  size_t receive(FrameSink&, size_t) override { return 0; }
  bool send(const iovec* iov, int iovcnt) override {
    Bytes b;
    for (int i = 0; i < iovcnt; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      b.insert(b.end(), p, p + iov[i].iov_len);
    }
    sent.push_back(std::move(b));
    return true;
  }
  const PortCounters& counters() const override { return counters_; }
  std::vector<Bytes> sent;

 private:
  PortCounters counters_;
};

class TranslatorTest : public ::testing::Test {
 protected:
  TranslatorTest() : cfg(Config::defaults()), tr(loop, port, cfg) {}

  // An echo request from the guest to the gateway.
  Bytes Echo(const MacAddr& dst, std::optional<InetAddr> src = std::nullopt) const {
    L2L3 ip;
    ip.eth_src = kGuestMac;
    ip.eth_dst = dst;
    ip.src = src ? *src : cfg.guest4.addr;
    ip.dst = cfg.gateway4;
    const uint8_t body[] = {0x12, 0x34, 0x00, 0x01, 'p', 'i', 'n', 'g'};
    Bytes f(kMaxFrameLen);
    f.resize(build_icmp_frame(f, ip, 8, 0, body));
    return f;
  }
  // The same frame with an 802.1Q tag (VLAN 5) after the MAC addresses.
  static Bytes Tagged(const Bytes& f) {
    Bytes g(f.begin(), f.begin() + 12);
    const uint8_t tag[] = {0x81, 0x00, 0x00, 0x05};
    g.insert(g.end(), tag, tag + 4);
    g.insert(g.end(), f.begin() + 12, f.end());
    return g;
  }
  void Feed(const Bytes& f) { tr.on_guest_frame(f, RxMeta{}); }

  EventLoop loop;
  RecordingPort port;
  Config cfg;
  Translator tr;
};

TEST_F(TranslatorTest, UntaggedEchoToOurMacIsAnswered) {
  Feed(Echo(cfg.our_mac));
  ASSERT_EQ(port.sent.size(), 1u);
  ParsedFrame r = parse_frame(port.sent[0], true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.icmp.type, 0);
  EXPECT_EQ(r.eth_dst, kGuestMac);
  EXPECT_FALSE(r.vlan);
}

TEST_F(TranslatorTest, VlanTaggedFramesAreNotForUs) {
  // ferry's link is untagged: a tagged frame comes from a VLAN interface of
  // the guest, and an (untagged) answer would reach a different interface.
  Feed(Tagged(Echo(cfg.our_mac)));
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.counters().not_for_us, 1u);
  EXPECT_EQ(tr.counters().malformed, 0u);
}

TEST_F(TranslatorTest, OtherMacsAndMalformedAreCounted) {
  Feed(Echo(MacAddr{{0x02, 0, 0, 0, 0, 0x99}}));
  Bytes bad = Echo(cfg.our_mac);
  bad[14 + 10] ^= 0xff;  // IPv4 header checksum
  Feed(bad);
  Feed(Bytes(bad.begin(), bad.begin() + 20));  // truncated IPv4 header
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.counters().not_for_us, 1u);
  EXPECT_EQ(tr.counters().malformed, 2u);
}

// A UDP datagram from `from` to the guest, as a translator would send it
// before the guest's MAC is known (to broadcast).
Bytes ToGuest(const Config& cfg, bool v6, size_t payload = 10) {
  UdpDatagram d;
  d.ip.eth_src = cfg.our_mac;
  d.ip.eth_dst = MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  d.ip.src = v6 ? cfg.gateway6 : cfg.gateway4;
  d.ip.dst = v6 ? cfg.guest6.addr : cfg.guest4.addr;
  d.sport = 53;
  d.dport = 5353;
  Bytes pl(payload, 'x');
  d.payload = pl;
  Bytes f(kMaxFrameLen);
  f.resize(build_udp_frame(f, d));
  return f;
}

// The guest's ARP reply to ferry.
Bytes ArpReply(const Config& cfg) {
  Bytes f(64);
  f.resize(build_arp_reply(f, kGuestMac, cfg.guest4.addr, cfg.our_mac, cfg.gateway4));
  return f;
}

TEST_F(TranslatorTest, FramesWaitForTheGuestsMacWhileArpAsks) {
  ASSERT_FALSE(tr.guest_mac_known());
  EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, false)));
  EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, false)));
  // One ARP request (the second frame is within the second), nothing else.
  ASSERT_EQ(port.sent.size(), 1u);
  ParsedFrame arp = parse_frame(port.sent[0], true);
  ASSERT_TRUE(arp.ok());
  EXPECT_EQ(arp.arp.op, 1);
  EXPECT_EQ(arp.arp.tpa, cfg.guest4.addr);
  EXPECT_EQ(arp.arp.spa, cfg.gateway4);
  EXPECT_EQ(tr.counters().held_for_mac, 2u);
  // The answer teaches the MAC; both frames leave, addressed to it.
  Feed(ArpReply(cfg));
  EXPECT_TRUE(tr.guest_mac_known());
  ASSERT_EQ(port.sent.size(), 3u);
  for (size_t i = 1; i < 3; i++) {
    ParsedFrame u = parse_frame(port.sent[i], true);
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u.eth_dst, kGuestMac);
    EXPECT_EQ(u.udp.dport, 5353);
  }
  // Known now: straight through.
  EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, false)));
  EXPECT_EQ(port.sent.size(), 4u);
  EXPECT_EQ(tr.counters().held_dropped, 0u);
}

TEST_F(TranslatorTest, AnIpv6FrameAsksWithANeighbourSolicitation) {
  EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, true)));
  ASSERT_EQ(port.sent.size(), 1u);
  ParsedFrame ns = parse_frame(port.sent[0], true);
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns.icmp.type, 135);
  EXPECT_EQ(InetAddr::from_v6_bytes(port.sent[0].data() + ns.icmp.body_offset + 4), cfg.guest6.addr);
}

TEST_F(TranslatorTest, TheWaitingQueueIsBounded) {
  for (size_t i = 0; i < Translator::kHeldFrames + 3; i++) EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, false)));
  EXPECT_FALSE(tr.send_to_guest(ToGuest(cfg, false, Translator::kHeldFrameMax)));  // too big to wait
  EXPECT_EQ(tr.counters().held_dropped, 4u);  // 3 pushed out, 1 too big
  const size_t before = port.sent.size();
  Feed(ArpReply(cfg));
  EXPECT_EQ(port.sent.size() - before, Translator::kHeldFrames);
}

TEST_F(TranslatorTest, AKnownMacNeedsNoAsking) {
  tr.set_guest_mac(kGuestMac);
  EXPECT_TRUE(tr.send_to_guest(ToGuest(cfg, false)));
  ASSERT_EQ(port.sent.size(), 1u);
  EXPECT_EQ(tr.counters().held_for_mac, 0u);
}

// With --no-map-gw the DNS forwarder on the gateway still serves: DNS over
// TCP to it is not refused (it goes to the host's resolver), other TCP is.
TEST(TranslatorNoMapGw, DnsOverTcpToTheForwarderIsNotRefused) {
  EventLoop loop;
  RecordingPort port;
  Config cfg = Config::defaults();
  cfg.map_gateway = false;
  cfg.services.upstreams = {*InetAddr::parse("127.0.0.1")};
  Translator tr(loop, port, cfg);
  for (uint16_t dport : {53, 80}) {
    TcpSegment syn;
    syn.ip.eth_src = kGuestMac;
    syn.ip.eth_dst = cfg.our_mac;
    syn.ip.src = cfg.guest4.addr;
    syn.ip.dst = cfg.gateway4;
    syn.sport = static_cast<uint16_t>(40000 + dport);
    syn.dport = dport;
    syn.seq = 1000;
    syn.flags = 0x02;
    syn.window = 65535;
    Bytes f(kMaxFrameLen);
    f.resize(build_tcp_frame(f, syn));
    tr.on_guest_frame(f, RxMeta{});
  }
  // Port 80 only, refused by the destination policy.
  EXPECT_EQ(tr.policy().counters().refused[static_cast<size_t>(Refusal::gateway)], 1u);
  EXPECT_EQ(tr.policy().counters().refused_total(), 1u);
  EXPECT_EQ(tr.tcp().counters().conns_outbound, 1u);  // DNS: the host's resolver
}

// With --no-map-gw: TCP to the gateway gets a RST, UDP and echo an ICMP
// administratively prohibited; nothing opens a host socket.
TEST(TranslatorNoMapGw, TheGatewayAddressIsRefused) {
  EventLoop loop;
  RecordingPort port;
  Config cfg = Config::defaults();
  cfg.map_gateway = false;
  Translator tr(loop, port, cfg);
  for (bool v6 : {false, true}) {
    L2L3 ip;
    ip.eth_src = kGuestMac;
    ip.eth_dst = cfg.our_mac;
    ip.src = v6 ? cfg.guest6.addr : cfg.guest4.addr;
    ip.dst = v6 ? cfg.gateway6 : cfg.gateway4;
    TcpSegment syn;
    syn.ip = ip;
    syn.sport = 40000;
    syn.dport = 80;
    syn.seq = 1000;
    syn.flags = 0x02;
    syn.window = 65535;
    Bytes f(kMaxFrameLen);
    f.resize(build_tcp_frame(f, syn));
    port.sent.clear();
    tr.on_guest_frame(f, RxMeta{});
    ASSERT_EQ(port.sent.size(), 1u);
    ParsedFrame r = parse_frame(port.sent[0], true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.protocol, IPPROTO_TCP);
    EXPECT_EQ(r.tcp.flags & 0x14, 0x14);  // RST|ACK
    EXPECT_EQ(r.tcp.ack, 1001u);

    UdpDatagram d;
    d.ip = ip;
    d.sport = 5353;
    d.dport = 9;  // not 53: DNS to the gateway is the DNS forwarder's
    const uint8_t q[] = {1, 2, 3};
    d.payload = q;
    f.assign(kMaxFrameLen, 0);
    f.resize(build_udp_frame(f, d));
    port.sent.clear();
    tr.on_guest_frame(f, RxMeta{});
    ASSERT_EQ(port.sent.size(), 1u);
    r = parse_frame(port.sent[0], true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.icmp.type, v6 ? 1 : 3);
    EXPECT_EQ(r.icmp.code, v6 ? 1 : 13);
    EXPECT_EQ(r.src, ip.dst);
    // The quote starts with the refused packet's IP header.
    EXPECT_EQ(port.sent[0][r.icmp.body_offset + 4] >> 4, v6 ? 6 : 4);

    const uint8_t body[] = {0x12, 0x34, 0x00, 0x01, 'p'};
    f.assign(kMaxFrameLen, 0);
    f.resize(build_icmp_frame(f, ip, v6 ? 128 : 8, 0, body));
    port.sent.clear();
    tr.on_guest_frame(f, RxMeta{});
    ASSERT_EQ(port.sent.size(), 1u);
    r = parse_frame(port.sent[0], true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.icmp.type, v6 ? 1 : 3);
  }
  // TCP, UDP and echo, both families: all the destination policy's.
  EXPECT_EQ(tr.policy().counters().refused[static_cast<size_t>(Refusal::gateway)], 6u);
  EXPECT_EQ(tr.udp().flow_count(), 0u);
  EXPECT_EQ(tr.tcp().connection_count(), 0u);
}

// With --no-map-gw the gateway is still the address a host client on the
// loopback appears as: an inbound connection's segments to it pass (only
// an opening SYN is refused).
TEST(TranslatorNoMapGw, InboundSegmentsToTheGatewayPass) {
  EventLoop loop;
  RecordingPort port;
  Config cfg = Config::defaults();
  cfg.map_gateway = false;
  Translator tr(loop, port, cfg);
  TcpSegment ack;
  ack.ip.eth_src = kGuestMac;
  ack.ip.eth_dst = cfg.our_mac;
  ack.ip.src = cfg.guest4.addr;
  ack.ip.dst = cfg.gateway4;
  ack.sport = 80;
  ack.dport = 40000;
  ack.seq = 1000;
  ack.ack = 2000;
  ack.flags = 0x12;  // SYN-ACK: the guest answering an inbound connection
  ack.window = 65535;
  Bytes f(kMaxFrameLen);
  f.resize(build_tcp_frame(f, ack));
  tr.on_guest_frame(f, RxMeta{});
  EXPECT_EQ(tr.policy().counters().refused_total(), 0u);
}

// Only the guest's configured address is served: a frame from another
// source (a neighbour on a shared link, a forged address, a UDP datagram
// sent from it) is dropped unanswered and counted.
// An IP packet from the guest with protocol / next header `proto` and the
// given payload; IPv6 with one destination options header when ext.
Bytes RawIp(const Config& cfg, bool v6, const InetAddr& dst, uint8_t proto, bool ext = false) {
  Bytes f(14, 0);
  std::memcpy(f.data(), cfg.our_mac.b.data(), 6);
  std::memcpy(f.data() + 6, kGuestMac.b.data(), 6);
  f[12] = v6 ? 0x86 : 0x08;
  f[13] = v6 ? 0xdd : 0x00;
  const Bytes payload = {'p', 'r', 'o', 't', 'o', '-', 'x', 'y'};
  if (!v6) {
    Bytes ip = {0x45, 0, 0, static_cast<uint8_t>(20 + payload.size()), 0, 0, 0x40, 0, 64, proto, 0, 0};
    ip.insert(ip.end(), cfg.guest4.addr.v4_bytes(), cfg.guest4.addr.v4_bytes() + 4);
    ip.insert(ip.end(), dst.v4_bytes(), dst.v4_bytes() + 4);
    const uint16_t c = csum_fold(csum_partial(ip.data(), ip.size(), 0));
    std::memcpy(ip.data() + 10, &c, 2);
    f.insert(f.end(), ip.begin(), ip.end());
  } else {
    const size_t plen = payload.size() + (ext ? 8 : 0);
    Bytes ip = {0x60, 0, 0, 0, 0, static_cast<uint8_t>(plen), static_cast<uint8_t>(ext ? 60 : proto), 64};
    ip.insert(ip.end(), cfg.guest6.addr.b.begin(), cfg.guest6.addr.b.end());
    ip.insert(ip.end(), dst.b.begin(), dst.b.end());
    if (ext) ip.insert(ip.end(), {proto, 0, 1, 4, 0, 0, 0, 0});  // PadN of 4
    f.insert(f.end(), ip.begin(), ip.end());
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

// RFC 1122 3.2.2.1 / RFC 8200 4: the gateway, a host to the guest, answers
// a protocol it does not speak (protocol unreachable; parameter problem
// code 1 pointing at the Next Header field naming it, in the base header or
// the last extension header), quoting the packet. No Next Header (59) and
// packets to other addresses are only counted.
TEST_F(TranslatorTest, UnknownProtocolToTheGatewayIsAnswered) {
  Feed(RawIp(cfg, false, cfg.gateway4, 253));
  ASSERT_EQ(port.sent.size(), 1u);
  ParsedFrame r = parse_frame(port.sent[0], true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.icmp.type, 3);
  EXPECT_EQ(r.icmp.code, 2);
  EXPECT_EQ(r.src, cfg.gateway4);
  EXPECT_EQ(r.dst, cfg.guest4.addr);
  ASSERT_GE(r.icmp.body_len, 4u + 20 + 8);
  EXPECT_EQ(port.sent[0][r.icmp.body_offset + 4 + 9], 253);  // the quoted protocol
  for (bool ext : {false, true}) {
    port.sent.clear();
    Feed(RawIp(cfg, true, cfg.gateway6, 253, ext));
    ASSERT_EQ(port.sent.size(), 1u);
    r = parse_frame(port.sent[0], true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.icmp.type, 4);
    EXPECT_EQ(r.icmp.code, 1);
    EXPECT_EQ(r.src, cfg.gateway6);
    const uint8_t* ptr = port.sent[0].data() + r.icmp.body_offset;
    EXPECT_EQ((ptr[0] << 24) | (ptr[1] << 16) | (ptr[2] << 8) | ptr[3], ext ? 40 : 6);
  }
  port.sent.clear();
  Feed(RawIp(cfg, true, cfg.gateway6, 59));                 // No Next Header
  Feed(RawIp(cfg, false, *InetAddr::parse("198.18.0.77"), 253));  // not the gateway
  Feed(RawIp(cfg, true, *InetAddr::parse("fd00:f::77"), 253));
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.counters().unhandled, 6u);
  EXPECT_EQ(tr.counters().protocol_unreachable, 3u);
}

// The pace of ICMP errors ferry originates (RFC 4443 2.4 f): a burst of 50,
// then one per millisecond, on a clock the test sets.
TEST(IcmpErrorPace, BurstThenOnePerMillisecond) {
  IcmpErrorPace pace;
  const uint64_t t0 = 5'000'000'000;
  int sent = 0;
  for (int i = 0; i < 200; i++) sent += pace.take(t0);
  EXPECT_EQ(sent, 50);
  EXPECT_FALSE(pace.take(t0 + 999'999));
  EXPECT_TRUE(pace.take(t0 + 1'000'000));
  EXPECT_FALSE(pace.take(t0 + 1'000'000));
  sent = 0;
  for (int i = 0; i < 200; i++) sent += pace.take(t0 + 11'000'000);  // 10 ms later: 10 tokens
  EXPECT_EQ(sent, 10);
  sent = 0;
  for (int i = 0; i < 200; i++) sent += pace.take(t0 + 3'600'000'000'000);  // an hour: a burst, no more
  EXPECT_EQ(sent, 50);
}

TEST_F(TranslatorTest, SpoofedSourcesAreDroppedAndCounted) {
  Feed(Echo(cfg.our_mac, *InetAddr::parse("198.18.0.9")));
  Feed(Echo(cfg.our_mac, *InetAddr::parse("10.0.0.1")));
  UdpDatagram d;
  d.ip.eth_src = kGuestMac;
  d.ip.eth_dst = cfg.our_mac;
  d.ip.src = *InetAddr::parse("fd00:1::99");  // outside the guest's fd00:f::/64
  d.ip.dst = cfg.gateway6;
  d.sport = 1000;
  d.dport = 5353;  // not 53: the DNS forwarder (a guest service) takes that first
  Bytes u(kMaxFrameLen);
  u.resize(build_udp_frame(u, d));
  Feed(u);
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.policy().counters().spoofed_source, 3u);
  EXPECT_EQ(tr.udp().counters().guest_datagrams, 0u);
  // The guest's own address still is.
  Feed(Echo(cfg.our_mac));
  EXPECT_EQ(port.sent.size(), 1u);
}

}  // namespace
}  // namespace ferry

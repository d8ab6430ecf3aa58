// Frame codec tests: build -> parse round trips for every frame type and both
// families, checksums against RFC 1071 and a naive reference, and hostile
// input: every prefix of every valid frame, bad header lengths, bad option
// lengths, IPv6 extension chains running off the end, UDP length lies, bad
// checksums, fragments, a VLAN tag. Prefixes are copied into exactly-sized
// heap buffers so that an over-read shows up under -DFERRY_SANITIZE=ON.
// test-libs: ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "codec/addr.h"
#include "codec/checksum.h"
#include "codec/frame.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const MacAddr kOurMac{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};

InetAddr A(const char* s) { return *InetAddr::parse(s); }

L2L3 Ip(bool v6) {
  L2L3 l;
  l.eth_src = kGuestMac;
  l.eth_dst = kOurMac;
  l.src = v6 ? A("fd00:f::2") : A("198.18.0.2");
  l.dst = v6 ? A("fd00:f::1") : A("198.18.0.1");
  l.ttl = 61;
  return l;
}

// Naive RFC 1071: 16-bit big-endian words, odd byte padded, folded, complemented.
uint16_t NaiveChecksum(const uint8_t* p, size_t n, uint32_t init = 0) {
  uint64_t s = init;
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) s += uint32_t{p[n - 1]} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Network-order checksum as csum_fold returns it, converted for comparison.
uint16_t Host(uint16_t be) {
  uint8_t b[2];
  std::memcpy(b, &be, 2);
  return static_cast<uint16_t>((b[0] << 8) | b[1]);
}

ParsedFrame Parse(const Bytes& f, bool verify = true) { return parse_frame(f, verify); }

Bytes Payload(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

Bytes BuildTcp(bool v6, const TcpOptions& o, const Bytes& payload, uint8_t flags = tcpflag::kAck) {
  TcpSegment s;
  s.ip = Ip(v6);
  s.sport = 40000;
  s.dport = 80;
  s.seq = 0x11223344;
  s.ack = 0xaabbccdd;
  s.flags = flags;
  s.window = 501;
  s.opts = o;
  s.payload = payload;
  Bytes out(kMaxFrameLen);
  size_t n = build_tcp_frame(out, s);
  EXPECT_GT(n, 0u);
  out.resize(n);
  return out;
}

Bytes BuildUdp(bool v6, const Bytes& payload) {
  UdpDatagram d;
  d.ip = Ip(v6);
  d.sport = 5353;
  d.dport = 53;
  d.payload = payload;
  Bytes out(kMaxFrameLen);
  size_t n = build_udp_frame(out, d);
  EXPECT_GT(n, 0u);
  out.resize(n);
  return out;
}

Bytes BuildEcho(bool v6, uint16_t id, uint16_t seq, const Bytes& data) {
  Bytes body(4 + data.size());
  body[0] = static_cast<uint8_t>(id >> 8);
  body[1] = static_cast<uint8_t>(id);
  body[2] = static_cast<uint8_t>(seq >> 8);
  body[3] = static_cast<uint8_t>(seq);
  std::memcpy(body.data() + 4, data.data(), data.size());
  Bytes out(kMaxFrameLen);
  size_t n = build_icmp_frame(out, Ip(v6), v6 ? 128 : 8, 0, body);
  EXPECT_GT(n, 0u);
  out.resize(n);
  return out;
}

Bytes BuildArp() {
  Bytes out(100);
  size_t n = build_arp_reply(out, kOurMac, A("198.18.0.1"), kGuestMac, A("198.18.0.2"));
  EXPECT_EQ(n, 42u);
  out.resize(n);
  return out;
}

Bytes BuildNa(bool router) {
  L2L3 l = Ip(true);
  l.src = A("fd00:f::1");
  l.dst = A("fd00:f::2");
  Bytes out(200);
  size_t n = build_ndp_na(out, l, A("fd00:f::1"), kOurMac, router);
  EXPECT_GT(n, 0u);
  out.resize(n);
  return out;
}

TcpOptions AllOpts() {
  TcpOptions o;
  o.has_mss = true;
  o.mss = 1460;
  o.has_wscale = true;
  o.wscale = 7;
  o.sack_permitted = true;
  o.has_timestamps = true;
  o.ts_val = 0x01020304;
  o.ts_ecr = 0x05060708;
  return o;
}

// Every valid frame type, both families, a few option sets.
std::vector<Bytes> AllValidFrames() {
  std::vector<Bytes> v;
  for (bool v6 : {false, true}) {
    v.push_back(BuildTcp(v6, AllOpts(), Payload(33), tcpflag::kSyn));
    v.push_back(BuildTcp(v6, TcpOptions{}, Payload(0)));
    TcpOptions ts;
    ts.has_timestamps = true;
    v.push_back(BuildTcp(v6, ts, Payload(5)));
    v.push_back(BuildUdp(v6, Payload(17)));
    v.push_back(BuildUdp(v6, Payload(0)));
    v.push_back(BuildEcho(v6, 7, 9, Payload(11)));
  }
  v.push_back(BuildArp());
  v.push_back(BuildNa(true));
  return v;
}

// ---- addresses ---------------------------------------------------------------

TEST(Addr, ParseAndPrint) {
  auto a = InetAddr::parse("198.18.0.2");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->str(), "198.18.0.2");
  auto b = InetAddr::parse("fd00:f::2");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->is_v4());
  EXPECT_EQ(b->str(), "fd00:f::2");
  EXPECT_FALSE(InetAddr::parse("198.18.0"));
  EXPECT_FALSE(InetAddr::parse("198.18.0.2x"));
  EXPECT_FALSE(InetAddr::parse(""));
  EXPECT_TRUE(A("127.0.0.1").is_loopback());
  EXPECT_TRUE(A("::1").is_loopback());
  EXPECT_FALSE(A("::2").is_loopback());
  EXPECT_TRUE(A("224.0.0.1").is_multicast());
  EXPECT_TRUE(A("ff02::1").is_multicast());
  EXPECT_TRUE(A("0.0.0.0").is_unspecified());
  EXPECT_TRUE(A("::").is_unspecified());
  EXPECT_FALSE(A("::").is_v4());
  EXPECT_TRUE(A("fe80::1").is_link_local_v6());
  EXPECT_TRUE(A("198.18.0.2").same_prefix(A("198.18.0.200"), 24));
  EXPECT_FALSE(A("198.18.0.2").same_prefix(A("198.18.1.2"), 24));
  EXPECT_TRUE(A("198.18.0.2").same_prefix(A("198.19.1.2"), 15));
  EXPECT_FALSE(A("198.18.0.2").same_prefix(A("fd00:f::2"), 0));
  EXPECT_TRUE(A("fd00:f::2").same_prefix(A("fd00:f::99"), 64));
  EXPECT_FALSE(A("fd00:f::2").same_prefix(A("fd00:e::2"), 64));
  auto p = InetPrefix::parse("198.18.0.2/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->len, 24u);
  EXPECT_EQ(p->str(), "198.18.0.2/24");
  EXPECT_FALSE(InetPrefix::parse("198.18.0.2/33"));
  EXPECT_FALSE(InetPrefix::parse("198.18.0.2/"));
  EXPECT_EQ(InetPrefix::parse("fd00:f::2")->len, 128u);
  EXPECT_NE(InetAddrHash{}(A("1.2.3.4")), InetAddrHash{}(A("1.2.3.5")));
}

TEST(Addr, Mac) {
  auto m = MacAddr::parse("52:54:00:12:34:56");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, kGuestMac);
  EXPECT_EQ(m->str(), "52:54:00:12:34:56");
  EXPECT_FALSE(MacAddr::parse("52:54:00:12:34"));
  EXPECT_FALSE(MacAddr::parse("52:54:00:12:34:5g"));
  EXPECT_FALSE(MacAddr::parse("52-54-00-12-34-56"));
  EXPECT_TRUE(MacAddr::parse("ff:ff:ff:ff:ff:ff")->is_broadcast());
  EXPECT_TRUE(MacAddr::parse("33:33:00:00:00:01")->is_multicast());
  EXPECT_FALSE(kGuestMac.is_multicast());
}

// One sockaddr builder and reader for every host socket: each family, the
// dual-stack form (IPv4 as ::ffff:a.b.c.d in a sockaddr_in6), and a family
// that is neither.
TEST(Addr, SockaddrRoundTrip) {
  sockaddr_storage ss;
  InetAddr back;
  uint16_t port = 0;

  const InetAddr v4 = *InetAddr::parse("198.18.0.2");
  ASSERT_EQ(to_sockaddr(v4, 8080, &ss), sizeof(sockaddr_in));
  EXPECT_EQ(ss.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port), 8080);
  ASSERT_TRUE(from_sockaddr(ss, &back, &port));
  EXPECT_EQ(back, v4);
  EXPECT_EQ(port, 8080);

  ASSERT_EQ(to_sockaddr(v4, 53, &ss, /*as_v6=*/true), sizeof(sockaddr_in6));
  EXPECT_EQ(ss.ss_family, AF_INET6);
  ASSERT_TRUE(from_sockaddr(ss, &back, &port));
  EXPECT_EQ(back, v4);  // a v4-mapped peer reads as IPv4
  EXPECT_TRUE(back.is_v4());
  EXPECT_EQ(port, 53);

  const InetAddr v6 = *InetAddr::parse("fd00:f::2");
  ASSERT_EQ(to_sockaddr(v6, 0, &ss), sizeof(sockaddr_in6));
  ASSERT_TRUE(from_sockaddr(ss, &back));  // the port is optional
  EXPECT_EQ(back, v6);

  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(from_sockaddr(ss, &back, &port));
  EXPECT_FALSE(from_sockaddr(static_cast<const sockaddr*>(nullptr), &back));
}

// ---- checksums ---------------------------------------------------------------

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  uint16_t c = csum_fold(csum_partial(d, sizeof(d), 0));
  uint8_t b[2];
  std::memcpy(b, &c, 2);
  EXPECT_EQ(b[0], 0x22);  // ~0xddf2 = 0x220d, stored big-endian
  EXPECT_EQ(b[1], 0x0d);
  // Split into two even pieces gives the same.
  EXPECT_EQ(csum_fold(csum_partial(d + 4, 4, csum_partial(d, 4, 0))), c);
}

TEST(Checksum, KnownIpv4Header) {
  // A textbook IPv4 header whose checksum is 0xb861.
  uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(Host(csum_fold(csum_partial(h, sizeof(h), 0))), 0xb861);
  h[10] = 0xb8;
  h[11] = 0x61;
  EXPECT_TRUE(csum_valid(h, sizeof(h), 0));
  h[11] = 0x62;
  EXPECT_FALSE(csum_valid(h, sizeof(h), 0));
}

TEST(Checksum, MatchesNaiveOnRandomData) {
  std::mt19937 rng(1234);
  Bytes buf(70000 + 16);
  for (auto& x : buf) x = static_cast<uint8_t>(rng());
  for (int i = 0; i < 3000; i++) {
    size_t off = rng() % 16;
    size_t len = (i % 10 == 0) ? rng() % 70000 : rng() % 300;
    uint32_t init = (i & 1) ? rng() : 0;
    // An unfolded 32-bit initial sum is a valid partial: the naive reference
    // folds it first.
    uint64_t fi = init;
    while (fi >> 16) fi = (fi & 0xffff) + (fi >> 16);
    uint16_t got = Host(csum_fold(csum_partial(buf.data() + off, len, init)));
    uint16_t want = NaiveChecksum(buf.data() + off, len, static_cast<uint32_t>(fi));
    // +0 and -0 are the same one's complement value.
    if (got != want) {
      EXPECT_TRUE((got == 0 && want == 0xffff) || (got == 0xffff && want == 0))
          << "len " << len << " off " << off << " got " << got << " want " << want;
    }
  }
}

TEST(Checksum, AllOnesAndZeros) {
  Bytes ones(65536, 0xff), zeros(65535, 0);
  EXPECT_EQ(Host(csum_fold(csum_partial(ones.data(), ones.size(), 0))),
            NaiveChecksum(ones.data(), ones.size()));
  EXPECT_EQ(Host(csum_fold(csum_partial(zeros.data(), zeros.size(), 0))), 0xffff);
  EXPECT_EQ(Host(csum_fold(csum_partial(ones.data() + 1, 65535, 0))),
            NaiveChecksum(ones.data() + 1, 65535));
}

TEST(Checksum, IncrementalMatchesRecompute) {
  std::mt19937 rng(99);
  for (int i = 0; i < 2000; i++) {
    Bytes d(2 * (4 + rng() % 40));
    for (auto& x : d) x = static_cast<uint8_t>(rng());
    d[0] = d[1] = 0;  // checksum field
    uint16_t c = csum_fold(csum_partial(d.data(), d.size(), 0));
    std::memcpy(d.data(), &c, 2);
    size_t field = 2 * (1 + rng() % (d.size() / 2 - 1));
    uint16_t oldv, newv = static_cast<uint16_t>(rng());
    std::memcpy(&oldv, d.data() + field, 2);
    std::memcpy(d.data() + field, &newv, 2);
    uint16_t inc = csum_replace16(c, oldv, newv);
    std::memcpy(d.data(), &inc, 2);
    EXPECT_TRUE(csum_valid(d.data(), d.size(), 0)) << i;
  }
  // 32-bit replacement (e.g. an address rewrite).
  Bytes d = BuildUdp(false, Payload(9));
  ParsedFrame p = Parse(d);
  ASSERT_TRUE(p.ok());
  uint8_t* ip = d.data() + p.l3_offset;
  uint32_t oldv, newv;
  std::memcpy(&oldv, ip + 16, 4);
  const uint8_t lo[4] = {127, 0, 0, 1};
  std::memcpy(&newv, lo, 4);
  std::memcpy(ip + 16, &newv, 4);
  uint16_t ipc, udpc;
  std::memcpy(&ipc, ip + 10, 2);
  ipc = csum_replace32(ipc, oldv, newv);
  std::memcpy(ip + 10, &ipc, 2);
  std::memcpy(&udpc, d.data() + p.l4_offset + 6, 2);
  udpc = csum_replace32(udpc, oldv, newv);
  std::memcpy(d.data() + p.l4_offset + 6, &udpc, 2);
  p = Parse(d);
  EXPECT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.dst, A("127.0.0.1"));
}

TEST(Checksum, Pseudo) {
  // IPv4 pseudo-header: src, dst, zero+proto, length.
  uint8_t ph[] = {198, 18, 0, 2, 198, 18, 0, 1, 0, 17, 0x01, 0x02};
  EXPECT_EQ(csum_fold(csum_pseudo(A("198.18.0.2"), A("198.18.0.1"), 17, 0x0102)),
            csum_fold(csum_partial(ph, sizeof(ph), 0)));
  uint8_t ph6[40] = {};
  InetAddr s = A("fd00:f::2"), d = A("fd00:f::1");
  std::memcpy(ph6, s.b.data(), 16);
  std::memcpy(ph6 + 16, d.b.data(), 16);
  ph6[33] = 0x01;  // length 0x00010203
  ph6[34] = 0x02;
  ph6[35] = 0x03;
  ph6[39] = 58;
  EXPECT_EQ(csum_fold(csum_pseudo(s, d, 58, 0x00010203)),
            csum_fold(csum_partial(ph6, sizeof(ph6), 0)));
}

// ---- round trips --------------------------------------------------------------

class Family : public ::testing::TestWithParam<bool> {};

TEST_P(Family, TcpRoundTrip) {
  const bool v6 = GetParam();
  // Every combination of the four emitted options.
  for (int mask = 0; mask < 16; mask++) {
    TcpOptions o;
    o.has_mss = mask & 1;
    o.mss = 1400;
    o.has_wscale = mask & 2;
    o.wscale = 9;
    o.sack_permitted = mask & 4;
    o.has_timestamps = mask & 8;
    o.ts_val = 77;
    o.ts_ecr = 88;
    Bytes pl = Payload(101);
    Bytes f = BuildTcp(v6, o, pl, tcpflag::kSyn | tcpflag::kAck);
    EXPECT_EQ(f.size(), tcp_frame_header_len(v6, o) + pl.size());
    EXPECT_EQ((tcp_frame_header_len(v6, o) - kEthHeaderLen) % 4, 0u);
    ParsedFrame p = Parse(f);
    ASSERT_TRUE(p.ok()) << to_string(p.status) << " mask " << mask;
    EXPECT_TRUE(p.is_tcp());
    EXPECT_EQ(p.l3, v6 ? L3Kind::ipv6 : L3Kind::ipv4);
    EXPECT_EQ(p.ethertype, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
    EXPECT_EQ(p.eth_src, kGuestMac);
    EXPECT_EQ(p.eth_dst, kOurMac);
    EXPECT_EQ(p.src, Ip(v6).src);
    EXPECT_EQ(p.dst, Ip(v6).dst);
    EXPECT_EQ(p.ttl, 61);
    EXPECT_EQ(p.tcp.sport, 40000);
    EXPECT_EQ(p.tcp.dport, 80);
    EXPECT_EQ(p.tcp.seq, 0x11223344u);
    EXPECT_EQ(p.tcp.ack, 0xaabbccddu);
    EXPECT_EQ(p.tcp.flags, tcpflag::kSyn | tcpflag::kAck);
    EXPECT_EQ(p.tcp.window, 501);
    EXPECT_EQ(p.tcp.opts.has_mss, o.has_mss);
    if (o.has_mss) EXPECT_EQ(p.tcp.opts.mss, 1400);
    EXPECT_EQ(p.tcp.opts.has_wscale, o.has_wscale);
    if (o.has_wscale) EXPECT_EQ(p.tcp.opts.wscale, 9);
    EXPECT_EQ(p.tcp.opts.sack_permitted, o.sack_permitted);
    EXPECT_EQ(p.tcp.opts.has_timestamps, o.has_timestamps);
    if (o.has_timestamps) {
      EXPECT_EQ(p.tcp.opts.ts_val, 77u);
      EXPECT_EQ(p.tcp.opts.ts_ecr, 88u);
    }
    EXPECT_FALSE(p.tcp.opts.has_unknown);
    ASSERT_EQ(p.tcp.payload_len, pl.size());
    EXPECT_EQ(0, std::memcmp(f.data() + p.tcp.payload_offset, pl.data(), pl.size()));
    if (!v6) {
      const uint8_t* ip = f.data() + p.l3_offset;
      EXPECT_EQ(ip[6] & 0x40, 0x40);  // DF
      EXPECT_TRUE(csum_valid(ip, 20, 0));
    } else {
      const uint8_t* ip = f.data() + p.l3_offset;
      EXPECT_EQ(ip[1] & 0x0f, 0);  // flow label 0
      EXPECT_EQ(ip[2], 0);
      EXPECT_EQ(ip[3], 0);
    }
  }
}

TEST_P(Family, TcpPayloadInPlaceAndAliased) {
  const bool v6 = GetParam();
  TcpOptions o = AllOpts();
  Bytes pl = Payload(1000, 3);
  Bytes ref = BuildTcp(v6, o, pl);
  size_t hdr = tcp_frame_header_len(v6, o);

  // Payload already at its place: built without a copy, same bytes.
  Bytes out(kMaxFrameLen, 0xee);
  std::memcpy(out.data() + hdr, pl.data(), pl.size());
  TcpSegment s;
  s.ip = Ip(v6);
  s.sport = 40000;
  s.dport = 80;
  s.seq = 0x11223344;
  s.ack = 0xaabbccdd;
  s.flags = tcpflag::kAck;
  s.window = 501;
  s.opts = o;
  s.payload = std::span<const uint8_t>(out.data() + hdr, pl.size());
  size_t n = build_tcp_frame(out, s);
  ASSERT_EQ(n, ref.size());
  EXPECT_EQ(0, std::memcmp(out.data(), ref.data(), n));

  // Payload inside the output but at other offsets (overlapping either way).
  for (size_t where : {hdr + 3, hdr - 5, size_t{0}, size_t{1}}) {
    Bytes o2(kMaxFrameLen, 0xee);
    std::memcpy(o2.data() + where, pl.data(), pl.size());
    s.payload = std::span<const uint8_t>(o2.data() + where, pl.size());
    n = build_tcp_frame(o2, s);
    ASSERT_EQ(n, ref.size());
    EXPECT_EQ(0, std::memcmp(o2.data(), ref.data(), n)) << where;
  }
}

TEST_P(Family, UdpRoundTripAndInPlace) {
  const bool v6 = GetParam();
  for (size_t len : {size_t{0}, size_t{1}, size_t{2}, size_t{1471}, size_t{9000}}) {
    Bytes pl = Payload(len, 5);
    Bytes f = BuildUdp(v6, pl);
    EXPECT_EQ(f.size(), udp_frame_header_len(v6) + len);
    ParsedFrame p = Parse(f);
    ASSERT_TRUE(p.ok()) << to_string(p.status);
    EXPECT_TRUE(p.is_udp());
    EXPECT_EQ(p.udp.sport, 5353);
    EXPECT_EQ(p.udp.dport, 53);
    ASSERT_EQ(p.udp.payload_len, len);
    if (len) EXPECT_EQ(0, std::memcmp(f.data() + p.udp.payload_offset, pl.data(), len));
    EXPECT_EQ(p.l4_len, len + 8);

    Bytes out(kMaxFrameLen);
    size_t hdr = udp_frame_header_len(v6);
    if (len) std::memcpy(out.data() + hdr, pl.data(), len);
    UdpDatagram d;
    d.ip = Ip(v6);
    d.sport = 5353;
    d.dport = 53;
    d.payload = std::span<const uint8_t>(out.data() + hdr, len);
    ASSERT_EQ(build_udp_frame(out, d), f.size());
    EXPECT_EQ(0, std::memcmp(out.data(), f.data(), f.size()));
  }
}

TEST_P(Family, IcmpEchoRoundTrip) {
  const bool v6 = GetParam();
  Bytes data = Payload(56);
  Bytes f = BuildEcho(v6, 0x1234, 0x0007, data);
  ParsedFrame p = Parse(f);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.protocol, v6 ? uint8_t{IPPROTO_ICMPV6} : uint8_t{IPPROTO_ICMP});
  EXPECT_EQ(p.icmp.type, v6 ? 128 : 8);
  EXPECT_EQ(p.icmp.code, 0);
  EXPECT_EQ(p.icmp.id, 0x1234);
  EXPECT_EQ(p.icmp.seq, 7);
  EXPECT_EQ(p.icmp.body_len, 4 + data.size());
  EXPECT_EQ(0, std::memcmp(f.data() + p.icmp.body_offset + 4, data.data(), data.size()));
}

TEST_P(Family, BadChecksums) {
  const bool v6 = GetParam();
  for (Bytes f : {BuildTcp(v6, AllOpts(), Payload(20)), BuildUdp(v6, Payload(20)),
                  BuildEcho(v6, 1, 2, Payload(20))}) {
    f.back() ^= 0x40;
    EXPECT_EQ(Parse(f).status, ParseStatus::bad_checksum);
    EXPECT_TRUE(Parse(f, false).ok());
  }
  if (!v6) {
    Bytes f = BuildUdp(false, Payload(4));
    f[kEthHeaderLen + 8] ^= 1;  // TTL: breaks the IPv4 header checksum
    EXPECT_EQ(Parse(f).status, ParseStatus::bad_checksum);
  }
}

// A TCP or UDP checksum left partial by a sender that offloaded it (the
// pseudo-header's folded sum, uncomplemented: what Linux writes for
// CHECKSUM_PARTIAL) is bad for ChecksumPolicy::all and taken, marked, by
// all_or_partial; a checksum in neither form is bad for both, a full one is
// not marked. ICMP has no partial form.
TEST_P(Family, PartialChecksumOnlyWithAllOrPartial) {
  const bool v6 = GetParam();
  for (Bytes f : {BuildTcp(v6, AllOpts(), Payload(21)), BuildUdp(v6, Payload(21))}) {
    const ParsedFrame full = parse_frame(f, ChecksumPolicy::all_or_partial);
    ASSERT_TRUE(full.ok()) << to_string(full.status);
    EXPECT_FALSE(full.l4_checksum_partial);
    const size_t field = full.l4_offset + (full.protocol == IPPROTO_TCP ? 16 : 6);
    const uint32_t pseudo = csum_pseudo(full.src, full.dst, full.protocol, static_cast<uint32_t>(full.l4_len));
    const uint16_t partial = static_cast<uint16_t>(~csum_fold(pseudo));
    std::memcpy(f.data() + field, &partial, sizeof(partial));
    EXPECT_EQ(parse_frame(f, ChecksumPolicy::all).status, ParseStatus::bad_checksum);
    const ParsedFrame p = parse_frame(f, ChecksumPolicy::all_or_partial);
    EXPECT_TRUE(p.ok()) << to_string(p.status);
    EXPECT_TRUE(p.l4_checksum_partial);
    f.back() ^= 0x40;  // the payload changed: still the partial form (it covers no data)
    EXPECT_TRUE(parse_frame(f, ChecksumPolicy::all_or_partial).ok());
    f[field] ^= 0x01;  // neither full nor partial
    EXPECT_EQ(parse_frame(f, ChecksumPolicy::all_or_partial).status, ParseStatus::bad_checksum);
  }
  Bytes echo = BuildEcho(v6, 1, 2, Payload(20));
  echo.back() ^= 0x40;
  EXPECT_EQ(parse_frame(echo, ChecksumPolicy::all_or_partial).status, ParseStatus::bad_checksum);
}

TEST_P(Family, UdpZeroChecksum) {
  const bool v6 = GetParam();
  Bytes f = BuildUdp(v6, Payload(10));
  size_t l4 = Parse(f).l4_offset;
  f[l4 + 6] = f[l4 + 7] = 0;
  // RFC 768 allows "no checksum" over IPv4; RFC 8200 forbids it over IPv6.
  EXPECT_EQ(Parse(f).status, v6 ? ParseStatus::bad_checksum : ParseStatus::ok);
}

TEST_P(Family, UdpLengthLies) {
  const bool v6 = GetParam();
  Bytes f = BuildUdp(v6, Payload(10));
  size_t l4 = Parse(f).l4_offset;
  for (uint16_t lie : {0, 7, 19, 100, 65535}) {
    Bytes g = f;
    g[l4 + 4] = static_cast<uint8_t>(lie >> 8);
    g[l4 + 5] = static_cast<uint8_t>(lie);
    EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_total_length) << lie;
  }
  // Shorter UDP length than the IP payload: the rest is ignored.
  Bytes g = f;
  g[l4 + 5] = 12;
  ParsedFrame p = Parse(g, false);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.udp.payload_len, 4u);
}

TEST_P(Family, BadTcpDataOffset) {
  const bool v6 = GetParam();
  Bytes f = BuildTcp(v6, TcpOptions{}, Payload(8));
  size_t l4 = Parse(f).l4_offset;
  for (uint8_t doff : {0, 1, 4, 8, 15}) {  // 8*4 = 32 > 28 bytes of L4
    Bytes g = f;
    g[l4 + 12] = static_cast<uint8_t>(doff << 4);
    EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_header_length) << int{doff};
  }
}

TEST_P(Family, BadTcpOptionLengths) {
  const bool v6 = GetParam();
  TcpOptions o;
  o.has_mss = true;
  o.mss = 1000;
  o.has_wscale = true;
  Bytes f = BuildTcp(v6, o, Payload(4), tcpflag::kSyn);
  size_t opt = Parse(f).l4_offset + 20;  // MSS kind at opt, NOP WS at opt+4
  for (uint8_t len : {0, 1, 9, 255}) {
    Bytes g = f;
    g[opt + 1] = len;
    EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_header_length) << int{len};
  }
  // Last option byte is a kind with no room for its length.
  Bytes g = f;
  g[opt + 4] = 1;
  g[opt + 5] = 1;
  g[opt + 6] = 1;
  g[opt + 7] = 8;
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_header_length);
  // Known kind with a wrong (but in-bounds) length: ignored, flagged.
  g = f;
  g[opt + 1] = 3;
  g[opt + 3] = 1;  // what is left of the MSS option now reads as NOP
  ParsedFrame p = Parse(g, false);
  EXPECT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_FALSE(p.tcp.opts.has_mss);
  EXPECT_TRUE(p.tcp.opts.has_unknown);
  // EOL stops parsing.
  g = f;
  g[opt] = 0;
  p = Parse(g, false);
  EXPECT_TRUE(p.ok());
  EXPECT_FALSE(p.tcp.opts.has_mss);
  EXPECT_FALSE(p.tcp.opts.has_wscale);
}

TEST_P(Family, TruncatedL4Length) {
  const bool v6 = GetParam();
  // IP length says the L4 is shorter than its header.
  Bytes f = BuildTcp(v6, TcpOptions{}, {});
  ParsedFrame p0 = Parse(f);
  size_t ip = p0.l3_offset;
  Bytes g = f;
  if (v6) {
    g[ip + 5] = 10;
  } else {
    g[ip + 3] = 30;
    uint16_t c = 0;
    std::memcpy(g.data() + ip + 10, &c, 2);
    c = csum_fold(csum_partial(g.data() + ip, 20, 0));
    std::memcpy(g.data() + ip + 10, &c, 2);
  }
  EXPECT_EQ(Parse(g, false).status, ParseStatus::truncated);
}

TEST_P(Family, EveryPrefixFailsAndNeverOverreads) {
  const bool v6 = GetParam();
  (void)v6;
  for (const Bytes& f : AllValidFrames()) {
    ASSERT_TRUE(Parse(f).ok()) << to_string(Parse(f).status);
    for (size_t n = 0; n < f.size(); n++) {
      auto cut = std::make_unique<uint8_t[]>(n == 0 ? 1 : n);
      std::memcpy(cut.get(), f.data(), n);
      ParsedFrame p = parse_frame(std::span<const uint8_t>(cut.get(), n), true);
      EXPECT_FALSE(p.ok()) << "prefix " << n << " of " << f.size();
      ParsedFrame q = parse_frame(std::span<const uint8_t>(cut.get(), n), false);
      EXPECT_FALSE(q.ok()) << "prefix " << n << " of " << f.size();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(V4V6, Family, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "v6" : "v4"; });

// ---- IPv4 specifics -----------------------------------------------------------

// Fixes the IPv4 header checksum after an edit.
void FixIpv4(Bytes& f, size_t ip) {
  size_t ihl = size_t{4} * (f[ip] & 0xf);
  f[ip + 10] = f[ip + 11] = 0;
  uint16_t c = csum_fold(csum_partial(f.data() + ip, ihl, 0));
  std::memcpy(f.data() + ip + 10, &c, 2);
}

TEST(Ipv4, BadIhlAndLengths) {
  Bytes f = BuildUdp(false, Payload(30));
  const size_t ip = kEthHeaderLen;
  for (uint8_t ihl : {0, 1, 4}) {
    Bytes g = f;
    g[ip] = static_cast<uint8_t>(0x40 | ihl);
    EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_header_length);
  }
  Bytes g = f;
  g.resize(kEthHeaderLen + 40);  // IHL 15 = 60 bytes does not fit
  g[ip] = 0x4f;
  EXPECT_EQ(Parse(g, false).status, ParseStatus::truncated);
  g = f;
  g[ip + 2] = 0;
  g[ip + 3] = 19;  // total length < IHL
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_total_length);
  g = f;
  g[ip + 3] = static_cast<uint8_t>(g[ip + 3] + 1);  // longer than the frame
  EXPECT_EQ(Parse(g, false).status, ParseStatus::truncated);
  g = f;
  g[ip] = 0x65;
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_version);
}

TEST(Ipv4, EthernetPaddingIgnored) {
  Bytes f = BuildUdp(false, Payload(1));
  f.resize(f.size() + 20, 0);  // padding to the Ethernet minimum
  ParsedFrame p = Parse(f);
  EXPECT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.udp.payload_len, 1u);
}

TEST(Ipv4, Options) {
  Bytes f = BuildUdp(false, Payload(12));
  const size_t ip = kEthHeaderLen;
  // Insert 8 bytes of options: NOP, RR-like option of length 7 (kind 7).
  Bytes opts = {1, 7, 7, 4, 0, 0, 0, 0};
  Bytes g(f.begin(), f.begin() + ip + 20);
  g.insert(g.end(), opts.begin(), opts.end());
  g.insert(g.end(), f.begin() + ip + 20, f.end());
  g[ip] = 0x47;
  uint16_t total = static_cast<uint16_t>((g[ip + 2] << 8 | g[ip + 3]) + 8);
  g[ip + 2] = static_cast<uint8_t>(total >> 8);
  g[ip + 3] = static_cast<uint8_t>(total);
  FixIpv4(g, ip);
  ParsedFrame p = Parse(g);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.l4_offset, ip + 28);
  EXPECT_EQ(p.udp.payload_len, 12u);
  for (uint8_t bad : {0, 1, 8, 200}) {
    Bytes h = g;
    h[ip + 22] = bad;
    FixIpv4(h, ip);
    EXPECT_EQ(Parse(h).status, ParseStatus::bad_header_length) << int{bad};
  }
  // Loose and strict source routes (length 7: pointer, one address) are
  // not for us: the packet would go on to the address listed.
  for (uint8_t sr : {131, 137}) {
    Bytes h = g;
    h[ip + 21] = sr;
    FixIpv4(h, ip);
    EXPECT_EQ(Parse(h).status, ParseStatus::unsupported) << int{sr};
  }
}

TEST(Ipv4, FragmentsAndAddresses) {
  Bytes f = BuildUdp(false, Payload(12));
  const size_t ip = kEthHeaderLen;
  Bytes g = f;
  g[ip + 6] |= 0x20;  // MF
  FixIpv4(g, ip);
  EXPECT_EQ(Parse(g).status, ParseStatus::fragment);
  g = f;
  g[ip + 7] = 1;  // offset 8
  FixIpv4(g, ip);
  EXPECT_EQ(Parse(g).status, ParseStatus::fragment);
  g = f;
  g[ip + 12] = 224;  // multicast source
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_address);
  g = f;
  std::memset(g.data() + ip + 12, 0xff, 4);
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_address);
}

TEST(Ipv4, OtherProtocolIsOk) {
  Bytes f = BuildUdp(false, Payload(12));
  f[kEthHeaderLen + 9] = 47;  // GRE
  FixIpv4(f, kEthHeaderLen);
  ParsedFrame p = Parse(f);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.protocol, 47);
  EXPECT_FALSE(p.is_udp());
}

// ---- IPv6 extension headers ------------------------------------------------------

// Inserts `ext` (whose first byte is overwritten with the old next header)
// after the IPv6 header, with next header `type`.
Bytes InsertExt(const Bytes& f, uint8_t type, Bytes ext) {
  const size_t ip = kEthHeaderLen;
  ext[0] = f[ip + 6];
  Bytes g(f.begin(), f.begin() + ip + 40);
  g.insert(g.end(), ext.begin(), ext.end());
  g.insert(g.end(), f.begin() + ip + 40, f.end());
  g[ip + 6] = type;
  size_t plen = size_t{static_cast<size_t>(f[ip + 4] << 8 | f[ip + 5])} + ext.size();
  g[ip + 4] = static_cast<uint8_t>(plen >> 8);
  g[ip + 5] = static_cast<uint8_t>(plen);
  return g;
}

TEST(Ipv6, ExtensionChain) {
  Bytes f = BuildUdp(true, Payload(20));
  // Destination options with a PadN of 4 bytes: 8 bytes in all.
  Bytes dst = {0, 0, 1, 4, 0, 0, 0, 0};
  Bytes g = InsertExt(f, 60, dst);
  ParsedFrame p = Parse(g);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.protocol, IPPROTO_UDP);
  EXPECT_EQ(p.l4_offset, kEthHeaderLen + 48);
  EXPECT_EQ(p.udp.payload_len, 20u);
  // Hop-by-hop (Pad1 x6) in front of it.
  Bytes hbh = {0, 0, 0, 0, 0, 0, 0, 0};
  Bytes h = InsertExt(g, 0, hbh);
  p = Parse(h);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.l4_offset, kEthHeaderLen + 56);
  // Routing header (16 bytes).
  Bytes rt(16, 0);
  rt[1] = 1;
  p = Parse(InsertExt(f, 43, rt));
  EXPECT_TRUE(p.ok()) << to_string(p.status);
  // ... but not one with segments left: the packet is not at its end yet
  // (RFC 8200 4.4; a type 0 header is deprecated by RFC 5095).
  rt[3] = 1;
  EXPECT_EQ(Parse(InsertExt(f, 43, rt)).status, ParseStatus::unsupported);
  // Hop-by-hop not first: unsupported.
  Bytes bad = InsertExt(InsertExt(f, 0, hbh), 60, dst);
  EXPECT_EQ(Parse(bad).status, ParseStatus::unsupported);
  // Fragment header.
  Bytes frag = {0, 0, 0, 1, 0, 0, 0, 42};
  p = Parse(InsertExt(f, 44, frag));
  EXPECT_EQ(p.status, ParseStatus::fragment);
  EXPECT_EQ(p.protocol, IPPROTO_UDP);
  // TLV option length overflowing its header.
  Bytes badtlv = {0, 0, 1, 5, 0, 0, 0, 0};
  EXPECT_EQ(Parse(InsertExt(f, 60, badtlv)).status, ParseStatus::bad_header_length);
  Bytes badtlv2 = {0, 0, 0, 0, 0, 0, 0, 1};  // option type with no length byte
  EXPECT_EQ(Parse(InsertExt(f, 60, badtlv2)).status, ParseStatus::bad_header_length);
  // RFC 8200 4.2: an option ferry does not process is skipped when its
  // type's high bits are 00, else the packet is discarded (01, 10, 11).
  for (uint8_t type : {0x1e, 0x05, 0x04}) {  // unknown/00, router alert, tunnel limit
    Bytes opt = {0, 0, type, 2, 0, 0, 1, 0};
    EXPECT_TRUE(Parse(InsertExt(f, 60, opt)).ok()) << int{type};
    EXPECT_TRUE(Parse(InsertExt(f, 0, opt)).ok()) << int{type};
  }
  for (uint8_t type : {0x5e, 0x9e, 0xde, 0xc2, 0xc9, 0x63}) {  // 01, 10, 11; jumbo, home address, RPL
    Bytes opt = {0, 0, type, 2, 0, 0, 1, 0};
    EXPECT_EQ(Parse(InsertExt(f, 60, opt)).status, ParseStatus::unsupported) << int{type};
    EXPECT_EQ(Parse(InsertExt(f, 0, opt)).status, ParseStatus::unsupported) << int{type};
  }
  // Too many headers.
  Bytes many = f;
  for (int i = 0; i < 9; i++) many = InsertExt(many, 60, dst);
  EXPECT_EQ(Parse(many).status, ParseStatus::unsupported);
  // Eight is fine.
  Bytes eight = f;
  for (int i = 0; i < 8; i++) eight = InsertExt(eight, 60, dst);
  EXPECT_TRUE(Parse(eight).ok());
}

TEST(Ipv6, ChainRunsPastTheEnd) {
  Bytes f = BuildUdp(true, Payload(4));
  Bytes dst = {0, 200, 1, 4, 0, 0, 0, 0};  // claims (200+1)*8 bytes
  EXPECT_EQ(Parse(InsertExt(f, 60, dst)).status, ParseStatus::truncated);
  // Chain ends exactly at the end with no room for UDP.
  Bytes g = InsertExt(f, 60, {0, 0, 1, 4, 0, 0, 0, 0});
  const size_t ip = kEthHeaderLen;
  g[ip + 4] = 0;
  g[ip + 5] = 8;
  g.resize(ip + 48);
  EXPECT_EQ(Parse(g).status, ParseStatus::truncated);
  // Payload length cuts the extension header.
  g[ip + 5] = 4;
  EXPECT_EQ(Parse(g).status, ParseStatus::truncated);
  // Payload length larger than the frame.
  Bytes h = f;
  h[ip + 5] = static_cast<uint8_t>(h[ip + 5] + 1);
  EXPECT_EQ(Parse(h).status, ParseStatus::truncated);
  // Every prefix of a frame with a chain.
  Bytes c = InsertExt(InsertExt(f, 60, {0, 0, 1, 4, 0, 0, 0, 0}), 0, {0, 0, 0, 0, 0, 0, 0, 0});
  ASSERT_TRUE(Parse(c).ok());
  for (size_t n = 0; n < c.size(); n++) {
    auto cut = std::make_unique<uint8_t[]>(n + 1);
    std::memcpy(cut.get(), c.data(), n);
    EXPECT_FALSE(parse_frame(std::span<const uint8_t>(cut.get(), n)).ok()) << n;
  }
}

TEST(Ipv6, NoNextHeaderAndBadVersion) {
  Bytes f = BuildUdp(true, Payload(4));
  const size_t ip = kEthHeaderLen;
  Bytes g = f;
  g[ip + 6] = 59;
  ParsedFrame p = Parse(g);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.protocol, 59);
  g = f;
  g[ip] = 0x40;
  EXPECT_EQ(Parse(g).status, ParseStatus::bad_version);
  g = f;
  g[ip + 8] = 0xff;  // multicast source
  EXPECT_EQ(Parse(g, false).status, ParseStatus::bad_address);
}

// ---- ARP, NDP, VLAN --------------------------------------------------------------

TEST(Arp, ReplyRoundTripAndChecks) {
  Bytes f = BuildArp();
  ParsedFrame p = Parse(f);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.l3, L3Kind::arp);
  EXPECT_EQ(p.arp.op, 2);
  EXPECT_EQ(p.arp.sha, kOurMac);
  EXPECT_EQ(p.arp.spa, A("198.18.0.1"));
  EXPECT_EQ(p.arp.tha, kGuestMac);
  EXPECT_EQ(p.arp.tpa, A("198.18.0.2"));
  EXPECT_EQ(p.eth_dst, kGuestMac);
  EXPECT_EQ(p.eth_src, kOurMac);
  Bytes g = f;
  g[kEthHeaderLen + 1] = 6;  // htype 6
  EXPECT_EQ(Parse(g).status, ParseStatus::unsupported);
  g = f;
  g[kEthHeaderLen + 5] = 16;  // plen 16
  EXPECT_EQ(Parse(g).status, ParseStatus::unsupported);
  g = f;
  g[kEthHeaderLen + 7] = 3;  // op 3
  EXPECT_EQ(Parse(g).status, ParseStatus::unsupported);
  Bytes out(41);
  EXPECT_EQ(build_arp_reply(out, kOurMac, A("198.18.0.1"), kGuestMac, A("198.18.0.2")), 0u);
}

TEST(Arp, RequestIsBroadcastAndParses) {
  Bytes out(100);
  ASSERT_EQ(build_arp_request(out, kOurMac, A("198.18.0.1"), A("198.18.0.2")), 42u);
  ParsedFrame f = parse_frame(out, true);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f.eth_dst.is_broadcast());
  EXPECT_EQ(f.arp.op, 1);
  EXPECT_EQ(f.arp.sha, kOurMac);
  EXPECT_EQ(f.arp.tha, MacAddr{});
  EXPECT_EQ(f.arp.spa, A("198.18.0.1"));
  EXPECT_EQ(f.arp.tpa, A("198.18.0.2"));
  EXPECT_EQ(build_arp_request(out, kOurMac, A("fd00:f::1"), A("198.18.0.2")), 0u);
  Bytes small(41);
  EXPECT_EQ(build_arp_request(small, kOurMac, A("198.18.0.1"), A("198.18.0.2")), 0u);
}

TEST(Ndp, NeighbourSolicitationToSolicitedNode) {
  Bytes out(200);
  size_t n = build_ndp_ns(out, kOurMac, A("fd00:f::1"), A("fd00:f::2:abcd"));
  ASSERT_GT(n, 0u);
  out.resize(n);
  ParsedFrame f = parse_frame(out, true);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.icmp.type, 135);
  EXPECT_EQ(f.ttl, 255);
  EXPECT_EQ(f.dst, A("ff02::1:ff02:abcd"));
  EXPECT_EQ(f.eth_dst, (MacAddr{{0x33, 0x33, 0xff, 0x02, 0xab, 0xcd}}));
  ASSERT_EQ(f.icmp.body_len, 28u);
  const uint8_t* body = out.data() + f.icmp.body_offset;
  EXPECT_EQ(InetAddr::from_v6_bytes(body + 4), A("fd00:f::2:abcd"));
  EXPECT_EQ(body[20], 1);  // source link-layer address option
  EXPECT_EQ(0, std::memcmp(body + 22, kOurMac.b.data(), 6));
  EXPECT_EQ(build_ndp_ns(out, kOurMac, A("198.18.0.1"), A("fd00:f::2")), 0u);
}

TEST(Ndp, NeighbourAdvertisement) {
  for (bool router : {false, true}) {
    Bytes f = BuildNa(router);
    ParsedFrame p = Parse(f);
    ASSERT_TRUE(p.ok()) << to_string(p.status);
    EXPECT_EQ(p.ttl, 255);
    EXPECT_EQ(p.protocol, IPPROTO_ICMPV6);
    EXPECT_EQ(p.icmp.type, 136);
    EXPECT_EQ(p.icmp.code, 0);
    ASSERT_EQ(p.icmp.body_len, 28u);
    const uint8_t* b = f.data() + p.icmp.body_offset;
    EXPECT_EQ(b[0], router ? 0xe0 : 0x60);  // R S O
    EXPECT_EQ(0, std::memcmp(b + 4, A("fd00:f::1").b.data(), 16));
    EXPECT_EQ(b[20], 2);
    EXPECT_EQ(b[21], 1);
    EXPECT_EQ(0, std::memcmp(b + 22, kOurMac.b.data(), 6));
  }
  Bytes out(200);
  L2L3 l = Ip(false);
  EXPECT_EQ(build_ndp_na(out, l, A("fd00:f::1"), kOurMac, false), 0u);
}

TEST(Vlan, TagIsSkipped) {
  for (const Bytes& f : AllValidFrames()) {
    Bytes g(f.begin(), f.begin() + 12);
    Bytes tag = {0x81, 0x00, 0x00, 0x2a};
    g.insert(g.end(), tag.begin(), tag.end());
    g.insert(g.end(), f.begin() + 12, f.end());
    ParsedFrame a = Parse(f), b = Parse(g);
    ASSERT_TRUE(b.ok()) << to_string(b.status);
    EXPECT_TRUE(b.vlan);  // the translator drops tagged frames: it must be told
    EXPECT_FALSE(a.vlan);
    EXPECT_EQ(b.ethertype, a.ethertype);
    EXPECT_EQ(b.l3_offset, a.l3_offset + 4);
    EXPECT_EQ(b.l4_offset, a.l3 == L3Kind::arp ? 0 : a.l4_offset + 4);
    EXPECT_EQ(b.l3, a.l3);
    EXPECT_EQ(b.src, a.src);
    // Prefixes of tagged frames fail too.
    for (size_t n = 0; n < g.size(); n++) {
      auto cut = std::make_unique<uint8_t[]>(n + 1);
      std::memcpy(cut.get(), g.data(), n);
      EXPECT_FALSE(parse_frame(std::span<const uint8_t>(cut.get(), n)).ok());
    }
  }
  // Double tag: unsupported.
  Bytes f = BuildUdp(false, Payload(3));
  Bytes g(f.begin(), f.begin() + 12);
  Bytes tags = {0x81, 0x00, 0x00, 0x2a, 0x81, 0x00, 0x00, 0x2b};
  g.insert(g.end(), tags.begin(), tags.end());
  g.insert(g.end(), f.begin() + 12, f.end());
  EXPECT_EQ(Parse(g).status, ParseStatus::unsupported);
}

TEST(Build, TooSmallBufferReturnsZero) {
  for (bool v6 : {false, true}) {
    Bytes pl = Payload(100);
    TcpSegment s;
    s.ip = Ip(v6);
    s.opts = AllOpts();
    s.payload = pl;
    Bytes out(tcp_frame_header_len(v6, s.opts) + 99);
    EXPECT_EQ(build_tcp_frame(out, s), 0u);
    out.resize(out.size() + 1);
    EXPECT_EQ(build_tcp_frame(out, s), out.size());
    UdpDatagram d;
    d.ip = Ip(v6);
    d.payload = pl;
    Bytes o2(udp_frame_header_len(v6) + 99);
    EXPECT_EQ(build_udp_frame(o2, d), 0u);
    Bytes o3(kEthHeaderLen + 20);
    EXPECT_EQ(build_icmp_frame(o3, Ip(v6), 8, 0, pl), 0u);
  }
  // IPv4 total length overflow.
  Bytes big(70000);
  UdpDatagram d;
  d.ip = Ip(false);
  d.payload = std::span<const uint8_t>(big.data(), 65535 - 28 + 1);
  Bytes out(kMaxFrameLen + 100);
  EXPECT_EQ(build_udp_frame(out, d), 0u);
  d.payload = std::span<const uint8_t>(big.data(), 65535 - 28);
  EXPECT_GT(build_udp_frame(out, d), 0u);
}

TEST(Fuzz, RandomMutationsNeverCrash) {
  std::mt19937 rng(42);
  auto frames = AllValidFrames();
  for (int i = 0; i < 20000; i++) {
    Bytes f = frames[rng() % frames.size()];
    int flips = 1 + rng() % 4;
    for (int k = 0; k < flips; k++) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    size_t n = rng() % (f.size() + 1);
    auto cut = std::make_unique<uint8_t[]>(n + 1);
    std::memcpy(cut.get(), f.data(), n);
    ParsedFrame p = parse_frame(std::span<const uint8_t>(cut.get(), n), (i & 1) != 0);
    if (p.ok() && p.is_tcp()) {
      EXPECT_LE(p.tcp.payload_offset + p.tcp.payload_len, n);
    }
    if (p.ok() && p.is_udp()) {
      EXPECT_LE(p.udp.payload_offset + p.udp.payload_len, n);
    }
    if (p.ok() && p.l3 >= L3Kind::ipv4) {
      EXPECT_LE(p.l4_offset + p.l4_len, n);
    }
  }
}

TEST(Status, Names) {
  EXPECT_STREQ(to_string(ParseStatus::ok), "ok");
  EXPECT_STREQ(to_string(ParseStatus::fragment), "fragment");
  EXPECT_STREQ(to_string(ParseStatus::bad_checksum), "bad_checksum");
}

}  // namespace
}  // namespace ferry

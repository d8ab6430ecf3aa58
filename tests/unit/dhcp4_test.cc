// DHCPv4 server (services/dhcp4.h) with a fake guest link: the exchange
// (DISCOVER/OFFER, REQUEST/ACK or NAK, INFORM, RELEASE), every option it
// hands out and how (RFC 3397 search list, RFC 3442 routes, RFC 3396
// splitting), where replies go, and table-driven malformed messages.
// test-libs: ferry_services ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "codec/frame.h"
#include "services/dhcp4.h"
#include "support/fake_link.h"

namespace ferry::services {
namespace {

using ferry::testing::Bytes;
using ferry::testing::FakeLink;
using ferry::testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

// A client message: fixed header, cookie, the options given, END.
Bytes Message(uint8_t type, Bytes opts = {}, const char* ciaddr = "0.0.0.0", uint16_t flags = 0) {
  Bytes m(240, 0);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  m[4] = 0xde, m[5] = 0xad, m[6] = 0xbe, m[7] = 0xef;
  m[10] = static_cast<uint8_t>(flags >> 8);
  std::memcpy(m.data() + 12, A(ciaddr).v4_bytes(), 4);
  std::memcpy(m.data() + 28, kGuestMac.b.data(), 6);
  m[236] = 99, m[237] = 130, m[238] = 83, m[239] = 99;
  if (type) m.insert(m.end(), {53, 1, type});
  m.insert(m.end(), opts.begin(), opts.end());
  m.push_back(255);
  return m;
}

Bytes Frame(const Bytes& payload, uint16_t sport = 68, const char* src = "0.0.0.0") {
  UdpDatagram d;
  d.ip.eth_src = kGuestMac;
  d.ip.eth_dst = MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  d.ip.src = A(src);
  d.ip.dst = A("255.255.255.255");
  d.sport = sport;
  d.dport = 67;
  d.payload = payload;
  Bytes f(1500);
  f.resize(build_udp_frame(f, d));
  return f;
}

// The reply's options, multi-instance options concatenated (RFC 3396).
std::map<uint8_t, Bytes> Options(const Bytes& payload) {
  std::map<uint8_t, Bytes> o;
  for (size_t i = 240; i < payload.size() && payload[i] != 255;) {
    if (payload[i] == 0) {
      i++;
      continue;
    }
    Bytes& v = o[payload[i]];
    v.insert(v.end(), payload.begin() + static_cast<long>(i) + 2, payload.begin() + static_cast<long>(i) + 2 + payload[i + 1]);
    i += 2 + payload[i + 1];
  }
  return o;
}

class Dhcp4Test : public ::testing::Test {
 protected:
  // Feeds a message; returns the reply's parsed frame (status truncated when none).
  ParsedFrame Feed(const Bytes& payload, uint16_t sport = 68) {
    const size_t before = link.sent.size();
    const Bytes f = Frame(payload, sport);
    server.on_datagram(parse_frame(f, true), f);
    if (link.sent.size() == before) return ParsedFrame{};
    last = link.sent.back();
    reply = Bytes(last.begin() + static_cast<long>(parse_frame(last, true).udp.payload_offset), last.end());
    return parse_frame(last, true);
  }
  FakeLink link;
  Dhcp4Server server{link};
  Bytes last, reply;
};

TEST_F(Dhcp4Test, DiscoverGetsOfferWithEveryOption) {
  link.cfg_.services.search = {"corp.example", "example"};
  link.cfg_.services.hostname = "guest1";
  link.cfg_.mtu = 1500;
  const ParsedFrame f = Feed(Message(1));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.src, A("198.18.0.1"));
  EXPECT_EQ(f.dst, A("198.18.0.2"));  // no broadcast flag: unicast to yiaddr / chaddr
  EXPECT_EQ(f.eth_dst, kGuestMac);
  EXPECT_EQ(f.udp.sport, 67);
  EXPECT_EQ(f.udp.dport, 68);
  ASSERT_GE(reply.size(), 300u);
  EXPECT_EQ(reply[0], 2);
  EXPECT_EQ(Bytes(reply.begin() + 4, reply.begin() + 8), (Bytes{0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(Bytes(reply.begin() + 16, reply.begin() + 20), (Bytes{198, 18, 0, 2}));
  auto o = Options(reply);
  EXPECT_EQ(o[53], Bytes{2});
  EXPECT_EQ(o[54], (Bytes{198, 18, 0, 1}));
  EXPECT_EQ(o[1], (Bytes{255, 255, 255, 0}));
  EXPECT_EQ(o[3], (Bytes{198, 18, 0, 1}));
  EXPECT_EQ(o[6], (Bytes{198, 18, 0, 1}));  // the forwarder on the gateway
  EXPECT_EQ(o[51], (Bytes{0, 0, 0x0e, 0x10}));
  EXPECT_EQ(o[26], (Bytes{0x05, 0xdc}));
  EXPECT_EQ(o[12], (Bytes{'g', 'u', 'e', 's', 't', '1'}));
  EXPECT_EQ(o[15], (Bytes{'c', 'o', 'r', 'p', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}));
  EXPECT_EQ(o[119], (Bytes{4, 'c', 'o', 'r', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}));
  EXPECT_EQ(o.count(121), 0u);  // no routes configured
  EXPECT_EQ(server.counters().offers, 1u);
}

TEST_F(Dhcp4Test, ClasslessRoutesIncludeTheDefault) {
  Route4 r;
  r.dst = *InetPrefix::parse("10.128.0.0/9");
  r.via = A("198.18.0.9");
  link.cfg_.services.routes = {r};
  Feed(Message(1));
  auto o = Options(reply);
  EXPECT_EQ(o[121], (Bytes{9, 10, 128, 198, 18, 0, 9, 0, 198, 18, 0, 1}));
}

TEST_F(Dhcp4Test, LongSearchListIsSplit) {
  for (int i = 0; i < 30; i++) link.cfg_.services.search.push_back("domain" + std::to_string(i) + ".example");
  Feed(Message(1));
  size_t instances = 0;
  for (size_t i = 240; i < reply.size() && reply[i] != 255; i += reply[i] ? 2 + reply[i + 1] : 1)
    instances += reply[i] == 119;
  EXPECT_GE(instances, 2u);
  auto o = Options(reply);
  EXPECT_GT(o[119].size(), 255u);
}

TEST_F(Dhcp4Test, BroadcastFlagAndNak) {
  ParsedFrame f = Feed(Message(1, {}, "0.0.0.0", 0x8000));
  EXPECT_EQ(f.dst, A("255.255.255.255"));
  f = Feed(Message(3, {50, 4, 198, 18, 0, 2, 54, 4, 198, 18, 0, 1}));
  EXPECT_EQ(Options(reply)[53], Bytes{5});  // ACK
  f = Feed(Message(3, {50, 4, 198, 18, 0, 7}));
  EXPECT_EQ(Options(reply)[53], Bytes{6});  // NAK: not the guest's address
  EXPECT_EQ(f.dst, A("255.255.255.255"));
  EXPECT_EQ(Bytes(reply.begin() + 16, reply.begin() + 20), (Bytes{0, 0, 0, 0}));
  const size_t n = link.sent.size();
  Feed(Message(3, {50, 4, 198, 18, 0, 2, 54, 4, 198, 18, 0, 99}));  // another server chosen
  EXPECT_EQ(link.sent.size(), n);
  EXPECT_EQ(server.counters().acks, 1u);
  EXPECT_EQ(server.counters().naks, 1u);
}

TEST_F(Dhcp4Test, RenewingUnicastsToCiaddr) {
  const ParsedFrame f = Feed(Message(3, {}, "198.18.0.2"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Options(reply)[53], Bytes{5});
  EXPECT_EQ(f.dst, A("198.18.0.2"));
}

TEST_F(Dhcp4Test, InformGetsConfigurationWithoutLease) {
  const ParsedFrame f = Feed(Message(8, {}, "198.18.0.2"));
  ASSERT_TRUE(f.ok());
  auto o = Options(reply);
  EXPECT_EQ(o[53], Bytes{5});
  EXPECT_EQ(o.count(51), 0u);
  EXPECT_EQ(Bytes(reply.begin() + 16, reply.begin() + 20), (Bytes{0, 0, 0, 0}));  // no yiaddr
  EXPECT_EQ(Bytes(reply.begin() + 12, reply.begin() + 16), (Bytes{198, 18, 0, 2}));
}

// RFC 6842 3: the client identifier comes back as sent in OFFER, ACK and
// NAK; one shorter than RFC 2132's 2 bytes is not echoed, the message served.
TEST_F(Dhcp4Test, ClientIdentifierIsEchoed) {
  const Bytes cid = {1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  Bytes opt = {61, static_cast<uint8_t>(cid.size())};
  opt.insert(opt.end(), cid.begin(), cid.end());
  Feed(Message(1, opt));
  EXPECT_EQ(Options(reply)[61], cid);
  Bytes req = opt;
  req.insert(req.end(), {50, 4, 198, 18, 0, 2});
  Feed(Message(3, req));
  EXPECT_EQ(Options(reply)[53], Bytes{5});
  EXPECT_EQ(Options(reply)[61], cid);
  Bytes other = opt;
  other.insert(other.end(), {50, 4, 198, 18, 0, 7});
  Feed(Message(3, other));
  EXPECT_EQ(Options(reply)[53], Bytes{6});
  EXPECT_EQ(Options(reply)[61], cid);
  Feed(Message(1, {61, 1, 0}));
  EXPECT_EQ(Options(reply)[53], Bytes{2});
  EXPECT_EQ(Options(reply).count(61), 0u);
  Feed(Message(1));
  EXPECT_EQ(Options(reply).count(61), 0u);
}

// RFC 2131 4.1 / RFC 2132 9.3: with option overload, options continue in
// file (1), sname (2) or both (3); the message type may stand there.
TEST_F(Dhcp4Test, OverloadedOptionsAreRead) {
  Bytes in_file = Message(0, {52, 1, 1});
  const uint8_t file_opts[] = {53, 1, 1, 61, 3, 1, 0xaa, 0xbb, 255};
  std::memcpy(in_file.data() + 108, file_opts, sizeof(file_opts));
  Feed(in_file);
  EXPECT_EQ(Options(reply)[53], Bytes{2});  // OFFER
  EXPECT_EQ(Options(reply)[61], (Bytes{1, 0xaa, 0xbb}));
  Bytes in_sname = Message(0, {52, 1, 3});
  const uint8_t sname_opts[] = {53, 1, 3, 50, 4, 198, 18, 0, 2, 255};
  std::memcpy(in_sname.data() + 44, sname_opts, sizeof(sname_opts));
  Feed(in_sname);
  EXPECT_EQ(Options(reply)[53], Bytes{5});  // ACK of the requested address
  EXPECT_EQ(server.counters().malformed, 0u);
}

TEST_F(Dhcp4Test, ReleaseAndDeclineAreCountedOnly) {
  Feed(Message(7, {}, "198.18.0.2"));
  Feed(Message(4, {50, 4, 198, 18, 0, 2}));
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(server.counters().releases, 1u);
  EXPECT_EQ(server.counters().declines, 1u);
}

TEST_F(Dhcp4Test, DnsFollowsOptions) {
  link.cfg_.services.dns = {A("192.0.2.53"), A("2001:db8::53")};
  Feed(Message(1));
  EXPECT_EQ(Options(reply)[6], (Bytes{192, 0, 2, 53}));
  link.cfg_.services.dns.clear();
  link.cfg_.services.dns_forward = false;
  Feed(Message(1));
  EXPECT_EQ(Options(reply).count(6), 0u);
}

struct BadCase {
  const char* what;
  Bytes msg;
  Dhcp4Parse want;
};

TEST_F(Dhcp4Test, MalformedMessagesAreCountedAndDropped) {
  Bytes reply_op = Message(1);
  reply_op[0] = 2;
  Bytes bad_hw = Message(1);
  bad_hw[2] = 16;
  Bytes bad_cookie = Message(1);
  bad_cookie[239] = 0;
  Bytes overrun = Message(1);
  overrun.pop_back();
  overrun.insert(overrun.end(), {12, 40, 'x'});  // 40 bytes promised, 1 there
  Bytes half_option = Message(1);
  half_option.pop_back();
  half_option.push_back(12);  // a code, no length
  Bytes bad_in_file = Message(0, {52, 1, 1});  // overload: options in file
  bad_in_file[108] = 53;
  bad_in_file[109] = 2;  // a type of length 2 there
  const std::vector<BadCase> cases = {
      {"empty", {}, Dhcp4Parse::truncated},
      {"fixed header only", Bytes(236, 0), Dhcp4Parse::truncated},
      {"BOOTREPLY", reply_op, Dhcp4Parse::not_request},
      {"hlen 16", bad_hw, Dhcp4Parse::not_request},
      {"bad cookie", bad_cookie, Dhcp4Parse::bad_cookie},
      {"option past the end", overrun, Dhcp4Parse::bad_option},
      {"code without length", half_option, Dhcp4Parse::bad_option},
      {"type of length 2", Message(0, {53, 2, 1, 1}), Dhcp4Parse::bad_option},
      {"requested ip of length 3", Message(1, {50, 3, 1, 2, 3}), Dhcp4Parse::bad_option},
      {"server id of length 5", Message(3, {54, 5, 1, 2, 3, 4, 5}), Dhcp4Parse::bad_option},
      {"no type", Message(0), Dhcp4Parse::no_type},
      {"type 0", Message(0, {53, 1, 0}), Dhcp4Parse::no_type},
      {"type 9", Message(0, {53, 1, 9}), Dhcp4Parse::no_type},
      {"overload 4", Message(1, {52, 1, 4}), Dhcp4Parse::bad_option},
      {"bad option in an overloaded file", bad_in_file, Dhcp4Parse::bad_option},
      {"type in file, no overload", [] {
         Bytes m = Message(0);
         m[108] = 53, m[109] = 1, m[110] = 1;
         return m;
       }(), Dhcp4Parse::no_type},
  };
  uint64_t malformed = 0;
  for (const BadCase& c : cases) {
    Dhcp4Request req;
    EXPECT_EQ(parse_dhcp4(c.msg, &req), c.want) << c.what;
    Feed(c.msg);
    EXPECT_EQ(server.counters().malformed, ++malformed) << c.what;
  }
  EXPECT_TRUE(link.sent.empty());
}

TEST_F(Dhcp4Test, IgnoresRelaysAndOtherPorts) {
  Bytes relayed = Message(1);
  relayed[24] = 10;  // giaddr
  Feed(relayed);
  Feed(Message(1), 1068);
  link.cfg_.ipv4 = false;
  Feed(Message(1));
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(server.counters().ignored, 3u);
}

}  // namespace
}  // namespace ferry::services

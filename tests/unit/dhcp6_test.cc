// DHCPv6 server (services/dhcp6.h) with a fake guest link: SOLICIT and
// ADVERTISE, rapid commit, REQUEST/RENEW/REBIND/CONFIRM/RELEASE, the
// INFORMATION-REQUEST, the server-id rules, and table-driven malformed
// messages.
// test-libs: ferry_services ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "codec/frame.h"
#include "services/dhcp6.h"
#include "support/fake_link.h"

namespace ferry::services {
namespace {

using ferry::testing::Bytes;
using ferry::testing::FakeLink;
using ferry::testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

Bytes Opt(uint16_t code, const Bytes& v) {
  Bytes o = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code), static_cast<uint8_t>(v.size() >> 8),
             static_cast<uint8_t>(v.size())};
  o.insert(o.end(), v.begin(), v.end());
  return o;
}

const Bytes kClientId = Opt(1, {0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56});
const Bytes kIaNa = Opt(3, {0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0});

Bytes Msg(uint8_t type, std::vector<Bytes> opts) {
  Bytes m = {type, 0xab, 0xcd, 0xef};
  for (const Bytes& o : opts) m.insert(m.end(), o.begin(), o.end());
  return m;
}

// Options of an answer (top level).
std::map<uint16_t, Bytes> Options(const Bytes& p) {
  std::map<uint16_t, Bytes> o;
  for (size_t i = 4; i + 4 <= p.size();) {
    const uint16_t c = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    const size_t l = static_cast<size_t>(p[i + 2] << 8 | p[i + 3]);
    o[c] = Bytes(p.begin() + static_cast<long>(i) + 4, p.begin() + static_cast<long>(i + 4 + l));
    i += 4 + l;
  }
  return o;
}

class Dhcp6Test : public ::testing::Test {
 protected:
  // Feeds a message from the guest's link-local address; the answer's payload (empty: none).
  Bytes Feed(const Bytes& payload, const char* dst = "ff02::1:2") {
    UdpDatagram d;
    d.ip.eth_src = kGuestMac;
    d.ip.eth_dst = MacAddr{{0x33, 0x33, 0, 1, 0, 2}};
    d.ip.src = A("fe80::5054:ff:fe12:3456");
    d.ip.dst = A(dst);
    d.sport = 546;
    d.dport = 547;
    d.payload = payload;
    Bytes f(1500);
    f.resize(build_udp_frame(f, d));
    const size_t before = link.sent.size();
    server.on_datagram(parse_frame(f, true), f);
    if (link.sent.size() == before) return {};
    const Bytes& out = link.sent.back();
    const ParsedFrame r = parse_frame(out, true);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.src, link_local_from_mac(link.cfg_.our_mac));
    EXPECT_EQ(r.dst, A("fe80::5054:ff:fe12:3456"));
    EXPECT_EQ(r.udp.sport, 547);
    EXPECT_EQ(r.udp.dport, 546);
    return Bytes(out.begin() + static_cast<long>(r.udp.payload_offset), out.end());
  }
  Bytes ServerId() const { return Opt(2, Bytes(server.duid().begin(), server.duid().end())); }

  FakeLink link;
  Dhcp6Server server{link};
};

TEST_F(Dhcp6Test, SolicitGetsAdvertiseWithTheAddress) {
  link.cfg_.services.search = {"corp.example"};
  const Bytes a = Feed(Msg(1, {kClientId, kIaNa}));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0], 2);
  EXPECT_EQ(Bytes(a.begin() + 1, a.begin() + 4), (Bytes{0xab, 0xcd, 0xef}));
  auto o = Options(a);
  EXPECT_EQ(o[1], Bytes(kClientId.begin() + 4, kClientId.end()));
  EXPECT_EQ(o[2], (Bytes{0, 3, 0, 1, 0x02, 0x66, 0x65, 0x72, 0x72, 0x79}));
  EXPECT_EQ(o[7], Bytes{255});
  ASSERT_EQ(o[3].size(), 12u + 28u);
  EXPECT_EQ(Bytes(o[3].begin(), o[3].begin() + 4), (Bytes{0, 0, 0, 7}));  // IAID echoed
  const Bytes& iaaddr = o[3];
  EXPECT_EQ(Bytes(iaaddr.begin() + 12, iaaddr.begin() + 16), (Bytes{0, 5, 0, 24}));
  EXPECT_EQ(InetAddr::from_v6_bytes(iaaddr.data() + 16), A("fd00:f::2"));
  EXPECT_EQ(InetAddr::from_v6_bytes(o[23].data()), A("fd00:f::1"));
  EXPECT_EQ(o[24], (Bytes{4, 'c', 'o', 'r', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}));
  EXPECT_EQ(server.counters().advertises, 1u);
}

TEST_F(Dhcp6Test, RapidCommitAnswersWithReply) {
  const Bytes a = Feed(Msg(1, {kClientId, kIaNa, Opt(14, {})}));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0], 7);
  EXPECT_EQ(Options(a).count(14), 1u);
}

TEST_F(Dhcp6Test, RequestRenewRebindConfirmRelease) {
  EXPECT_EQ(Feed(Msg(3, {kClientId, ServerId(), kIaNa}))[0], 7);
  EXPECT_EQ(Feed(Msg(5, {kClientId, ServerId(), kIaNa}))[0], 7);
  EXPECT_EQ(Options(Feed(Msg(6, {kClientId, kIaNa}))).count(3), 1u);
  Bytes ia_on = Opt(3, [] {
    Bytes v = {0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0};
    Bytes addr(16);
    std::memcpy(addr.data(), A("fd00:f::2").b.data(), 16);
    addr.insert(addr.end(), 8, 0);
    const Bytes o = Opt(5, addr);
    v.insert(v.end(), o.begin(), o.end());
    return v;
  }());
  EXPECT_EQ(Options(Feed(Msg(4, {kClientId, ia_on})))[13], (Bytes{0, 0}));  // Success
  Bytes ia_off = ia_on;
  ia_off[4 + 12 + 4] = 0x20;  // 2000::...: not on our link
  EXPECT_EQ(Options(Feed(Msg(4, {kClientId, ia_off})))[13], (Bytes{0, 4}));  // NotOnLink
  const Bytes rel = Feed(Msg(8, {kClientId, ServerId(), kIaNa}));
  EXPECT_EQ(Options(rel)[13], (Bytes{0, 0}));
  EXPECT_EQ(server.counters().replies, 6u);
}

TEST_F(Dhcp6Test, InformationRequestHasNoAddress) {
  const Bytes a = Feed(Msg(11, {}));
  ASSERT_FALSE(a.empty());
  auto o = Options(a);
  EXPECT_EQ(o.count(3), 0u);
  EXPECT_EQ(o.count(23), 1u);
  EXPECT_FALSE(Feed(Msg(11, {}), "fe80::66:65ff:fe72:7279").empty());  // unicast to us
  // RFC 8415 16.12: one carrying an IA (IA_NA, IA_TA, IA_PD) is discarded.
  EXPECT_TRUE(Feed(Msg(11, {kIaNa})).empty());
  EXPECT_TRUE(Feed(Msg(11, {Opt(4, {0, 0, 0, 1})})).empty());
  EXPECT_TRUE(Feed(Msg(11, {Opt(25, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})})).empty());
}

TEST_F(Dhcp6Test, ServerIdRules) {
  const Bytes other = Opt(2, {0, 3, 0, 1, 1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(Feed(Msg(3, {kClientId, other, kIaNa})).empty());  // REQUEST for another server
  EXPECT_TRUE(Feed(Msg(3, {kClientId, kIaNa})).empty());         // REQUEST without one
  EXPECT_TRUE(Feed(Msg(1, {kClientId, ServerId()})).empty());    // SOLICIT with one
  EXPECT_TRUE(Feed(Msg(1, {kIaNa})).empty());                     // SOLICIT without client id
  EXPECT_TRUE(Feed(Msg(6, {kClientId, ServerId(), kIaNa})).empty());  // REBIND with one
  EXPECT_EQ(server.counters().ignored, 5u);
}

struct BadCase {
  const char* what;
  Bytes msg;
  Dhcp6Parse want;
};

TEST_F(Dhcp6Test, MalformedMessagesAreCountedAndDropped) {
  Bytes overrun = Msg(1, {kClientId});
  overrun[kClientId.size() + 4 - kClientId.size() + 3] = 200;  // client id length past the end
  const std::vector<BadCase> cases = {
      {"empty", {}, Dhcp6Parse::truncated},
      {"three bytes", {1, 0, 0}, Dhcp6Parse::truncated},
      {"ADVERTISE from a client", Msg(2, {kClientId}), Dhcp6Parse::not_client_message},
      {"relay-forward", Msg(12, {kClientId}), Dhcp6Parse::not_client_message},
      {"option length past the end", overrun, Dhcp6Parse::bad_option},
      {"half an option header", Bytes{1, 0, 0, 0, 0, 1}, Dhcp6Parse::bad_option},
      {"client id of 1 byte", Msg(1, {Opt(1, {0})}), Dhcp6Parse::bad_option},
      {"client id of 131 bytes", Msg(1, {Opt(1, Bytes(131, 1))}), Dhcp6Parse::bad_option},
      {"rapid commit with data", Msg(1, {kClientId, Opt(14, {1})}), Dhcp6Parse::bad_option},
      {"IA_NA of 11 bytes", Msg(1, {kClientId, Opt(3, Bytes(11, 0))}), Dhcp6Parse::bad_option},
      {"IA address past the IA", Msg(1, {kClientId, Opt(3, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 24})}),
       Dhcp6Parse::bad_option},
      {"IA address of 4 bytes", Msg(1, {kClientId, Opt(3, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4})}),
       Dhcp6Parse::bad_option},
  };
  uint64_t malformed = 0;
  for (const BadCase& c : cases) {
    Dhcp6Request req;
    EXPECT_EQ(parse_dhcp6(c.msg, link.cfg_.guest6, &req), c.want) << c.what;
    EXPECT_TRUE(Feed(c.msg).empty()) << c.what;
    EXPECT_EQ(server.counters().malformed, ++malformed) << c.what;
  }
}

}  // namespace
}  // namespace ferry::services

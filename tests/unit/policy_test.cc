// The destination policy, unprivileged and without sockets: rule parsing,
// --allow/--deny precedence (table-driven), the built-in denials, the
// gateway mapping, the node's addresses (a fixed list), families and
// spoofed sources; and the ICMP "administratively prohibited" answer.
// test-libs: ferry_policy ferry_common ferry_codec
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "codec/frame.h"
#include "common/config.h"
#include "policy/destination_policy.h"
#include "policy/refusal.h"
#include "policy/rules.h"

namespace ferry {
namespace {

InetAddr A(const char* s) { return *InetAddr::parse(s); }

std::vector<DestinationRule> Rules(const std::vector<std::pair<bool, const char*>>& specs) {
  std::vector<DestinationRule> out;
  for (const auto& [allow, text] : specs) {
    const Status st = parse_destination_rules(text, allow, &out);
    EXPECT_TRUE(st.ok()) << text << ": " << st.message();
  }
  return out;
}

TEST(PolicyRules, Parse) {
  struct Case {
    const char* text;
    std::vector<std::string> want;  // to_string of each rule; empty: an error
  };
  const std::vector<Case> cases = {
      {"169.254.169.254", {"169.254.169.254/32"}},
      {"169.254.169.254:80", {"169.254.169.254/32:80"}},
      {"10.1.2.3/8", {"10.0.0.0/8"}},
      {"10.0.0.0/8:80,443,8000-8080", {"10.0.0.0/8:80", "10.0.0.0/8:443", "10.0.0.0/8:8000-8080"}},
      {"fd00::1", {"fd00::1/128"}},
      {"fd00::/8:53", {"fd00::/8:53"}},
      {"[fd00::1]:443", {"fd00::1/128:443"}},
      {"[fd00::1]", {"fd00::1/128"}},
      {"0.0.0.0/0", {"0.0.0.0/0"}},
      {"::/0", {"::/0"}},
      {"", {}},
      {"10.0.0.0/33", {}},
      {"10.0.0.0/8:0", {}},
      {"10.0.0.0/8:70000", {}},
      {"10.0.0.0/8:90-80", {}},
      {"10.0.0.0/8:", {}},
      {"10.0.0.0/8:80,", {}},
      {"host.example:80", {}},
      {"[fd00::1]x", {}},
      {"[fd00::1", {}},
  };
  for (const Case& c : cases) {
    std::vector<DestinationRule> out;
    const Status st = parse_destination_rules(c.text, false, &out);
    const bool ok = st.ok();
    const std::string err = st.message();
    EXPECT_EQ(ok, !c.want.empty()) << c.text;
    if (!ok) {
      EXPECT_TRUE(out.empty()) << c.text;
      EXPECT_NE(err.find("--deny"), std::string::npos) << err;
      continue;
    }
    ASSERT_EQ(out.size(), c.want.size()) << c.text;
    for (size_t i = 0; i < out.size(); i++) {
      EXPECT_EQ(to_string(out[i]), c.want[i]) << c.text;
      EXPECT_FALSE(out[i].allow);
    }
  }
}

// --allow / --deny precedence: the most specific wins, deny at a tie, the
// order given never matters.
TEST(PolicyRules, MostSpecificWins) {
  struct Case {
    std::vector<std::pair<bool, const char*>> rules;  // (allow, spec)
    const char* dst;
    uint16_t port;
    int want;  // 1 allow, 0 deny, -1 no rule
  };
  const bool kAllow = true, kDeny = false;
  const std::vector<Case> cases = {
      {{}, "10.0.0.1", 80, -1},
      {{{kDeny, "10.0.0.0/8"}}, "10.0.0.1", 80, 0},
      {{{kDeny, "10.0.0.0/8"}}, "11.0.0.1", 80, -1},
      {{{kDeny, "10.0.0.0/8"}, {kAllow, "10.1.0.0/16"}}, "10.1.2.3", 80, 1},
      {{{kAllow, "10.1.0.0/16"}, {kDeny, "10.0.0.0/8"}}, "10.1.2.3", 80, 1},  // order does not matter
      {{{kDeny, "10.0.0.0/8"}, {kAllow, "10.1.0.0/16"}}, "10.2.0.1", 80, 0},
      {{{kAllow, "10.0.0.0/8"}, {kDeny, "10.0.0.0/8"}}, "10.0.0.1", 80, 0},  // tie: deny
      {{{kDeny, "10.0.0.0/8"}, {kAllow, "10.0.0.0/8:443"}}, "10.0.0.1", 443, 1},  // ports narrow it
      {{{kDeny, "10.0.0.0/8"}, {kAllow, "10.0.0.0/8:443"}}, "10.0.0.1", 80, 0},
      {{{kAllow, "10.0.0.0/8:1-1000"}, {kDeny, "10.0.0.0/8:443"}}, "10.0.0.1", 443, 0},
      {{{kAllow, "10.0.0.0/8:1-1000"}, {kDeny, "10.0.0.0/8:443"}}, "10.0.0.1", 80, 1},
      {{{kDeny, "10.0.0.0/8:443"}, {kAllow, "10.0.0.1/32"}}, "10.0.0.1", 443, 1},  // prefix before ports
      {{{kAllow, "10.0.0.0/8:443"}}, "10.0.0.1", 0, -1},  // echo: only rules without ports
      {{{kDeny, "0.0.0.0/0"}}, "fd00::1", 80, -1},       // families never mix
      {{{kDeny, "::/0"}, {kAllow, "fd00::/8:53"}}, "fd00::1", 53, 1},
      {{{kDeny, "::/0"}, {kAllow, "fd00::/8:53"}}, "fd00::1", 54, 0},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    const Case& c = cases[i];
    std::vector<DestinationRule> rules = Rules(c.rules);
    const DestinationRule* r = most_specific_match(rules, A(c.dst), c.port);
    const int got = r == nullptr ? -1 : (r->allow ? 1 : 0);
    EXPECT_EQ(got, c.want) << "case " << i << ": " << c.dst << ":" << c.port;
  }
}

class PolicyTest : public ::testing::Test {
 protected:
  PolicyTest() : cfg(Config::defaults()), policy(cfg) {
    policy.node_addresses().set({A("192.0.2.10"), A("2001:db8::10")}, {A("192.0.2.255")});
  }
  Refusal Decide(const char* dst, uint16_t port = 80, FlowProto proto = FlowProto::tcp) {
    const InetAddr d = A(dst);
    const bool v6 = !d.is_v4();
    return policy.decide(proto, v6, v6 ? cfg.guest6.addr : cfg.guest4.addr, d, port, 1).refusal;
  }
  Config cfg;
  DestinationPolicy policy;
};

// What `ferry run` allows and refuses with no options.
TEST_F(PolicyTest, RunDefaults) {
  struct Case {
    const char* dst;
    uint16_t port;
    FlowProto proto;
    Refusal want;
  };
  const std::vector<Case> cases = {
      {"198.51.100.7", 80, FlowProto::tcp, Refusal::none},
      {"2001:db8:1::7", 443, FlowProto::udp, Refusal::none},
      {"192.0.2.10", 22, FlowProto::tcp, Refusal::none},  // the node: reachable for ferry run
      {"198.18.0.1", 8080, FlowProto::tcp, Refusal::none},  // the gateway, mapped
      {"fd00:f::1", 8080, FlowProto::udp, Refusal::none},
      {"169.254.169.254", 80, FlowProto::tcp, Refusal::default_deny},
      {"169.254.169.254", 0, FlowProto::echo, Refusal::default_deny},
      {"fe80::1", 80, FlowProto::tcp, Refusal::default_deny},
      {"0.1.2.3", 80, FlowProto::udp, Refusal::default_deny},
      {"127.0.0.1", 80, FlowProto::tcp, Refusal::loopback},
      {"127.1.2.3", 0, FlowProto::echo, Refusal::loopback},
      {"::1", 80, FlowProto::udp, Refusal::loopback},
      {"224.0.0.251", 5353, FlowProto::udp, Refusal::multicast},
      {"ff02::1", 0, FlowProto::echo, Refusal::multicast},
      {"255.255.255.255", 67, FlowProto::udp, Refusal::broadcast},
      {"198.18.0.255", 9, FlowProto::tcp, Refusal::broadcast},   // the guest subnet's
      {"192.0.2.255", 9, FlowProto::udp, Refusal::broadcast},    // the node's subnet's
      {"0.0.0.0", 80, FlowProto::tcp, Refusal::invalid},
      {"::", 80, FlowProto::tcp, Refusal::invalid},
      {"198.18.0.2", 80, FlowProto::tcp, Refusal::invalid},  // the guest itself
      {"198.51.100.7", 0, FlowProto::udp, Refusal::invalid},
  };
  for (const Case& c : cases) EXPECT_EQ(Decide(c.dst, c.port, c.proto), c.want) << c.dst << ":" << c.port;
  EXPECT_EQ(policy.counters().refused_total(), 16u);
  EXPECT_EQ(policy.counters().refused[static_cast<size_t>(Refusal::default_deny)], 4u);
}

// The gateway maps to loopback, and the mapped address is what the socket gets.
TEST_F(PolicyTest, GatewayMapping) {
  Verdict v = policy.decide(FlowProto::tcp, false, cfg.guest4.addr, cfg.gateway4, 8080, 1);
  ASSERT_TRUE(v.allowed());
  EXPECT_EQ(v.host, A("127.0.0.1"));
  v = policy.decide(FlowProto::udp, true, cfg.guest6.addr, cfg.gateway6, 53, 1);
  ASSERT_TRUE(v.allowed());
  EXPECT_EQ(v.host, A("::1"));
  v = policy.decide(FlowProto::tcp, false, cfg.guest4.addr, A("198.51.100.7"), 80, 1);
  EXPECT_EQ(v.host, A("198.51.100.7"));
  // Only some ports.
  cfg.map_gateway_ports = {{53, 53}, {8000, 8080}};
  EXPECT_EQ(Decide("198.18.0.1", 53), Refusal::none);
  EXPECT_EQ(Decide("198.18.0.1", 8080), Refusal::none);
  EXPECT_EQ(Decide("198.18.0.1", 22), Refusal::gateway);
  // A --deny on the gateway's address still applies.
  cfg.destination_rules = Rules({{false, "198.18.0.1/32:53"}});
  EXPECT_EQ(Decide("198.18.0.1", 53), Refusal::rule);
  // Off: the gateway address is refused (nothing of ferry's listens there).
  cfg.map_gateway = false;
  cfg.map_gateway_ports.clear();
  EXPECT_EQ(Decide("198.18.0.1", 8080), Refusal::gateway);
  EXPECT_EQ(Decide("fd00:f::1", 8080), Refusal::gateway);
  // Host loopback clients look like the gateway.
  EXPECT_EQ(policy.guest_view(A("127.0.0.5")), cfg.gateway4);
  EXPECT_EQ(policy.guest_view(A("::1")), cfg.gateway6);
  EXPECT_EQ(policy.guest_view(A("192.0.2.10")), A("192.0.2.10"));
}

// What a CNI pod gets by default (ferry-cni passes --no-map-gw --no-node),
// and what the options open.
TEST_F(PolicyTest, CniDefaultsAndOpening) {
  cfg.map_gateway = false;
  cfg.allow_node = false;
  EXPECT_EQ(Decide("198.18.0.1", 8080), Refusal::gateway);
  EXPECT_EQ(Decide("192.0.2.10", 22), Refusal::node);
  EXPECT_EQ(Decide("2001:db8::10", 22), Refusal::node);
  EXPECT_EQ(Decide("169.254.169.254", 80), Refusal::default_deny);
  EXPECT_EQ(Decide("198.51.100.7", 80), Refusal::none);
  // A broad allow does not open the node (less specific than its /32) ...
  cfg.destination_rules = Rules({{true, "0.0.0.0/0"}, {true, "169.254.0.0/16"}});
  EXPECT_EQ(Decide("192.0.2.10", 22), Refusal::node);
  // ... an allow as specific as the default opens it (the user's wins a tie).
  EXPECT_EQ(Decide("169.254.169.254", 80), Refusal::none);
  cfg.destination_rules = Rules({{true, "192.0.2.10/32:53"}, {true, "169.254.169.254:80"}});
  EXPECT_EQ(Decide("192.0.2.10", 53), Refusal::none);
  EXPECT_EQ(Decide("192.0.2.10", 22), Refusal::node);
  EXPECT_EQ(Decide("169.254.169.254", 80), Refusal::none);
  EXPECT_EQ(Decide("169.254.169.254", 81), Refusal::default_deny);
  cfg.allow_node = true;
  EXPECT_EQ(Decide("192.0.2.10", 22), Refusal::none);
  // No option opens loopback, multicast or broadcast.
  cfg.destination_rules = Rules({{true, "127.0.0.0/8"}, {true, "224.0.0.0/4"}, {true, "255.255.255.255"}});
  EXPECT_EQ(Decide("127.0.0.1", 80), Refusal::loopback);
  EXPECT_EQ(Decide("224.0.0.1", 80), Refusal::multicast);
  EXPECT_EQ(Decide("255.255.255.255", 80), Refusal::broadcast);
  // A --deny closes what is otherwise open.
  cfg.destination_rules = Rules({{false, "198.51.100.0/24"}});
  EXPECT_EQ(Decide("198.51.100.7", 80), Refusal::rule);
}

TEST_F(PolicyTest, FamiliesAndSources) {
  // An IPv4-mapped destination in an IPv6 packet, and the family switched off.
  const InetAddr mapped = A("::ffff:198.51.100.7");
  EXPECT_EQ(policy.decide(FlowProto::udp, true, cfg.guest6.addr, mapped, 53, 1).refusal, Refusal::family);
  cfg.ipv4 = false;
  EXPECT_EQ(Decide("198.51.100.7", 80), Refusal::family);
  cfg.ipv4 = true;
  // Another source than the guest's: spoofed, counted apart from refusals.
  Verdict v = policy.decide(FlowProto::tcp, false, A("198.18.0.9"), A("198.51.100.7"), 80, 1);
  EXPECT_EQ(v.refusal, Refusal::spoofed);
  EXPECT_FALSE(v.answered());
  EXPECT_EQ(policy.counters().spoofed_source, 1u);
  EXPECT_EQ(policy.counters().refused_total(), 2u);
  EXPECT_TRUE(policy.source_is_guest(false, cfg.guest4.addr));
  EXPECT_FALSE(policy.source_is_guest(true, cfg.guest4.addr));
  EXPECT_FALSE(policy.source_is_guest(false, A("198.18.0.3")));
  EXPECT_TRUE(policy.source_is_guest(true, A("fd00:f::5054:ff:fe12:3456")));  // a SLAAC address
  EXPECT_FALSE(policy.source_is_guest(true, cfg.gateway6));
  EXPECT_FALSE(policy.source_is_guest(true, A("fd00:1::2")));
}

// A sandboxed translator gets the node's addresses from its parent as text.
TEST(PolicyNode, SnapshotTextRoundTrip) {
  const std::string text = NodeAddresses::snapshot_text();
  ASSERT_NE(text.find("n 127.0.0.1\n"), std::string::npos) << text;  // lo is always there
  NodeAddresses n;
  ASSERT_TRUE(n.load_text(text));
  EXPECT_TRUE(n.is_node(A("127.0.0.1"), 1));
  ASSERT_TRUE(n.load_text("n 192.0.2.10\nb 192.0.2.255\nn 2001:db8::10\n"));
  EXPECT_TRUE(n.is_node(A("192.0.2.10"), 1));
  EXPECT_TRUE(n.is_node(A("2001:db8::10"), 1));
  EXPECT_FALSE(n.is_node(A("127.0.0.1"), 1ull << 62));  // fed: no snapshot of its own, ever
  EXPECT_TRUE(n.is_broadcast(A("192.0.2.255"), 1));
  EXPECT_FALSE(n.load_text("n nonsense\n"));
  EXPECT_FALSE(n.load_text("x 192.0.2.1\n"));
  EXPECT_TRUE(n.is_node(A("192.0.2.10"), 1));  // garbage leaves the lists as they were
}

// A node's IPv4 broadcasts come from each address and its netmask; an
// address configured without `brd` (getifaddrs then names the address
// itself as the broadcast) is not a broadcast: it stayed a node address,
// reachable with allowNode, instead of being dropped as a broadcast.
TEST(PolicyNode, BroadcastsOfAnInterfaceAddress) {
  struct Row {
    const char* addr;
    const char* mask;
    const char* configured;  // nullptr: none
    std::vector<const char*> want;
  };
  const Row rows[] = {
      {"10.77.9.1", "255.255.255.0", "10.77.9.1", {"10.77.9.255"}},  // no brd: glibc says the address
      {"10.77.9.1", "255.255.255.0", "10.77.9.255", {"10.77.9.255"}},
      {"10.77.9.1", "255.255.255.0", nullptr, {"10.77.9.255"}},
      {"10.77.9.1", "255.255.0.0", "10.77.9.1", {"10.77.255.255"}},
      {"192.0.2.1", "255.255.255.0", "192.0.2.127", {"192.0.2.255", "192.0.2.127"}},  // an odd brd: both
      {"192.0.2.1", "255.255.255.254", "192.0.2.1", {}},  // /31: no broadcast
      {"192.0.2.1", "255.255.255.255", "192.0.2.1", {}},  // /32
      {"2001:db8::1", "ffff:ffff:ffff:ffff::", nullptr, {}},  // IPv6 has none
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.addr + std::string("/") + r.mask);
    std::vector<InetAddr> got;
    const InetAddr configured = r.configured ? A(r.configured) : InetAddr{};
    ipv4_broadcasts(A(r.addr), A(r.mask), r.configured ? &configured : nullptr, &got);
    std::vector<InetAddr> want;
    for (const char* w : r.want) want.push_back(A(w));
    EXPECT_EQ(got, want);
  }
  // A node address under --node (allow_node) is never refused as a broadcast.
  std::vector<InetAddr> b;
  const InetAddr self = A("10.77.9.1");
  ipv4_broadcasts(self, A("255.255.255.0"), &self, &b);
  Config cfg = Config::defaults();
  DestinationPolicy p(cfg);
  p.node_addresses().set({self}, b);
  EXPECT_EQ(p.decide(FlowProto::tcp, false, cfg.guest4.addr, self, 80, 1).refusal, Refusal::none);
  EXPECT_EQ(p.decide(FlowProto::udp, false, cfg.guest4.addr, A("10.77.9.255"), 80, 1).refusal, Refusal::broadcast);
}

// The answer to a refused UDP datagram: ICMP type 3 code 13 from the
// gateway, quoting the IP header and the UDP ports.
TEST(PolicyRefusal, AdminProhibitedQuotesThePacket) {
  const Config cfg = Config::defaults();
  uint8_t payload[100] = {};
  UdpDatagram d;
  d.ip.eth_src = MacAddr{{0x52, 0x54, 0, 1, 2, 3}};
  d.ip.eth_dst = cfg.our_mac;
  d.ip.src = cfg.guest4.addr;
  d.ip.dst = A("169.254.169.254");
  d.sport = 40000;
  d.dport = 80;
  d.payload = payload;
  std::vector<uint8_t> frame(kMaxFrameLen);
  frame.resize(build_udp_frame(frame, d));
  ParsedFrame f = parse_frame(frame);
  ASSERT_TRUE(f.ok());
  uint8_t out[kProhibitedFrameMax];
  size_t n = build_admin_prohibited(out, f, frame, cfg.our_mac, cfg.gateway4);
  ASSERT_GT(n, 0u);
  ParsedFrame p = parse_frame(std::span<const uint8_t>(out, n));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.icmp.type, 3);
  EXPECT_EQ(p.icmp.code, 13);
  EXPECT_EQ(p.src, cfg.gateway4);
  EXPECT_EQ(p.dst, cfg.guest4.addr);
  EXPECT_EQ(p.eth_dst, d.ip.eth_src);
  // Quote: the whole (small) packet.
  EXPECT_EQ(p.icmp.body_len, 4 + 20 + 8 + sizeof(payload));
  EXPECT_EQ(0, std::memcmp(out + p.icmp.body_offset + 4, frame.data() + f.l3_offset, 28));
  // IPv6: type 1 code 1.
  d.ip.src = cfg.guest6.addr;
  d.ip.dst = A("fe80::1");
  frame.resize(kMaxFrameLen);
  frame.resize(build_udp_frame(frame, d));
  f = parse_frame(frame);
  n = build_admin_prohibited(out, f, frame, cfg.our_mac, cfg.gateway6);
  p = parse_frame(std::span<const uint8_t>(out, n));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.icmp.type, 1);
  EXPECT_EQ(p.icmp.code, 1);
  // Not an IP packet, or the wrong family for the source: nothing.
  EXPECT_EQ(build_admin_prohibited(out, f, frame, cfg.our_mac, cfg.gateway4), 0u);
}

}  // namespace
}  // namespace ferry

// UdpTranslator tests, unprivileged: every host peer is a socket of this test
// process on 127.0.0.1 or ::1 (the gateway maps to loopback), so nothing
// leaves the machine. A fake GuestLink captures the frames sent to the guest.
// test-libs: ferry_udp ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "codec/frame.h"
#include "common/config.h"
#include "common/guest_link.h"
#include "support/fake_link.h"
#include "loop/event_loop.h"
#include "udp/udp_translator.h"

namespace ferry {
namespace {

using testing::Bytes;

using testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

using testing::FakeLink;

// A UDP socket of the test bound to loopback (v4 or v6), port chosen by the kernel.
struct Peer {
  int fd = -1;
  uint16_t port = 0;
  bool v6 = false;
  explicit Peer(bool six, uint16_t want_port = 0) : v6(six) {
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t sl = Fill(ss, want_port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
      close(fd);
      fd = -1;
      return;
    }
    sl = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
    port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~Peer() {
    if (fd >= 0) close(fd);
  }
  socklen_t Fill(sockaddr_storage& ss, uint16_t p) const {
    std::memset(&ss, 0, sizeof(ss));
    if (v6) {
      auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
      s->sin6_family = AF_INET6;
      s->sin6_addr = in6addr_loopback;
      s->sin6_port = htons(p);
      return sizeof(*s);
    }
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->sin_port = htons(p);
    return sizeof(*s);
  }
  // Waits up to 2 s for a datagram; its payload and source port.
  bool Recv(Bytes& out, uint16_t& from_port) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) return false;
    sockaddr_storage ss{};
    socklen_t sl = sizeof(ss);
    out.resize(70000);
    ssize_t n = recvfrom(fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) return false;
    out.resize(static_cast<size_t>(n));
    from_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return true;
  }
  bool SendTo(uint16_t p, const Bytes& data) {
    sockaddr_storage ss{};
    socklen_t sl = Fill(ss, p);
    return sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), sl) ==
           static_cast<ssize_t>(data.size());
  }
};

// A free UDP port on loopback (bound, read, released).
uint16_t FreePort(bool v6) {
  Peer p(v6);
  return p.port;
}

class UdpTest : public ::testing::TestWithParam<bool> {
 protected:
  void Make(size_t max_flows = UdpTranslator::kDefaultMaxFlows) {
    udp = std::make_unique<UdpTranslator>(loop, link, max_flows);
  }
  void TearDown() override { udp.reset(); }

  bool v6() const { return GetParam(); }
  InetAddr guest() const { return v6() ? link.cfg_.guest6.addr : link.cfg_.guest4.addr; }
  InetAddr gw() const { return v6() ? link.cfg_.gateway6 : link.cfg_.gateway4; }

  Bytes Datagram(const InetAddr& dst, uint16_t sport, uint16_t dport, const Bytes& payload) {
    UdpDatagram d;
    d.ip.eth_src = kGuestMac;
    d.ip.eth_dst = link.cfg_.our_mac;
    d.ip.src = guest();
    d.ip.dst = dst;
    d.sport = sport;
    d.dport = dport;
    d.payload = payload;
    Bytes f(kMaxFrameLen);
    f.resize(build_udp_frame(f, d));
    return f;
  }
  void Feed(const Bytes& f) { udp->on_guest_datagram(parse_frame(f), f); }
  bool WaitFrames(size_t n) {
    for (int i = 0; i < 40 && link.sent.size() < n; i++) loop.run_once(50);
    return link.sent.size() >= n;
  }

  EventLoop loop;
  FakeLink link;
  std::unique_ptr<UdpTranslator> udp;
};

TEST_P(UdpTest, OutboundToGatewayReachesLoopbackAndBack) {
  Make();
  Peer server(v6());
  ASSERT_GE(server.fd, 0);
  Bytes payload = {'h', 'e', 'l', 'l', 'o', 0, 1, 2, 3};
  Feed(Datagram(gw(), 40000, server.port, payload));
  EXPECT_EQ(udp->flow_count(), 1u);
  Bytes got;
  uint16_t cport = 0;
  ASSERT_TRUE(server.Recv(got, cport));
  EXPECT_EQ(got, payload);
  // Echo back three datagrams: all reach the guest, in order, from the gateway.
  for (uint8_t i = 0; i < 3; i++) {
    Bytes r = {'r', i};
    sockaddr_storage ss{};
    socklen_t sl = server.Fill(ss, cport);
    ASSERT_EQ(sendto(server.fd, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&ss), sl), 2);
  }
  ASSERT_TRUE(WaitFrames(3));
  for (uint8_t i = 0; i < 3; i++) {
    ParsedFrame p = parse_frame(link.sent[i]);
    ASSERT_TRUE(p.ok()) << to_string(p.status);
    ASSERT_TRUE(p.is_udp());
    EXPECT_EQ(p.eth_dst, kGuestMac);
    EXPECT_EQ(p.eth_src, link.cfg_.our_mac);
    EXPECT_EQ(p.src, gw());
    EXPECT_EQ(p.dst, guest());
    EXPECT_EQ(p.udp.sport, server.port);
    EXPECT_EQ(p.udp.dport, 40000);
    ASSERT_EQ(p.udp.payload_len, 2u);
    EXPECT_EQ(link.sent[i][p.udp.payload_offset + 1], i);
  }
  // Same 4-tuple: same flow, same host socket (same source port at the server).
  Feed(Datagram(gw(), 40000, server.port, payload));
  uint16_t cport2 = 0;
  ASSERT_TRUE(server.Recv(got, cport2));
  EXPECT_EQ(cport2, cport);
  EXPECT_EQ(udp->flow_count(), 1u);
  // Another guest port: another flow.
  Feed(Datagram(gw(), 40001, server.port, payload));
  ASSERT_TRUE(server.Recv(got, cport2));
  EXPECT_NE(cport2, cport);
  EXPECT_EQ(udp->flow_count(), 2u);
  EXPECT_EQ(udp->counters().host_sent, 3u);
}

// The peer sees the guest's own source port (as with pasta), and two flows
// from that port to two destinations both keep it.
TEST_P(UdpTest, SourcePortKept) {
  Make();
  Peer a(v6()), b(v6());
  ASSERT_GE(a.fd, 0);
  ASSERT_GE(b.fd, 0);
  const uint16_t gport = FreePort(v6());
  ASSERT_NE(gport, 0);
  Bytes payload = {'p', 'o', 'r', 't'};
  Feed(Datagram(gw(), gport, a.port, payload));
  Feed(Datagram(gw(), gport, b.port, payload));
  Bytes got;
  uint16_t from = 0;
  ASSERT_TRUE(a.Recv(got, from));
  EXPECT_EQ(from, gport);
  ASSERT_TRUE(b.Recv(got, from));
  EXPECT_EQ(from, gport);
  EXPECT_EQ(udp->counters().source_port_kept, 2u);
  EXPECT_EQ(udp->counters().source_port_ephemeral, 0u);
  // The reply to each flow reaches the guest from its own peer.
  ASSERT_TRUE(a.SendTo(gport, Bytes{'a'}));
  ASSERT_TRUE(WaitFrames(1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.is_udp());
  EXPECT_EQ(p.udp.sport, a.port);
  EXPECT_EQ(p.udp.dport, gport);
}

// A port a host process holds (no SO_REUSEADDR): the datagram still goes
// out, from an ephemeral port.
TEST_P(UdpTest, SourcePortTakenGivesEphemeral) {
  Make();
  Peer server(v6()), holder(v6());
  ASSERT_GE(server.fd, 0);
  ASSERT_GE(holder.fd, 0);
  Bytes payload = {'x'};
  Feed(Datagram(gw(), holder.port, server.port, payload));
  Bytes got;
  uint16_t from = 0;
  ASSERT_TRUE(server.Recv(got, from));
  EXPECT_EQ(got, payload);
  EXPECT_NE(from, holder.port);
  EXPECT_EQ(udp->counters().source_port_kept, 0u);
  EXPECT_EQ(udp->counters().source_port_ephemeral, 1u);
}

TEST_P(UdpTest, LargeDatagram) {
  Make();
  Peer server(v6());
  Bytes payload(60000);
  for (size_t i = 0; i < payload.size(); i++) payload[i] = static_cast<uint8_t>(i * 13);
  Feed(Datagram(gw(), 40000, server.port, payload));
  Bytes got;
  uint16_t cport = 0;
  ASSERT_TRUE(server.Recv(got, cport));
  EXPECT_EQ(got, payload);
  sockaddr_storage ss{};
  socklen_t sl = server.Fill(ss, cport);
  ASSERT_EQ(sendto(server.fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&ss), sl),
            static_cast<ssize_t>(payload.size()));
  ASSERT_TRUE(WaitFrames(1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  ASSERT_EQ(p.udp.payload_len, payload.size());
  EXPECT_EQ(0, std::memcmp(link.sent[0].data() + p.udp.payload_offset, payload.data(), payload.size()));
}

TEST_P(UdpTest, RefusedPortGivesIcmpUnreachable) {
  Make();
  uint16_t closed = FreePort(v6());
  Bytes payload(10, 'x');
  Feed(Datagram(gw(), 40002, closed, payload));
  // Loopback answers with port unreachable; the connected socket reports it.
  for (int i = 0; i < 40 && link.sent.empty(); i++) {
    loop.run_once(50);
    if (link.sent.empty() && i == 5) Feed(Datagram(gw(), 40002, closed, payload));
  }
  ASSERT_FALSE(link.sent.empty());
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.protocol, v6() ? uint8_t{IPPROTO_ICMPV6} : uint8_t{IPPROTO_ICMP});
  EXPECT_EQ(p.icmp.type, v6() ? 1 : 3);
  EXPECT_EQ(p.icmp.code, v6() ? 4 : 3);
  EXPECT_EQ(p.src, gw());
  EXPECT_EQ(p.dst, guest());
  // The quote: the guest's IP header and UDP ports.
  const uint8_t* q = link.sent[0].data() + p.icmp.body_offset + 4;
  size_t iphl = v6() ? 40 : 20;
  ASSERT_GE(p.icmp.body_len, 4 + iphl + 8);
  const uint8_t* u = q + iphl;
  EXPECT_EQ((u[0] << 8) | u[1], 40002);
  EXPECT_EQ((u[2] << 8) | u[3], closed);
  EXPECT_EQ((u[4] << 8) | u[5], 18);
  EXPECT_GE(udp->counters().unreachable_sent, 1u);
}

TEST_P(UdpTest, InboundForward) {
  uint16_t hp = FreePort(v6());
  PortForward fw;
  fw.bind_any = false;
  fw.bind_addr = v6() ? A("::1") : A("127.0.0.1");
  fw.host_first = fw.host_last = hp;
  fw.guest_first = 5353;
  link.cfg_.udp_forwards.push_back(fw);
  Make();
  const Status st = udp->start();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(udp->forward_socket_count(), 1u);
  Peer client(v6());
  Bytes q = {'q', '1'};
  ASSERT_TRUE(client.SendTo(hp, q));
  ASSERT_TRUE(WaitFrames(1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok()) << to_string(p.status);
  EXPECT_EQ(p.src, gw());  // loopback shown as the gateway
  EXPECT_EQ(p.dst, guest());
  EXPECT_EQ(p.udp.sport, client.port);
  EXPECT_EQ(p.udp.dport, 5353);
  ASSERT_EQ(p.udp.payload_len, 2u);
  EXPECT_EQ(link.sent[0][p.udp.payload_offset], 'q');
  // The guest's reply goes back to the client, from the forwarded port.
  Bytes a = {'a', '1', '!'};
  Feed(Datagram(gw(), 5353, client.port, a));
  Bytes got;
  uint16_t from = 0;
  ASSERT_TRUE(client.Recv(got, from));
  EXPECT_EQ(got, a);
  EXPECT_EQ(from, hp);
  EXPECT_EQ(udp->flow_count(), 1u);
}

TEST_P(UdpTest, InboundForwardDualStackAllAddresses) {
  uint16_t hp = FreePort(v6());
  PortForward fw;
  fw.bind_any = true;
  fw.host_first = fw.host_last = hp;
  fw.guest_first = 7000;
  link.cfg_.udp_forwards.push_back(fw);
  Make();
  if (const Status st = udp->start(); !st.ok()) GTEST_SKIP() << "port taken meanwhile: " << st.message();
  Peer client(v6());
  ASSERT_TRUE(client.SendTo(hp, Bytes{'z'}));
  ASSERT_TRUE(WaitFrames(1));
  ParsedFrame p = parse_frame(link.sent[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.src, gw());
  EXPECT_EQ(p.dst, guest());
  EXPECT_EQ(p.udp.dport, 7000);
  Feed(Datagram(gw(), 7000, client.port, Bytes{'y', 'y'}));
  Bytes got;
  uint16_t from = 0;
  ASSERT_TRUE(client.Recv(got, from));
  EXPECT_EQ(got, (Bytes{'y', 'y'}));
  EXPECT_EQ(from, hp);
}

TEST_P(UdpTest, FlowTableBoundedAndIdleTimeout) {
  Make(4);
  Peer server(v6());
  for (uint16_t sp = 41000; sp < 41006; sp++) Feed(Datagram(gw(), sp, server.port, Bytes{1}));
  EXPECT_EQ(udp->flow_count(), 4u);
  // At the limit the new flows are refused with ICMP administratively
  // prohibited quoting the guest's datagram; the four flows are kept.
  EXPECT_EQ(udp->counters().flows_refused, 2u);
  EXPECT_EQ(udp->counters().flows_opened, 4u);
  EXPECT_EQ(udp->counters().host_sent, 4u);
  size_t prohibited = 0;
  for (const Bytes& b : link.sent) {
    ParsedFrame r = parse_frame(b);
    if (r.ok() && r.icmp.type == (v6() ? 1 : 3) && r.icmp.code == (v6() ? 1 : 13)) prohibited++;
  }
  EXPECT_EQ(prohibited, 2u);
  for (uint16_t sp = 41000; sp < 41004; sp++) Feed(Datagram(gw(), sp, server.port, Bytes{3}));
  EXPECT_EQ(udp->counters().host_sent, 8u);  // the kept flows still carry
  EXPECT_EQ(udp->counters().flows_refused, 2u);
  EXPECT_NE(udp->next_deadline_ns(), TimerClient::kNever);
  // Nothing expires before the timeout.
  udp->on_timer(now_ns());
  EXPECT_EQ(udp->flow_count(), 4u);
  udp->on_timer(now_ns() + UdpTranslator::kDefaultIdleTimeoutNs + 1);
  EXPECT_EQ(udp->flow_count(), 0u);
  EXPECT_EQ(udp->counters().flows_expired, 4u);
  EXPECT_EQ(udp->next_deadline_ns(), TimerClient::kNever);
  // Slots are reusable afterwards.
  Feed(Datagram(gw(), 42000, server.port, Bytes{2}));
  EXPECT_EQ(udp->flow_count(), 1u);
}

TEST_P(UdpTest, OutOfDescriptorsRefusesNewFlows) {
  Make();
  Peer server(v6());
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  int low = dup(0);  // descriptors are handed out lowest first
  ASSERT_GE(low, 0);
  close(low);
  rlimit lim = old;
  lim.rlim_cur = static_cast<rlim_t>(low + 3);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  for (uint16_t sp = 45000; sp < 45006; sp++) Feed(Datagram(gw(), sp, server.port, Bytes{1}));
  size_t flows = udp->flow_count();
  UdpCounters c = udp->counters();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_LE(flows, 3u);
  EXPECT_GE(flows, 1u);
  EXPECT_EQ(c.host_sent, flows);  // the flows that got a descriptor, kept
  EXPECT_EQ(c.flows_refused, 6u - flows);
}

TEST_P(UdpTest, IdleOrderFollowsActivity) {
  Make();
  Peer server(v6());
  udp->set_idle_timeout_ns(1000000000ull);
  Feed(Datagram(gw(), 43000, server.port, Bytes{1}));
  Feed(Datagram(gw(), 43001, server.port, Bytes{1}));
  uint64_t t0 = now_ns();
  Feed(Datagram(gw(), 43000, server.port, Bytes{1}));  // 43000 is now the newest
  EXPECT_EQ(udp->flow_count(), 2u);
  udp->on_timer(t0 + 1000000000ull - 1);  // 43001's deadline has passed, 43000's not
  EXPECT_EQ(udp->flow_count(), 1u);
  Bytes got;
  uint16_t p1 = 0;
  for (int i = 0; i < 3; i++) ASSERT_TRUE(server.Recv(got, p1));
}

TEST_P(UdpTest, RefusedDestinations) {
  Make();
  Feed(Datagram(v6() ? A("ff02::fb") : A("224.0.0.251"), 5353, 5353, Bytes{1}));
  Feed(Datagram(v6() ? A("::1") : A("127.0.0.1"), 1000, 53, Bytes{1}));
  Feed(Datagram(gw(), 1000, 0, Bytes{1}));
  Feed(Datagram(gw(), 0, 53, Bytes{1}));
  Feed(Datagram(guest(), 1000, 53, Bytes{1}));
  if (!v6()) {
    Feed(Datagram(A("255.255.255.255"), 68, 67, Bytes{1}));
    Feed(Datagram(A("198.18.0.255"), 1000, 9, Bytes{1}));
  } else {
    Feed(Datagram(A("fe80::1"), 1000, 9, Bytes{1}));
  }
  EXPECT_EQ(udp->flow_count(), 0u);
  EXPECT_EQ(udp->counters().dropped, udp->counters().guest_datagrams);
  // Loopback, port 0, the guest itself (and fe80::1) are answered "administratively
  // prohibited", quoting the datagram; multicast, broadcast and source port 0 are not
  // answered at all.
  ASSERT_EQ(link.sent.size(), v6() ? 4u : 3u);
  for (const Bytes& b : link.sent) {
    ParsedFrame q = parse_frame(b);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q.icmp.type, v6() ? 1 : 3);
    EXPECT_EQ(q.icmp.code, v6() ? 1 : 13);
    EXPECT_EQ(q.dst, guest());
    EXPECT_EQ(q.src, gw());
  }
  EXPECT_EQ(udp->counters().unreachable_sent, link.sent.size());
  EXPECT_EQ(link.policy().counters().refused_total(), v6() ? 5u : 6u);  // all but source port 0
  link.sent.clear();
  // A malformed frame handed over anyway.
  Bytes f = Datagram(gw(), 1000, 53, Bytes{1, 2, 3});
  ParsedFrame p = parse_frame(f);
  p.udp.payload_len = 1000;
  udp->on_guest_datagram(p, f);
  p.status = ParseStatus::truncated;
  udp->on_guest_datagram(p, f);
  EXPECT_EQ(udp->flow_count(), 0u);
  EXPECT_TRUE(link.sent.empty());
}

// An IPv4-mapped destination in an IPv6 datagram would reach IPv4 (and
// bypass -6): refused as the wrong family, whatever it names.
TEST_P(UdpTest, MappedDestinationInIpv6IsRefused) {
  if (!v6()) GTEST_SKIP() << "IPv6 only";
  link.cfg_.ipv4 = false;
  Make();
  Peer server(false);
  Feed(Datagram(A("::ffff:127.0.0.1"), 1000, server.port, Bytes{1}));
  EXPECT_EQ(udp->flow_count(), 0u);
  EXPECT_EQ(link.policy().counters().refused[static_cast<size_t>(Refusal::family)], 1u);
  pollfd pf{server.fd, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 50), 0);
}

// A guest datagram from another address than the guest's: no flow, no answer.
TEST_P(UdpTest, SpoofedSourceIsDroppedSilently) {
  Make();
  Peer server(v6());
  Bytes d = Datagram(gw(), 1000, server.port, Bytes{1});
  ParsedFrame p = parse_frame(d);
  p.src = v6() ? A("fd00:1::99") : A("198.18.0.99");  // the translator's own check is bypassed
  udp->on_guest_datagram(p, d);
  EXPECT_EQ(udp->flow_count(), 0u);
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(link.policy().counters().spoofed_source, 1u);
}

TEST_P(UdpTest, GatewayNotMappedWhenDisabled) {
  link.cfg_.map_gateway = false;
  Make();
  Peer server(v6());
  Feed(Datagram(gw(), 44000, server.port, Bytes{7}));
  Bytes got;
  uint16_t from = 0;
  // Sent to the gateway address itself (not on this host): never reaches loopback.
  pollfd pf{server.fd, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 100), 0);
  (void)got;
  (void)from;
}

INSTANTIATE_TEST_SUITE_P(V4V6, UdpTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "v6" : "v4"; });

}  // namespace
}  // namespace ferry

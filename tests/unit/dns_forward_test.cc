// DNS forwarder (services/dns_forward.h) against fake resolvers on
// 127.0.0.1/127.0.0.2 (UDP sockets of the test): relay and answer with the
// guest's ID, answers passed unchanged, a retransmission going to the next
// resolver, timeouts, stray answers, the bounded table, malformed queries.
// test-libs: ferry_services ferry_policy ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "codec/frame.h"
#include "loop/event_loop.h"
#include "services/dns_forward.h"
#include "support/fake_link.h"

namespace ferry::services {
namespace {

using ferry::testing::Bytes;
using ferry::testing::FakeLink;
using ferry::testing::kGuestMac;

InetAddr A(const char* s) { return *InetAddr::parse(s); }

// A UDP socket on addr:port (port 0: any); returns fd and the port.
int Bind(const char* addr, uint16_t* port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(*port);
  sa.sin_addr = A(addr).v4();
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t sl = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
  *port = ntohs(sa.sin_port);
  return fd;
}

Bytes Query(uint16_t id, const Bytes& name = {3, 'f', 'o', 'o', 0}) {
  Bytes q = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  q.reserve(q.size() + name.size() + 4);  // also silences GCC 12's false -Wstringop-overread on insert
  q.insert(q.end(), name.begin(), name.end());
  q.insert(q.end(), {0, 1, 0, 1});
  return q;
}

class DnsForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uint16_t port = 0;
    res_[0] = Bind("127.0.0.1", &port);
    ASSERT_GE(res_[0], 0);
    res_[1] = Bind("127.0.0.2", &port);  // the same port on a second address
    if (res_[1] < 0) GTEST_SKIP() << "cannot bind 127.0.0.2";
    link.cfg_.services.upstreams = {A("127.0.0.1"), A("127.0.0.2")};
    fwd = std::make_unique<DnsForwarder>(loop, link);
    fwd->set_upstream_port(port);
    const Status st = fwd->start();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void TearDown() override {
    fwd.reset();
    for (int fd : res_)
      if (fd >= 0) close(fd);
  }
  void Send(const Bytes& q, uint16_t sport = 40000, const InetAddr* src = nullptr) {
    UdpDatagram d;
    d.ip.eth_src = kGuestMac;
    d.ip.eth_dst = link.cfg_.our_mac;
    d.ip.src = src ? *src : link.cfg_.guest4.addr;
    d.ip.dst = link.cfg_.gateway4;
    d.sport = sport;
    d.dport = 53;
    d.payload = q;
    Bytes f(1500);
    f.resize(build_udp_frame(f, d));
    fwd->on_query(parse_frame(f, true), f);
  }
  // What resolver i received (empty: nothing); answers it with `answer` when given.
  Bytes Receive(int i, sockaddr_in* from = nullptr) {
    Bytes b(4096);
    sockaddr_in sa{};
    socklen_t sl = sizeof(sa);
    for (int tries = 0; tries < 200; tries++) {
      const ssize_t n = recvfrom(res_[i], b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&sa), &sl);
      if (n >= 0) {
        b.resize(static_cast<size_t>(n));
        if (from) *from = sa;
        return b;
      }
      usleep(1000);
    }
    return {};
  }
  void Answer(int i, const sockaddr_in& to, Bytes msg) {
    msg[2] |= 0x80;  // QR
    sendto(res_[i], msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  }
  void Pump() {
    for (int i = 0; i < 20 && link.sent.empty(); i++) loop.run_once(10);
  }

  FakeLink link;
  EventLoop loop;
  std::unique_ptr<DnsForwarder> fwd;
  int res_[2] = {-1, -1};
};

TEST_F(DnsForwardTest, RelaysAndRestoresTheGuestId) {
  Send(Query(0x1234));
  sockaddr_in from{};
  Bytes got = Receive(0, &from);
  ASSERT_FALSE(got.empty());
  EXPECT_NE((got[0] << 8) | got[1], -1);
  const Bytes sent = Query(0x1234);
  EXPECT_EQ(Bytes(got.begin() + 2, got.end()), Bytes(sent.begin() + 2, sent.end()));
  Bytes answer = got;
  answer.insert(answer.end(), {0xde, 0xad});  // anything: passed unchanged
  Answer(0, from, answer);
  Pump();
  ASSERT_EQ(link.sent.size(), 1u);
  const ParsedFrame p = parse_frame(link.sent[0], true);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.src, link.cfg_.gateway4);
  EXPECT_EQ(p.udp.sport, 53);
  EXPECT_EQ(p.dst, link.cfg_.guest4.addr);
  EXPECT_EQ(p.udp.dport, 40000);
  Bytes payload(link.sent[0].begin() + static_cast<long>(p.udp.payload_offset), link.sent[0].end());
  answer[0] = 0x12;
  answer[1] = 0x34;
  answer[2] |= 0x80;  // as the resolver sent it
  EXPECT_EQ(payload, answer);
  EXPECT_EQ(fwd->in_flight(), 0u);
  // The same answer again is stray: the slot is free.
  Answer(0, from, got);
  for (int i = 0; i < 5; i++) loop.run_once(10);
  EXPECT_EQ(link.sent.size(), 1u);
  EXPECT_EQ(fwd->counters().stray, 1u);
}

TEST_F(DnsForwardTest, RetransmissionGoesToTheNextResolver) {
  Send(Query(7));
  ASSERT_FALSE(Receive(0).empty());
  Send(Query(7));  // the guest retries: resolver 0 is silent
  sockaddr_in from{};
  Bytes got = Receive(1, &from);
  ASSERT_FALSE(got.empty());
  Answer(1, from, got);
  Pump();
  EXPECT_EQ(link.sent.size(), 1u);
  EXPECT_EQ(fwd->counters().retries, 1u);
}

TEST_F(DnsForwardTest, AnswerFromTheWrongResolverIsStray) {
  Send(Query(9));
  sockaddr_in from{};
  Bytes got = Receive(0, &from);
  ASSERT_FALSE(got.empty());
  Answer(1, from, got);  // resolver 1 was not asked
  for (int i = 0; i < 5; i++) loop.run_once(10);
  EXPECT_TRUE(link.sent.empty());
  EXPECT_EQ(fwd->counters().stray, 1u);
}

TEST_F(DnsForwardTest, TimeoutsAndTableBound) {
  for (uint16_t i = 0; i < DnsForwarder::kMaxInFlight + 3; i++) Send(Query(i), static_cast<uint16_t>(1000 + i));
  EXPECT_EQ(fwd->in_flight(), DnsForwarder::kMaxInFlight);
  EXPECT_EQ(fwd->counters().table_full, 3u);
  fwd->on_timer(now_ns() + DnsForwarder::kQueryTimeoutNs + 1);
  EXPECT_EQ(fwd->in_flight(), 0u);
  EXPECT_EQ(fwd->counters().timeouts, DnsForwarder::kMaxInFlight);
  EXPECT_EQ(fwd->next_deadline_ns(), TimerClient::kNever);
}

// A query from another source than the guest's (a neighbour, a forged
// address) is neither relayed nor answered: counted as spoofed, as every
// translator counts it. Before, the forwarder relayed it and answered the
// forged address.
TEST_F(DnsForwardTest, SpoofedSourcesAreDroppedAndCounted) {
  for (const char* src : {"198.18.0.9", "10.0.0.1", "198.18.0.1"}) {
    const InetAddr a = A(src);
    Send(Query(0x4242), 40000, &a);
  }
  EXPECT_EQ(link.policy_.counters().spoofed_source, 3u);
  EXPECT_EQ(fwd->counters().queries, 0u);
  EXPECT_EQ(fwd->in_flight(), 0u);
  EXPECT_TRUE(Receive(0).empty());
  // The guest's own address still is relayed.
  Send(Query(0x4343));
  EXPECT_EQ(fwd->counters().queries, 1u);
  EXPECT_FALSE(Receive(0).empty());
}

TEST_F(DnsForwardTest, MalformedQueriesAreCountedAndDropped) {
  Bytes response = Query(1);
  response[2] |= 0x80;
  const std::vector<Bytes> bad = {Bytes(5, 0), response, Query(1, {0xc0, 0x0c}), Query(1, {9, 'a'})};
  for (const Bytes& q : bad) Send(q);
  EXPECT_EQ(fwd->counters().malformed, bad.size());
  EXPECT_EQ(fwd->in_flight(), 0u);
  EXPECT_TRUE(Receive(0).empty());
}

}  // namespace
}  // namespace ferry::services

namespace ferry::services {
namespace {

InetAddr B(const char* s) { return *InetAddr::parse(s); }

// DNS over TCP: only the forwarder's address and port 53 map, to the first
// resolver of the guest's family.
TEST(DnsTcpTarget, MapsOnlyTheForwarder) {
  Config c = Config::defaults();
  c.services.upstreams = {B("::1"), B("127.0.0.53"), B("10.0.0.1")};
  EXPECT_EQ(c.dns_tcp_target(B("198.18.0.1"), 53), B("127.0.0.53"));
  EXPECT_EQ(c.dns_tcp_target(B("fd00:f::1"), 53), B("::1"));
  EXPECT_FALSE(c.dns_tcp_target(B("198.18.0.1"), 80));
  EXPECT_FALSE(c.dns_tcp_target(B("198.18.0.9"), 53));
  c.services.dns_forward4 = B("198.18.0.9");
  EXPECT_EQ(c.dns_tcp_target(B("198.18.0.9"), 53), B("127.0.0.53"));
  EXPECT_FALSE(c.dns_tcp_target(B("198.18.0.1"), 53));
  c.services.upstreams = {B("::1")};
  EXPECT_FALSE(c.dns_tcp_target(B("198.18.0.9"), 53));  // no IPv4 resolver
  c.services.upstreams = {B("127.0.0.53")};
  c.services.dns_forward = false;
  EXPECT_FALSE(c.dns_tcp_target(B("198.18.0.9"), 53));
}

}  // namespace
}  // namespace ferry::services

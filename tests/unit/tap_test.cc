// TapPort, as root: a tap in a fresh anonymous namespace, both directions.
//
//  * fd -> guest: a hand-built Ethernet/IPv4/UDP frame written with send()
//    arrives at a UDP socket bound inside the namespace;
//  * guest -> fd: a UDP sendto() from inside the namespace to a neighbour
//    with a static ARP entry is read back by receive();
//  * the tap has the MTU and txqueuelen asked for, drops are counted, and
//    the device disappears with the port.
// Skips when not root. Everything lives in namespaces the test creates.
// test-libs: ferry_port ferry_netns
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "netns/guest_setup.h"
#include "netns/netlink.h"
#include "netns/netns.h"
#include "port/tap.h"

namespace ferry {
namespace {

bool privileged() { return geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0; }

InetAddr v4(const char* text) {
  InetAddr a;
  a.b[10] = 0xff;
  a.b[11] = 0xff;
  EXPECT_EQ(inet_pton(AF_INET, text, a.b.data() + 12), 1);
  return a;
}

const MacAddr kPeerMac{{0x02, 0x66, 0x00, 0x00, 0x00, 0x01}};

// Internet checksum of a byte range (for the IPv4 header).
uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Ethernet + IPv4 + UDP (checksum 0: allowed for IPv4) + payload.
std::vector<uint8_t> udp_frame(const MacAddr& dst_mac, const MacAddr& src_mac, const char* src_ip,
                               const char* dst_ip, uint16_t sport, uint16_t dport, const std::string& data) {
  std::vector<uint8_t> f(14 + 20 + 8 + data.size());
  std::memcpy(&f[0], dst_mac.b.data(), 6);
  std::memcpy(&f[6], src_mac.b.data(), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = &f[14];
  size_t ip_len = 20 + 8 + data.size();
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  inet_pton(AF_INET, src_ip, ip + 12);
  inet_pton(AF_INET, dst_ip, ip + 16);
  uint16_t c = csum(ip, 20);
  ip[10] = static_cast<uint8_t>(c >> 8);
  ip[11] = static_cast<uint8_t>(c);
  uint8_t* udp = ip + 20;
  size_t udp_len = 8 + data.size();
  udp[0] = static_cast<uint8_t>(sport >> 8);
  udp[1] = static_cast<uint8_t>(sport);
  udp[2] = static_cast<uint8_t>(dport >> 8);
  udp[3] = static_cast<uint8_t>(dport);
  udp[4] = static_cast<uint8_t>(udp_len >> 8);
  udp[5] = static_cast<uint8_t>(udp_len);
  std::memcpy(udp + 8, data.data(), data.size());
  return f;
}

// Keeps copies of every frame received.
struct Collect : FrameSink {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<RxMeta> metas;
  void on_guest_frame(std::span<const uint8_t> f, const RxMeta& m) override {
    frames.emplace_back(f.begin(), f.end());
    metas.push_back(m);
  }
};

// A namespace with a TapPort "eth0" configured as a ferry guest (IPv4 only).
struct Guest {
  Result<NetnsFd> ns = Status(EIO, "unset");
  Result<std::unique_ptr<TapPort>> port = Status(EIO, "unset");

  // Creates and configures; failures show in the Results.
  void setup(const TapOptions& opts) {
    ns = create_netns();
    if (!ns) return;
    port = TapPort::create(ns->get(), opts);
    if (!port) return;
    GuestLinkSetup s;
    s.ifname = opts.ifname;
    s.addr4 = InetPrefix{v4("198.18.0.2"), 24};
    s.gateway4 = v4("198.18.0.1");
    Status st = configure_guest_link(ns->get(), s);
    if (!st) port = st;
  }

  // A socket of `type` made inside the namespace after the gateway
  // 198.18.0.1 became a static neighbour (kPeerMac), so the guest's first
  // frame to it is not an ARP request; -1 on failure.
  int gateway_socket(int type) {
    NetnsGuard guard;
    if (!guard.enter(ns->get())) return -1;
    auto nl = Netlink::open();
    if (!nl || !nl->add_neighbor((*port)->ifindex(), v4("198.18.0.1"), kPeerMac)) return -1;
    return socket(AF_INET, type | SOCK_CLOEXEC, 0);
  }
};

// The gateway's address 198.18.0.1:port.
sockaddr_in gateway_addr(uint16_t port) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "198.18.0.1", &to.sin_addr);
  return to;
}

// A UDP socket made inside the namespace, bound to addr:port.
int udp_socket_in(int ns_fd, const char* addr, uint16_t port) {
  NetnsGuard g;
  if (!g.enter(ns_fd)) return -1;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

TEST(TapPort, RefusesBadOptions) {
  TapOptions o;
  o.ifname = "";
  EXPECT_EQ(TapPort::create(-1, o).status().err(), EINVAL);
  o.ifname = "eth0";
  o.mtu = 70000;
  EXPECT_EQ(TapPort::create(-1, o).status().err(), EINVAL);
  o.mtu = 1500;
  EXPECT_FALSE(TapPort::create(-1, o));  // bad namespace fd
}

// Every data-path test runs with and without the vnet header.
class TapModes : public ::testing::TestWithParam<bool> {
 protected:
  TapOptions opts() const {
    TapOptions o;  // defaults: eth0, 65520, 5000
    o.offloads = GetParam();
    return o;
  }
};

INSTANTIATE_TEST_SUITE_P(Offloads, TapModes, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "vnet" : "plain"; });

TEST_P(TapModes, CreatedWithMtuAndQueue) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  TapOptions o = opts();
  g.setup(o);
  ASSERT_TRUE(g.ns) << g.ns.status().message();
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  EXPECT_EQ(port.offloads(), GetParam());
  EXPECT_GE(port.fd(), 0);
  EXPECT_EQ(port.ifname(), "eth0");
  EXPECT_GT(port.ifindex(), 0);
  EXPECT_NE(port.guest_mac(), MacAddr{});
  EXPECT_EQ(port.guest_mac().b[0] & 1, 0) << "unicast";

  Result<Netlink> nl = Status(EIO, "unset");
  {
    NetnsGuard guard;
    ASSERT_TRUE(guard.enter(g.ns->get()));
    nl = Netlink::open();
  }
  ASSERT_TRUE(nl);
  auto li = nl->get_link(port.ifindex());
  ASSERT_TRUE(li) << li.status().message();
  EXPECT_EQ(li->name, "eth0");
  EXPECT_EQ(li->mtu, 65520u);
  EXPECT_EQ(li->txqlen, 5000u);
  EXPECT_EQ(li->mac, port.guest_mac());

  // The device goes with the fd.
  int idx = port.ifindex();
  g.port->reset();
  auto gone = nl->get_link(idx);
  EXPECT_FALSE(gone);
  EXPECT_EQ(nl->link_index("eth0").status().err(), ENODEV);
}

TEST_P(TapModes, FrameToGuestReachesSocket) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  g.setup(opts());
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  int s = udp_socket_in(g.ns->get(), "198.18.0.2", 5555);
  ASSERT_GE(s, 0) << std::strerror(errno);

  std::string msg = "hello guest";
  auto frame = udp_frame(port.guest_mac(), kPeerMac, "198.18.0.1", "198.18.0.2", 4444, 5555, msg);
  // Two pieces, as the translator sends headers and payload.
  iovec iov[2] = {{frame.data(), 20}, {frame.data() + 20, frame.size() - 20}};
  ASSERT_TRUE(port.send(iov, 2));
  EXPECT_EQ(port.counters().tx_frames, 1u);
  EXPECT_EQ(port.counters().tx_bytes, frame.size());

  pollfd p{s, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "datagram did not arrive";
  char buf[64] = {};
  sockaddr_in from{};
  socklen_t fl = sizeof(from);
  ssize_t n = recvfrom(s, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
  ASSERT_EQ(n, static_cast<ssize_t>(msg.size()));
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), msg);
  EXPECT_EQ(ntohs(from.sin_port), 4444);
  close(s);
}

TEST_P(TapModes, GuestFrameIsReadFromFd) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  g.setup(opts());
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  int s = g.gateway_socket(SOCK_DGRAM);
  ASSERT_GE(s, 0);
  sockaddr_in to = gateway_addr(7777);
  std::string msg = "hello ferry";
  ASSERT_EQ(sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(msg.size()));

  // Other frames (none expected for IPv4-only, but harmless) are skipped.
  Collect sink;
  bool found = false;
  for (int tries = 0; tries < 20 && !found; tries++) {
    pollfd p{port.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    size_t got = port.receive(sink, 8);
    EXPECT_LE(got, 8u);
    for (size_t k = 0; k < sink.frames.size(); k++) {
      const auto& f = sink.frames[k];
      if (f.size() < 14 + 20 + 8 + msg.size() || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != IPPROTO_UDP) continue;
      const uint8_t* udp = &f[14 + 20];
      if ((udp[2] << 8 | udp[3]) != 7777) continue;
      EXPECT_EQ(std::memcmp(&f[0], kPeerMac.b.data(), 6), 0) << "to the static neighbour";
      EXPECT_EQ(std::memcmp(&f[6], port.guest_mac().b.data(), 6), 0) << "from the guest MAC";
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(udp + 8), msg.size()), msg);
      // With the vnet header the guest's stack leaves the UDP checksum to
      // the "NIC" and says so; without it, nothing is claimed.
      EXPECT_EQ(sink.metas[k].l4_checksum_trusted, GetParam());
      EXPECT_EQ(sink.metas[k].gso_size, 0);
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no UDP frame read from the tap after " << sink.frames.size() << " frames";
  EXPECT_GE(port.counters().rx_frames, 1u);
  EXPECT_GE(port.counters().rx_bytes, 14u + 20 + 8 + msg.size());
  // Nothing left: receive() returns 0 at once instead of blocking.
  Collect empty;
  EXPECT_EQ(port.receive(empty, 8), 0u);
  EXPECT_EQ(port.rx_errors(), 0u);
  close(s);
}

TEST_P(TapModes, BatchLimitAndDropCounting) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  g.setup(opts());
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  int s = g.gateway_socket(SOCK_DGRAM);
  ASSERT_GE(s, 0);
  sockaddr_in to = gateway_addr(7777);
  for (int i = 0; i < 5; i++) ASSERT_EQ(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  pollfd p{port.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  Collect sink;
  EXPECT_EQ(port.receive(sink, 2), 2u) << "max_frames bounds a batch";
  size_t more = 0;
  for (int i = 0; i < 10 && sink.frames.size() < 5; i++) {
    more += port.receive(sink, 64);
    if (sink.frames.size() < 5) poll(&p, 1, 100);
  }
  EXPECT_GE(sink.frames.size(), 5u);

  // A runt (shorter than an Ethernet header) is refused by the kernel and counted.
  uint8_t runt[6] = {};
  EXPECT_FALSE(port.send(std::span<const uint8_t>(runt, sizeof(runt))));
  EXPECT_EQ(port.counters().tx_dropped, 1u);
  EXPECT_FALSE(port.send(nullptr, 0));
  EXPECT_EQ(port.counters().tx_dropped, 2u);
  EXPECT_EQ(port.counters().tx_frames, 0u);
  close(s);
}

// ---- offloads (vnet header) --------------------------------------------------------

// One's-complement sum (not folded to 16 bits, not inverted) of a range.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// IPv4 pseudo-header sum of a frame built by udp_frame()/tcp_frame().
uint32_t pseudo_sum(const std::vector<uint8_t>& f, uint8_t proto, size_t l4_len) {
  uint32_t sum = sum16(&f[14 + 12], 8);
  return sum + proto + static_cast<uint32_t>(l4_len);
}

// Ethernet + IPv4 + TCP with an MSS option, full checksums.
std::vector<uint8_t> tcp_synack(const MacAddr& dst_mac, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack) {
  std::vector<uint8_t> f = udp_frame(dst_mac, kPeerMac, "198.18.0.1", "198.18.0.2", 0, 0, std::string(16, '\0'));
  // udp_frame made IPv4 with 8 + 16 = 24 bytes of L4: exactly a TCP header
  // with one 4-byte option. Rewrite protocol and L4.
  uint8_t* ip = &f[14];
  ip[9] = IPPROTO_TCP;
  ip[10] = ip[11] = 0;
  uint16_t c = csum(ip, 20);
  ip[10] = static_cast<uint8_t>(c >> 8);
  ip[11] = static_cast<uint8_t>(c);
  uint8_t* t = ip + 20;
  std::memset(t, 0, 24);
  t[0] = static_cast<uint8_t>(sport >> 8);
  t[1] = static_cast<uint8_t>(sport);
  t[2] = static_cast<uint8_t>(dport >> 8);
  t[3] = static_cast<uint8_t>(dport);
  for (int i = 0; i < 4; i++) t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 4; i++) t[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  t[12] = 6 << 4;  // 24-byte header
  t[13] = 0x12;    // SYN | ACK
  t[14] = 0xff;    // window 65535
  t[15] = 0xff;
  t[20] = 2;  // MSS 1460
  t[21] = 4;
  t[22] = 1460 >> 8;
  t[23] = 1460 & 0xff;
  uint16_t tc = static_cast<uint16_t>(~fold(sum16(t, 24, pseudo_sum(f, IPPROTO_TCP, 24))));
  t[16] = static_cast<uint8_t>(tc >> 8);
  t[17] = static_cast<uint8_t>(tc);
  return f;
}

uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

TEST(TapPort, PlainPortRefusesOffloadSend) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  TapOptions o;
  o.offloads = false;
  g.setup(o);
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  auto frame = udp_frame(port.guest_mac(), kPeerMac, "198.18.0.1", "198.18.0.2", 1, 2, "x");
  iovec v{frame.data(), frame.size()};
  TxOffload off;
  off.csum_start = 14 + 20;
  off.csum_offset = 6;
  EXPECT_FALSE(port.send(&v, 1, off));
  EXPECT_EQ(port.counters().tx_dropped, 1u);
}

TEST(TapPort, OffloadSendWithPartialChecksum) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  g.setup(TapOptions{});  // offloads on
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  ASSERT_TRUE(port.offloads());
  int s = udp_socket_in(g.ns->get(), "198.18.0.2", 5556);
  ASSERT_GE(s, 0);
  std::string msg = "partial checksum";
  auto frame = udp_frame(port.guest_mac(), kPeerMac, "198.18.0.1", "198.18.0.2", 4444, 5556, msg);
  // A partial checksum: the pseudo-header sum, folded, not inverted.
  size_t l4_len = 8 + msg.size();
  uint16_t seed = fold(pseudo_sum(frame, IPPROTO_UDP, l4_len));
  frame[14 + 20 + 6] = static_cast<uint8_t>(seed >> 8);
  frame[14 + 20 + 7] = static_cast<uint8_t>(seed);
  TxOffload off;
  off.csum_start = 14 + 20;
  off.csum_offset = 6;
  iovec v{frame.data(), frame.size()};
  ASSERT_TRUE(port.send(&v, 1, off));
  EXPECT_EQ(port.counters().tx_bytes, frame.size()) << "the vnet header is not counted";
  pollfd p{s, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "datagram with a partial checksum did not arrive";
  char buf[64] = {};
  ssize_t n = recv(s, buf, sizeof(buf), 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n > 0 ? n : 0)), msg);
  close(s);
}

// With TSO offered to the guest, its TCP sends super-segments larger than
// the MTU, marked with gso_size. A minimal handshake from this side gets a
// connection going.
TEST(TapPort, GuestTcpSuperSegments) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  Guest g;
  TapOptions o;
  o.mtu = 1500;
  g.setup(o);
  ASSERT_TRUE(g.port) << g.port.status().message();
  TapPort& port = **g.port;
  int s = g.gateway_socket(SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_GE(s, 0);
  sockaddr_in to = gateway_addr(8080);
  ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)), -1);
  ASSERT_EQ(errno, EINPROGRESS);

  // Find the SYN.
  Collect sink;
  uint16_t guest_port = 0;
  uint32_t guest_isn = 0;
  for (int tries = 0; tries < 20 && guest_port == 0; tries++) {
    pollfd p{port.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    sink.frames.clear();
    port.receive(sink, 16);
    for (const auto& f : sink.frames) {
      if (f.size() < 14 + 20 + 20 || f[12] != 0x08 || f[14 + 9] != IPPROTO_TCP) continue;
      const uint8_t* t = &f[14 + 20];
      if ((t[13] & 0x02) == 0 || (t[2] << 8 | t[3]) != 8080) continue;
      guest_port = static_cast<uint16_t>(t[0] << 8 | t[1]);
      guest_isn = be32(t + 4);
    }
  }
  ASSERT_NE(guest_port, 0) << "no SYN from the guest";
  auto synack = tcp_synack(port.guest_mac(), 8080, guest_port, 1000, guest_isn + 1);
  ASSERT_TRUE(port.send(std::span<const uint8_t>(synack)));
  pollfd w{s, POLLOUT, 0};
  ASSERT_EQ(poll(&w, 1, 2000), 1);
  int err = -1;
  socklen_t el = sizeof(err);
  getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
  ASSERT_EQ(err, 0) << "handshake failed: " << std::strerror(err);

  std::vector<char> data(30000, 'd');
  ASSERT_GT(send(s, data.data(), data.size(), 0), 0);
  size_t biggest = 0;
  uint16_t gso = 0;
  for (int tries = 0; tries < 20 && (biggest <= 1514 || gso == 0); tries++) {
    pollfd p{port.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    sink.frames.clear();
    sink.metas.clear();
    port.receive(sink, 64);
    for (size_t k = 0; k < sink.frames.size(); k++) {
      const auto& f = sink.frames[k];
      if (f.size() < 14 + 20 + 20 || f[12] != 0x08 || f[14 + 9] != IPPROTO_TCP) continue;
      if (f.size() > biggest) {
        biggest = f.size();
        gso = sink.metas[k].gso_size;
        EXPECT_TRUE(sink.metas[k].l4_checksum_trusted);
      }
    }
  }
  EXPECT_GT(biggest, 1514u) << "no TCP frame larger than the MTU";
  EXPECT_GT(gso, 0) << "super-segment without gso_size";
  EXPECT_LE(gso, 1460);
  close(s);
}

}  // namespace
}  // namespace ferry

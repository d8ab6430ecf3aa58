// Unit tests of the attach library that need no privileges:
//   * ConnMirror: a real TcpTranslator over a fake guest link and loopback
//     sockets; the view slot is filled when the flow appears (addresses,
//     ports, state), refreshed by the timer (sequence numbers move with
//     data), zeroed when the flow goes (guest RST), with `seq` even at rest;
//   * the view kept in a file (a rootless `ferry run`): a flow mirrored into
//     it is read back by the reader `ferry conns` uses, from a copy of the
//     mapping made in a forked child (as the translator is); a file that is
//     no view is refused; the file goes with the object;
//   * fill_view flag mapping;
//   * the state file round trip, interface-name validation, JSON escaping,
//     the mmap length of the view.
// test-libs: ferry_attach ferry_tcp ferry_loop ferry_codec ferry_common ferry_port ferry_netns
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attach/conn_mirror.h"
#include "attach/conn_view_file.h"
#include "attach/datapath.h"
#include "attach/inspect.h"
#include "attach/instance.h"
#include "codec/frame.h"
#include "common/config.h"
#include "common/guest_link.h"
#include "loop/event_loop.h"
#include "policy/destination_policy.h"
#include "tcp/tcp_translator.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;
const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

// Captures the frames meant for the guest.
class FakeLink : public GuestLink {
 public:
  FakeLink() : cfg_(Config::defaults()) { cfg_.max_conns = 64; }
  const Config& config() const override { return cfg_; }
  DestinationPolicy& policy() override { return policy_; }
  const MacAddr& our_mac() const override { return cfg_.our_mac; }
  const MacAddr& guest_mac() const override { return mac_; }
  bool send_to_guest(std::span<const uint8_t> frame) override {
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  bool send_to_guest(const iovec* iov, int iovcnt) override {
    Bytes b;
    for (int i = 0; i < iovcnt; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      b.insert(b.end(), p, p + iov[i].iov_len);
    }
    sent.push_back(b);
    return true;
  }
  Config cfg_;
  DestinationPolicy policy_{cfg_};
  MacAddr mac_ = kGuestMac;
  std::vector<Bytes> sent;
};

// A loopback listener on an ephemeral port.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s));
    listen(fd, 4);
    socklen_t sl = sizeof(s);
    getsockname(fd, reinterpret_cast<sockaddr*>(&s), &sl);
    port = ntohs(s.sin_port);
  }
  ~Listener() { close(fd); }
};

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp = std::make_unique<TcpTranslator>(loop, link);
    view.assign(64, ferry_conn_view{});
    mirror = std::make_unique<attach::ConnMirror>(loop, *tcp, view.data(), 64);
  }
  void TearDown() override {
    mirror.reset();
    tcp.reset();
  }
  // Feeds one guest segment to the translator.
  void Send(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, const std::string& data = "") {
    TcpSegment s;
    s.ip.eth_src = kGuestMac;
    s.ip.eth_dst = link.cfg_.our_mac;
    s.ip.src = *InetAddr::parse("198.18.0.2");
    s.ip.dst = *InetAddr::parse("198.18.0.1");
    s.sport = sport;
    s.dport = dport;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = 65535;
    s.payload = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    Bytes buf(kMaxFrameLen);
    const size_t n = build_tcp_frame(buf, s);
    ASSERT_GT(n, 0u);
    buf.resize(n);
    ParsedFrame f = parse_frame(buf, true);
    ASSERT_TRUE(f.ok());
    tcp->on_guest_segment(f, buf);
    loop.run_once(0);
  }
  // Runs the loop until a SYN-ACK went to the guest; returns its seq.
  bool WaitSynAck(uint32_t* iss) {
    const uint64_t end = now_ns() + 3'000'000'000ull;
    while (now_ns() < end) {
      for (const Bytes& b : link.sent) {
        ParsedFrame f = parse_frame(b, true);
        if (f.ok() && f.is_tcp() && (f.tcp.flags & (tcpflag::kSyn | tcpflag::kAck)) == (tcpflag::kSyn | tcpflag::kAck)) {
          *iss = f.tcp.seq;
          return true;
        }
      }
      loop.run_once(10);
    }
    return false;
  }

  EventLoop loop;
  FakeLink link;
  std::unique_ptr<TcpTranslator> tcp;
  std::vector<ferry_conn_view> view;
  std::unique_ptr<attach::ConnMirror> mirror;
};

// Counts the flow events forwarded by the mirror.
struct CountingObserver : TcpFlowObserver {
  int added = 0, removed = 0;
  void on_flow_added(uint32_t, const ferry_conn_key&, const TcpConn&) override { added++; }
  void on_flow_removed(uint32_t, const ferry_conn_key&) override { removed++; }
};

TEST_F(MirrorTest, SlotFollowsTheFlow) {
  CountingObserver next;
  mirror->chain(&next);
  Listener l;
  Send(40000, l.port, 1000, 0, tcpflag::kSyn);
  ASSERT_EQ(tcp->connection_count(), 1u);
  ASSERT_EQ(mirror->live(), 1u);
  const uint32_t slot = tcp->find(TcpTranslator::make_key(*InetAddr::parse("198.18.0.2"), 40000,
                                                         *InetAddr::parse("198.18.0.1"), l.port));
  ASSERT_LT(slot, 64u);
  const ferry_conn_view& v = view[slot];
  EXPECT_EQ(v.seq % 2, 0u);
  EXPECT_NE(v.seq, 0u);
  EXPECT_NE(v.state, FERRY_CONN_FREE);
  EXPECT_EQ(v.family, AF_INET);
  EXPECT_EQ(ntohs(v.guest_port), 40000);
  EXPECT_EQ(ntohs(v.peer_port), l.port);
  EXPECT_EQ(attach::conn_addr(v.guest_addr, v.family), "198.18.0.2");
  EXPECT_EQ(attach::conn_addr(v.peer_addr, v.family), "198.18.0.1");
  EXPECT_EQ(v.flags & FERRY_CONN_F_INBOUND, 0);

  uint32_t iss = 0;
  ASSERT_TRUE(WaitSynAck(&iss));
  Send(40000, l.port, 1001, iss + 1, tcpflag::kAck);
  Send(40000, l.port, 1001, iss + 1, tcpflag::kAck | tcpflag::kPsh, "0123456789");
  mirror->refresh();
  EXPECT_EQ(v.state, FERRY_CONN_ESTABLISHED);
  EXPECT_EQ(v.rcv_nxt, 1011u);  // SYN + 10 bytes
  EXPECT_EQ(v.snd_nxt, iss + 1);
  EXPECT_GT(v.mss, 0);
  EXPECT_NE(v.last_activity_ns, 0u);
  EXPECT_EQ(v.seq % 2, 0u);

  // The timer refreshes too: a deadline exists while flows live.
  EXPECT_NE(mirror->next_deadline_ns(), TimerClient::kNever);

  Send(40000, l.port, 1011, 0, tcpflag::kRst);
  EXPECT_EQ(tcp->connection_count(), 0u);
  EXPECT_EQ(mirror->live(), 0u);
  EXPECT_EQ(v.state, FERRY_CONN_FREE);
  EXPECT_EQ(v.guest_port, 0);
  EXPECT_EQ(v.seq % 2, 0u);
  EXPECT_EQ(mirror->next_deadline_ns(), TimerClient::kNever);
  EXPECT_EQ(next.added, 1);  // chained observer saw both events
  EXPECT_EQ(next.removed, 1);
}

// Hands tcp a guest SYN from 198.18.0.2:sport to the gateway's dport;
// false when the frame does not parse.
bool guest_syn(TcpTranslator& tcp, const FakeLink& link, uint16_t sport, uint16_t dport) {
  TcpSegment s;
  s.ip.eth_src = kGuestMac;
  s.ip.eth_dst = link.cfg_.our_mac;
  s.ip.src = *InetAddr::parse("198.18.0.2");
  s.ip.dst = *InetAddr::parse("198.18.0.1");
  s.sport = sport;
  s.dport = dport;
  s.seq = 7;
  s.flags = tcpflag::kSyn;
  s.window = 65535;
  Bytes buf(kMaxFrameLen);
  buf.resize(build_tcp_frame(buf, s));
  ParsedFrame f = parse_frame(buf, true);
  if (!f.ok()) return false;
  tcp.on_guest_segment(f, buf);
  return true;
}

// The `ferry run` hook end to end (root: it pins a map): a flow is readable
// through the pin by the same reader `ferry conns` uses, and the pin goes
// with the view.
TEST(ConnViewHook, PinnedAndReadable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (bpffs)";
  EventLoop loop;
  FakeLink link;
  TcpTranslator tcp(loop, link);
  const std::string inst = "test-attach-" + std::to_string(getpid());
  Result<std::unique_ptr<attach::ConnView>> v = attach::start_conn_view(loop, tcp, inst, 64);
  ASSERT_TRUE(v.ok()) << v.status().message();
  Listener l;
  ASSERT_TRUE(guest_syn(tcp, link, 40123, l.port));
  const std::string pin = attach::pin_dir(inst) + "/conns";
  Result<std::vector<attach::ConnEntry>> conns = attach::read_conns(pin);
  ASSERT_TRUE(conns.ok()) << conns.status().message();
  ASSERT_EQ(conns->size(), 1u);
  EXPECT_EQ(ntohs((*conns)[0].v.guest_port), 40123);
  EXPECT_EQ(ntohs((*conns)[0].v.peer_port), l.port);
  v->reset();
  EXPECT_NE(access(pin.c_str(), F_OK), 0);
  EXPECT_NE(access(attach::pin_dir(inst).c_str(), F_OK), 0);
}

// No privileges: the view is a file, written by a forked child through the
// mapping it inherited, read by path in the parent.
TEST(ConnViewFile, MirroredFlowReadableFromTheFile) {
  char tmpl[] = "/tmp/ferry-connfile-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/conns";
  Result<std::unique_ptr<attach::ConnViewFile>> f = attach::ConnViewFile::create(path, 64);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_FALSE(attach::ConnViewFile::create(path, 64).ok());  // O_EXCL: never someone else's file
  Result<std::vector<attach::ConnEntry>> none = attach::read_conns_file(path);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());
  Listener l;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the translator's side: mirror one flow into the inherited mapping
    EventLoop loop;
    FakeLink link;
    TcpTranslator tcp(loop, link);
    attach::ConnMirror mirror(loop, tcp, (*f)->view(), (*f)->entries());
    if (!guest_syn(tcp, link, 40124, l.port)) _exit(2);
    _exit(tcp.connection_count() == 1 ? 0 : 3);
  }
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  Result<std::vector<attach::ConnEntry>> conns = attach::read_conns_file(path);
  ASSERT_TRUE(conns.ok()) << conns.status().message();
  ASSERT_EQ(conns->size(), 1u);
  EXPECT_EQ(ntohs((*conns)[0].v.guest_port), 40124);
  EXPECT_EQ(ntohs((*conns)[0].v.peer_port), l.port);
  EXPECT_EQ(attach::conn_addr((*conns)[0].v.guest_addr, AF_INET), "198.18.0.2");
  f->reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // unlinked with the object
  // Not a view: a size that is no whole number of slots, or empty.
  {
    FILE* bad = std::fopen(path.c_str(), "w");
    ASSERT_NE(bad, nullptr);
    std::fputs("not a view", bad);
    std::fclose(bad);
  }
  EXPECT_FALSE(attach::read_conns_file(path).ok());
  unlink(path.c_str());
  EXPECT_FALSE(attach::read_conns_file(path).ok());
  rmdir(tmpl);
}

TEST(AttachInstance, StateRoundTrip) {
  char tmpl[] = "/tmp/ferry-attach-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/state";
  attach::StateMap m{{"dev", "veth0"}, {"pid", "42"}, {"netns", ""}, {"guest4", "198.18.0.2/24"}};
  ASSERT_TRUE(attach::write_state(path, m).ok());
  Result<attach::StateMap> r = attach::read_state(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, m);
  EXPECT_FALSE(attach::read_state(path + ".missing").ok());
  EXPECT_TRUE(attach::remove_dir_flat(tmpl).ok());
  EXPECT_TRUE(attach::remove_dir_flat(tmpl).ok());  // gone already: fine
}

TEST(AttachInstance, InterfaceNames) {
  EXPECT_TRUE(attach::valid_ifname("veth0"));
  EXPECT_TRUE(attach::valid_ifname("a23456789012345"));
  EXPECT_FALSE(attach::valid_ifname("a234567890123456"));
  EXPECT_FALSE(attach::valid_ifname(""));
  EXPECT_FALSE(attach::valid_ifname(".."));
  EXPECT_FALSE(attach::valid_ifname("a/b"));
  EXPECT_FALSE(attach::valid_ifname("a b"));
}

TEST(AttachInspect, JsonAndSizes) {
  EXPECT_EQ(attach::json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
  EXPECT_EQ(attach::mmap_len(1, sizeof(ferry_conn_view)), static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(sizeof(ferry_conn_view) % 8, 0u);
  EXPECT_STREQ(attach::conn_state_name(FERRY_CONN_ESTABLISHED), "established");
  uint8_t v6[16] = {0xfd, 0x00, 0x00, 0x0f};
  v6[15] = 2;
  EXPECT_EQ(attach::conn_addr(v6, AF_INET6), "fd00:f::2");
}

}  // namespace
}  // namespace ferry

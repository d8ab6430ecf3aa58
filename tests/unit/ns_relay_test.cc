// -T/-U relays (userspace/nsfwd/) on real loopback sockets of the test's
// own namespace: the "guest-side" socket is an ordinary listener here, so
// no privilege is needed. What is checked: bytes both ways with half-close
// in each direction, backpressure over a transfer larger than every buffer,
// a refused host port resets the guest's connection, the table's bound,
// UDP answers coming back to the right source, idle expiry.
// test-libs: ferry_nsfwd ferry_netns ferry_loop ferry_common ferry_codec
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "loop/event_loop.h"
#include "nsfwd/ns_listeners.h"
#include "nsfwd/tcp_relay.h"
#include "nsfwd/udp_relay.h"

namespace ferry {
namespace {

// A socket bound to 127.0.0.1 on a port of the kernel's choice.
int bound(int type, uint16_t* port, bool listen_too) {
  const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_storage ss;
  const socklen_t len = loopback_sockaddr(false, 0, &ss);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0);
  if (listen_too) EXPECT_EQ(listen(fd, 16), 0);
  socklen_t l = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l);
  *port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss;
  const socklen_t len = loopback_sockaddr(false, port, &ss);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&ss), len), 0);
  return fd;
}

// Runs the loop until pred() holds (at most ~5 s); pred may have effects
// (accept, read), so it is asked once per turn and its answer kept.
bool turn_until(EventLoop& loop, const std::function<bool()>& pred) {
  for (int i = 0; i < 500; i++) {
    if (pred()) return true;
    loop.run_once(10);
  }
  return pred();
}

// Reads what fd has now (non-blocking); *eof on end of stream, *err on an error.
void drain(int fd, std::string* into, bool* eof, int* err) {
  char buf[65536];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) *eof = true;
    else if (errno != EAGAIN) *err = errno;
    return;
  }
}

struct TcpFixture {
  EventLoop loop;
  NsTcpRelay relay;
  uint16_t guest_port = 0;  // where the "guest" connects
  explicit TcpFixture(uint16_t target, size_t max_conns = 8) : relay(loop, 0, false, max_conns) {
    const int l = bound(SOCK_STREAM | SOCK_NONBLOCK, &guest_port, true);
    EXPECT_TRUE(relay.start({NsListener{l, false, guest_port, target}}).ok());
  }
};

TEST(NsTcpRelay, BothWaysWithHalfCloseEachWay) {
  uint16_t host_port = 0;
  const int server = bound(SOCK_STREAM | SOCK_NONBLOCK, &host_port, true);
  TcpFixture f(host_port);
  const int guest = connect_to(f.guest_port);
  int host = -1;
  ASSERT_TRUE(turn_until(f.loop, [&] {
    pollfd p{server, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (host = accept4(server, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;
  }));
  // guest -> host, then the guest half-closes: the host sees the bytes and the end
  ASSERT_EQ(send(guest, "hello", 5, 0), 5);
  ASSERT_EQ(shutdown(guest, SHUT_WR), 0);
  std::string at_host;
  bool host_eof = false;
  int host_err = 0;
  ASSERT_TRUE(turn_until(f.loop, [&] {
    drain(host, &at_host, &host_eof, &host_err);
    return host_eof;
  }));
  EXPECT_EQ(at_host, "hello");
  // the other way still works after the guest's half-close
  ASSERT_EQ(send(host, "world", 5, 0), 5);
  EXPECT_EQ(f.relay.connection_count(), 1u);
  ASSERT_EQ(shutdown(host, SHUT_WR), 0);
  std::string at_guest;
  bool guest_eof = false;
  int guest_err = 0;
  ASSERT_TRUE(turn_until(f.loop, [&] {
    drain(guest, &at_guest, &guest_eof, &guest_err);
    return guest_eof;
  }));
  EXPECT_EQ(at_guest, "world");
  EXPECT_EQ(guest_err, 0);
  EXPECT_TRUE(turn_until(f.loop, [&] { return f.relay.connection_count() == 0; }));
  EXPECT_EQ(f.relay.counters().closed, 1u);
  EXPECT_EQ(f.relay.counters().bytes_to_host, 5u);
  EXPECT_EQ(f.relay.counters().bytes_to_guest, 5u);
  close(guest);
  close(host);
  close(server);
}

// 16 MiB toward a reader that waits: the relay holds at most its buffer and
// the sockets' own; every byte arrives in order once the reader reads.
TEST(NsTcpRelay, BackpressureKeepsEveryByteInOrder) {
  uint16_t host_port = 0;
  const int server = bound(SOCK_STREAM | SOCK_NONBLOCK, &host_port, true);
  TcpFixture f(host_port);
  const int guest = connect_to(f.guest_port);
  int host = -1;
  ASSERT_TRUE(turn_until(f.loop, [&] { return (host = accept4(server, nullptr, nullptr, SOCK_NONBLOCK)) >= 0; }));
  constexpr size_t kTotal = 16u << 20;
  std::string sent;
  sent.reserve(kTotal);
  for (size_t i = 0; sent.size() < kTotal; i++) sent += std::to_string(i) + ",";
  sent.resize(kTotal);
  size_t off = 0;
  std::string got;
  bool eof = false;
  int err = 0;
  int idle_turns = 0;
  // First the host writes while nobody reads (the guest waits 50 turns).
  for (int turn = 0; turn < 5000 && !eof; turn++) {
    if (off < sent.size()) {
      const ssize_t n = send(host, sent.data() + off, sent.size() - off, MSG_DONTWAIT);
      if (n > 0) off += static_cast<size_t>(n);
      if (off == sent.size()) shutdown(host, SHUT_WR);
    }
    f.loop.run_once(2);
    if (++idle_turns > 50) drain(guest, &got, &eof, &err);
  }
  ASSERT_TRUE(eof);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  close(guest);
  close(host);
  close(server);
}

TEST(NsTcpRelay, RefusedHostPortResetsTheGuest) {
  uint16_t dead_port = 0;
  close(bound(SOCK_STREAM, &dead_port, false));  // a port nobody listens on now
  TcpFixture f(dead_port);
  const int guest = connect_to(f.guest_port);
  std::string got;
  bool eof = false;
  int err = 0;
  ASSERT_TRUE(turn_until(f.loop, [&] {
    drain(guest, &got, &eof, &err);
    return err != 0 || eof;
  }));
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_EQ(f.relay.counters().connect_failed, 1u);
  EXPECT_EQ(f.relay.connection_count(), 0u);
  close(guest);
}

TEST(NsTcpRelay, BeyondTheTableTheGuestIsReset) {
  uint16_t host_port = 0;
  const int server = bound(SOCK_STREAM | SOCK_NONBLOCK, &host_port, true);
  TcpFixture f(host_port, 1);
  const int first = connect_to(f.guest_port);
  ASSERT_TRUE(turn_until(f.loop, [&] { return f.relay.connection_count() == 1; }));
  const int second = connect_to(f.guest_port);
  std::string got;
  bool eof = false;
  int err = 0;
  ASSERT_TRUE(turn_until(f.loop, [&] {
    drain(second, &got, &eof, &err);
    return err != 0 || eof;
  }));
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_EQ(f.relay.counters().refused_full, 1u);
  EXPECT_EQ(f.relay.connection_count(), 1u);
  close(first);
  close(second);
  close(server);
}

TEST(NsUdpRelay, AnswersReturnToTheirSourceAndIdleFlowsClose) {
  EventLoop loop;
  NsUdpRelay relay(loop, 0, false);
  uint16_t host_port = 0, guest_side = 0;
  const int host = bound(SOCK_DGRAM, &host_port, false);
  const int side = bound(SOCK_DGRAM | SOCK_NONBLOCK, &guest_side, false);
  ASSERT_TRUE(relay.start({NsListener{side, false, guest_side, host_port}}).ok());
  sockaddr_storage to;
  const socklen_t tlen = loopback_sockaddr(false, guest_side, &to);
  uint16_t pa = 0, pb = 0;
  const int a = bound(SOCK_DGRAM | SOCK_NONBLOCK, &pa, false);
  const int b = bound(SOCK_DGRAM | SOCK_NONBLOCK, &pb, false);
  ASSERT_EQ(sendto(a, "from-a", 6, 0, reinterpret_cast<sockaddr*>(&to), tlen), 6);
  ASSERT_EQ(sendto(b, "from-b", 6, 0, reinterpret_cast<sockaddr*>(&to), tlen), 6);
  // The host echoes each datagram to where it came from (a flow's own socket).
  int echoed = 0;
  ASSERT_TRUE(turn_until(loop, [&] {
    char buf[64];
    sockaddr_storage from;
    socklen_t flen = sizeof(from);
    const ssize_t n = recvfrom(host, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n > 0) {
      const std::string reply = "re:" + std::string(buf, static_cast<size_t>(n));
      sendto(host, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      echoed++;
    }
    return echoed == 2;
  }));
  EXPECT_EQ(relay.flow_count(), 2u);
  auto answer = [&](int fd, std::string* text, uint16_t* from_port) {
    return turn_until(loop, [&] {
      char buf[64];
      sockaddr_storage from;
      socklen_t flen = sizeof(from);
      const ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) return false;
      text->assign(buf, static_cast<size_t>(n));
      *from_port = ntohs(reinterpret_cast<sockaddr_in*>(&from)->sin_port);
      return true;
    });
  };
  std::string ta, tb;
  uint16_t fa = 0, fb = 0;
  ASSERT_TRUE(answer(a, &ta, &fa));
  ASSERT_TRUE(answer(b, &tb, &fb));
  EXPECT_EQ(ta, "re:from-a");
  EXPECT_EQ(tb, "re:from-b");
  EXPECT_EQ(fa, guest_side);  // from the port the guest talked to
  EXPECT_EQ(fb, guest_side);
  EXPECT_EQ(relay.counters().datagrams_to_host, 2u);
  EXPECT_EQ(relay.counters().datagrams_to_guest, 2u);
  relay.set_idle_timeout_ns(1);
  relay.on_timer(now_ns() + NsUdpRelay::kScanNs);
  EXPECT_EQ(relay.flow_count(), 0u);
  EXPECT_EQ(relay.counters().flows_closed, 2u);
  close(a);
  close(b);
  close(host);
}

}  // namespace
}  // namespace ferry

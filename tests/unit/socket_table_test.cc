// The /proc/net/{tcp,udp}[6] parser: hand-written tables (both families,
// states, loopback, malformed and overlong lines, chunks split anywhere)
// and the kernel's own table for sockets this test opens.
// test-libs: ferry_common ferry_codec
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "common/socket_table.h"

namespace ferry {
namespace {

// Addresses as the kernel prints them on a little-endian machine (x86,
// arm64): each 32-bit word of the address as a host-order number.
constexpr const char* kTcp4 =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    // 0.0.0.0:8080 LISTEN
    "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0\n"
    // 127.0.0.1:631 LISTEN (loopback)
    "   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0 100 0 0 10 0\n"
    // 198.18.0.2:9000 LISTEN (a specific address)
    "   2: 020012C6:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0 100 0 0 10 0\n"
    // 198.18.0.2:8080 ESTABLISHED with 198.18.0.1:54514: not a listener
    "   3: 020012C6:1F91 010012C6:D4F2 01 00000000:00000000 00:00000000 00000000     0        0 104 1 0 100 0 0 10 0\n"
    // TIME_WAIT
    "   4: 020012C6:1F92 010012C6:D4F3 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0\n";

constexpr const char* kTcp6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue\n"
    // [::]:8081 LISTEN
    "   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0\n"
    // [::1]:8082 LISTEN (loopback)
    "   1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0\n"
    // [::ffff:127.0.0.1]:8083 LISTEN (loopback, mapped)
    "   2: 0000000000000000FFFF00000100007F:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0\n"
    // [fd00:f::2]:8084 LISTEN
    "   3: 00000FFD000000000000000002000000:1F94 00000000000000000000000000000000:0000 0A 00000000:00000000 00:0 0 0\n";

constexpr const char* kUdp4 =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    // 0.0.0.0:5353 unconnected (07)
    "  10: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 201 2 0 0\n"
    // 198.18.0.2:40000 connected to 198.18.0.1:53 (01): a client, not a server
    "  11: 020012C6:9C40 010012C6:0035 01 00000000:00000000 00:00000000 00000000     0        0 202 2 0 0\n"
    // 127.0.0.53:53 unconnected (loopback)
    "  12: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 203 2 0 0\n";

PortSet parse(const char* text, SocketFilter filter, SocketTableParser* out = nullptr) {
  PortSet ports;
  SocketTableParser p(filter, &ports);
  p.feed(text);
  p.finish();
  if (out) *out = p;
  return ports;
}

std::string list(const PortSet& s) {
  std::string out;
  for (size_t p = s._Find_first(); p < s.size(); p = s._Find_next(p)) out += (out.empty() ? "" : ",") + std::to_string(p);
  return out;
}

TEST(SocketTable, TcpListenersOnlyAndLoopbackLeftOut) {
  SocketTableParser p({0, false}, nullptr);
  EXPECT_EQ(list(parse(kTcp4, {SocketFilter::kTcpListen, true}, &p)), "8080,9000");
  EXPECT_EQ(p.lines(), 5u);
  EXPECT_EQ(p.matched(), 2u);
  EXPECT_EQ(p.malformed(), 0u);
  // Without skip_loopback the loopback listener counts (ports in use on the host).
  EXPECT_EQ(list(parse(kTcp4, {SocketFilter::kTcpListen, false})), "631,8080,9000");
  EXPECT_EQ(list(parse(kTcp4, {SocketFilter::kAnyState, false})), "631,8080,8081,8082,9000");
}

TEST(SocketTable, Ipv6IncludingMappedLoopback) {
  SocketTableParser p({0, false}, nullptr);
  EXPECT_EQ(list(parse(kTcp6, {SocketFilter::kTcpListen, true}, &p)), "8081,8084");
  EXPECT_EQ(p.malformed(), 0u);
  EXPECT_EQ(list(parse(kTcp6, {SocketFilter::kTcpListen, false})), "8081,8082,8083,8084");
}

TEST(SocketTable, UdpUnconnectedOnly) {
  EXPECT_EQ(list(parse(kUdp4, {SocketFilter::kUdpUnconnected, true})), "5353");
  EXPECT_EQ(list(parse(kUdp4, {SocketFilter::kAnyState, false})), "53,5353,40000");
}

TEST(SocketTable, MalformedLinesAreCountedAndSkipped) {
  const std::string text = std::string("header\n") +
                           "   0: 00000000:1F90 00000000:0000 0A rest\n"  // good: 8080
                           "garbage\n"
                           "   1 00000000:0050 00000000:0000 0A\n"        // slot without ':'
                           "   x: 00000000:0050 00000000:0000 0A\n"        // slot not a number
                           "   2: 0000000:0050 00000000:0000 0A\n"         // 7-digit address
                           "   3: 00000000:050 00000000:0000 0A\n"         // 3-digit port
                           "   4: 00000000:0G50 00000000:0000 0A\n"        // not hex
                           "   5: 00000000:0050 00000000:0000\n"           // no state
                           "   6: 00000000:0050 00000000:0000 A\n"         // 1-digit state
                           "   7: 00000000:0050 0000:0000 0A\n"            // bad remote
                           "   8: 00000000:0050\n"                          // cut short
                           "   9: 00000000:0000 00000000:0000 0A\n"         // port 0: parsed, never counted
                           "\n"                                              // blank: not a line
                           "  10: 00000000:1F91 00000000:0000 0A " + std::string(400, 'x') + "\n"  // overlong
                           "  11: 00000000:1F92 00000000:0000 0A";  // last line, no newline: 8082
  SocketTableParser p({0, false}, nullptr);
  EXPECT_EQ(list(parse(text.c_str(), {SocketFilter::kTcpListen, true}, &p)), "8080,8082");
  EXPECT_EQ(p.lines(), 14u);
  EXPECT_EQ(p.malformed(), 11u);
}

TEST(SocketTable, ChunksSplitAnywhere) {
  const std::string text = std::string(kTcp4) + kTcp4;
  for (size_t step : {1u, 2u, 7u, 64u, 200u}) {
    PortSet ports;
    SocketTableParser p({SocketFilter::kTcpListen, true}, &ports);
    // Two tables back to back: the second header is a malformed line.
    for (size_t i = 0; i < text.size(); i += step) p.feed(std::string_view(text).substr(i, step));
    p.finish();
    EXPECT_EQ(list(ports), "8080,9000") << step;
    EXPECT_EQ(p.malformed(), 1u) << step;
  }
}

TEST(SocketTable, EmptyAndHeaderOnly) {
  SocketTableParser p({0, false}, nullptr);
  EXPECT_TRUE(parse("", {SocketFilter::kTcpListen, true}, &p).none());
  EXPECT_EQ(p.lines(), 0u);
  EXPECT_TRUE(parse("  sl  local_address\n", {SocketFilter::kTcpListen, true}, &p).none());
  EXPECT_EQ(p.lines(), 0u);
}

// The kernel's own text: a listener on 0.0.0.0 is found, one on 127.0.0.1 is
// not (with skip_loopback), read through read_socket_table() twice from
// the same fd (pread from offset 0), the second time after one was closed.
TEST(SocketTable, ReadsTheKernelsTableAgainFromTheSameFd) {
  auto listener = [](const char* addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, addr, &a.sin_addr);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd, 1), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    return std::make_pair(fd, ntohs(a.sin_port));
  };
  auto [any_fd, any_port] = listener("0.0.0.0");
  auto [lo_fd, lo_port] = listener("127.0.0.1");
  const int table = open("/proc/self/net/tcp", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(table, 0);
  char buf[100];  // small: many reads, lines split across them
  PortSet ports;
  SocketTableParser p({SocketFilter::kTcpListen, true}, &ports);
  ASSERT_TRUE(read_socket_table(table, &p, buf, sizeof(buf)));
  EXPECT_TRUE(ports.test(any_port));
  EXPECT_FALSE(ports.test(lo_port));
  EXPECT_EQ(p.malformed(), 0u);
  close(any_fd);
  PortSet again;
  SocketTableParser p2({SocketFilter::kTcpListen, false}, &again);
  ASSERT_TRUE(read_socket_table(table, &p2, buf, sizeof(buf)));
  EXPECT_FALSE(again.test(any_port));
  EXPECT_TRUE(again.test(lo_port));
  close(lo_fd);
  close(table);
}

}  // namespace
}  // namespace ferry

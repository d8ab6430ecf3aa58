// StreamPort: QEMU's stream framing (32-bit big-endian length, then the
// frame) over UNIX sockets, no privileges needed.
//
//  * frames split anywhere across writes (one byte at a time, a length
//    split in two) arrive whole and in order;
//  * many frames in one write are delivered by one read();
//  * a length above the limit or below an Ethernet header is a protocol
//    error: counted, the connection dropped, and the listener then accepts
//    the next guest (reconnect), which is served normally;
//  * a second guest while one is served is closed at once;
//  * frames to the guest carry the length prefix; with the socket full they
//    are dropped or finished later, never interleaved: the peer reads a
//    clean sequence;
//  * a port on a connected socket alone is closed() when the peer leaves;
//  * listen_unix() replaces a stale socket file and refuses a live one.
// test-libs: ferry_port ferry_netns
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "port/stream.h"

namespace ferry {
namespace {

constexpr size_t kMaxFrame = 1500 + 14 + 4;

// Collects frames handed over by the port.
struct Collect final : FrameSink {
  std::vector<std::vector<uint8_t>> frames;
  void on_guest_frame(std::span<const uint8_t> f, const RxMeta& meta) override {
    EXPECT_FALSE(meta.l4_checksum_trusted);
    EXPECT_EQ(meta.gso_size, 0);
    frames.emplace_back(f.begin(), f.end());
  }
};

// A frame of len bytes whose every byte is tag.
std::vector<uint8_t> frame(size_t len, uint8_t tag) { return std::vector<uint8_t>(len, tag); }

// The frame behind its big-endian length.
std::vector<uint8_t> framed(const std::vector<uint8_t>& f) {
  std::vector<uint8_t> out(4 + f.size());
  for (int i = 0; i < 4; i++) out[i] = static_cast<uint8_t>(f.size() >> (24 - 8 * i));
  std::copy(f.begin(), f.end(), out.begin() + 4);
  return out;
}

void write_all(int fd, const std::vector<uint8_t>& b) {
  size_t off = 0;
  while (off < b.size()) {
    ssize_t n = ::write(fd, b.data() + off, b.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
}

// Receives until the sink holds want frames or nothing more comes.
void pump(StreamPort& port, Collect& sink, size_t want) {
  for (int i = 0; i < 200 && sink.frames.size() < want; i++) port.receive(sink, 64);
}

struct Pair {
  int ours = -1, theirs = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ours = sv[0];
    theirs = sv[1];
  }
  ~Pair() {
    if (theirs >= 0) ::close(theirs);
  }
};

// A fresh socket path in the test's temporary directory.
std::string temp_socket_path() {
  char dir[] = "/tmp/ferry-stream-test.XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return std::string(dir) + "/s";
}

// Removes the socket file and its temporary directory.
void remove_socket(const std::string& path) {
  ::unlink(path.c_str());
  ::rmdir(path.substr(0, path.rfind('/')).c_str());
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(StreamPort, FramesSplitAcrossWritesArriveWhole) {
  Pair p;
  auto port = StreamPort::create(-1, p.ours, kMaxFrame);
  ASSERT_TRUE(port);
  std::vector<uint8_t> bytes;
  for (uint8_t t = 1; t <= 3; t++) {
    auto b = framed(frame(60 + t * 100, t));
    bytes.insert(bytes.end(), b.begin(), b.end());
  }
  Collect sink;
  // One byte per write, receiving after each: every split point, including
  // inside a length, is crossed.
  for (uint8_t byte : bytes) {
    write_all(p.theirs, {byte});
    (*port)->receive(sink, 64);
  }
  ASSERT_EQ(sink.frames.size(), 3u);
  for (uint8_t t = 1; t <= 3; t++) EXPECT_EQ(sink.frames[t - 1], frame(60 + t * 100, t));
  EXPECT_EQ((*port)->counters().rx_frames, 3u);
  EXPECT_EQ((*port)->stream_counters().protocol_errors, 0u);
}

TEST(StreamPort, ManyFramesOneRead) {
  Pair p;
  auto port = StreamPort::create(-1, p.ours, kMaxFrame);
  ASSERT_TRUE(port);
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 100; i++) {
    auto b = framed(frame(64 + i, static_cast<uint8_t>(i)));
    bytes.insert(bytes.end(), b.begin(), b.end());
  }
  write_all(p.theirs, bytes);
  Collect sink;
  // max_frames below what is buffered: everything read is still delivered.
  EXPECT_EQ((*port)->receive(sink, 10), 100u);
  EXPECT_EQ((*port)->stream_counters().rx_reads, 1u);
  ASSERT_EQ(sink.frames.size(), 100u);
  EXPECT_EQ(sink.frames[99], frame(163, 99));
}

TEST(StreamPort, LargestFrameAcceptedOneMoreIsAProtocolError) {
  Pair p;
  auto port = StreamPort::create(-1, p.ours, kMaxFrame);
  ASSERT_TRUE(port);
  write_all(p.theirs, framed(frame(kMaxFrame, 7)));
  Collect sink;
  pump(**port, sink, 1);
  ASSERT_EQ(sink.frames.size(), 1u);
  // Only the length of the next one is sent: it is refused at once.
  write_all(p.theirs, {0, 0, static_cast<uint8_t>((kMaxFrame + 1) >> 8), static_cast<uint8_t>(kMaxFrame + 1)});
  (*port)->receive(sink, 64);
  EXPECT_EQ((*port)->stream_counters().protocol_errors, 1u);
  EXPECT_FALSE((*port)->connected());
  EXPECT_TRUE((*port)->closed());  // no listener: nothing more to serve
  char c;
  EXPECT_EQ(::read(p.theirs, &c, 1), 0);  // the peer sees the connection closed
}

TEST(StreamPort, RuntLengthIsAProtocolError) {
  Pair p;
  auto port = StreamPort::create(-1, p.ours, kMaxFrame);
  ASSERT_TRUE(port);
  auto good = framed(frame(100, 1));
  auto bad = framed(frame(13, 2));
  good.insert(good.end(), bad.begin(), bad.end());
  write_all(p.theirs, good);
  Collect sink;
  (*port)->receive(sink, 64);
  EXPECT_EQ(sink.frames.size(), 1u);  // what came before the bad length is delivered
  EXPECT_EQ((*port)->stream_counters().protocol_errors, 1u);
  EXPECT_FALSE((*port)->connected());
}

TEST(StreamPort, ReconnectAfterProtocolErrorAndAfterEof) {
  const std::string path = temp_socket_path();
  auto lfd = StreamPort::listen_unix(path);
  ASSERT_TRUE(lfd) << lfd.status().message();
  auto port = StreamPort::create(*lfd, -1, kMaxFrame);
  ASSERT_TRUE(port);
  Collect sink;

  int g1 = connect_unix(path);
  ASSERT_GE(g1, 0);
  (*port)->receive(sink, 64);
  EXPECT_TRUE((*port)->connected());
  write_all(g1, {0xff, 0xff, 0xff, 0xff});  // 4 GiB: nobody's frame
  (*port)->receive(sink, 64);
  EXPECT_FALSE((*port)->connected());
  EXPECT_EQ((*port)->stream_counters().protocol_errors, 1u);
  ::close(g1);

  int g2 = connect_unix(path);  // the next guest is served normally
  ASSERT_GE(g2, 0);
  write_all(g2, framed(frame(200, 9)));
  pump(**port, sink, 1);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0], frame(200, 9));
  auto f = frame(300, 5);
  EXPECT_TRUE((*port)->send(f));
  std::vector<uint8_t> got(304);
  ASSERT_EQ(::recv(g2, got.data(), got.size(), MSG_WAITALL), 304);
  EXPECT_EQ(got, framed(f));
  ::close(g2);  // EOF: dropped, and again a guest may come

  for (int i = 0; i < 10 && (*port)->connected(); i++) (*port)->receive(sink, 64);
  EXPECT_FALSE((*port)->connected());
  EXPECT_FALSE((*port)->closed());
  EXPECT_FALSE((*port)->send(f));  // no guest: dropped and counted
  EXPECT_EQ((*port)->counters().tx_dropped, 1u);

  int g3 = connect_unix(path);
  ASSERT_GE(g3, 0);
  write_all(g3, framed(frame(100, 3)));
  pump(**port, sink, 2);
  EXPECT_EQ(sink.frames.size(), 2u);
  EXPECT_EQ((*port)->stream_counters().connections, 3u);
  EXPECT_EQ((*port)->stream_counters().disconnects, 2u);
  ::close(g3);
  remove_socket(path);
}

TEST(StreamPort, SecondGuestIsRefusedWhileOneIsServed) {
  const std::string path = temp_socket_path();
  auto lfd = StreamPort::listen_unix(path);
  ASSERT_TRUE(lfd);
  auto port = StreamPort::create(*lfd, -1, kMaxFrame);
  ASSERT_TRUE(port);
  Collect sink;
  int g1 = connect_unix(path);
  (*port)->receive(sink, 64);
  int g2 = connect_unix(path);
  ASSERT_GE(g2, 0);
  (*port)->receive(sink, 64);
  EXPECT_EQ((*port)->stream_counters().refused, 1u);
  char c;
  EXPECT_EQ(::read(g2, &c, 1), 0);  // closed at once
  write_all(g1, framed(frame(64, 1)));  // the first one is unharmed
  pump(**port, sink, 1);
  EXPECT_EQ(sink.frames.size(), 1u);
  ::close(g1);
  ::close(g2);
  remove_socket(path);
}

TEST(StreamPort, FullSocketNeverInterleavesFrames) {
  Pair p;
  // Frames of up to 64 KiB: the kernel moves them in several pieces, so a
  // full socket takes some only in part.
  auto port = StreamPort::create(-1, p.ours, 65535 + 18);
  ASSERT_TRUE(port);
  // Frames until the socket refuses some (the peer reads nothing yet).
  size_t sent = 0, dropped = 0;
  std::vector<uint8_t> tags;
  for (int i = 0; i < 20000 && dropped < 50; i++) {
    auto f = frame(1000 + (i * 7919) % 64000, static_cast<uint8_t>(i));
    if ((*port)->send(f)) {
      sent++;
      tags.push_back(static_cast<uint8_t>(i));
    } else {
      dropped++;
    }
  }
  ASSERT_GT(dropped, 0u);
  // The peer drains; the port finishes any partly written frame when the
  // socket has room again (receive() sees EPOLLOUT) and sends more.
  std::vector<uint8_t> stream;
  std::vector<uint8_t> buf(1 << 16);
  Collect sink;
  for (int round = 0; round < 1000; round++) {
    ssize_t n = ::recv(p.theirs, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      stream.insert(stream.end(), buf.begin(), buf.begin() + n);
      continue;
    }
    (*port)->receive(sink, 64);
    if (::recv(p.theirs, buf.data(), 1, MSG_DONTWAIT | MSG_PEEK) <= 0) break;
  }
  auto last = frame(77, 0xee);
  EXPECT_TRUE((*port)->send(last));
  tags.push_back(0xee);
  sent++;
  for (;;) {
    ssize_t n = ::recv(p.theirs, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    stream.insert(stream.end(), buf.begin(), buf.begin() + n);
  }
  // Parse what the peer got: only whole frames, each uniform, in order.
  size_t off = 0, k = 0;
  while (off + 4 <= stream.size()) {
    uint32_t len = uint32_t{stream[off]} << 24 | uint32_t{stream[off + 1]} << 16 |
                   uint32_t{stream[off + 2]} << 8 | stream[off + 3];
    ASSERT_GE(len, 77u);
    ASSERT_LE(len, 65000u);
    ASSERT_LE(off + 4 + len, stream.size());
    ASSERT_LT(k, tags.size());
    for (size_t j = 0; j < len; j++) ASSERT_EQ(stream[off + 4 + j], tags[k]) << "frame " << k;
    off += 4 + len;
    k++;
  }
  EXPECT_EQ(off, stream.size());
  EXPECT_EQ(k, sent);
  EXPECT_EQ((*port)->counters().tx_frames, sent);
  EXPECT_EQ((*port)->counters().tx_dropped, dropped);
  
  EXPECT_GT((*port)->stream_counters().tx_partial, 0u);
}

TEST(StreamPort, ConnectedSocketAloneIsClosedWhenThePeerLeaves) {
  Pair p;
  auto port = StreamPort::create(-1, p.ours, kMaxFrame);
  ASSERT_TRUE(port);
  EXPECT_TRUE((*port)->connected());
  ::close(p.theirs);
  p.theirs = -1;
  Collect sink;
  (*port)->receive(sink, 64);
  EXPECT_TRUE((*port)->closed());
  EXPECT_EQ((*port)->stream_counters().disconnects, 1u);
}

TEST(StreamPort, ListenUnixReplacesStaleSocketRefusesLiveOne) {
  const std::string path = temp_socket_path();
  auto a = StreamPort::listen_unix(path);
  ASSERT_TRUE(a);
  auto b = StreamPort::listen_unix(path);  // a listens: in use
  EXPECT_FALSE(b);
  EXPECT_EQ(b.status().err(), EADDRINUSE);
  ::close(*a);  // the file stays, nobody listens: stale
  auto c = StreamPort::listen_unix(path);
  ASSERT_TRUE(c) << c.status().message();
  int g = connect_unix(path);
  EXPECT_GE(g, 0);
  ::close(g);
  ::close(*c);
  remove_socket(path);
  EXPECT_FALSE(StreamPort::listen_unix(std::string(200, 'x')));  // too long for sun_path
  EXPECT_FALSE(StreamPort::create(-1, -1, kMaxFrame));
}

}  // namespace
}  // namespace ferry

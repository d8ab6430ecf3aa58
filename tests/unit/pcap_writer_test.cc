// PcapWriter and CapturePort (--pcap), read back with libpcap itself:
//
//  * the file is a valid capture (DLT_EN10MB) with every frame in order,
//    byte for byte, with its length, whether it came whole or in pieces;
//  * nothing reaches the file before flush(), and one flush writes it all;
//  * --pcap-size: the capture stops before the record that would cross the
//    limit; the file stays within it and readable; later frames counted;
//  * a frame above the snapshot length is cut, its real length kept;
//  * frames beyond the buffer before a flush are dropped and counted;
//  * CapturePort records both directions, a refused send not at all.
// test-libs: ferry_pcap ferry_port ferry_loop
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pcap/capture_port.h"
#include "pcap/pcap_writer.h"

namespace ferry {
namespace {

struct Record {
  uint32_t len = 0;
  std::vector<uint8_t> data;
};

// Every record of a capture file, through libpcap; fails the test when the
// file is not a readable Ethernet capture.
std::vector<Record> read_capture(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  EXPECT_NE(p, nullptr) << err;
  std::vector<Record> out;
  if (!p) return out;
  EXPECT_EQ(pcap_datalink(p), DLT_EN10MB);
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) out.push_back(Record{h->len, std::vector<uint8_t>(d, d + h->caplen)});
  EXPECT_EQ(rc, PCAP_ERROR_BREAK) << "a truncated or damaged record";
  pcap_close(p);
  return out;
}

off_t file_size(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

constexpr uint64_t kNoLimit = uint64_t{1} << 40;

std::vector<uint8_t> frame_of(size_t len, uint8_t seed) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; i++) f[i] = static_cast<uint8_t>(seed + i * 7);
  return f;
}

class PcapWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-pcap-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/cap.pcap";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

TEST_F(PcapWriterTest, FramesWholeAndInPiecesReadBackInOrder) {
  std::string error;
  auto w = PcapWriter::open(path_, kNoLimit, &error);
  ASSERT_TRUE(w) << error;
  EXPECT_EQ(file_size(path_), 24);  // the global header, at once
  const auto a = frame_of(60, 1), b = frame_of(1514, 2), c = frame_of(900, 3);
  w->capture(a);
  w->capture(b);
  iovec pieces[3] = {{const_cast<uint8_t*>(c.data()), 14},
                     {const_cast<uint8_t*>(c.data()) + 14, 20},
                     {const_cast<uint8_t*>(c.data()) + 34, c.size() - 34}};
  w->capture(pieces, 3);
  EXPECT_EQ(file_size(path_), 24) << "nothing written before flush()";
  w->flush();
  EXPECT_EQ(file_size(path_), static_cast<off_t>(24 + 3 * 16 + a.size() + b.size() + c.size()));
  EXPECT_EQ(w->counters().frames, 3u);
  const auto recs = read_capture(path_);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].data, a);
  EXPECT_EQ(recs[1].data, b);
  EXPECT_EQ(recs[2].data, c);
  EXPECT_EQ(recs[2].len, c.size());
}

TEST_F(PcapWriterTest, StopsAtTheSizeLimitWithWholeRecords) {
  std::string error;
  const uint64_t limit = 10000;
  auto w = PcapWriter::open(path_, limit, &error);
  ASSERT_TRUE(w) << error;
  const auto f = frame_of(1000, 9);  // 1016 bytes a record: 9 fit after the header
  for (int i = 0; i < 30; i++) {
    w->capture(f);
    if (i % 4 == 0) w->flush();
  }
  w->flush();
  EXPECT_TRUE(w->stopped());
  EXPECT_EQ(w->counters().frames, 9u);
  EXPECT_EQ(w->counters().over_limit, 21u);
  EXPECT_LE(file_size(path_), static_cast<off_t>(limit));
  EXPECT_EQ(file_size(path_), static_cast<off_t>(24 + 9 * 1016));
  EXPECT_EQ(read_capture(path_).size(), 9u);
}

TEST_F(PcapWriterTest, LongFrameCutToTheSnapshotLengthKeepsItsLength) {
  std::string error;
  auto w = PcapWriter::open(path_, kNoLimit, &error);
  ASSERT_TRUE(w) << error;
  const auto big = frame_of(PcapWriter::kSnapLen + 100, 4);
  w->capture(big);
  w->flush();
  const auto recs = read_capture(path_);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].len, big.size());
  EXPECT_EQ(recs[0].data.size(), PcapWriter::kSnapLen);
}

TEST_F(PcapWriterTest, FullBufferDropsAndCounts) {
  std::string error;
  auto w = PcapWriter::open(path_, kNoLimit, &error);
  ASSERT_TRUE(w) << error;
  const auto f = frame_of(65000, 5);
  const size_t fit = PcapWriter::kBufferBytes / (65000 + 16);
  for (size_t i = 0; i < fit + 5; i++) w->capture(f);
  EXPECT_EQ(w->counters().dropped_buffer_full, 5u);
  w->flush();
  w->capture(f);  // room again after the flush
  w->flush();
  EXPECT_EQ(w->counters().frames, fit + 1);
  EXPECT_EQ(read_capture(path_).size(), fit + 1);
}

TEST_F(PcapWriterTest, UnwritablePathIsAnError) {
  std::string error;
  EXPECT_FALSE(PcapWriter::open(dir_ + "/no/such/dir/x.pcap", kNoLimit, &error));
  EXPECT_NE(error.find("--pcap"), std::string::npos);
}

// A port that takes or refuses what is sent and hands out queued frames.
class ScriptedPort : public FramePort {
 public:
  std::vector<std::vector<uint8_t>> rx;
  bool accept = true;
  int fd() const override { return -1; }
  size_t receive(FrameSink& sink, size_t max_frames) override {
    size_t n = 0;
    for (; n < max_frames && n < rx.size(); n++) sink.on_guest_frame(rx[n], RxMeta{});
    rx.erase(rx.begin(), rx.begin() + static_cast<long>(n));
    return n;
  }
  bool send(const iovec*, int) override { return accept; }
  const PortCounters& counters() const override { return c_; }

 private:
  PortCounters c_;
};

struct CountingSink : FrameSink {
  size_t frames = 0;
  void on_guest_frame(std::span<const uint8_t>, const RxMeta&) override { frames++; }
};

TEST_F(PcapWriterTest, CapturePortRecordsBothDirections) {
  std::string error;
  auto w = PcapWriter::open(path_, kNoLimit, &error);
  ASSERT_TRUE(w) << error;
  ScriptedPort inner;
  CapturePort port(inner, std::move(w));
  const auto from_guest = frame_of(80, 6), to_guest = frame_of(90, 7), refused = frame_of(100, 8);
  inner.rx.push_back(from_guest);
  CountingSink sink;
  EXPECT_EQ(port.receive(sink, 8), 1u);
  EXPECT_EQ(sink.frames, 1u);
  EXPECT_TRUE(port.send(to_guest));
  inner.accept = false;
  EXPECT_FALSE(port.send(refused));
  port.flush();
  EXPECT_EQ(port.summary(), "--pcap " + path_ + ": 2 frames, " + std::to_string(24 + 32 + 80 + 90) + " bytes");
  const auto recs = read_capture(path_);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].data, from_guest);
  EXPECT_EQ(recs[1].data, to_guest);
}

}  // namespace
}  // namespace ferry

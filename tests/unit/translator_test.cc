// Translator dispatch tests, unprivileged: a fake FramePort records what
// the translator sends to the guest; frames are fed to on_guest_frame()
// directly. Covered: what is "for us" (our MAC, untagged), counters of
// malformed and refused frames, the guest's MAC learned only from frames
// that are for us.
// test-libs: ferry_translator ferry_gateway ferry_tcp ferry_udp ferry_codec ferry_loop ferry_port ferry_common
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "codec/frame.h"
#include "common/config.h"
#include "loop/event_loop.h"
#include "port/frame_port.h"
#include "translator/translator.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

// A port that keeps every frame sent to the guest.
class RecordingPort final : public FramePort {
 public:
  int fd() const override { return -1; }
  size_t receive(FrameSink&, size_t) override { return 0; }
  bool send(const iovec* iov, int iovcnt) override {
    Bytes b;
    for (int i = 0; i < iovcnt; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      b.insert(b.end(), p, p + iov[i].iov_len);
    }
    sent.push_back(std::move(b));
    return true;
  }
  const PortCounters& counters() const override { return counters_; }
  std::vector<Bytes> sent;

 private:
  PortCounters counters_;
};

class TranslatorTest : public ::testing::Test {
 protected:
  TranslatorTest() : cfg(Config::defaults()), tr(loop, port, cfg) {}

  // An echo request from the guest to the gateway.
  Bytes Echo(const MacAddr& dst) const {
    L2L3 ip;
    ip.eth_src = kGuestMac;
    ip.eth_dst = dst;
    ip.src = cfg.guest4.addr;
    ip.dst = cfg.gateway4;
    const uint8_t body[] = {0x12, 0x34, 0x00, 0x01, 'p', 'i', 'n', 'g'};
    Bytes f(kMaxFrameLen);
    f.resize(build_icmp_frame(f, ip, 8, 0, body));
    return f;
  }
  // The same frame with an 802.1Q tag (VLAN 5) after the MAC addresses.
  static Bytes Tagged(const Bytes& f) {
    Bytes g(f.begin(), f.begin() + 12);
    const uint8_t tag[] = {0x81, 0x00, 0x00, 0x05};
    g.insert(g.end(), tag, tag + 4);
    g.insert(g.end(), f.begin() + 12, f.end());
    return g;
  }
  void Feed(const Bytes& f) { tr.on_guest_frame(f, RxMeta{}); }

  EventLoop loop;
  RecordingPort port;
  Config cfg;
  Translator tr;
};

TEST_F(TranslatorTest, UntaggedEchoToOurMacIsAnswered) {
  Feed(Echo(cfg.our_mac));
  ASSERT_EQ(port.sent.size(), 1u);
  ParsedFrame r = parse_frame(port.sent[0], true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.icmp.type, 0);
  EXPECT_EQ(r.eth_dst, kGuestMac);
  EXPECT_FALSE(r.vlan);
}

TEST_F(TranslatorTest, VlanTaggedFramesAreNotForUs) {
  // ferry's link is untagged: a tagged frame comes from a VLAN interface of
  // the guest, and an (untagged) answer would reach a different interface.
  Feed(Tagged(Echo(cfg.our_mac)));
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.counters().not_for_us, 1u);
  EXPECT_EQ(tr.counters().malformed, 0u);
}

TEST_F(TranslatorTest, OtherMacsAndMalformedAreCounted) {
  Feed(Echo(MacAddr{{0x02, 0, 0, 0, 0, 0x99}}));
  Bytes bad = Echo(cfg.our_mac);
  bad[14 + 10] ^= 0xff;  // IPv4 header checksum
  Feed(bad);
  Feed(Bytes(bad.begin(), bad.begin() + 20));  // truncated IPv4 header
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(tr.counters().not_for_us, 1u);
  EXPECT_EQ(tr.counters().malformed, 2u);
}

}  // namespace
}  // namespace ferry

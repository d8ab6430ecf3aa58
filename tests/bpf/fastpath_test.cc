// Fast-path tests: the classifier's pure-ACK absorption, run through
// BPF_PROG_TEST_RUN on codec-built frames (valid checksums), with flows
// published through ConnMap and wake-ups read through FastPathEvents.
// Every branch: unknown flow, ineligible slot, ACK in range (absorbed, slot
// updated), the RTT stamp taken only for the ACK of rtt_seq, beyond
// snd_nxt, older than ack_from_guest, with payload, other flags, bad
// checksum, options, wrap-around at 2^32, the duplicate-ACK run to the
// fast-retransmit event, window reopening after a stall (and its wake_room
// threshold), the ACK of everything waking a stall whatever the room (never
// spent by a partial ACK with a grown window), a drained socket's wake_ack,
// an ACK absorbed before the arming seen by arm_wake(), a full ring that
// keeps WINDOW_OPEN armed, everything acked while a FIN waits, IPv6, and
// retirement.
// Needs root; skips without it or without kernel BPF support (bpf_load.h).
#include <arpa/inet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <memory>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "bpf/classify.h"
#include "bpf/fastpath_maps.h"
#include "bpf/bpf_load.h"
#include "bpf/bpf_test_util.h"
#include "codec/frame.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

constexpr int kTcActOk = 0;
constexpr int kTcActAbsorbed = 4;  // TC_ACT_STOLEN: consumed, the sender sees success
constexpr uint32_t kSlot = 5;
constexpr uint16_t kGuestPort = 40000, kPeerPort = 80;

using bpftest::Frame;

const MacAddr kTestGuestMac{{0x02, 0, 0, 0, 0, 2}};
L2L3 ip4() { return testing::guest_to_gateway(false, kTestGuestMac); }
L2L3 ip6() { return testing::guest_to_gateway(true, kTestGuestMac); }

struct Seg {
  uint32_t seq = 777;
  uint32_t ack = 0;
  uint16_t window = 100;  // raw; the slot's wscale applies
  uint8_t flags = tcpflag::kAck;
  size_t payload = 0;
  bool ts = false;
  bool mss = false;
  bool v6 = false;
};

Frame build(const Seg& g) {
  TcpOptions opts = g.ts ? testing::timestamps(4242, 1) : TcpOptions{};
  if (g.mss) {
    opts.has_mss = true;
    opts.mss = 1460;
  }
  return testing::tcp_frame({.ip = g.v6 ? ip6() : ip4(), .sport = kGuestPort, .dport = kPeerPort, .seq = g.seq,
                             .ack = g.ack, .flags = g.flags, .window = g.window, .payload = g.payload, .opts = opts});
}

class FastPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    bpf_ = std::make_unique<BpfAttachment>();
    FERRY_BPF_LOADED_OR_SKIP(bpftest::load_classifier(bpf_.get(), 8192));
    ASSERT_TRUE(conns_.open(*bpf_).ok());
    ASSERT_TRUE(events_.open(*bpf_, [this](const ferry_event& e) { seen_.push_back(e); }).ok());
    EXPECT_GE(events_.epoll_fd(), 0);
    key4_ = make_conn_key(ip4().src, kGuestPort, ip4().dst, kPeerPort);
    key6_ = make_conn_key(ip6().src, kGuestPort, ip6().dst, kPeerPort);
  }

  // Publishes the IPv4 flow at kSlot: acked up to una, sent up to nxt.
  void publish(uint32_t una, uint32_t nxt, bool ts = false, bool v6 = false) {
    ConnSlotInit init;
    init.snd_una = una;
    init.snd_nxt = nxt;
    init.guest_wscale = 2;
    init.guest_window = 400;
    init.rcv_nxt = 777;  // build()'s sequence number
    init.timestamps = ts;
    ASSERT_TRUE(conns_.publish(kSlot, v6 ? key6_ : key4_, init, &gen_).ok());
  }

  // Runs one frame; returns the verdict. Drains events into seen_.
  int run(const Seg& g) {
    Frame f = build(g);
    return run_frame(f);
  }
  int run_frame(const Frame& f) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
    int err = bpf_prog_test_run_opts(bpf_->prog_fd(), &opts);
    EXPECT_EQ(err, 0);
    events_.consume();
    return static_cast<int>(opts.retval);
  }
  ferry_stats stats() { return bpftest::sum_stats(bpf_->map_fd("stats")); }

  std::unique_ptr<BpfAttachment> bpf_;
  ConnMap conns_;
  FastPathEvents events_;
  std::vector<ferry_event> seen_;
  ferry_conn_key key4_{}, key6_{};
  uint32_t gen_ = 0;
};

TEST_F(FastPathTest, UnknownFlowPasses) {
  EXPECT_EQ(run({.ack = 2000}), kTcActOk);
  ferry_stats s = stats();
  EXPECT_EQ(s.guest_pure_acks, 1u);
  EXPECT_EQ(s.acks_absorbed, 0u);
  EXPECT_EQ(s.passed_to_userspace, 1u);
}

TEST_F(FastPathTest, InRangeAckIsAbsorbed) {
  publish(1000, 5000);
  EXPECT_EQ(run({.ack = 2000, .window = 300}), kTcActAbsorbed);
  const ferry_conn_slot* s = conns_.slot(kSlot);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  EXPECT_EQ(conns_.guest_window(kSlot), 1200u);  // 300 << 2
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 1u);
  EXPECT_EQ(s->dup_acks, 0u);
  EXPECT_EQ(s->gen, gen_);
  ferry_stats st = stats();
  EXPECT_EQ(st.guest_frames, 1u);
  EXPECT_EQ(st.acks_absorbed, 1u);
  EXPECT_EQ(st.passed_to_userspace, 0u);
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(run({.ack = 2500}), kTcActAbsorbed);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 2u);
  // acking exactly snd_nxt is in range
  EXPECT_EQ(run({.ack = 5000}), kTcActAbsorbed);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 5000u);
}

// The clock is read only for the ACK that first reaches rtt_seq (the
// segment userspace times), not for every ACK.
TEST_F(FastPathTest, RttStampOnlyForTheTimedSegmentsAck) {
  publish(1000, 5000);
  conns_.set_rtt_seq(kSlot, 3000);
  EXPECT_EQ(run({.ack = 2000}), kTcActAbsorbed);
  EXPECT_EQ(conns_.rtt_ack_ns(kSlot), 0u);
  const uint64_t before = now_ns();
  EXPECT_EQ(run({.ack = 3500}), kTcActAbsorbed);
  const uint64_t stamp = conns_.rtt_ack_ns(kSlot);
  EXPECT_GE(stamp, before);
  EXPECT_LE(stamp, now_ns());
  EXPECT_EQ(run({.ack = 4000}), kTcActAbsorbed);  // past it already: no new stamp
  EXPECT_EQ(conns_.rtt_ack_ns(kSlot), stamp);
  conns_.set_rtt_seq(kSlot, 5000);
  EXPECT_EQ(run({.ack = 5000}), kTcActAbsorbed);  // exactly at it
  EXPECT_GT(conns_.rtt_ack_ns(kSlot), stamp);
}

TEST_F(FastPathTest, IneligibleAndRetiredPass) {
  publish(1000, 5000);
  conns_.set_eligible(kSlot, false);
  EXPECT_EQ(run({.ack = 2000}), kTcActOk);
  conns_.set_eligible(kSlot, true);
  EXPECT_EQ(run({.ack = 2000}), kTcActAbsorbed);
  conns_.retire(kSlot, key4_);
  EXPECT_EQ(run({.ack = 3000}), kTcActOk);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  // a re-published slot has a new generation
  uint32_t old = gen_;
  publish(1000, 5000);
  EXPECT_NE(gen_, old);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 1000u);
}

TEST_F(FastPathTest, PublishTwiceFails) {
  publish(1000, 5000);
  ConnSlotInit init;
  EXPECT_FALSE(conns_.publish(kSlot + 1, key4_, init).ok());
  EXPECT_FALSE(conns_.publish(100000, key6_, init).ok());  // out of range
}

TEST_F(FastPathTest, OutOfRangeAcksPass) {
  publish(1000, 5000);
  EXPECT_EQ(run({.ack = 5001}), kTcActOk);  // beyond snd_nxt
  EXPECT_EQ(run({.ack = 999}), kTcActOk);   // older than ack_from_guest
  EXPECT_EQ(run({.ack = 3000}), kTcActAbsorbed);
  EXPECT_EQ(run({.ack = 2999}), kTcActOk);  // now older
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 3000u);
  ferry_stats st = stats();
  EXPECT_EQ(st.acks_absorbed, 1u);
  EXPECT_EQ(st.passed_to_userspace, 3u);
}

TEST_F(FastPathTest, NotPureAcksPass) {
  publish(1000, 5000);
  EXPECT_EQ(run({.ack = 2000, .payload = 1}), kTcActOk);
  EXPECT_EQ(run({.ack = 2000, .flags = tcpflag::kAck | tcpflag::kPsh}), kTcActOk);
  EXPECT_EQ(run({.ack = 2000, .flags = tcpflag::kAck | tcpflag::kFin}), kTcActOk);
  EXPECT_EQ(run({.ack = 2000, .flags = tcpflag::kAck | tcpflag::kSyn}), kTcActOk);
  EXPECT_EQ(run({.ack = 2000, .flags = tcpflag::kAck | tcpflag::kRst}), kTcActOk);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 0u);
  // ECE/CWR are fine
  EXPECT_EQ(run({.ack = 2000, .flags = tcpflag::kAck | tcpflag::kEce | tcpflag::kCwr}),
            kTcActAbsorbed);
}

TEST_F(FastPathTest, BadChecksumPasses) {
  publish(1000, 5000);
  Frame f = build({.ack = 2000});
  f[14 + 20 + 16] ^= 0x01;  // TCP checksum
  EXPECT_EQ(run_frame(f), kTcActOk);
  Frame g = build({.ack = 2000, .v6 = false});
  g[14 + 20 + 14] ^= 0x01;  // window changed, checksum not
  EXPECT_EQ(run_frame(g), kTcActOk);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 0u);
  EXPECT_EQ(run_frame(build({.ack = 2000})), kTcActAbsorbed);
}

TEST_F(FastPathTest, WhatUserspaceDropsIsNotAbsorbed) {
  // A pure ACK the translator would drop must not move the flow here either:
  // a bad IPv4 header checksum (the TCP checksum still right), an 802.1Q tag.
  publish(1000, 5000);
  Frame f = build({.ack = 2000});
  f[14 + 10] ^= 0x01;  // IPv4 header checksum
  EXPECT_EQ(run_frame(f), kTcActOk);
  Frame g = build({.ack = 2000});
  const uint8_t tag[] = {0x81, 0x00, 0x00, 0x05};
  g.insert(g.begin() + 12, tag, tag + 4);
  EXPECT_EQ(run_frame(g), kTcActOk);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 0u);
  EXPECT_EQ(run_frame(build({.ack = 2000})), kTcActAbsorbed);
}

TEST_F(FastPathTest, Options) {
  publish(1000, 5000, /*ts=*/false);
  EXPECT_EQ(run({.ack = 2000, .ts = true}), kTcActOk);  // not negotiated
  EXPECT_EQ(run({.ack = 2000, .mss = true}), kTcActOk);
  conns_.retire(kSlot, key4_);
  publish(1000, 5000, /*ts=*/true);
  EXPECT_EQ(run({.ack = 2000, .ts = true}), kTcActAbsorbed);
  EXPECT_EQ(conns_.slot(kSlot)->ts_recent, 4242u);
  EXPECT_EQ(run({.ack = 2100, .ts = true, .mss = true}), kTcActOk);
  EXPECT_EQ(run({.ack = 2100}), kTcActAbsorbed);  // no options is always fine
}

// The timestamp-only options block has a fast case in the parser (NOP NOP
// TIMESTAMP, read in place); every other layout still goes through the
// option walk. Both must give the same decision and the same TSval, and a
// fast-looking block with a wrong timestamp length stays malformed.
TEST_F(FastPathTest, TimestampLayoutsFastCaseAndWalkAgree) {
  publish(1000, 5000, /*ts=*/true);
  Frame fast = build({.ack = 2000, .ts = true});
  const size_t opt = fast.size() - 12;  // no payload: the options end the frame
  ASSERT_EQ(fast[opt], 1);
  ASSERT_EQ(fast[opt + 1], 1);
  ASSERT_EQ(fast[opt + 2], 8);
  EXPECT_EQ(run_frame(fast), kTcActAbsorbed);
  EXPECT_EQ(conns_.slot(kSlot)->ts_recent, 4242u);

  // TIMESTAMP NOP NOP: the same 16-bit words rotated, so the checksum holds.
  Frame walked = build({.ack = 2100, .ts = true});
  std::rotate(walked.begin() + static_cast<long>(opt), walked.begin() + static_cast<long>(opt + 2), walked.end());
  ASSERT_EQ(walked[opt], 8);
  walked[opt + 5] = 0x93;  // TSval 4243 (0x1093); NOP EOL below keeps the sum
  walked[opt + 10] = 1;
  walked[opt + 11] = 0;
  EXPECT_EQ(run_frame(walked), kTcActAbsorbed);
  EXPECT_EQ(conns_.slot(kSlot)->ts_recent, 4243u);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2100u);

  // NOP NOP TIMESTAMP with length 9: malformed, counted, never absorbed.
  const uint64_t malformed = stats().malformed;
  Frame bad = build({.ack = 2200, .ts = true});
  bad[opt + 3] = 9;
  EXPECT_EQ(run_frame(bad), kTcActOk);
  EXPECT_EQ(stats().malformed, malformed + 1);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2100u);
}

TEST_F(FastPathTest, WrapAroundAt2To32) {
  publish(0xffffff00u, 0x100u);
  EXPECT_EQ(run({.ack = 0xffffff80u}), kTcActAbsorbed);
  EXPECT_EQ(run({.ack = 0x10u}), kTcActAbsorbed);  // across the wrap
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 0x10u);
  EXPECT_EQ(run({.ack = 0x101u}), kTcActOk);        // beyond snd_nxt
  EXPECT_EQ(run({.ack = 0xffffff90u}), kTcActOk);   // before the wrap: old now
  EXPECT_EQ(run({.ack = 0x100u}), kTcActAbsorbed);
}

TEST_F(FastPathTest, DuplicateAcksToFastRetransmit) {
  publish(1000, 5000);
  ASSERT_EQ(run({.ack = 2000, .window = 100}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 0u);
  ASSERT_EQ(run({.ack = 2000, .window = 100}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 1u);
  ASSERT_EQ(run({.ack = 2000, .window = 100}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 2u);
  EXPECT_TRUE(seen_.empty());
  ASSERT_EQ(run({.ack = 2000, .window = 100}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 3u);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_FAST_RETRANSMIT));
  EXPECT_EQ(seen_[0].slot, kSlot);
  EXPECT_EQ(seen_[0].gen, gen_);
  EXPECT_EQ(seen_[0].ack, 2000u);
  EXPECT_EQ(seen_[0].dup_acks, 3u);
  ASSERT_EQ(run({.ack = 2000, .window = 100}), kTcActAbsorbed);  // 4th: no new event
  EXPECT_EQ(seen_.size(), 1u);
  // a window update is not a duplicate
  ASSERT_EQ(run({.ack = 2000, .window = 101}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 4u);
  // progress resets the run
  ASSERT_EQ(run({.ack = 2500, .window = 101}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 0u);
  EXPECT_EQ(stats().events_posted, 1u);
  EXPECT_EQ(conns_.slot(kSlot)->events_posted, 1u);
}

TEST_F(FastPathTest, NoDuplicateWhenNothingOutstanding) {
  publish(1000, 2000);
  ASSERT_EQ(run({.ack = 2000}), kTcActAbsorbed);
  for (int i = 0; i < 4; i++) ASSERT_EQ(run({.ack = 2000}), kTcActAbsorbed);
  EXPECT_EQ(conns_.dup_acks(kSlot), 0u);
  EXPECT_TRUE(seen_.empty());
}

TEST_F(FastPathTest, WindowReopensAfterStall) {
  publish(1000, 5000);
  ASSERT_EQ(run({.ack = 2000, .window = 750}), kTcActAbsorbed);  // 3000 bytes: up to 5000
  EXPECT_FALSE(conns_.arm_wake(kSlot, 0, 5000, 2000));           // closed: wait for the event
  ASSERT_EQ(run({.ack = 2000, .window = 0}), kTcActAbsorbed);    // still closed
  ASSERT_EQ(run({.ack = 3000, .window = 500}), kTcActAbsorbed);  // 3000 + 2000 = 5000: closed
  EXPECT_TRUE(seen_.empty());
  ASSERT_EQ(run({.ack = 3000, .window = 600}), kTcActAbsorbed);  // 3000 + 2400 > 5000
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
  EXPECT_EQ(seen_[0].window, 2400u);
  ASSERT_EQ(run({.ack = 3100, .window = 600}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 1u);  // once per stall
  EXPECT_TRUE(conns_.arm_wake(kSlot, 0, 5000, 3100));  // already open: the caller sends at once
  ASSERT_EQ(run({.ack = 3200, .window = 600}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 2u);
}

// A pure ACK whose sequence number is not rcv_nxt passes: the guest's
// zero-window probe or keep-alive (rcv_nxt - 1) needs userspace's answer.
TEST_F(FastPathTest, ProbeOrKeepAliveSequencePasses) {
  publish(1000, 2000);
  EXPECT_EQ(run({.seq = 776, .ack = 2000}), kTcActOk);
  EXPECT_EQ(run({.seq = 900, .ack = 2000}), kTcActOk);  // guest data still in flight
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 0u);
  EXPECT_EQ(run({.seq = 777, .ack = 2000}), kTcActAbsorbed);
}

// wake_room batches wake-ups: room that opens below it posts nothing.
TEST_F(FastPathTest, WindowOpenWaitsForWakeRoom) {
  publish(1000, 5000);
  ASSERT_EQ(run({.ack = 2000, .window = 750}), kTcActAbsorbed);  // edge 5000: closed
  EXPECT_FALSE(conns_.arm_wake(kSlot, 1500, 5000, 2000));
  ASSERT_EQ(run({.ack = 3000, .window = 750}), kTcActAbsorbed);  // room 1000 < 1500
  ASSERT_EQ(run({.ack = 3400, .window = 750}), kTcActAbsorbed);  // room 1400 < 1500
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 3400u);            // still absorbed
  ASSERT_EQ(run({.ack = 3500, .window = 750}), kTcActAbsorbed);  // room 1500: wake
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
  EXPECT_EQ(seen_[0].ack, 3500u);
}

// A sender waiting for the ACK of everything (its host socket ran dry with
// a small flight): wake_room FERRY_WAKE_ROOM_NONE, wake_ack = snd_nxt. A
// partial ACK whose window grew leaves more room than any window the
// sender had, but bytes remain in flight: no wake-up yet. The ACK of the
// rest wakes it, once.
TEST_F(FastPathTest, AllAckedWakeIsNotSpentByAPartialAckWithAGrowingWindow) {
  publish(1000, 50000);  // 49000 in flight, window 400 (wscale 2)
  EXPECT_FALSE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 50000, 1000));
  ASSERT_EQ(run({.ack = 30000, .window = 65535}), kTcActAbsorbed);  // room 242140
  EXPECT_TRUE(seen_.empty()) << "a partial ACK spent the wake-up";
  ASSERT_EQ(run({.ack = 50000, .window = 65535}), kTcActAbsorbed);
  ASSERT_EQ(seen_.size(), 1u) << "the ACK of everything did not wake the sender";
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
  EXPECT_EQ(seen_[0].ack, 50000u);
  ASSERT_EQ(run({.ack = 50000, .window = 65535}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 1u);  // once per epoch
}

// Stalled on the window (wake_room a quarter of it): the ACK of everything
// wakes the sender even when it leaves less room than wake_room (the
// guest's window shrank), as long as there is room at all.
TEST_F(FastPathTest, AllAckedWakesAWindowStallBelowWakeRoom) {
  publish(1000, 5000);
  ASSERT_EQ(run({.ack = 1000, .window = 1000}), kTcActAbsorbed);  // edge 5000: closed
  EXPECT_FALSE(conns_.arm_wake(kSlot, 1000, 5000, 1000));
  ASSERT_EQ(run({.ack = 4000, .window = 200}), kTcActAbsorbed);  // edge 4800: closed
  EXPECT_TRUE(seen_.empty());
  ASSERT_EQ(run({.ack = 5000, .window = 100}), kTcActAbsorbed);  // all acked, room 400 < 1000
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
  EXPECT_EQ(seen_[0].ack, 5000u);
  EXPECT_NE(seen_[0].time_ns, 0u);
}

// A drained host socket with a large flight: wake_ack is a share of it
// (here a quarter of 100000), whatever the window does; once per epoch.
TEST_F(FastPathTest, DrainedWakeAtWakeAck) {
  publish(1000, 101000);
  EXPECT_FALSE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 26000, 1000));
  ASSERT_EQ(run({.ack = 20000, .window = 65535}), kTcActAbsorbed);
  ASSERT_EQ(run({.ack = 25999, .window = 65535}), kTcActAbsorbed);
  EXPECT_TRUE(seen_.empty());
  ASSERT_EQ(run({.ack = 30000, .window = 65535}), kTcActAbsorbed);  // past it
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
  EXPECT_EQ(seen_[0].ack, 30000u);
  ASSERT_EQ(run({.ack = 40000, .window = 65535}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 1u);  // spent until armed again
  EXPECT_FALSE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 65000, 40000));
  ASSERT_EQ(run({.ack = 65000, .window = 65535}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 2u);
}

// The userspace half of "no lost wake-up": an ACK BPF absorbed before the
// arming (so it did not post) is reported by arm_wake() itself; a window
// update at the same ACK does not count as the ACK moving.
TEST_F(FastPathTest, ArmingSeesAnAckAbsorbedBeforeIt) {
  publish(1000, 101000);
  ASSERT_EQ(run({.ack = 30000, .window = 0}), kTcActAbsorbed);
  EXPECT_TRUE(seen_.empty());
  EXPECT_TRUE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 26000, 1000));
  EXPECT_FALSE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 26000, 30000)) << "nothing moved";
  EXPECT_FALSE(conns_.arm_wake(kSlot, FERRY_WAKE_ROOM_NONE, 101000, 30000));
}

TEST_F(FastPathTest, FinAckedWakesOnce) {
  publish(1000, 5001);
  conns_.set_fin_pending(kSlot, true);
  ASSERT_EQ(run({.ack = 4000}), kTcActAbsorbed);
  EXPECT_TRUE(seen_.empty());
  ASSERT_EQ(run({.ack = 5001}), kTcActAbsorbed);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_FIN_ACKED));
  EXPECT_EQ(seen_[0].ack, 5001u);
  ASSERT_EQ(run({.ack = 5001}), kTcActAbsorbed);
  EXPECT_EQ(seen_.size(), 1u);
}

TEST_F(FastPathTest, SndNxtMovesTheRange) {
  publish(1000, 2000);
  EXPECT_EQ(run({.ack = 3000}), kTcActOk);
  conns_.set_snd_nxt(kSlot, 3000);
  EXPECT_EQ(run({.ack = 3000}), kTcActAbsorbed);
}

TEST_F(FastPathTest, Ipv6Flow) {
  publish(1000, 5000, false, /*v6=*/true);
  EXPECT_EQ(run({.ack = 2000, .v6 = true}), kTcActAbsorbed);
  EXPECT_EQ(run({.ack = 2000}), kTcActOk);  // the IPv4 twin is another flow
  Frame f = build({.ack = 3000, .v6 = true});
  f[14 + 40 + 16] ^= 0x80;  // bad checksum
  EXPECT_EQ(run_frame(f), kTcActOk);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  // Behind an extension header (here a routing header with a segment left,
  // which userspace refuses): the guest's stack sends none on an ACK, so
  // the fast path leaves such frames to userspace.
  Frame g = build({.ack = 3000, .v6 = true});
  const uint8_t rh[8] = {6, 0, 0, 1, 0, 0, 0, 0};  // next TCP, len 0, type 0, segments left 1
  g.insert(g.begin() + 14 + 40, rh, rh + 8);
  g[14 + 6] = 43;
  g[14 + 5] = static_cast<uint8_t>(g[14 + 5] + 8);
  EXPECT_EQ(run_frame(g), kTcActOk);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
}

// Publishes flow i (source port 1000 + i) in slot i % the map's size,
// retiring the flow that held that slot before: the ring holds more records
// (about 6550) than the maps have slots (FERRY_FASTPATH_SLOTS_MAX), so
// filling it takes each slot's generations one after another.
static uint32_t publish_reusing(ConnMap& conns, uint32_t i, const ConnSlotInit& init) {
  auto key = [](uint32_t j) {
    return make_conn_key(ip4().src, static_cast<uint16_t>(1000 + j), ip4().dst, 80);
  };
  const uint32_t slot = i % conns.capacity();
  if (i >= conns.capacity()) conns.retire(slot, key(i - conns.capacity()));
  EXPECT_TRUE(conns.publish(slot, key(i), init).ok());
  return slot;
}

// Flow i as publish_reusing() places it, with 9 bytes in flight (1..10)
// and FIN_PENDING: its ACK of 10 posts FIN_ACKED.
static uint32_t publish_fin_pending(ConnMap& conns, uint32_t i) {
  ConnSlotInit init;
  init.snd_una = 1;
  init.snd_nxt = 10;
  const uint32_t slot = publish_reusing(conns, i, init);
  conns.set_fin_pending(slot, true);
  return slot;
}

TEST_F(FastPathTest, RingFullPassesAndChangesNothing) {
  // FIN_ACKED events from many slot generations, not consumed, until the
  // ring is full (256 KiB / 40-byte records: about 6550)
  const uint32_t n = 7000;
  auto frame_for = [](uint32_t i) {
    return testing::tcp_frame(
        {.ip = ip4(), .sport = static_cast<uint16_t>(1000 + i), .dport = 80, .seq = 0, .ack = 10, .window = 10});
  };
  auto run_raw = [&](const Frame& f) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_->prog_fd(), &opts), 0);
    return static_cast<int>(opts.retval);
  };
  uint32_t first_refused = n, refused_slot = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t slot = publish_fin_pending(conns_, i);
    int rv = run_raw(frame_for(i));
    if (rv == kTcActOk) {
      first_refused = i;
      refused_slot = slot;
      break;
    }
    ASSERT_EQ(rv, kTcActAbsorbed);
  }
  ASSERT_LT(first_refused, n) << "the ring never filled";
  EXPECT_GT(first_refused, 1000u);
  ferry_stats st = stats();
  EXPECT_EQ(st.events_dropped, 1u);
  EXPECT_EQ(st.events_posted, first_refused);
  EXPECT_EQ(st.passed_to_userspace, 1u);
  // the refused ACK changed nothing in its slot
  EXPECT_EQ(conns_.ack_from_guest(refused_slot), 1u);
  EXPECT_EQ(conns_.acks_absorbed(refused_slot), 0u);
  EXPECT_EQ(conns_.slot(refused_slot)->fin_gen_done, 0u);
  // once drained, the same ACK is absorbed and wakes us
  EXPECT_EQ(events_.consume(), static_cast<int>(first_refused));
  seen_.clear();
  EXPECT_EQ(run_raw(frame_for(first_refused)), kTcActAbsorbed);
  EXPECT_EQ(events_.consume(), 1);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].slot, refused_slot);
}

// consume(max) hands over at most max records and leaves the rest for the
// next call (the bridge acts on a batch per wake-up, so that the loop's
// other sources get their turn: see FastPathBridge::on_io).
TEST_F(FastPathTest, ConsumeStopsAtItsLimitAndKeepsTheRest) {
  const uint32_t n = 100;
  for (uint32_t i = 0; i < n; i++) {
    publish_fin_pending(conns_, i);
    Frame f = testing::tcp_frame(
        {.ip = ip4(), .sport = static_cast<uint16_t>(1000 + i), .dport = 80, .seq = 0, .ack = 10, .window = 10});
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(), .data_size_in = static_cast<uint32_t>(f.size()),
                .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(bpf_->prog_fd(), &opts), 0);
    ASSERT_EQ(static_cast<int>(opts.retval), kTcActAbsorbed);
  }
  seen_.clear();
  EXPECT_EQ(events_.consume(32), 32);
  EXPECT_EQ(seen_.size(), 32u);
  EXPECT_EQ(events_.consume(32), 32);
  EXPECT_EQ(events_.consume(), 36);
  ASSERT_EQ(seen_.size(), 100u);
  for (uint32_t i = 0; i < n; i++) EXPECT_EQ(seen_[i].slot, i) << "in posting order, none lost or repeated";
  EXPECT_EQ(events_.consume(32), 0);
}

// A due WINDOW_OPEN that finds the ring full: the ACK is absorbed (the
// slot already holds it), the drop is counted, the epoch stays armed, and
// the next absorbed ACK posts once the ring has room.
TEST_F(FastPathTest, RingFullKeepsTheWakeUpArmed) {
  const uint32_t n = 7000;
  constexpr uint32_t kArmedFlow = 7500;  // source port 1000 + it
  auto frame_for = [](uint32_t i, uint32_t ack) {
    TcpSegment s;
    s.ip = ip4();
    s.sport = static_cast<uint16_t>(1000 + i);
    s.dport = 80;
    s.ack = ack;
    s.flags = tcpflag::kAck;
    s.window = 10;
    Frame f(kMaxFrameLen);
    f.resize(build_tcp_frame(f, s));
    return f;
  };
  auto run_raw = [&](const Frame& f) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_->prog_fd(), &opts), 0);
    return static_cast<int>(opts.retval);
  };
  bool full = false;
  uint32_t i = 0;
  for (; i < n && !full; i++) {
    publish_fin_pending(conns_, i);
    full = run_raw(frame_for(i, 10)) == kTcActOk;
  }
  ASSERT_TRUE(full) << "the ring never filled";
  // the armed flow takes the next slot (whose last flow's events are in the ring)
  const uint32_t kArmed = i % conns_.capacity();
  conns_.retire(kArmed, make_conn_key(ip4().src, static_cast<uint16_t>(1000 + i - conns_.capacity()), ip4().dst, 80));
  ConnSlotInit init;
  init.snd_una = 1;
  init.snd_nxt = 100;
  ASSERT_TRUE(conns_.publish(kArmed, make_conn_key(ip4().src, static_cast<uint16_t>(1000 + kArmedFlow), ip4().dst, 80), init).ok());
  EXPECT_FALSE(conns_.arm_wake(kArmed, FERRY_WAKE_ROOM_NONE, 50, 1));
  const uint64_t dropped = stats().events_dropped;
  EXPECT_EQ(run_raw(frame_for(kArmedFlow, 60)), kTcActAbsorbed);
  EXPECT_EQ(stats().events_dropped, dropped + 1);
  EXPECT_EQ(conns_.ack_from_guest(kArmed), 60u);
  EXPECT_NE(conns_.slot(kArmed)->stall_epoch, conns_.slot(kArmed)->stall_epoch_done);
  events_.consume();
  seen_.clear();
  EXPECT_EQ(run_raw(frame_for(kArmedFlow, 70)), kTcActAbsorbed);
  EXPECT_EQ(events_.consume(), 1);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].slot, kArmed);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_WINDOW_OPEN));
}

// Cost per frame (informational; bounded loosely so a pathological
// regression, e.g. a per-frame loop gone wild, still fails).
TEST_F(FastPathTest, CostPerFrame) {
  publish(1000, 0x7fffffff);
  auto cost = [&](const Frame& f) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 200000);
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_->prog_fd(), &opts), 0);
    return opts.duration;  // ns per run
  };
  uint32_t absorbed = cost(build({.ack = 2000}));
  uint32_t passed = cost(build({.ack = 2000, .payload = 1000, .ts = true}));
  uint32_t udp_ns;
  {
    std::vector<uint8_t> data(100, 0);
    UdpDatagram d;
    d.ip = ip4();
    d.sport = 1;
    d.dport = 2;
    d.payload = data;
    Frame f(kMaxFrameLen);
    f.resize(build_udp_frame(f, d));
    udp_ns = cost(f);
  }
  std::printf("ns per frame: pure ACK absorbed %u, TCP data (TS options) passed %u, UDP %u\n",
              absorbed, passed, udp_ns);
  EXPECT_LT(absorbed, 20000u);
  EXPECT_LT(passed, 20000u);
}

// The whole path on a real tap: the guest's kernel completes a handshake
// with "ferry" (this test, writing into the tap fd); its final pure ACK, of a
// flow published as eligible, is absorbed at TC egress and never reaches the
// tap fd. The guest's own ACKs usually arrive as CHECKSUM_PARTIAL.
TEST_F(FastPathTest, LiveHandshakeAckIsAbsorbed) {
  bpftest::TapNs t;
  bpftest::make_tap_ns(&t);
  ASSERT_EQ(t.error, "");
  const MacAddr ferry_mac{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};
  ASSERT_TRUE(bpftest::in_netns(t.ns, [&] {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "ftest0");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "198.18.0.2", &sin.sin_addr);
    std::memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
    EXPECT_EQ(ioctl(s, SIOCSIFADDR, &ifr), 0);
    inet_pton(AF_INET, "255.255.255.0", &sin.sin_addr);
    std::memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
    EXPECT_EQ(ioctl(s, SIOCSIFNETMASK, &ifr), 0);
    arpreq ar{};
    inet_pton(AF_INET, "198.18.0.1", &sin.sin_addr);
    std::memcpy(&ar.arp_pa, &sin, sizeof(sin));
    ar.arp_ha.sa_family = ARPHRD_ETHER;
    std::memcpy(ar.arp_ha.sa_data, ferry_mac.b.data(), 6);
    ar.arp_flags = ATF_PERM | ATF_COM;
    std::strcpy(ar.arp_dev, "ftest0");
    EXPECT_EQ(ioctl(s, SIOCSARP, &ar), 0) << std::strerror(errno);
    close(s);
  }));
  ASSERT_TRUE(bpf_->attach_tc_egress(t.ns, t.ifindex).ok());

  int cs = -1;
  bpftest::in_netns(t.ns, [&] { cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  ASSERT_GE(cs, 0);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(kPeerPort);
  inet_pton(AF_INET, "198.18.0.1", &peer.sin_addr);
  ASSERT_NE(connect(cs, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)), 0);
  ASSERT_EQ(errno, EINPROGRESS);

  // the guest's SYN, read from the tap fd
  uint8_t buf[4096];
  ParsedFrame syn;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool got_syn = false;
  while (!got_syn && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = read(t.tap, buf, sizeof(buf));
    if (n <= 0) {
      usleep(1000);
      continue;
    }
    syn = parse_frame({buf, static_cast<size_t>(n)});
    got_syn = syn.ok() && syn.is_tcp() && (syn.tcp.flags & tcpflag::kSyn) != 0;
  }
  ASSERT_TRUE(got_syn);

  // publish the flow as ferry would once connect() succeeded, then SYN-ACK
  ConnSlotInit init;
  init.snd_una = 5000;  // our SYN is not acknowledged yet
  init.snd_nxt = 5001;
  init.rcv_nxt = syn.tcp.seq + 1;
  ASSERT_TRUE(conns_.publish(kSlot, make_conn_key(ip4().src, syn.tcp.sport, ip4().dst, kPeerPort), init)
                  .ok());
  L2L3 back;  // ferry -> guest
  back.eth_src = ferry_mac;
  back.eth_dst = syn.eth_src;
  back.src = ip4().dst;
  back.dst = ip4().src;
  TcpOptions mss;
  mss.has_mss = true;
  mss.mss = 1460;
  const Frame f = testing::tcp_frame({.ip = back, .sport = kPeerPort, .dport = syn.tcp.sport, .seq = 5000,
                                      .ack = syn.tcp.seq + 1, .flags = tcpflag::kSyn | tcpflag::kAck, .window = 65535,
                                      .opts = mss});
  ASSERT_EQ(write(t.tap, f.data(), f.size()), static_cast<ssize_t>(f.size()));

  pollfd p{cs, POLLOUT, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  int soerr = -1;
  socklen_t len = sizeof(soerr);
  ASSERT_EQ(getsockopt(cs, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
  EXPECT_EQ(soerr, 0) << "the guest's connect() completed";

  // the final ACK was absorbed: it is in the slot, not on the tap fd
  deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  bool ack_on_tap = false;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = read(t.tap, buf, sizeof(buf));
    if (n <= 0) {
      usleep(1000);
      continue;
    }
    ParsedFrame a = parse_frame({buf, static_cast<size_t>(n)});
    if (a.ok() && a.is_tcp() && a.tcp.flags == tcpflag::kAck && a.tcp.ack == 5001) ack_on_tap = true;
  }
  EXPECT_FALSE(ack_on_tap);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 5001u);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 1u);
  EXPECT_EQ(conns_.guest_window(kSlot) > 0, true);
  EXPECT_GE(stats().acks_absorbed, 1u);
  close(cs);
}

}  // namespace
}  // namespace ferry

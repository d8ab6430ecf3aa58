// Event loop: dispatch by tag and id, timers by earliest deadline, batch hooks.
// test-libs: ferry_loop
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "loop/event_loop.h"

namespace ferry {
namespace {

struct Recorder : IoHandler {
  std::vector<uint64_t> ids;
  void on_io(uint64_t id, uint32_t events) override {
    EXPECT_TRUE(events & EPOLLIN);
    ids.push_back(id);
  }
};

struct OneShotTimer : TimerClient {
  uint64_t deadline = kNever;
  int fired = 0;
  uint64_t next_deadline_ns() const override { return deadline; }
  void on_timer(uint64_t now) override {
    EXPECT_GE(now, deadline);
    fired++;
    deadline = kNever;
  }
};

// A near deadline must not cost a timer reprogramming per sleep: the loop
// lets the kernel coalesce it (event_loop.h, "Timer slack").
TEST(EventLoop, SetsTheProcessTimerSlack) {
  ASSERT_EQ(prctl(PR_SET_TIMERSLACK, 50'000, 0, 0, 0), 0);  // the kernel's default
  EventLoop loop;
  EXPECT_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), static_cast<int>(EventLoop::kTimerSlackNs));
}

TEST(EventLoop, DispatchesByTagAndId) {
  EventLoop loop;
  Recorder a, b;
  const uint8_t ta = loop.register_handler(&a);
  const uint8_t tb = loop.register_handler(&b);
  EXPECT_NE(ta, tb);
  int p1[2], p2[2];
  ASSERT_EQ(pipe(p1), 0);
  ASSERT_EQ(pipe(p2), 0);
  const uint64_t big_id = (uint64_t{1} << 55) + 7;  // survives the 56-bit id field
  ASSERT_TRUE(loop.add(p1[0], EPOLLIN, ta, 42));
  ASSERT_TRUE(loop.add(p2[0], EPOLLIN, tb, big_id));
  ASSERT_EQ(write(p1[1], "x", 1), 1);
  ASSERT_EQ(write(p2[1], "y", 1), 1);
  EXPECT_EQ(loop.run_once(1000), 2);
  ASSERT_EQ(a.ids.size(), 1u);
  EXPECT_EQ(a.ids[0], 42u);
  ASSERT_EQ(b.ids.size(), 1u);
  EXPECT_EQ(b.ids[0], big_id);
  loop.remove(p1[0]);
  loop.remove(p2[0]);
  for (int fd : {p1[0], p1[1], p2[0], p2[1]}) close(fd);
}

TEST(EventLoop, SleepsUntilEarliestTimer) {
  EventLoop loop;
  OneShotTimer early, late;
  loop.add_timer_client(&late);
  loop.add_timer_client(&early);
  const uint64_t start = now_ns();
  early.deadline = start + 20'000'000;   // 20 ms
  late.deadline = start + 5'000'000'000; // 5 s: must not be waited for
  int batches = 0;
  loop.add_batch_end_hook([&] { batches++; });
  while (early.fired == 0) ASSERT_GE(loop.run_once(-1), 0);
  const uint64_t waited = now_ns() - start;
  EXPECT_GE(waited, 20'000'000u);
  EXPECT_LT(waited, 2'000'000'000u);
  EXPECT_EQ(late.fired, 0);
  EXPECT_GE(batches, 1);
}

}  // namespace
}  // namespace ferry

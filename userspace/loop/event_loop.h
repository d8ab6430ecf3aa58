// Event loop: one epoll set, a handful of handlers, and deadline-driven timers.
//
// Theory of operation: every registered fd carries a 64-bit epoll cookie made
// of an 8-bit handler tag and a 56-bit id the handler chooses (a flow slot, a
// listening-socket index...). One epoll_wait moves a batch of events; each is
// dispatched to its handler by tag, with no lookup and no allocation. Timers
// are not per-connection timerfds: each TimerClient keeps its own deadlines
// (a heap, a wheel, a bitmap scan) and reports only the earliest; the loop
// sleeps until the earliest of all and then calls on_timer(now). After each
// batch the loop calls the batch-end hooks (e.g. to flush frames queued for
// the tap in one go).
//
// Timer slack: the loop sets the process's timer slack (PR_SET_TIMERSLACK)
// to kTimerSlackNs, so a deadline may be met up to that much late. Why: a
// sleep with a deadline nearer than the next scheduler tick (the 1 ms
// delayed ACK of every request/response transaction) makes the kernel
// program the timer hardware when the sleep starts and again when an event
// ends it early; in a VM each is a trap to the hypervisor. With the slack
// the deadline coalesces with the tick and neither happens: measured on a
// 2-CPU VM (HZ 250, TSC-deadline timer), pinned 1-byte RR, the translator's
// CPU per transaction fell from 20.1 to 18.2 us. The kernel's own TCP
// timers have this granularity (jiffies), and every ferry timer tolerates it
// (the shortest is that delayed ACK; RFC 1122 allows 500 ms).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace ferry {

// CLOCK_MONOTONIC in nanoseconds.
uint64_t now_ns();

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void on_io(uint64_t id, uint32_t events) = 0;
};

class TimerClient {
 public:
  static constexpr uint64_t kNever = UINT64_MAX;
  virtual ~TimerClient() = default;
  virtual uint64_t next_deadline_ns() const = 0;  // kNever when idle
  virtual void on_timer(uint64_t now) = 0;
};

class EventLoop {
 public:
  static constexpr uint64_t kIdBits = 56;
  static constexpr uint64_t kIdMask = (uint64_t{1} << kIdBits) - 1;
  // How late a deadline may fire (see "Timer slack" above): one tick at HZ 250.
  static constexpr unsigned long kTimerSlackNs = 4'000'000;

  // Creates the epoll set and sets the process's timer slack (kTimerSlackNs).
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Returns the tag for later add() calls.
  uint8_t register_handler(IoHandler* h);
  void add_timer_client(TimerClient* t);
  void add_batch_end_hook(std::function<void()> hook);

  // epoll_ctl wrappers; return false and set errno on failure.
  bool add(int fd, uint32_t events, uint8_t tag, uint64_t id);
  bool modify(int fd, uint32_t events, uint8_t tag, uint64_t id);
  void remove(int fd);

  // Waits at most max_wait_ms (or until the next timer), dispatches a batch.
  // Returns the number of I/O events dispatched, -1 on a fatal epoll error.
  int run_once(int max_wait_ms = -1);
  // Runs until stop() is called.
  void run();
  void stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

 private:
  int epfd_ = -1;
  bool stopping_ = false;
  std::vector<IoHandler*> handlers_;
  std::vector<TimerClient*> timers_;
  std::vector<std::function<void()>> batch_end_;
};

}  // namespace ferry

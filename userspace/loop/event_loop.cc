// Event loop implementation: see event_loop.h for the theory of operation.
//
// Invariants: the epoll cookie's top 8 bits index handlers_; a tag that was
// never registered is ignored (it cannot happen unless memory is corrupt).
// Timer clients are asked for their deadline once per iteration, so a client
// may move its deadline freely between iterations at no cost.
#include "loop/event_loop.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ferry {

namespace {
constexpr int kMaxEvents = 256;
}  // namespace

// CLOCK_MONOTONIC in nanoseconds (vDSO: no real syscall).
uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

EventLoop::EventLoop() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {
  // Before any sandbox (seccomp allows no prctl); a child inherits it. A
  // failure only costs speed.
  (void)prctl(PR_SET_TIMERSLACK, kTimerSlackNs, 0, 0, 0);
  if (epfd_ < 0) {
    std::fprintf(stderr, "ferry: epoll_create1: %s\n", std::strerror(errno));
  }
}

EventLoop::~EventLoop() {
  if (epfd_ >= 0) close(epfd_);
}

// Returns the tag that add() takes for this handler.
uint8_t EventLoop::register_handler(IoHandler* h) {
  handlers_.push_back(h);
  return static_cast<uint8_t>(handlers_.size() - 1);
}

void EventLoop::add_timer_client(TimerClient* t) { timers_.push_back(t); }

void EventLoop::add_batch_end_hook(std::function<void()> hook) { batch_end_.push_back(std::move(hook)); }

// Registers fd with the given interest and cookie.
bool EventLoop::add(int fd, uint32_t events, uint8_t tag, uint64_t id) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (uint64_t{tag} << kIdBits) | (id & kIdMask);
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

// Changes interest or cookie of a registered fd.
bool EventLoop::modify(int fd, uint32_t events, uint8_t tag, uint64_t id) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (uint64_t{tag} << kIdBits) | (id & kIdMask);
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

// Unregisters fd; harmless if it was not registered (or already closed).
void EventLoop::remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

// One iteration: sleep until I/O or the earliest timer, dispatch, run timers.
int EventLoop::run_once(int max_wait_ms) {
  uint64_t deadline = TimerClient::kNever;
  for (const TimerClient* t : timers_) {
    const uint64_t d = t->next_deadline_ns();
    if (d < deadline) deadline = d;
  }
  int timeout = max_wait_ms;
  if (deadline != TimerClient::kNever) {
    const uint64_t now = now_ns();
    // Round up so that we never wake a hair before the deadline and spin.
    const uint64_t wait_ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    if (timeout < 0 || wait_ms < static_cast<uint64_t>(timeout)) timeout = static_cast<int>(wait_ms);
  }

  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epfd_, events, kMaxEvents, timeout);
  if (n < 0) {
    if (errno == EINTR) return 0;
    std::fprintf(stderr, "ferry: epoll_wait: %s\n", std::strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; i++) {
    const uint64_t cookie = events[i].data.u64;
    const size_t tag = static_cast<size_t>(cookie >> kIdBits);
    if (tag < handlers_.size()) handlers_[tag]->on_io(cookie & kIdMask, events[i].events);
  }
  if (!timers_.empty()) {
    const uint64_t now = now_ns();
    for (TimerClient* t : timers_) {
      if (t->next_deadline_ns() <= now) t->on_timer(now);
    }
  }
  for (auto& hook : batch_end_) hook();
  return n;
}

// Runs iterations until stop() or a fatal epoll error.
void EventLoop::run() {
  while (!stopping_) {
    if (run_once(-1) < 0) break;
  }
}

}  // namespace ferry

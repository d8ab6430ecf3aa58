// Two processes per instance: the privileged parent and the translator.
//
// Theory of operation: `ferry run` and the `ferry attach` service do all
// their privileged set-up in one process (namespaces, tap, BPF objects,
// links, pins, map mmaps, listeners, raw ICMP sockets, netlink), then
// fork_translator(). The child inherits every fd and shared mapping, enters
// the sandbox (sandbox.h) and runs the event loop: it is the only process
// that parses guest frames. The parent keeps root and does nothing but
// wait: it relays signals, writes the translator's counters file (the
// translator can no longer see /run), and when the translator has exited it
// undoes the set-up (links, pins, namespace, run files), which needs the
// privileges the translator gave up. The parent never runs the event loop
// (the epoll set is shared with the child after fork).
//
// The channel between them is a SOCK_SEQPACKET socketpair, one message per
// send:
//   translator -> parent   "R"            the sandbox is entered, translating
//                          "C" + text     the counters, key=value lines (1/s)
//   parent -> translator   "D"            drain: CMD ended (`ferry run`)
//                          "S"            stop now
//                          "U" + text     an update only the parent can make
//                                         (the node's addresses for the
//                                         destination policy: the translator
//                                         may open no netlink socket), at
//                                         most every 2 s, after a "C"
// End of file on either side means "the other one is gone": the translator
// stops (and dies by PR_SET_PDEATHSIG SIGKILL if the parent is killed), the
// parent waits for the translator's exit status.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "loop/event_loop.h"

namespace ferry::sandbox {

struct TranslatorProcess {
  pid_t pid = 0;  // the translator's pid in the parent, 0 in the translator
  int fd = -1;    // this side's end of the channel
};

// Forks the translator. Returns in both processes (pid tells which).
Result<TranslatorProcess> fork_translator();

// The translator's end of the channel, served by its event loop.
class ParentChannel final : public IoHandler, public TimerClient {
 public:
  using CountersFn = std::function<std::string()>;

  // Registers with the loop; counters() is called once a second.
  ParentChannel(EventLoop& loop, int fd, CountersFn counters);
  ~ParentChannel() override;
  ParentChannel(const ParentChannel&) = delete;
  ParentChannel& operator=(const ParentChannel&) = delete;

  // Tells the parent the sandbox is entered; false if it is gone.
  bool send_ready();
  // What "D" does (default: stop the loop).
  void set_on_drain(std::function<void()> f) { on_drain_ = std::move(f); }
  // What "U" does with its text.
  void set_on_update(std::function<void(std::string_view)> f) { on_update_ = std::move(f); }

  void on_io(uint64_t id, uint32_t events) override;
  uint64_t next_deadline_ns() const override { return next_; }
  void on_timer(uint64_t now) override;

 private:
  EventLoop& loop_;
  int fd_;
  CountersFn counters_;
  std::function<void()> on_drain_;
  std::function<void(std::string_view)> on_update_;
  uint64_t next_ = 0;
};

// The parent's side: waits for the translator, relays what it is told.
class TranslatorSupervisor {
 public:
  struct Hooks {
    std::function<void(const signalfd_siginfo&)> on_signal;  // any signal but SIGCHLD
    std::function<void(pid_t, int)> on_child_exit;           // another child reaped (pid, wait status)
    std::function<void(std::string_view)> on_counters;       // the counters text
    std::function<std::string()> update;                     // "U"'s text, every 2 s ("" none)
  };

  // sigfd: a signalfd that includes SIGCHLD. Takes ownership of p.fd.
  TranslatorSupervisor(TranslatorProcess p, int sigfd);
  ~TranslatorSupervisor();
  TranslatorSupervisor(const TranslatorSupervisor&) = delete;
  TranslatorSupervisor& operator=(const TranslatorSupervisor&) = delete;

  // Waits (at most timeout_ms) for "R". On failure the translator is gone
  // (killed if it hung) and the status says why.
  Status wait_ready(int timeout_ms);
  // Runs until the translator exited; returns its wait status.
  int run();
  // Sends "D" or "S" (ignored once the translator is gone).
  void send(char message);
  pid_t translator() const { return pid_; }
  bool exited() const { return exited_; }
  // Reaps children that exited (the translator or others).
  void reap();

  // "exited with status N", "killed by signal N (...)", for messages.
  static std::string describe_exit(int status);

  Hooks hooks;

 private:
  pid_t pid_;
  int fd_;
  int sigfd_;
  bool exited_ = false;
  int status_ = 0;
  uint64_t next_update_ns_ = 0;
};

}  // namespace ferry::sandbox

// Session: the translator side of `ferry run`, the `ferry attach` service
// and `ferry vm`, assembled one way.
//
// Theory of operation. Each command first makes its guest port and what
// BPF it has (run: a tap in the guest's namespace and the classifier;
// attach: the private tap and programs of its datapath; vm: QEMU's stream
// socket, no BPF). From there the steps are the same for all three, in
// this order:
//   1. create(): an event loop, the --pcap capture around the port (opened
//      here: the sandboxed translator cannot open files) and the
//      translator on it;
//   2. start(): the translator's listening sockets (-t/-u), the DNS
//      forwarder's sockets, the guest port watched;
//   3. the connection view, where the mode has one: pin_conn_view() (run:
//      its own pinned `conns`) or mirror_conns() (attach: the datapath's);
//      its mirror becomes the TCP table's observer;
//   4. open_fast_path(): the TCP fast path on the mode's fast-path maps,
//      chained behind the view's mirror (or the observer itself); a
//      warning and no fast path when it cannot open;
//   5. open_echo_sockets(): raw ICMP sockets, opened here while privileged,
//      when the sandboxed translator's group may not open ping sockets.
// The command then does its own steps (counters file, resolv.conf, device
// watch), and:
//   6. watch_signals(): the parent's signalfd (SIGCHLD included);
//   7. spawn(): the --mark cgroup (the sandboxed translator cannot set
//      SO_MARK: its cgroup does; inside the service's own cgroup when
//      set_service_cgroup() named one), then the fork. The child never returns:
//      it runs the command's hooks, enters the sandbox (translator_child.h),
//      runs the loop, says what the fast path did (-v), finishes the
//      capture file and exits 0. The
//      parent gets a supervisor whose hooks the command sets (the node's
//      addresses are relayed by default);
//   8. wait_ready(): until the translator is sandboxed and said so.
// Steps 3-5 and 7 are skipped by the command where they do not apply.
// Failures of required steps come back as a Status that the command prints
// its own way (its prefix, its readiness pipe); optional steps (view, fast
// path) warn on stderr with the session's prefix unless quiet.
// The parent keeps what the child was built from (its copy of the loop
// never runs) and undoes it when the session goes, in reverse order.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "attach/conn_mirror.h"
#include "bpf/fastpath_maps.h"
#include "bpf/mark_cgroup.h"
#include "common/config.h"
#include "common/status.h"
#include "fastpath/fastpath_bridge.h"
#include "loop/event_loop.h"
#include "pcap/capture_port.h"
#include "port/frame_port.h"
#include "sandbox/options.h"
#include "sandbox/process_split.h"
#include "translator/translator.h"

namespace ferry::cli {

class Session {
 public:
  // What the translator child does besides the common steps.
  struct ChildHooks {
    std::function<void()> first;                              // before anything (close the parent's fds)
    sandbox::ParentChannel::CountersFn counters;              // the counters text, once a second
    std::function<void(sandbox::ParentChannel&)> prepare;     // before the sandbox (drain, watches)
    std::function<void()> run;                                // the loop (default: loop().run())
    std::function<void()> after_loop;                         // after the loop and the -v fast-path line
  };

  // 1. The translator on `port` (behind a capture with --pcap). who: the
  // prefix of the lines the session prints ("ferry run"); quiet: no warnings.
  static Result<std::unique_ptr<Session>> create(const char* who, bool quiet, FramePort& port, const Config& config,
                                                 const sandbox::Options& sandbox);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  EventLoop& loop() { return loop_; }
  Translator& translator() { return *translator_; }
  // The fast path, or nullptr (none asked, or it could not open).
  FastPathBridge* fast_path() const { return fast_path_.get(); }
  // The supervisor, after spawn() in the parent.
  sandbox::TranslatorSupervisor& supervisor() { return *supervisor_; }

  // 2. Opens the translator's sockets and watches the guest port.
  Status start();
  // 3. Pins a connection view of the instance's own and mirrors TCP into
  // it; warns when it cannot (not fatal).
  void pin_conn_view(const std::string& instance);
  // 3. Mirrors TCP into a view that exists (`entries` slots).
  void mirror_conns(ferry_conn_view* view, uint32_t entries);
  // 4. The fast path on these maps; false (and a warning) when it cannot open.
  bool open_fast_path(const FastPathMapFds& fds);
  // 5. Raw ICMP echo sockets, if the sandbox's group may not open ping sockets.
  void open_echo_sockets();
  // 6. A signalfd for `signals` (which must be blocked and include SIGCHLD).
  Status watch_signals(const sigset_t& signals);
  // The `ferry attach` service's own cgroup (sandbox/service_cgroup.h),
  // where spawn() makes the --mark cgroup; "" (the default): none.
  void set_service_cgroup(const std::string& dir) { service_cgroup_ = dir; }
  // 7. The --mark cgroup (named mark_name) when there is a mark and a
  // sandbox, then the translator's fork; returns in the parent only.
  Status spawn(const std::string& mark_name, ChildHooks hooks);
  // 8. Waits at most timeout_ms for the translator to be ready.
  Status wait_ready(int timeout_ms);

 private:
  Session(const char* who, bool quiet, const sandbox::Options& sandbox);

  const char* who_;
  bool quiet_;
  sandbox::Options sandbox_;
  EventLoop loop_;
  std::unique_ptr<CapturePort> capture_;  // --pcap
  std::unique_ptr<Translator> translator_;
  std::unique_ptr<attach::ConnView> conn_view_;  // pin_conn_view()
  std::unique_ptr<attach::ConnMirror> mirror_;   // mirror_conns()
  attach::ConnMirror* observer_ = nullptr;       // the mirror in use, if any
  std::unique_ptr<FastPathBridge> fast_path_;
  int sigfd_ = -1;
  std::string service_cgroup_;
  std::unique_ptr<MarkCgroup> mark_cgroup_;
  std::optional<sandbox::TranslatorSupervisor> supervisor_;
};

}  // namespace ferry::cli

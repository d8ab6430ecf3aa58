// FastPathBridge: connects the TCP translator to the BPF fast path (the
// conn_hash / conn_state / activity / events maps of bpf/fastpath.h, in
// `ferry run`'s classifier or `ferry attach`'s program).
//
// Theory of operation
// -------------------
// Who writes what (include/ferry/contract.h names the slot's writers):
//  * the translator owns every TCP decision. Through TcpFastPath it tells the
//    bridge what it sent (sync: snd_max, FIN, recovery) and when its sender
//    stalled on the guest's window (stall), and it asks for absorbed
//    progress (progress) right before it uses snd_una or the window;
//  * the bridge owns the slot's userspace fields: it publishes a flow, stores
//    snd_nxt (= the translator's snd_max, FIN counted) before the frames
//    leave and rcv_nxt before each ACK to the guest (BPF absorbs only pure
//    ACKs at rcv_nxt, so the guest's probes and keep-alives reach the
//    translator), sets FIN_PENDING, wake_room and stall_epoch, and retires
//    the flow;
//  * BPF owns ack_from_guest, guest_window, dup_acks and the counters.
//
// When a flow is on the fast path (published in conn_hash, eligible):
// ESTABLISHED, not in loss recovery (fast retransmit or RTO: then every ACK
// must reach process_ack(), which drives NewReno's partial-ACK repairs), and
// it sent the guest at least kPublishMinBytes or stalled on the guest's
// window (an upload-only or request/response flow has few pure ACKs to
// absorb, so it costs no bpf() call). Leaving recovery publishes the flow
// again, seeded from the translator's state (a new gen), so BPF's fields are
// never older than snd_una at publish. A flow is retired when it leaves the
// table (TcpFlowObserver::on_flow_removed: close, reset, timeout) or enters
// recovery. publish/retire are the only syscalls; everything else is a load
// or store into the mmap'd slot.
//
// Wake-ups: events (ring buffer) and the activity scan.
//  * WINDOW_OPEN: after stall() the translator waits; BPF posts once the
//    guest's ACKs opened wake_room bytes (a quarter of the window the sender
//    stalled on, at least one MSS, at most that window; 1 byte for a zero
//    window), so a window-limited transfer wakes once per quarter window,
//    or once they acknowledged everything sent. After drained() (the host
//    socket ran dry with bytes in flight) only the latter wakes
//    (wake_room = FERRY_WAKE_ALL_ACKED): a partial ACK with a grown window
//    would otherwise spend the one wake-up while bytes stay in flight, below
//    the scan's threshold, until the RTO;
//  * FAST_RETRANSMIT: the third duplicate ACK (BPF counts them);
//  * FIN_ACKED: everything including our FIN acknowledged;
//  * the activity scan (a TimerClient): while any published flow has data
//    outstanding it runs every 1 ms (backing off to 16 ms while it finds no
//    activity), folds the progress of flows whose activity bit is set and
//    lets them send, so the host socket's receive queue is freed even when
//    the sender never stalls. With nothing outstanding it sleeps (kNever).
// Each wake-up ends in TcpTranslator::fast_progress(): fold, act, send.
// A fold hands the translator the absorbed ACK's arrival time (the slot's
// last_ack_ns), so its RTT sample is the guest's, not the wake-up's delay.
//
// Lost wake-ups: stall() re-reads the slot after bumping stall_epoch and
// reports an already-open window; an ACK racing with that is still caught by
// the scan (the flow has data outstanding) or the persist/RTO timer, whose
// handler folds first.
#pragma once

#include <cstdint>
#include <string>

#include "bpf/fastpath_maps.h"
#include "common/status.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"
#include "tcp/tcp_translator.h"

namespace ferry {

class BpfAttachment;

class FastPathBridge final : public TcpFastPath,
                             public TcpFlowObserver,
                             public TimerClient,
                             public IoHandler {
 public:
  struct Options {
    uint32_t wake_divisor = 4;             // wake_room = window / this (0: any room wakes)
    uint64_t scan_min_ns = 1'000'000;      // activity scan period while busy
    uint64_t scan_max_ns = 16'000'000;     // ... after scans that found nothing
    // The defaults, with the measurement knob FERRY_WAKE_DIVISOR=N from the
    // environment (window/N bytes of room wake a stalled sender; 0: any room).
    static Options from_environment();
  };
  struct Counters {
    FERRY_FASTPATH_BRIDGE_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  FastPathBridge(EventLoop& loop, TcpTranslator& tcp, Options opts);
  FastPathBridge(EventLoop& loop, TcpTranslator& tcp) : FastPathBridge(loop, tcp, Options{}) {}
  ~FastPathBridge() override;
  FastPathBridge(const FastPathBridge&) = delete;
  FastPathBridge& operator=(const FastPathBridge&) = delete;

  // Maps the loaded classifier's maps, opens its event ring, registers with
  // the loop and becomes the translator's fast path. The caller must make
  // the bridge see on_flow_removed (set_observer, or ConnMirror::chain).
  Status open(const BpfAttachment& bpf);
  // Same on any program's fast-path maps by fd (`ferry attach`'s program).
  Status open(const FastPathMapFds& fds);

  // TcpFastPath
  bool progress(uint32_t slot, uint32_t* ack, uint32_t* window, uint64_t* ack_ns) override;
  void sync(uint32_t slot, const TcpConn& c, uint32_t snd_max) override;
  bool stall(uint32_t slot, const TcpConn& c) override;
  bool drained(uint32_t slot, const TcpConn& c) override;
  // TcpFlowObserver
  void on_flow_added(uint32_t slot, const ferry_conn_key& key, const TcpConn& c) override;
  void on_flow_removed(uint32_t slot, const ferry_conn_key& key) override;
  // TimerClient: the activity scan.
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;
  // IoHandler: the event ring is readable.
  void on_io(uint64_t id, uint32_t events) override;

  const Counters& counters() const { return counters_; }
  // One line "name=value ..." of the counters (for -v and measurements).
  std::string counters_line() const;
  bool published(uint32_t slot) const {
    return slot < nflows_ && (flows_[slot].bits & kPublished) != 0;
  }
  const ConnMap& conn_map() const { return map_; }
  // Runs one activity scan now (tests).
  uint32_t scan();

 private:
  // A flow is published once it sent this much (or stalled on the guest's
  // window): a short request/response connection has few pure ACKs to
  // absorb, and publish + retire would cost it two bpf() calls.
  static constexpr uint32_t kPublishMinBytes = 64 * 1024;
  // In flight at least this much, a flow is visited by the activity scan.
  static constexpr uint32_t kWatchMinBytes = 64 * 1024;
  static bool worth_watching(const TcpConn& c, uint32_t snd_max);
  static bool may_absorb(const TcpConn& c);

  static constexpr uint8_t kPublished = 1 << 0;
  static constexpr uint8_t kFin = 1 << 1;     // FIN_PENDING set in the slot
  static constexpr uint8_t kFailed = 1 << 2;  // publish failed: do not retry
  static constexpr uint8_t kWatched = 1 << 3;  // counted in watched_
  static constexpr uint8_t kDrain = 1 << 4;    // retired: an ACK BPF absorbed while we retired is still read
  struct Flow {  // all-zero is "not published" (the table is mmap'd, zero pages)
    uint32_t absorbed_seen;  // the slot's acks_absorbed (low bits) at the last fold
    uint32_t gen;
    uint32_t snd_nxt;        // last value stored in the slot
    uint8_t bits;
  };

  void publish(uint32_t slot, const TcpConn& c, uint32_t snd_max);
  void retire(uint32_t slot, const ferry_conn_key& key);
  void watch(uint32_t slot, bool on);
  void on_event(const ferry_event& ev);

  EventLoop& loop_;
  TcpTranslator& tcp_;
  Options opts_;
  ConnMap map_;
  FastPathEvents events_;
  int events_fd_ = -1;
  Flow* flows_ = nullptr;    // indexed by the translator's slot; nflows_ entries
  uint32_t nflows_ = 0;
  uint32_t watched_ = 0;     // published flows with data outstanding
  uint64_t next_scan_ = 0;
  uint64_t scan_interval_ = 0;
  Counters counters_;
};

}  // namespace ferry

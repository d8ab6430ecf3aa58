// FastPathBridge: connects the TCP translator to the BPF fast path (the
// conn_hash / conn_state / events maps of bpf/fastpath.h, in `ferry run`'s
// classifier or `ferry attach`'s program).
//
// Theory of operation
// -------------------
// Who writes what (include/ferry/contract.h names the slot's writers):
//  * the translator owns every TCP decision. Through TcpFastPath it tells the
//    bridge what it sent (sync: snd_max, FIN, recovery, the segment it
//    times) and when its sender stopped with nothing it can do until the
//    guest ACKs (stall: on the guest's window; drained: the host socket
//    holds only bytes in flight), and it asks for absorbed progress
//    (progress) right before it uses snd_una or the window;
//  * the bridge owns the slot's userspace fields: it publishes a flow, stores
//    snd_nxt (= the translator's snd_max, FIN counted) before the frames
//    leave and rcv_nxt before each ACK to the guest (BPF absorbs only pure
//    ACKs at rcv_nxt, so the guest's probes and keep-alives reach the
//    translator), rtt_seq, FIN_PENDING, the wake-up thresholds and
//    stall_epoch, and retires the flow;
//  * BPF owns ack_from_guest, guest_window, dup_acks, rtt_ack_ns and the
//    counters.
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
// Map slots: conn_state has fewer entries than the translator's table
// (FERRY_FASTPATH_SLOTS_MAX: only bulk flows are published, and a
// preallocated array sized for every possible connection was 11 MiB). A flow
// takes a map slot from a free list when it is first published and keeps it
// until it leaves the table (a retired flow's slot may still hold an ACK BPF
// absorbed meanwhile, which progress() reads); events name the map slot and
// owner_ maps it back. With every map slot taken, a flow stays on the
// userspace path (counted as no_slot) and tries again at its next sync.
//
// Wake-ups: no timer of its own. What BPF absorbed is folded at the
// translator's next natural wake-up (a guest segment, a host socket event,
// a timer); the ring buffer wakes it only when it must act (the contract's
// "Wake-ups"):
//  * WINDOW_OPEN, armed by stall() or drained() (ConnMap::arm_wake):
//    - stall(): the sender stopped on the guest's window. It wakes once the
//      guest's ACKs opened wake_room bytes (a quarter of the window it
//      stalled on, at least one MSS, at most that window; 1 byte for a zero
//      window), so a window-limited transfer wakes once per quarter window,
//      or once they acknowledged everything sent. Stopped by its congestion
//      window (the guest's still has an MSS of room), it wakes once a
//      quarter of the flight is ACKed: room would wake it at every ACK;
//    - drained(): the host socket holds only bytes in flight. Those bytes
//      leave it (and make room for the host's sender, whose window our
//      socket's queue closes) only when ACKed and folded, so a flight of at
//      least kPartialWakeMinBytes wakes once a quarter of it is ACKed; a
//      smaller one (a request/response flow) once all of it is, since its
//      host's sender may wait for our socket's ACK (Nagle's tail). No
//      amount of window room wakes it (FERRY_WAKE_ROOM_NONE): a partial
//      ACK with a grown window must not spend the wake-up;
//  * FAST_RETRANSMIT: the third duplicate ACK (BPF counts them);
//  * FIN_ACKED: everything including our FIN acknowledged.
// Each wake-up ends in TcpTranslator::fast_progress(): fold, act, send; a
// send that stops again arms again. Every stop with bytes in flight or a
// closed window thus has a wake-up armed, and the translator's
// retransmission or persist timer, which folds first, bounds any wait on a
// wake-up that did not come (ring full; it counts tcp_fast_timer_folds).
// The invariant is tested by BridgeTest.AbsorbedAcksAloneKeepTheFlowGoing
// (no timer acts while megabytes move on absorbed ACKs only).
// A fold hands the translator the arrival time BPF stamped on the ACK of
// the segment it times (rtt_seq), so its RTT sample is the guest's, not
// the wake-up's delay.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/fastpath_maps.h"
#include "common/status.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"
#include "tcp/tcp_translator.h"

namespace ferry {

class BpfAttachment;

class FastPathBridge final : public TcpFastPath,
                             public TcpFlowObserver,
                             public IoHandler {
 public:
  struct Options {
    // A stalled sender wakes at window / this bytes of room, a drained one
    // at flight / this bytes ACKed (0: any room, every ACK that moves).
    uint32_t wake_divisor = 4;
    // The defaults, with the measurement knob FERRY_WAKE_DIVISOR=N from the
    // environment.
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
  // IoHandler: the event ring is readable.
  void on_io(uint64_t id, uint32_t events) override;

  const Counters& counters() const { return counters_; }
  // One line "name=value ..." of the counters (for -v and measurements).
  std::string counters_line() const;
  bool published(uint32_t slot) const {
    return slot < nflows_ && (flows_[slot].bits & kPublished) != 0;
  }
  // The conn_state index of the translator's slot (valid while published).
  uint32_t map_slot(uint32_t slot) const { return slot < nflows_ ? flows_[slot].map_slot : 0; }
  const ConnMap& conn_map() const { return map_; }

 private:
  // A flow is published once it sent this much (or stalled on the guest's
  // window): a short request/response connection has few pure ACKs to
  // absorb, and publish + retire would cost it two bpf() calls.
  static constexpr uint32_t kPublishMinBytes = 64 * 1024;
  // A drained flow with at least this much in flight wakes once a share of
  // it is ACKed (its host socket's queue is worth freeing early), a smaller
  // one once all of it is.
  static constexpr uint32_t kPartialWakeMinBytes = 64 * 1024;

 public:
  // Ring records acted on per wake-up of the loop (on_io): the loop's other
  // sources get their turn between batches (see on_io).
  static constexpr int kEventsPerWakeup = 64;

 private:
  static bool may_absorb(const TcpConn& c);
  static uint32_t rtt_seq_for(const TcpConn& c, uint32_t snd_max);
  uint32_t flight_share_acked(const TcpConn& c, uint32_t snd_nxt) const;

  static constexpr uint8_t kPublished = 1 << 0;
  static constexpr uint8_t kFin = 1 << 1;     // FIN_PENDING set in the slot
  static constexpr uint8_t kFailed = 1 << 2;  // publish failed: do not retry
  static constexpr uint8_t kDrain = 1 << 3;   // retired: an ACK BPF absorbed while we retired is still read
  static constexpr uint8_t kHasSlot = 1 << 4; // map_slot is this flow's until it leaves the table
  struct Flow {  // all-zero is "not published" (the table is mmap'd, zero pages)
    uint32_t absorbed_seen;  // the slot's acks_absorbed (low bits) at the last fold
    uint32_t gen;
    uint32_t snd_nxt;        // last value stored in the slot
    uint32_t map_slot;       // conn_state index, with kHasSlot
    uint8_t bits;
  };

  bool take_map_slot(uint32_t slot);
  void release_map_slot(uint32_t slot);

  void publish(uint32_t slot, const TcpConn& c, uint32_t snd_max);
  void retire(uint32_t slot, const ferry_conn_key& key);
  void on_event(const ferry_event& ev);

  EventLoop& loop_;
  TcpTranslator& tcp_;
  Options opts_;
  ConnMap map_;
  FastPathEvents events_;
  int events_fd_ = -1;
  Flow* flows_ = nullptr;    // indexed by the translator's slot; nflows_ entries
  uint32_t nflows_ = 0;
  std::vector<uint32_t> free_map_slots_;  // conn_state indexes no flow holds
  std::vector<uint32_t> owner_;           // conn_state index -> translator slot
  Counters counters_;
};

}  // namespace ferry

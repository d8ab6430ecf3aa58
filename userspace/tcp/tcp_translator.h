// TcpTranslator: the guest's TCP connections, each translated to one host
// socket (the passt model). One class defined across files by concern:
//   tcp_translator.cc  theory of operation, dispatch, slots and pools
//   tcp_handshake.cc   listeners, opening and establishing connections
//   tcp_input.cc       guest segments, ACK processing, data to the socket
//   guest_rx_buffers.* staging, out-of-order ring, SACK blocks (no sockets)
//   tcp_output.cc      host bytes, FIN, retransmission and ACKs to the guest
//   tcp_emit.cc        the emitter (every frame leaves there), the window
//   tcp_timers.cc      retransmission, persist, delayed-ACK and idle timers
//   tcp_fastpath.cc    folding what the BPF fast path absorbed
// Connection state and flags are in tcp_conn.h.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ferry/counters.h"
#include "codec/frame.h"
#include "common/flow_log.h"
#include "common/guest_link.h"
#include "common/status.h"
#include "ferry/contract.h"
#include "loop/event_loop.h"
#include "tcp/flow_table.h"
#include "tcp/guest_rx_buffers.h"
#include "tcp/tcp_conn.h"
#include "tcp/tcp_isn.h"
#include "tcp/time_wait.h"
#include "tcp/timer_heap.h"
#include "tapq/tap_queue_estimate.h"

namespace ferry {

// Told about every flow that enters or leaves the table (the BPF fast path
// mirrors the table into its maps through this). Called synchronously; the
// slot number is stable for the flow's life.
class TcpFlowObserver {
 public:
  virtual ~TcpFlowObserver() = default;
  virtual void on_flow_added(uint32_t slot, const ferry_conn_key& key, const TcpConn& c) = 0;
  virtual void on_flow_removed(uint32_t slot, const ferry_conn_key& key) = 0;
};

// The kernel fast path as the translator sees it (implemented in
// userspace/fastpath, which ferry_tcp does not link). progress(), sync() and
// stall() are loads and stores into shared memory; sync() costs one bpf()
// call only when a flow is published or retired.
class TcpFastPath {
 public:
  virtual ~TcpFastPath() = default;
  // What BPF absorbed since the last call: its latest ACK, scaled window
  // and when that ACK arrived (now_ns() clock; 0 when unknown: then it
  // gives no RTT sample). False when nothing new (or not published).
  virtual bool progress(uint32_t slot, uint32_t* ack, uint32_t* window, uint64_t* ack_ns) = 0;
  // The connection has sent (or is about to send) everything below snd_max,
  // FIN included, or is about to ACK up to rcv_nxt: keeps the shared slot
  // current, publishes or retires it.
  virtual void sync(uint32_t slot, const TcpConn& c, uint32_t snd_max) = 0;
  // send_data() stopped on the guest's window: wake the translator once the
  // window reopened enough. True when it is open already.
  virtual bool stall(uint32_t slot, const TcpConn& c) = 0;
  // The host socket holds only bytes in flight: wake the translator once
  // the guest has ACKed enough of them that freeing them matters (a share
  // of a large flight: the host's sender waits for room in our socket's
  // queue; all of a small one: it may wait for our socket's ACK, which
  // comes only when they leave the socket). True when they are ACKed already.
  virtual bool drained(uint32_t, const TcpConn&) { return false; }
};

class TcpTranslator : public IoHandler, public TimerClient {
 public:
  struct Counters {
    FERRY_TCP_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  TcpTranslator(EventLoop& loop, GuestLink& link);
  ~TcpTranslator() override;
  TcpTranslator(const TcpTranslator&) = delete;
  TcpTranslator& operator=(const TcpTranslator&) = delete;

  // Opens the listening sockets for link.config().tcp_forwards.
  Status start();
  // -t auto: listens on host port `port` (all addresses of the families in
  // use) for the guest's same port; the Status says why not (EACCES below
  // the unprivileged port start, EADDRINUSE, EMFILE) when no family opened.
  Status open_forward(uint16_t port);
  // Closes what open_forward(port) opened; connections it accepted go on.
  void close_forward(uint16_t port);
  // One TCP segment from the guest; f.ok() && f.is_tcp().
  void on_guest_segment(const ParsedFrame& f, std::span<const uint8_t> frame);

  const Counters& counters() const { return counters_; }
  size_t connection_count() const { return table_.size() - released_.size(); }
  // The connection in a slot (tests, `ferry conns`); nullptr when free.
  const TcpConn* conn(uint32_t slot) const;
  // Slot of a flow by key, kNoSlot when none.
  uint32_t find(const ferry_conn_key& key) const { return table_.lookup(key); }
  const FlowTable& table() const { return table_; }
  // Batch end (the loop's hook): sends the ACKs collected during the batch
  // and removes the slots released meanwhile from the table.
  void flush_acks();
  // At most one observer; nullptr removes it.
  void set_observer(TcpFlowObserver* o) { observer_ = o; }
  // The BPF fast path (nullptr: none, every ACK comes through here).
  void set_fast_path(TcpFastPath* f) { fast_ = f; }
  // The fast path's wake-up for a flow (an event, or an expiring timer):
  // folds the absorbed ACKs, fast-retransmits after a duplicate run at
  // dup_ack (dup_run), sends what the window allows.
  void fast_progress(uint32_t slot, bool dup_run = false, uint32_t dup_ack = 0);

  void on_io(uint64_t id, uint32_t events) override;
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  // Tunables (tests shorten them).
  struct Timeouts {
    uint64_t connect_ns = 10'000'000'000;
    uint64_t idle_ns = 7200'000'000'000;
    uint64_t half_closed_idle_ns = 60'000'000'000;
    unsigned syn_retries = 5;
    unsigned max_retries = 10;
    // Minimum retransmission timeout of new connections (rto.h); tests
    // whose subject is not a timer raise it so that a stall cannot fire one.
    uint64_t min_rto_ns = RtoEstimator::kMinNs;
    // The tail-loss probe timeout's floor (tcp_timers.cc, probe_deadline):
    // a loaded host's scheduling alone delays an ACK by milliseconds. Tests
    // whose guest ACKs at once raise it so that a stall cannot fire a probe.
    uint64_t min_probe_ns = 10'000'000;
  };
  Timeouts& timeouts() { return timeouts_; }
  // The congestion window new connections start with, in bytes (0: RFC
  // 6928's); tests whose subject is not congestion control raise it.
  void set_initial_window(uint32_t bytes) { initial_window_ = bytes; }
  // Bytes one flow may send the guest per turn of the loop (tcp_output.cc,
  // "Fairness"): four 64 KiB super-segments, about 180 segments of MSS
  // 1460. Tests make it small.
  static constexpr uint32_t kSendBudget = 256 * 1024;
  void set_send_budget(uint32_t bytes) { send_budget_ = std::max<uint32_t>(bytes, 1); }

  // `ferry attach` on a tap: the estimate of how full its queue toward the
  // guest's reader is (tapq/); send_data() writes no more than the room it
  // leaves (tcp_output.cc, "The tap's queue"). nullptr (the default): none.
  void set_tap_queue(TapQueueEstimate* q) { queue_ = q; }
  // The waits for room in the tap's queue: the first retry, its back-off's
  // ceiling, and how long a flow waits at most before one frame goes anyway.
  static constexpr uint64_t kQueueRetryMinNs = 1'000'000;
  static constexpr uint64_t kQueueRetryMaxNs = 16'000'000;
  static constexpr uint64_t kQueueMaxWaitNs = 200'000'000;
  // How long probes and RTOs wait at most for a flow's last frame to leave
  // the tap's queue (from the first time they found it there, snd_una unmoved).
  static constexpr uint64_t kQueueHoldMaxNs = 1'000'000'000;

  // Window-scale shift we offer so that max_window fits 16 bits (<= 14).
  static uint8_t choose_wscale(uint64_t max_window);
  // Builds the flow key as the guest sees a connection.
  static ferry_conn_key make_key(const InetAddr& guest, uint16_t gport, const InetAddr& peer,
                                 uint16_t pport);

 private:
  struct Listener {
    int fd = -1;
    uint16_t host_port = 0;
    uint16_t guest_port = 0;
    bool v6 = false;
  };

  // ---- listeners (tcp_handshake.cc)
  Status open_listeners(const PortForward& fw, uint16_t port, uint16_t gport);

  // ---- dispatch, slots and pools (tcp_translator.cc)
  // Takes a free slot for key and initialises its connection (gen bumped,
  // addresses as the guest sees them); kNoSlot when the table is full.
  uint32_t claim_slot(const ferry_conn_key& key, const InetAddr& guest, uint16_t gport,
                      const InetAddr& peer, uint16_t pport, bool v6);
  // Closes the socket (SO_LINGER {1,0} when linger0: the peer gets a RST),
  // returns the buffers and marks the slot free; the table entry goes at
  // the batch end (reap_released), so a caller only ever checks c.state.
  void release(uint32_t slot, bool linger0, const char* why);  // why: the -v log's reason
  void reap_released();
  // The flow's ends for the -v log.
  static FlowEnds ends_of(const TcpConn& c) {
    return FlowEnds{"tcp", c.guest_addr, c.guest_port, c.peer_addr, c.peer_port, c.inbound};
  }
  bool verbose() const { return link_.config().verbose; }
  void host_event(uint32_t slot, uint32_t events);
  void set_events(uint32_t slot, uint32_t events);
  uint64_t id_of(uint32_t slot) const;
  void maybe_finish(uint32_t slot);
  // A segment of no live flow whose tuple is in TIME-WAIT: true when handled.
  bool segment_time_wait(const ParsedFrame& f, const ferry_conn_key& key, TimeWaitTable::Entry& tw);

  // ---- handshake (tcp_handshake.cc)
  void listener_event(uint32_t index);
  void accept_one(const Listener& l, int fd);
  void pause_listeners(uint64_t now);
  void guest_segment_no_flow(const ParsedFrame& f, const ferry_conn_key& key);
  void open_outbound(const ParsedFrame& f, const ferry_conn_key& key);
  void connect_done(uint32_t slot, uint32_t events);
  void segment_connecting(uint32_t slot, const ParsedFrame& f);
  void segment_syn_rcvd(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  void segment_syn_sent(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  void become_established(uint32_t slot, uint32_t wnd, uint32_t seq, uint32_t ack);
  // The guest's SYN options: MSS toward it, window scaling, SACK.
  void negotiate(TcpConn& c, const TcpOptions& o);
  TcpOptions syn_options(const TcpConn& c) const;
  void send_syn_ack(uint32_t slot);
  void send_syn(uint32_t slot);
  // Refuses a flow the guest opened (no socket, connect failed or timed
  // out): RST acknowledging its SYN and any data in it, slot released.
  void refuse(uint32_t slot, bool linger0, const char* why);

  // ---- input: guest segments to the host socket (tcp_input.cc)
  void segment_established(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  // A RST from the guest (RFC 5961 §3): resets at the exact sequence
  // number, gets a challenge ACK elsewhere in the window.
  void guest_rst(uint32_t slot, uint32_t seq);
  // The only writer of ack-from-guest, guest window, dup-ACK state, the
  // SACK scoreboard and cwnd growth (the BPF fast path absorbs exactly
  // this). arrived_ns: when the ACK arrived (0: unknown, no RTT sample).
  // opts: the segment's options (SACK blocks: the guest holds data behind
  // a hole). Returns false for an ACK of something never sent.
  bool process_ack(uint32_t slot, uint32_t seq, uint32_t ack, uint16_t raw_window,
                   bool pure_ack, uint64_t arrived_ns, const TcpOptions* opts = nullptr);
  void guest_data(uint32_t slot, uint32_t seq, std::span<const uint8_t> payload, bool fin);
  size_t write_to_host(uint32_t slot, std::span<const uint8_t> payload);
  void guest_fin(uint32_t slot);
  bool flush_stage(uint32_t slot);
  bool flush_ooo(uint32_t slot);
  void wrote_to_host(TcpConn& c, size_t n);

  // ---- output: host bytes and ACKs to the guest (tcp_output.cc)
  void send_data(uint32_t slot);
  // The flow spent this turn's send budget with data and window left: it
  // goes on in a later turn (resume_sends), whatever epoll says.
  void defer_send(uint32_t slot);
  // Runs the sends deferred in earlier turns (the timer client's turn).
  void resume_sends();
  void host_drained(uint32_t slot);
  // The bytes of `unit`-sized frames the tap's queue has room for now.
  uint32_t queue_room(const TcpConn& c, uint32_t unit, uint64_t now);
  // send_data() found no room in the tap's queue: the flow waits on the
  // queue's list for the guest's next segments or the retry timer.
  void wait_for_queue(uint32_t slot, uint64_t now);
  // The waiting flows go on the resume list once the queue has room (or
  // waited kQueueMaxWaitNs); by_timer: the retry timer's call (it backs
  // off when there is none).
  void wake_queue_waiters(uint64_t now, bool by_timer);
  // Loss recovery starts at snd_max (rto: after a retransmission
  // timeout): cwnd cut, off the fast path, the lost bytes resent (see
  // tcp_output.cc for the order of the last two).
  void start_recovery(uint32_t slot, bool rto, bool retire_first);
  // Resends the lost bytes recovery has not resent yet, within cwnd.
  void repair(uint32_t slot, bool resend_first = false);
  // repair() resent [first, end): the fence of its last retransmission
  // (rtx_fence, rtx_last) and the recovery probe follow it.
  void record_retransmission(uint32_t slot, uint32_t first, uint32_t end);
  // One loss-recovery event toward the guest, counted once for both its
  // records: the translator's counter and the flow's tally (-v close line).
  enum class RecoveryEvent : uint8_t { retransmit, rto, tlp_probe, fast_recovery, tlp_recovery, lost_retransmit };
  void count_recovery_event(TcpConn& c, RecoveryEvent e);
  // Resends len bytes at seq as one frame; the bytes resent (0: none).
  uint32_t retransmit_range(uint32_t slot, uint32_t seq, uint32_t len);
  // In flight by RFC 6675's count, and the room cwnd leaves beside it.
  uint32_t pipe(const TcpConn& c) const;
  uint32_t congestion_room(const TcpConn& c) const;
  // Payload of one frame: an MSS, or a super-segment with offloads.
  uint32_t send_unit(const TcpConn& c) const;
  // Every byte of the host's data went out (the FIN may follow).
  bool all_sent(const TcpConn& c) const;
  void send_fin(uint32_t slot);
  void mark_fin(uint32_t slot, uint32_t fin_seq);
  void send_window_update(uint32_t slot);
  void send_ack_now(uint32_t slot);
  void send_dup_ack(uint32_t slot);
  void queue_ack(uint32_t slot);
  void ack_later(uint32_t slot);
  void ack_sent(uint32_t slot);
  // RST to the guest and to the host peer; why: the -v log's reason, err:
  // the host socket's error (0: none).
  void reset_both(uint32_t slot, const char* why, int err = 0);

  // ---- the emitter: every frame to the guest (tcp_emit.cc)
  // A segment from the flow's peer to the guest (addresses and ports).
  TcpSegment segment_for(const TcpConn& c) const;
  // Builds seg into buf and sends it. With sync_to, the fast path's slot is
  // synced first to cover everything sent through it (and rcv_nxt).
  bool emit(uint32_t slot, const TcpSegment& seg, std::span<uint8_t> buf,
            std::optional<uint32_t> sync_to = std::nullopt);
  // One control segment (no payload) for a flow; sync: the fast path's slot
  // first (an ACK of new guest data, our FIN).
  bool emit_control(uint32_t slot, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t window,
                    const TcpOptions* opts = nullptr, bool sync = false);
  void send_rst_for(const ParsedFrame& f);
  void send_ack_for(const ParsedFrame& f, uint32_t seq, uint32_t ack, uint16_t window);
  // Keeps the fast path's slot current (snd_max sent, rcv_nxt, FIN,
  // recovery); called by emit() and when an ACK or loss recovery changed
  // what BPF may absorb.
  void sync_fast_path(uint32_t slot, uint32_t sent_end);
  // The window to advertise (raw, scaled down), moving rcv_adv; then the
  // EPOLLOUT interest that goes with it (update_out_interest).
  uint16_t window_to_advertise(uint32_t slot);
  uint32_t window_for(const TcpConn& c) const;
  void read_sndbuf(TcpConn& c);
  void update_out_interest(uint32_t slot);

  // ---- timers (tcp_timers.cc)
  void handle_timer(uint32_t slot, uint64_t now);
  void rtx_timer(uint32_t slot, uint64_t now);
  // The tail-loss probe's deadline for the flow as it is now (0: none).
  uint64_t probe_deadline(const TcpConn& c, uint64_t now) const;
  // The probe timer expired: one new segment or the last one again.
  void loss_probe(uint32_t slot, uint64_t now);
  // ... in fast recovery: what went last (the pass's last retransmission,
  // or new data sent after it) again.
  void recovery_probe(uint32_t slot, uint64_t now);
  // A fast recovery's retransmission left: its probe waits a PTO from now.
  void rearm_recovery_probe(uint32_t slot);
  // Everything up to the probe is ACKed: its episode ends (dsack: the
  // guest reported the probe a duplicate); flight: before this ACK.
  void probe_answered(TcpConn& c, uint32_t flight, bool dsack);
  void update_timer(uint32_t slot);
  // The flow's last data frame is provably still unread in the tap's queue
  // (and snd_una has not stood still for kQueueHoldMaxNs of such waits): a
  // probe or a retransmission now would only queue up behind it (counted).
  bool tail_still_queued(uint32_t slot, uint64_t now);

  // ---- BPF fast path glue (tcp_fastpath.cc)
  bool fast_fold(uint32_t slot);
  // send_data() stopped on the guest's window: true when BPF has absorbed
  // ACKs that reopened it already (folded); else it wakes us later.
  bool fast_stall(uint32_t slot);

  EventLoop& loop_;
  GuestLink& link_;
  uint8_t tag_ = 0;
  uint32_t capacity_;
  FlowTable table_;
  TimeWaitTable time_wait_;  // flows we closed first, after their slot is freed
  TimerHeap timers_;
  IsnGenerator isn_;
  TcpConn* conns_ = nullptr;  // capacity_ entries, mmap'd
  std::vector<Listener> listeners_;      // fd -1: a slot close_forward() freed
  std::vector<uint32_t> free_listeners_;  // ... those slots, for the next open_forward()
  Counters counters_;
  Timeouts timeouts_;
  uint8_t our_shift_ = 7;
  uint32_t max_window_ = 0;
  uint32_t initial_window_ = 0;  // 0: RFC 6928's (set_initial_window)
  uint32_t send_budget_ = kSendBudget;
  uint32_t probe_room_ = 0;  // bytes a loss probe may send beyond cwnd (once)

  // Frames toward the guest: a fixed pool, one batch of MSS-sized segments.
  std::vector<uint8_t> frame_pool_;
  size_t frame_stride_ = 0;
  size_t frame_count_ = 0;
  std::vector<iovec> iov_;
  std::vector<uint8_t> scratch_;  // control frames
  // The port completes checksums and takes super-segments (see emit()).
  bool offloads_ = false;

  GuestRxBuffers rx_;               // staging and out-of-order data from the guest
  std::vector<uint32_t> ack_list_;  // slots with ack_pending
  std::vector<uint32_t> released_;  // slots released, in the table until the batch end
  // Sends stopped by the per-turn budget: (slot, gen), each flow at most
  // once (resume_queued); resume_run_ is the list being run.
  std::vector<std::pair<uint32_t, uint32_t>> resume_, resume_run_;
  uint32_t turn_ = 1;  // counts the loop's turns (batch ends): the send budget's clock
  TcpFlowObserver* observer_ = nullptr;
  TcpFastPath* fast_ = nullptr;
  // The tap's queue (set_tap_queue): flows waiting for room, (slot, gen),
  // each at most once (queue_waiting); the retry timer (0: off) and its
  // back-off; a guest segment arrived in this batch.
  TapQueueEstimate* queue_ = nullptr;
  std::vector<std::pair<uint32_t, uint32_t>> queue_wait_;
  uint64_t queue_retry_at_ = 0;
  uint64_t queue_backoff_ns_ = kQueueRetryMinNs;
  bool guest_heard_ = false;
  // Listeners pause (no EPOLLIN) after accept() ran out of descriptors, so a
  // level-triggered listener cannot spin; they resume at this time.
  uint64_t listeners_resume_at_ = 0;
};

}  // namespace ferry

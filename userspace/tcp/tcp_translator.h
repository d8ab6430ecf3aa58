// TcpTranslator: the guest's TCP connections, each translated to one host
// socket (the passt model). See tcp_translator.cc for the theory of
// operation, the state table and the invariants.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/frame.h"
#include "common/flow_log.h"
#include "common/guest_link.h"
#include "ferry/contract.h"
#include "loop/event_loop.h"
#include "tcp/flow_table.h"
#include "tcp/rto.h"
#include "tcp/tcp_isn.h"
#include "tcp/timer_heap.h"

namespace ferry {

// Connection states. Outbound: CONNECTING -> SYN_RCVD -> ESTABLISHED;
// inbound: SYN_SENT -> ESTABLISHED. Closing is tracked by flags on top of
// ESTABLISHED (each direction closes on its own).
enum class TcpState : uint8_t {
  free = 0,
  connecting,   // guest SYN seen, host connect() in progress
  syn_rcvd,     // SYN-ACK sent to the guest, waiting for its ACK
  syn_sent,     // inbound: SYN sent to the guest, waiting for SYN-ACK
  established,  // data both ways; half-close via flags
};
const char* to_string(TcpState s);

// TcpConn::flags bits (public: `ferry conns` and the fast-path mirror read them).
namespace tcpconn {
inline constexpr uint8_t kGuestFin = 1 << 0;  // FIN received from the guest
inline constexpr uint8_t kShutWr = 1 << 1;    // shutdown(SHUT_WR) done on the host socket
inline constexpr uint8_t kHostEof = 1 << 2;   // host peer closed its side
inline constexpr uint8_t kFinSent = 1 << 3;   // our FIN went to the guest (fin_seq)
inline constexpr uint8_t kFinAcked = 1 << 4;  // ... and the guest ACKed it
inline constexpr uint8_t kReadable = 1 << 5;  // host socket may have unpeeked data
inline constexpr uint8_t kWscale = 1 << 6;    // window scaling negotiated
inline constexpr uint8_t kSack = 1 << 7;      // SACK-permitted both ways
}  // namespace tcpconn

// Per-connection state. All-zero is a free slot (the array is mmap'd).
struct TcpConn {
  InetAddr guest_addr, peer_addr;  // as the guest sees them
  uint64_t bytes_to_host, bytes_to_guest;  // payload each way, first transmissions (the -v log)
  uint16_t guest_port, peer_port;  // host order
  TcpState state;
  bool v6;
  bool inbound;
  uint8_t flags;  // tcpconn::k*
  int fd;
  uint32_t gen;     // incremented per use of the slot, guards stale epoll events
  uint32_t armed;   // epoll events currently requested

  // Toward the guest (we send). Sequence numbers past the SYN map 1:1 to
  // bytes in the host socket's receive queue: snd_una is its head.
  uint32_t iss, snd_una, snd_nxt, snd_max;
  uint32_t snd_wnd;  // guest's window, scaled
  uint32_t snd_wl1, snd_wl2;
  uint32_t fin_seq;  // sequence number of our FIN when kfFinSent
  uint32_t recover;  // NewReno recovery point
  uint16_t mss;      // segment size toward the guest
  uint8_t snd_shift;  // guest's window scale
  uint8_t rcv_shift;  // ours
  uint8_t dupacks;
  uint8_t retries;
  bool in_recovery;
  bool rtt_active;
  uint32_t rtt_seq;
  uint64_t rtt_start;
  RtoEstimator rto;

  // From the guest (we receive).
  uint32_t irs, rcv_nxt;
  uint32_t rcv_adv;  // right edge of the window we advertised
  uint16_t syn_payload;  // bytes in the guest's SYN: a RST refusing it ACKs them (RFC 9293 §3.10.7.1)

  // Partial-write staging (see the .cc): a pool chunk index + 1, 0 = none.
  uint32_t stage;
  uint32_t stage_off, stage_len;

  // Out-of-order reassembly: a pool chunk index + 1 (0 = none).
  uint32_t ooo;

  uint64_t rtx_at;      // retransmission / persist / handshake timer, 0 = off
  uint64_t state_at;    // connect or idle timeout, 0 = off
  uint64_t ack_at;      // delayed ACK of guest data, 0 = off
  uint64_t last_activity;
  uint32_t rcv_acked;   // the ACK number of the last segment we sent the guest
  bool ack_pending;     // queued for the batch-end ACK
  bool delack_off;      // a delayed ACK expired unanswered: ACK at once
  uint64_t rcv_data_at;  // when in-order guest data last arrived

  // The host socket's free send-buffer space as last read (SO_MEMINFO) less
  // what was written since: a conservative estimate that spares a syscall
  // per ACK. Read again once half of it is used, or when not sndbuf_known.
  int64_t sndbuf_free;
  int64_t sndbuf_read;   // free space at that reading
  int64_t sndbuf_size;   // the socket's send buffer (SK_MEMINFO_SNDBUF) at that reading
  bool sndbuf_known;     // false: the next window_to_advertise() reads SO_MEMINFO
  bool sndbuf_writable;  // the kernel's writability at that reading
};

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
  // send_data() stopped on the guest's window; true when it is open already.
  virtual bool stall(uint32_t slot, const TcpConn& c) = 0;
  // send_data() emptied the host socket with bytes in flight: wake the
  // translator once the guest has ACKed them all (the host's sender may be
  // waiting for our socket's ACK, which comes only when they leave the
  // socket). True when they are ACKed already.
  virtual bool drained(uint32_t, const TcpConn&) { return false; }
};

class TcpTranslator : public IoHandler, public TimerClient {
 public:
  struct Counters {
    uint64_t conns_outbound = 0;     // guest SYNs that got a host socket
    uint64_t conns_inbound = 0;      // accepted host connections
    uint64_t conns_established = 0;
    uint64_t conns_closed = 0;       // slots released, any reason
    uint64_t limit_rejected = 0;     // table full: RST to the guest / host client
    uint64_t connect_failed = 0;     // refused, unreachable, timed out
    uint64_t rst_to_guest = 0;
    uint64_t rst_from_guest = 0;
    uint64_t rst_unknown_flow = 0;   // RSTs for segments of no flow
    uint64_t bad_ack_rst = 0;        // RST for an unacceptable ACK in a SYN state
    uint64_t challenge_acks = 0;
    uint64_t dropped_segments = 0;   // out of window, bogus, malformed for TCP
    uint64_t ooo_segments = 0;       // out of order from the guest (dup ACK sent)
    uint64_t ooo_kept_bytes = 0;     // ... of which kept for reassembly
    uint64_t ooo_dropped = 0;        // ... dropped (pool, chunk or ranges exhausted)
    uint64_t bytes_to_host = 0;
    uint64_t bytes_to_guest = 0;
    uint64_t segments_to_guest = 0;
    uint64_t retransmits = 0;        // segments resent (RTO, fast, partial ACK)
    uint64_t fast_retransmits = 0;
    uint64_t rto_expired = 0;
    uint64_t zero_window_probes = 0;
    uint64_t partial_writes = 0;     // host socket took less than offered
    uint64_t staged_bytes = 0;       // bytes that went through staging
    uint64_t stage_exhausted = 0;    // partial write with no staging chunk free
    uint64_t timeouts = 0;           // connections ended by a state timeout
    uint64_t guest_tx_dropped = 0;   // send_to_guest() returned false
    uint64_t fd_exhausted = 0;       // socket()/accept() failed for lack of descriptors
  };

  TcpTranslator(EventLoop& loop, GuestLink& link);
  ~TcpTranslator() override;
  TcpTranslator(const TcpTranslator&) = delete;
  TcpTranslator& operator=(const TcpTranslator&) = delete;

  // Opens the listening sockets for link.config().tcp_forwards.
  bool start(std::string* error);
  // One TCP segment from the guest; f.ok() && f.is_tcp().
  void on_guest_segment(const ParsedFrame& f, std::span<const uint8_t> frame);
  // A guest segment to a destination the translator refuses: a RST, as for
  // a segment of no flow.
  void refuse(const ParsedFrame& f) { send_rst_for(f); }

  const Counters& counters() const { return counters_; }
  size_t connection_count() const { return table_.size(); }
  // The connection in a slot (tests, `ferry conns`); nullptr when free.
  const TcpConn* conn(uint32_t slot) const;
  // Slot of a flow by key, kNoSlot when none.
  uint32_t find(const ferry_conn_key& key) const { return table_.lookup(key); }
  const FlowTable& table() const { return table_; }
  // Sends ACKs collected during a batch (also called by the loop's batch-end hook).
  void flush_acks();
  // At most one observer; nullptr removes it.
  void set_observer(TcpFlowObserver* o) { observer_ = o; }
  // The BPF fast path (nullptr: none, every ACK comes through here).
  void set_fast_path(TcpFastPath* f) { fast_ = f; }
  // The fast path's wake-up for a flow (an event or its activity scan):
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
  };
  Timeouts& timeouts() { return timeouts_; }

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

  // ---- guest segments
  void guest_segment_no_flow(const ParsedFrame& f, const ferry_conn_key& key);
  void open_outbound(const ParsedFrame& f, const ferry_conn_key& key);
  void segment_connecting(uint32_t slot, const ParsedFrame& f);
  void segment_syn_rcvd(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  void segment_syn_sent(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  void become_established(uint32_t slot, uint32_t wnd, uint32_t seq, uint32_t ack);
  void segment_established(uint32_t slot, const ParsedFrame& f, std::span<const uint8_t> frame);
  // The only writer of ack-from-guest, guest window and dup-ACK state (the
  // future fast path owns exactly this). Returns false for an ACK of
  // something never sent.
  bool process_ack(uint32_t slot, uint32_t seq, uint32_t ack, uint16_t raw_window,
                   bool pure_ack, uint64_t arrived_ns);
  void guest_data(uint32_t slot, uint32_t seq, std::span<const uint8_t> payload, bool fin);

  // ---- host socket events
  void host_event(uint32_t slot, uint32_t events);
  void connect_done(uint32_t slot, uint32_t events);
  void listener_event(uint32_t index);
  void accept_one(const Listener& l, int fd);

  // ---- sending to the guest
  void send_data(uint32_t slot);
  void host_drained(uint32_t slot);
  bool retransmit_one(uint32_t slot);
  void send_fin(uint32_t slot);
  void mark_fin(uint32_t slot, uint32_t fin_seq);
  bool send_segment(const TcpConn& c, uint8_t flags, uint32_t seq, uint32_t ack,
                    uint16_t window, const TcpOptions* opts = nullptr);
  void send_window_update(uint32_t slot);
  void send_ack_now(uint32_t slot);
  void send_dup_ack(uint32_t slot);
  bool sack_blocks(uint32_t slot, TcpOptions* o) const;
  void queue_ack(uint32_t slot);
  void ack_later(uint32_t slot);
  void ack_sent(uint32_t slot);
  void send_rst_for(const ParsedFrame& f);
  uint16_t window_to_advertise(uint32_t slot);
  void wrote_to_host(TcpConn& c, size_t n);
  void send_syn_ack(uint32_t slot);
  void send_syn(uint32_t slot);
  TcpOptions syn_options(const TcpConn& c) const;

  // ---- writing guest data to the host
  bool flush_stage(uint32_t slot);
  void ooo_store(uint32_t slot, uint32_t sq, std::span<const uint8_t> payload);
  bool flush_ooo(uint32_t slot);
  void ooo_release(uint32_t slot);
  static constexpr unsigned kOooIntervals = 256;
  static constexpr size_t kOooChunk = size_t{1} << 22;  // 4 MiB ring, a power of two
  struct OooMeta {
    uint16_t n = 0;
    uint32_t last = 0;  // start of the most recent segment kept (SACK order)
    uint32_t iv[kOooIntervals][2];  // sorted, disjoint [start, end)
  };

  // ---- timers and teardown
  void handle_timer(uint32_t slot, uint64_t now);
  void update_timer(uint32_t slot);
  void set_events(uint32_t slot, uint32_t events);
  // RST to the guest and to the host peer; why: the -v log's reason, err:
  // the host socket's error (0: none).
  void reset_both(uint32_t slot, const char* why, int err = 0);
  // Closes the socket, frees the slot; why: the -v log's reason.
  void release(uint32_t slot, bool linger0, const char* why);
  // The flow's ends for the -v log.
  static FlowEnds ends_of(const TcpConn& c) {
    return FlowEnds{"tcp", c.guest_addr, c.guest_port, c.peer_addr, c.peer_port, c.inbound};
  }
  bool verbose() const { return link_.config().verbose; }
  void maybe_finish(uint32_t slot);
  uint64_t id_of(uint32_t slot) const;

  EventLoop& loop_;
  GuestLink& link_;
  uint8_t tag_ = 0;
  uint32_t capacity_;
  FlowTable table_;
  TimerHeap timers_;
  IsnGenerator isn_;
  TcpConn* conns_ = nullptr;  // capacity_ entries, mmap'd
  std::vector<Listener> listeners_;
  Counters counters_;
  Timeouts timeouts_;
  uint8_t our_shift_ = 7;
  uint32_t max_window_ = 0;

  // Frames toward the guest: a fixed pool, one batch of MSS-sized segments.
  std::vector<uint8_t> frame_pool_;
  size_t frame_stride_ = 0;
  size_t frame_count_ = 0;
  std::vector<iovec> iov_;
  std::vector<uint8_t> scratch_;  // control frames

  // Staging chunks for the tail of a partially written guest segment.
  uint8_t* stage_pool_ = nullptr;
  std::vector<uint32_t> stage_free_;
  // Reassembly chunks for out-of-order guest data.
  uint8_t* ooo_pool_ = nullptr;
  std::vector<uint32_t> ooo_free_;
  std::vector<OooMeta> ooo_meta_;

  std::vector<uint32_t> ack_list_;  // slots with ack_pending
  TcpFlowObserver* observer_ = nullptr;
  TcpFastPath* fast_ = nullptr;
  bool fast_fold(uint32_t slot);
  // The port completes checksums and takes super-segments (see send_data_frame).
  bool offloads_ = false;
  // Largest super-segment payload: an IPv4 packet's 65535 bytes less headers.
  static constexpr uint32_t kMaxSuperSegment = 65535 - 20 - 20;
  bool send_data_frame(const TcpConn& c, uint8_t* frame, size_t len, size_t hdr, size_t payload);
  // Listeners pause (no EPOLLIN) after accept() ran out of descriptors, so a
  // level-triggered listener cannot spin; they resume at this time.
  uint64_t listeners_resume_at_ = 0;
  void pause_listeners(uint64_t now);
};

}  // namespace ferry

// TcpConn: one guest TCP connection as the translator keeps it, its state
// and its flag bits. Public because `ferry conns`, the fast-path bridge and
// the kernel view's mirror read it; only TcpTranslator writes it.
//
// Theory of operation: a connection lives in one slot of an mmap'd array
// indexed like the FlowTable. A slot is free when its state is
// TcpState::free; everything else in a free slot is value-initialised, but
// gen, which counts the slot's uses so that an epoll event of an earlier
// connection in the same slot is recognised and ignored. Sequence numbers
// toward the guest map 1:1 onto the host socket's receive queue (snd_una is
// its head); see tcp_translator.cc for the states and what moves them.
#pragma once

#include <cstdint>

#include "codec/addr.h"
#include "tcp/congestion.h"
#include "tcp/rto.h"

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
// TcpConn::tlp: the tail-loss probe outstanding (tcp_timers.cc).
inline constexpr uint8_t kTlpNone = 0;
inline constexpr uint8_t kTlpNewData = 1;     // the probe was one new segment
inline constexpr uint8_t kTlpRetransmit = 2;  // ... the last segment again
inline constexpr uint8_t kTlpRecovery = 3;    // ... in fast recovery: what went last, again
}  // namespace tcpconn

// One connection's loss-recovery events toward the guest (the -v close
// line; the translator's counters of the same names sum them over flows).
struct TcpRecoveryTally {
  uint32_t retransmits;       // segments resent by repair, a probe, or the RTO
  uint16_t rto_expired;       // retransmission timeouts
  uint16_t tlp_probes;        // tail-loss probes sent
  uint16_t fast_recoveries;   // recoveries begun by duplicates or SACK
  uint16_t tlp_recoveries;    // ... or by a probe's answer
  uint16_t lost_retransmits;  // retransmissions found lost again
};

// Per-connection state (a free slot: state free, the rest zero but gen).
struct TcpConn {
  InetAddr guest_addr, peer_addr;  // as the guest sees them
  uint64_t bytes_to_host, bytes_to_guest;  // payload each way, first transmissions (the -v log)
  uint16_t guest_port, peer_port;  // host order
  TcpState state;
  bool v6;
  bool inbound;
  bool closed_first;  // our FIN went before the guest's came: TIME-WAIT at the end (time_wait.h)
  uint8_t flags;  // tcpconn::k*
  int fd;
  uint32_t gen;     // incremented per use of the slot, guards stale epoll events
  uint32_t armed;   // epoll events currently requested (EPOLLOUT: until an edge spends it, host_event)

  // Toward the guest (we send). Sequence numbers past the SYN map 1:1 to
  // bytes in the host socket's receive queue: snd_una is its head.
  uint32_t iss, snd_una, snd_nxt, snd_max;
  uint32_t snd_wnd;  // guest's window, scaled
  uint32_t max_snd_wnd;  // the largest window the guest ever offered (RFC 5961 5.2's MAX.SND.WND)
  uint32_t snd_wl1, snd_wl2;
  uint32_t fin_seq;  // sequence number of our FIN when kFinSent
  uint32_t recover;  // loss recovery point: snd_max when it began
  uint32_t rtx_nxt;  // recovery: next byte considered for retransmission
  uint32_t lost_end; // recovery: unSACKed bytes in [rtx_nxt, lost_end) are lost, not yet resent
  uint32_t rtx_fence;  // recovery: snd_max when the last retransmission left (rtx_fenced),
  uint32_t rtx_last;   // ... and its first byte; a SACK above the fence or of that byte:
  bool rtx_fenced;     // ... the retransmissions below rtx_nxt not SACKed are lost
  uint16_t mss;      // segment size toward the guest
  uint8_t snd_shift;  // guest's window scale
  uint8_t rcv_shift;  // ours
  uint8_t dupacks;
  uint8_t retries;
  bool in_recovery;
  bool rto_recovery;  // the recovery began with a retransmission timeout
  uint8_t tlp;        // tcpconn::kTlp*: a tail-loss probe's episode lasts until
  uint32_t tlp_seq;   // ... everything up to tlp_end is ACKed; the probe's
  uint32_t tlp_end;   // first byte, and snd_max behind it
  bool rtt_active;
  uint32_t rtt_seq;
  uint64_t rtt_start;
  RtoEstimator rto;
  CongestionWindow cc;    // how much may be in flight (congestion.h)
  SackScoreboard sacks;   // what the guest holds above snd_una

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
  uint64_t probe_at;    // tail-loss probe (RFC 8985 7), 0 = off
  uint64_t last_activity;
  uint32_t rcv_acked;   // the ACK number of the last segment we sent the guest
  bool ack_pending;     // queued for the batch-end ACK
  bool delack_off;      // a delayed ACK expired unanswered: ACK at once
  uint64_t rcv_data_at;  // when in-order guest data last arrived

  // The send budget of one loop turn (tcp_output.cc, "Fairness").
  uint32_t budget_turn;  // the translator's turn that budget_sent counts
  uint32_t budget_sent;  // bytes send_data() sent the guest in that turn
  bool resume_queued;    // on the resume list: the budget stopped a send with more to go
  // The tap's queue toward the guest (tcp_output.cc, "The tap's queue").
  bool queue_waiting;    // on the queue's wait list: no room for the next frame
  uint64_t queue_since;  // when the flow began waiting for room (0: not waiting)
  uint64_t queue_mark;   // the queue's mark of the flow's last data frame (TapQueueEstimate::Mark; 0: none)
  uint32_t queue_epoch;  // ... and its epoch
  uint32_t queue_hold_una;   // snd_una when probes and RTOs began waiting for that frame,
  uint64_t queue_hold_since; // ... and when (0: they do not wait)

  // The host socket's free send-buffer space as last read (SO_MEMINFO) less
  // what was written since: a conservative estimate that spares a syscall
  // per ACK. Read again once half of it is used, or when not sndbuf_known.
  int64_t sndbuf_free;
  int64_t sndbuf_read;   // free space at that reading
  int64_t sndbuf_size;   // the socket's send buffer (SK_MEMINFO_SNDBUF) at that reading
  bool sndbuf_known;     // false: the next window_to_advertise() reads SO_MEMINFO
  bool sndbuf_writable;  // the kernel's writability at that reading

  TcpRecoveryTally recovery;  // for the -v close line
};

}  // namespace ferry

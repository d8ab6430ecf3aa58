// TCP translator, the emitter: every frame toward the guest leaves through
// emit(), and the window each one advertises is computed here.
//
// Theory of operation
// -------------------
// emit() builds one segment into a buffer (a prebuilt data frame from the
// frame pool, whose payload the host socket was peeked into, or the scratch
// buffer for control segments) and hands it to the guest link: with port
// offloads and a partial checksum, as a frame whose checksum the port
// completes and, above the MSS, a super-segment the guest's stack takes
// whole (TxOffload::tcp, the port's encoding). Before a frame that tells
// the guest something new leaves (the first frame of a batch of new data,
// our FIN, an ACK of guest data), emit() syncs the BPF fast path's slot to
// cover everything sent (snd_max, our FIN) and rcv_nxt: BPF must never
// absorb an ACK of bytes it does not know were sent, and absorbs only ACKs
// at the rcv_nxt we ACKed. Frames that change neither (SYNs, RSTs,
// retransmissions, duplicate ACKs, zero-window probes) leave the slot
// alone: a sync also re-decides whether the activity scan watches the flow,
// and a sender stalled on a zero window must stay watched (measured: a
// probe that synced un-watched it, and a lost window update then waited for
// the backed-off persist timer, 25 s and more, in e2e tcp_loss).
// This file holds the only call of TcpFastPath::sync(); process_ack() and
// start_recovery() also reach it (sync_fast_path) when an ACK or loss
// changes what BPF may absorb.
//
// The window (window_to_advertise) is the free space of the host socket's
// send buffer (SO_MEMINFO: sndbuf - wmem_queued, less 1/8 for skb
// overhead), estimated between readings (sndbuf_free, used up by every
// write): SO_MEMINFO is read only when the estimate has used up half of the
// last reading or is down to a few segments, so a request/response flow
// reads it once per many transactions, a bulk upload every half buffer, and
// a small or closed window is always fresh. Staged bytes and a chunk's
// worth of room are held back; the right edge never moves left.
// Receiver-side silly-window avoidance (RFC 9293 3.8.6.2.2, RFC 1122
// 4.2.3.3): the right edge moves only by at least min(MSS, buffer / 2),
// where the buffer is the largest window we offer this connection, unless
// the open window is below that step and the socket is writable by the
// kernel's measure (then no write-space wake-up will come: what the socket
// can take now is offered now). The largest window is capped at 7/12 of
// the socket's send buffer: the kernel's wake-up comes once free space
// reaches half the queued bytes (a third of the buffer), of which we offer
// 7/8, i.e. 7/24 of the buffer, which is half of 7/12. A sender sends at
// most half the largest window it has seen per segment (RFC 1122 4.2.3.4,
// Linux's tcp_bound_to_half_wnd), so whatever the wake-up reopens is
// always enough for its next segment: a window below the guest's MSS (a
// 1500-MTU route's 60 KB socket under MSS 65480) is offered, never zeroed.
// window_for() is the pure
// computation; the EPOLLOUT interest that goes with it (wanted exactly
// while the socket is not writable by the kernel's own measure, or data is
// staged, so that its write-space wake-up brings a window update) is set
// apart, by update_out_interest().
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <algorithm>

#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

namespace {

// A segment from (addr, port) to (addr, port) between our MAC and the guest's.
TcpSegment segment_between(const GuestLink& link, const InetAddr& from, uint16_t fport,
                           const InetAddr& to, uint16_t tport) {
  TcpSegment seg;
  seg.ip.eth_src = link.our_mac();
  seg.ip.eth_dst = link.guest_mac();
  seg.ip.src = from;
  seg.ip.dst = to;
  seg.sport = fport;
  seg.dport = tport;
  return seg;
}

}  // namespace

// The flow's peer speaking to the guest.
TcpSegment TcpTranslator::segment_for(const TcpConn& c) const {
  return segment_between(link_, c.peer_addr, c.peer_port, c.guest_addr, c.guest_port);
}

// The one way out for a frame to the guest.
bool TcpTranslator::emit(uint32_t slot, const TcpSegment& seg, std::span<uint8_t> buf,
                         std::optional<uint32_t> sync_to) {
  if (sync_to && slot != kNoSlot) sync_fast_path(slot, *sync_to);
  size_t len = build_tcp_frame(buf, seg);
  if (len == 0) return false;
  bool sent;
  if (seg.partial_checksum && slot != kNoSlot) {
    const TcpConn& c = conns_[slot];
    size_t hdr = len - seg.payload.size();
    TxOffload off = TxOffload::tcp(kEthHeaderLen + (c.v6 ? kIpv6HeaderLen : kIpv4HeaderLen), hdr,
                                   c.v6, seg.payload.size(), c.mss);
    iovec v{buf.data(), len};
    sent = link_.send_to_guest_offloaded(&v, 1, off);
  } else {
    sent = link_.send_to_guest(std::span<const uint8_t>(buf.data(), len));
  }
  if (!sent) counters_.guest_tx_dropped++;
  if (sent && queue_ && slot != kNoSlot && (!seg.payload.empty() || (seg.flags & tcpflag::kFin))) {
    // Where it stands in the tap's queue (tcp_timers.cc, tail_still_queued).
    const TapQueueEstimate::Mark m = queue_->mark();
    conns_[slot].queue_mark = m.index;
    conns_[slot].queue_epoch = m.epoch;
  }
  return sent;
}

// A segment without payload: it occupies sequence space only with SYN or
// FIN, which a synced fast-path slot must then cover.
bool TcpTranslator::emit_control(uint32_t slot, uint8_t flags, uint32_t sq, uint32_t ack,
                                 uint16_t window, const TcpOptions* opts, bool sync) {
  const TcpConn& c = conns_[slot];
  TcpSegment seg = segment_for(c);
  seg.seq = sq;
  seg.ack = ack;
  seg.flags = flags;
  seg.window = window;
  if (opts) seg.opts = *opts;
  std::span<uint8_t> buf(scratch_.data(), scratch_.size());
  if (!sync) return emit(slot, seg, buf);
  uint32_t sent_end = c.snd_max;
  if (flags & (tcpflag::kSyn | tcpflag::kFin)) sent_end = seq::max(c.snd_max, sq + 1);
  return emit(slot, seg, buf, sent_end);
}

// RST for a segment that belongs to no flow (RFC 9293 §3.10.7.1).
void TcpTranslator::send_rst_for(const ParsedFrame& f) {
  if (f.tcp.flags & tcpflag::kRst) return;
  TcpSegment seg = segment_between(link_, f.dst, f.tcp.dport, f.src, f.tcp.sport);
  if (f.tcp.flags & tcpflag::kAck) {
    seg.flags = tcpflag::kRst;
    seg.seq = f.tcp.ack;
  } else {
    uint32_t len = static_cast<uint32_t>(f.tcp.payload_len) + ((f.tcp.flags & tcpflag::kSyn) ? 1 : 0) +
                   ((f.tcp.flags & tcpflag::kFin) ? 1 : 0);
    seg.flags = tcpflag::kRst | tcpflag::kAck;
    seg.ack = f.tcp.seq + len;
  }
  emit(kNoSlot, seg, std::span<uint8_t>(scratch_.data(), scratch_.size()));
}

// An ACK for a segment of no live flow (a flow in TIME-WAIT, time_wait.h).
void TcpTranslator::send_ack_for(const ParsedFrame& f, uint32_t sq, uint32_t ack, uint16_t window) {
  TcpSegment seg = segment_between(link_, f.dst, f.tcp.dport, f.src, f.tcp.sport);
  seg.flags = tcpflag::kAck;
  seg.seq = sq;
  seg.ack = ack;
  seg.window = window;
  emit(kNoSlot, seg, std::span<uint8_t>(scratch_.data(), scratch_.size()));
}

// The fast path's slot follows the connection (TcpFastPath::sync).
void TcpTranslator::sync_fast_path(uint32_t slot, uint32_t sent_end) {
  if (fast_) fast_->sync(slot, conns_[slot], sent_end);
}

// ---- the advertised window -----------------------------------------------------------

// The window (raw, scaled down) for the next segment; the right edge
// (rcv_adv) moves right only. The EPOLLOUT interest follows.
uint16_t TcpTranslator::window_to_advertise(uint32_t slot) {
  TcpConn& c = conns_[slot];
  read_sndbuf(c);
  uint32_t win = window_for(c);
  uint32_t unit = 1u << c.rcv_shift;
  uint32_t raw = std::min<uint32_t>((win + unit - 1) >> c.rcv_shift, 65535);
  uint32_t edge = c.rcv_nxt + (raw << c.rcv_shift);
  if (seq::gt(edge, c.rcv_adv)) c.rcv_adv = edge;
  update_out_interest(slot);
  return static_cast<uint16_t>(raw);
}

// Reads SO_MEMINFO when the estimate is unknown or used up (see above).
void TcpTranslator::read_sndbuf(TcpConn& c) {
  const int64_t reread_below = std::max<int64_t>(c.sndbuf_read / 2, int64_t{4} * c.mss);
  if (c.fd < 0 || (c.sndbuf_known && c.sndbuf_free >= reread_below)) return;
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t ml = sizeof(mem);
  if (getsockopt(c.fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) != 0) return;
  int64_t sndbuf = mem[SK_MEMINFO_SNDBUF];
  int64_t queued = mem[SK_MEMINFO_WMEM_QUEUED];
  int64_t free_space = sndbuf - queued;
  c.sndbuf_writable = free_space >= queued / 2;
  free_space -= free_space / 8;
  c.sndbuf_free = c.sndbuf_read = std::max<int64_t>(free_space, 0);
  c.sndbuf_size = sndbuf;
  c.sndbuf_known = true;
}

// The window in bytes, from the estimate alone (no syscall, no change).
uint32_t TcpTranslator::window_for(const TcpConn& c) const {
  int64_t free_space = c.fd >= 0 && c.sndbuf_known ? c.sndbuf_free : 0;
  if (c.stage)
    free_space -= static_cast<int64_t>(GuestRxBuffers::staged(c)) +
                  static_cast<int64_t>(GuestRxBuffers::kStageChunk);
  if (free_space < 0) free_space = 0;
  const int64_t largest = std::min<int64_t>({c.sndbuf_size * 7 / 12, int64_t{max_window_},
                                             int64_t{65535} << c.rcv_shift});
  const uint32_t offer = static_cast<uint32_t>(std::min<int64_t>(free_space, largest));
  const uint32_t open = open_window(c);  // never shrink: at least what is open
  const uint32_t step = static_cast<uint32_t>(std::min<int64_t>(c.mss, largest / 2));
  uint32_t win = open;
  if (offer > open && (offer - open >= step || (open < step && c.sndbuf_writable))) win = offer;
  return win;
}

// EPOLLOUT exactly while the socket is not writable by the kernel's own
// measure or data is staged (its write-space wake-up brings the update).
void TcpTranslator::update_out_interest(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  if (c.state != TcpState::established && c.state != TcpState::syn_rcvd) return;
  bool want_out = (c.sndbuf_known && !c.sndbuf_writable) || c.stage;
  if (want_out && !(c.armed & EPOLLOUT))
    set_events(slot, c.armed | EPOLLOUT);
  else if (!want_out && (c.armed & EPOLLOUT))
    set_events(slot, c.armed & ~static_cast<uint32_t>(EPOLLOUT));
}

}  // namespace ferry

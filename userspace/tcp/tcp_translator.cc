// TCP translator: every guest TCP connection becomes one host socket.
//
// Theory of operation
// -------------------
// ferry does not run a TCP stack of its own for the host side: the host
// kernel does that on an ordinary socket. Toward the guest, ferry speaks TCP
// itself, with one sequence space per direction mapped 1:1 onto the socket:
//
//  * host -> guest: bytes wait in the host socket's receive queue until the
//    guest ACKs them. They are *peeked* (MSG_PEEK, with SO_PEEK_OFF marking
//    how far we already sent) straight into the payload area of prebuilt
//    frames, sent in MSS-sized segments within the guest's window, and
//    discarded from the socket (recv MSG_TRUNC) only when ACKed. So snd_una
//    is always the head of the socket queue and snd_nxt - snd_una the peek
//    offset: retransmitting is resetting the offset. Nothing is buffered
//    twice and nothing is lost. It also means the host's sender has at
//    most the socket's receive window beyond what the guest ACKed: while
//    the guest does not ACK, the host's next write waits in the sender's
//    own socket (measured: 100000 bytes unACKed in a 131072-byte receive
//    buffer held a further 120000-byte write there until the guest ACKed
//    60000, which let 74752 in, sent at once). That is flow control, not
//    a stuck send.
//  * guest -> host: in-order payload is written with send(MSG_DONTWAIT) and
//    ACKed: at the batch end, or for a small request up to 1 ms later on the
//    host's answer (ack_later()). The window we advertise is the free
//    space of the host socket's send buffer (SO_MEMINFO: sndbuf -
//    wmem_queued, less 1/8 for skb overhead; estimated between readings),
//    so the guest never sends what the socket cannot take (this is
//    what makes pasta's upload collapse when it ACKs half a segment). Its
//    right edge moves in steps of at least min(MSS, half the largest
//    window), never zeroed below the MSS (silly-window avoidance, see
//    window_for() in tcp_emit.cc): a guest at MTU 65520 behind a 1500-MTU
//    route (a ~60 KB socket) is offered what the socket takes.
//    Partial writes remain possible (estimate error, a hostile guest, the
//    window we may not shrink): then the unwritten tail of that one segment
//    goes to a staging chunk (64 KiB, from a fixed pool of kStageChunks) and
//    the whole segment is ACKed, so the guest never sits in an RTO. While a
//    chunk is non-empty, further in-order data is appended while it fits and
//    dropped (not ACKed) otherwise; the chunk drains on EPOLLOUT. If the pool
//    is exhausted we ACK only what the socket took (the guest recovers by
//    retransmission).
//  * out-of-order guest data: kept in a reassembly ring (one 4 MiB chunk per
//    connection with holes, from a pool of kOooChunks; up to 256 ranges)
//    and answered with an immediate duplicate ACK that keeps the window
//    unchanged and, when the guest offered SACK-permitted, carries SACK
//    blocks (RFC 2018) for what is held. When the hole is filled everything
//    contiguous is written and ACKed at once. Without this a lossy guest
//    link (5 %, MTU 1500) stalled uploads for minutes: a sender without SACK
//    information repairs one hole per round trip. Data that finds no room
//    (pool empty, ring or range table full) is dropped, and only costs the
//    guest a retransmission.
//
// States (TcpState) and what moves them
// -------------------------------------
//   outbound:  guest SYN -> CONNECTING (connect() in progress)
//              connect ok -> SYN_RCVD (SYN-ACK sent, retransmitted 1 s, 2 s...)
//              connect fails / connect timeout -> RST to guest, slot freed
//              guest ACK of our SYN -> ESTABLISHED
//   inbound:   accept() -> SYN_SENT (SYN sent, retransmitted with back-off)
//              guest SYN-ACK -> ESTABLISHED; guest RST -> host client RST
//   ESTABLISHED, closing by flags, each direction on its own:
//              guest FIN          -> kGuestFin, then shutdown(SHUT_WR)
//                                    once staged data is written (kShutWr)
//              host EOF (peek 0)  -> FIN to the guest (kFinSent) after all
//                                    data; its ACK sets kFinAcked
//              all four flags     -> close(), slot freed; when our FIN
//                                    went first, the tuple stays in
//                                    TIME-WAIT for 60 s (time_wait.h):
//                                    the guest's FIN again gets an ACK
//              guest RST (exact seq) -> SO_LINGER {1,0} + close: host peer RST
//              host error / reset -> RST to the guest, slot freed
//
// Timers (one deadline per slot in TimerHeap, no syscall per tick):
//   rtx_at:   SYN / SYN-ACK retransmission, data/FIN RTO (RFC 6298, min
//             200 ms, see rto.h), zero-window persist probes
//   state_at: connect timeout (10 s), idle timeout (2 h, 60 s when either
//             side has closed), checked lazily against last_activity
//   ack_at:   delayed ACK of a small guest request or FIN (1 ms; see
//             ack_later()), cancelled by any segment that carries the ACK
// Retries are bounded (SYN: 5, data: 10), then both sides are reset, so
// memory is bounded under any guest behaviour.
//
// BPF fast path (optional, TcpFastPath): while a flow is published, BPF
// absorbs the guest's pure ACKs into a shared slot. fast_fold() feeds the
// slot's latest ACK and window through process_ack() once at each entry
// point, before snd_una or the window is used (a guest segment, a host
// socket event, the fast path's wake-ups and timers: fast_progress);
// the emitter syncs the slot (snd_nxt = snd_max, rcv_nxt) before every
// frame that sends new data, our FIN or an ACK of guest data; the flow
// leaves the fast path during loss recovery.
//
// Handshake details: MSS we advertise = MTU - IP - TCP headers, MSS toward
// the guest = min(its option or 536, ours); window scaling only when both
// sent it (ours from net.ipv4.tcp_wmem's maximum, the guest's clamped to
// 14); SACK-permitted echoed when offered; never timestamps. Payload in a
// guest SYN is not acknowledged (the guest sends it again once
// established). ISNs per RFC 6528 (tcp_isn.h). RSTs for unknown flows per
// RFC 9293 §3.10.7.1, never for a RST; RST acceptance per RFC 5961 (exact
// sequence number, else a challenge ACK), SYN on a synchronized flow gets a
// challenge ACK.
//
// Invariants
//  * socket receive-queue head == snd_una (after the handshake);
//    SO_PEEK_OFF == data part of snd_nxt - snd_una.
//  * rcv_adv never moves left (we never shrink the window).
//  * the only code that writes ack-from-guest, guest window and duplicate
//    ACK state is process_ack() (BPF absorbs pure ACKs in its place).
//  * every frame to the guest leaves through emit() (tcp_emit.cc), which
//    syncs the fast path's slot first when the frame tells the guest
//    something new (the only caller of TcpFastPath::sync is tcp_emit.cc).
//  * a slot is free (state free, the rest zero but gen) or in use; release()
//    frees it at once, but its table entry stays until the batch end
//    (reap_released), so within one event a slot is never reused and
//    callers check c.state, never table membership.
//
// Where things are
// ----------------
// This file: dispatch of guest segments and host events, slots, release.
// tcp_handshake.cc: listeners, accept, connect, the SYN states, option
// negotiation. tcp_input.cc: ESTABLISHED segments, process_ack(), guest
// data to the host socket (guest_rx_buffers.* holds what cannot go yet).
// tcp_output.cc: host bytes, FIN, retransmission and ACKs toward the
// guest. tcp_emit.cc: the emitter and the advertised window.
// tcp_timers.cc: every timer. tcp_fastpath.cc: folding absorbed ACKs.
#include "tcp/tcp_translator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "common/conn_key.h"
#include "policy/destination_policy.h"
#include "tcp/tcp_internal.h"

namespace ferry {

using namespace tcp_detail;

namespace {

// Reads the third field of net.ipv4.tcp_wmem: the largest send buffer a
// socket autotunes to, hence the largest window we will ever advertise.
uint64_t tcp_wmem_max() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
  uint64_t a = 0, b = 0, c = 0;
  if (f >> a >> b >> c && c > 0) return c;
  return 4u << 20;
}

}  // namespace

// Printable state name.
const char* to_string(TcpState s) {
  switch (s) {
    case TcpState::free: return "FREE";
    case TcpState::connecting: return "CONNECTING";
    case TcpState::syn_rcvd: return "SYN_RCVD";
    case TcpState::syn_sent: return "SYN_SENT";
    case TcpState::established: return "ESTABLISHED";
  }
  return "?";
}

// Smallest shift that lets a 16-bit window field express max_window.
uint8_t TcpTranslator::choose_wscale(uint64_t max_window) {
  uint8_t s = 0;
  while (s < 14 && (uint64_t{65535} << s) < max_window) s++;
  return s;
}

// The contract's key (common/conn_key.h) of a TCP flow.
ferry_conn_key TcpTranslator::make_key(const InetAddr& guest, uint16_t gport, const InetAddr& peer,
                                       uint16_t pport) {
  return make_conn_key(guest, gport, peer, pport, IPPROTO_TCP);
}

// Allocates every table and pool once; registers with the loop.
TcpTranslator::TcpTranslator(EventLoop& loop, GuestLink& link)
    : loop_(loop),
      link_(link),
      capacity_(std::clamp<uint32_t>(link.config().max_conns ? link.config().max_conns
                                                             : FERRY_MAX_CONNS_DEFAULT,
                                     1, FERRY_MAX_CONNS_LIMIT)),
      table_(capacity_),
      timers_(capacity_) {
  void* p = mmap(nullptr, sizeof(TcpConn) * capacity_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  conns_ = static_cast<TcpConn*>(p);

  uint64_t wmax = tcp_wmem_max();
  our_shift_ = choose_wscale(wmax);
  max_window_ = static_cast<uint32_t>(std::min<uint64_t>(wmax, uint64_t{65535} << our_shift_));

  // With port offloads a frame carries a super-segment of up to 64 KiB that
  // the guest's stack takes whole (gso_size = the MSS), at any MTU.
  offloads_ = link.offloads();
  uint32_t mss4 = offloads_ ? kMaxSuperSegment : our_mss(link.config().mtu, false);
  size_t hdr = tcp_frame_header_len(true, TcpOptions{});
  frame_stride_ = (hdr + mss4 + 63) & ~size_t{63};
  frame_count_ = std::clamp<size_t>((size_t{1} << 20) / mss4, 8, 128);
  frame_pool_.resize(frame_stride_ * frame_count_);
  iov_.resize(frame_count_);
  scratch_.resize(256);
  ack_list_.reserve(capacity_);
  released_.reserve(capacity_);
  resume_.reserve(capacity_);
  resume_run_.reserve(capacity_);

  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
  loop_.add_batch_end_hook([this] {
    flush_acks();
    turn_++;  // every flow's send budget is whole again
  });
}

// Closes every socket (host peers see a reset) and unmaps the table.
TcpTranslator::~TcpTranslator() {
  linger lg{1, 0};
  for (uint32_t s = 0; s < capacity_; s++)
    if (table_.used(s) && conns_[s].fd >= 0) {
      loop_.remove(conns_[s].fd);
      setsockopt(conns_[s].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      close(conns_[s].fd);
    }
  for (auto& l : listeners_)
    if (l.fd >= 0) {
      loop_.remove(l.fd);
      close(l.fd);
    }
  munmap(conns_, sizeof(TcpConn) * capacity_);
}

// The connection in slot, or nullptr.
const TcpConn* TcpTranslator::conn(uint32_t slot) const {
  if (!table_.used(slot) || conns_[slot].state == TcpState::free) return nullptr;
  return &conns_[slot];
}

// epoll cookie: slot and generation.
uint64_t TcpTranslator::id_of(uint32_t slot) const {
  return slot | (uint64_t{conns_[slot].gen & kGenMask} << 32);
}

// ---- guest segments -----------------------------------------------------------

// Entry point: validate, find the flow, dispatch by state.
void TcpTranslator::on_guest_segment(const ParsedFrame& f, std::span<const uint8_t> frame) {
  if (!f.ok() || !f.is_tcp()) return;
  guest_heard_ = true;
  if (f.tcp.payload_offset > frame.size() || f.tcp.payload_len > frame.size() - f.tcp.payload_offset) {
    counters_.dropped_segments++;
    return;
  }
  // Never a flow's, and never answered (RFC 1122 4.2.3.10: no RST to a
  // broadcast or multicast segment): one-to-many or unspecified ends,
  // a loopback source, a source equal to the destination (a "LAND" probe),
  // port 0. Where a new flow may go (loopback named by the guest, say) is
  // the destination policy's, in open_outbound.
  const InetPrefix& subnet = link_.config().guest4;
  if (f.src.is_multicast() || f.dst.is_multicast() || f.src.is_unspecified() ||
      f.dst.is_unspecified() || is_v4_broadcast(f.dst, subnet) || is_v4_broadcast(f.src, subnet) ||
      f.src.is_loopback() || f.src == f.dst || f.tcp.sport == 0 || f.tcp.dport == 0) {
    counters_.dropped_segments++;
    return;
  }
  reap_released();  // a flow closed earlier in this batch may be opened again
  ferry_conn_key key = make_key(f.src, f.tcp.sport, f.dst, f.tcp.dport);
  uint32_t slot = table_.lookup(key);
  if (slot == kNoSlot) return guest_segment_no_flow(f, key);
  switch (conns_[slot].state) {
    case TcpState::connecting: return segment_connecting(slot, f);
    case TcpState::syn_rcvd: return segment_syn_rcvd(slot, f, frame);
    case TcpState::syn_sent: return segment_syn_sent(slot, f, frame);
    case TcpState::established: return segment_established(slot, f, frame);
    case TcpState::free: return;
  }
}

// ---- host socket events ------------------------------------------------------------

// Dispatches one epoll event to a listener or a connection (stale
// generations are ignored: the slot was reused within the batch).
void TcpTranslator::on_io(uint64_t id, uint32_t events) {
  if (id & kListenerBit) return listener_event(static_cast<uint32_t>(id & 0xffffffff));
  uint32_t slot = static_cast<uint32_t>(id & 0xffffffff);
  uint32_t gen = static_cast<uint32_t>(id >> 32) & kGenMask;
  if (slot >= capacity_ || conns_[slot].state == TcpState::free) return;
  if ((conns_[slot].gen & kGenMask) != gen) return;
  host_event(slot, events);
}

// Readiness on a connection's host socket: the connect() result, an
// error, room to write staged guest data, host data or EOF to send.
void TcpTranslator::host_event(uint32_t slot, uint32_t events) {
  TcpConn& c = conns_[slot];
  if (c.state == TcpState::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    connect_done(slot, events);
    if (c.state != TcpState::syn_rcvd) return;
    // connected: data or the host's FIN may have come with this event
  }
  if (events & EPOLLERR) {
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      reset_both(slot, "host-error", err);
      return;
    }
  }
  c.last_activity = now_ns();
  if (events & (EPOLLRDHUP | EPOLLHUP)) c.flags |= kHostEof | kReadable;
  if (events & EPOLLIN) c.flags |= kReadable;
  if ((events & EPOLLOUT) && (c.armed & EPOLLOUT)) {
    c.sndbuf_known = false;  // the peer freed space
    // The interest is edge-triggered, and TCP raises a write-space edge
    // only if a poll found the socket full since the last one
    // (SOCK_NOSPACE); a write that fits, here or for the next guest
    // segment, can fill it again with no poll, and then no edge ever comes
    // (the window to the guest stayed closed after the host read
    // everything). So the interest counts as spent: wanting it again
    // re-arms it (EPOLL_CTL_MOD), and that poll sets SOCK_NOSPACE or
    // reports the room at once.
    c.armed &= ~static_cast<uint32_t>(EPOLLOUT);
    bool drained = flush_stage(slot);
    if (c.state == TcpState::free) return;
    if (drained && !flush_ooo(slot)) return;
    if (c.state == TcpState::established) send_window_update(slot);
  }
  if (c.state == TcpState::established) {
    fast_fold(slot);  // absorbed ACKs first: snd_una and the window
    send_data(slot);
  }
}

// Changes the epoll interest set (only on transitions).
void TcpTranslator::set_events(uint32_t slot, uint32_t events) {
  TcpConn& c = conns_[slot];
  if (c.fd < 0 || c.armed == events) return;
  if (loop_.modify(c.fd, events, tag_, id_of(slot))) c.armed = events;
}

// ---- slots ---------------------------------------------------------------------

// Every field but gen starts from zero; the caller fills in the rest.
uint32_t TcpTranslator::claim_slot(const ferry_conn_key& key, const InetAddr& guest, uint16_t gport,
                                   const InetAddr& peer, uint16_t pport, bool v6) {
  reap_released();
  uint32_t slot = table_.insert(key);
  if (slot == kNoSlot) {
    counters_.limit_rejected++;
    return kNoSlot;
  }
  time_wait_.erase(key);  // a new incarnation of the tuple
  TcpConn& c = conns_[slot];
  uint32_t gen = c.gen + 1;
  c = TcpConn{};
  c.gen = gen;
  c.rto.set_min(timeouts_.min_rto_ns);
  c.guest_addr = guest;
  c.peer_addr = peer;
  c.guest_port = gport;
  c.peer_port = pport;
  c.v6 = v6;
  c.fd = -1;
  return slot;
}

// Frees the slot now (state free, socket closed, buffers back, observer
// told); the generation survives so stale epoll events are recognised. The
// table entry goes at the batch end: until then the slot cannot be reused
// under a caller that still holds it.
void TcpTranslator::release(uint32_t slot, bool linger0, const char* why) {
  TcpConn& c = conns_[slot];
  if (c.state == TcpState::free) return;
  if (verbose()) {
    const TcpRecoveryTally& t = c.recovery;
    char detail[160];
    std::snprintf(detail, sizeof(detail), "recovery=rtx:%u,rto:%u,tlp:%u,fast:%u,tlp_rec:%u,lost_rtx:%u",
                  t.retransmits, t.rto_expired, t.tlp_probes, t.fast_recoveries, t.tlp_recoveries,
                  t.lost_retransmits);
    const bool any = t.retransmits || t.rto_expired || t.tlp_probes || t.fast_recoveries;
    log_flow_close(ends_of(c), c.bytes_to_host, c.bytes_to_guest, why, any ? detail : nullptr);
  }
  if (c.fd >= 0) {
    // No EPOLL_CTL_DEL: close() drops the registration with the last
    // reference (the socket is CLOEXEC and never shared), one syscall less
    // per connection; a stale event would carry an old gen and be ignored.
    if (linger0) {
      linger lg{1, 0};
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c.fd);
  }
  rx_.stage_release(c);
  rx_.ooo_release(c);
  timers_.cancel(slot);
  if (observer_) observer_->on_flow_removed(slot, table_.key(slot));
  uint32_t gen = c.gen;
  c = TcpConn{};
  c.gen = gen;
  c.fd = -1;
  counters_.conns_closed++;
  released_.push_back(slot);
}

// Removes the slots released since the last call from the table.
void TcpTranslator::reap_released() {
  for (uint32_t slot : released_)
    if (conns_[slot].state == TcpState::free) table_.remove(slot);
  released_.clear();
}

// Frees a connection whose both directions are closed and acknowledged;
// one we closed first goes on in TIME-WAIT (time_wait.h) without its slot.
void TcpTranslator::maybe_finish(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  constexpr uint8_t kAll = kGuestFin | kShutWr | kFinSent | kFinAcked;
  if ((c.flags & kAll) != kAll) return;
  if (c.rcv_acked != c.rcv_nxt) send_ack_now(slot);  // a delayed ACK of the guest's FIN
  if (c.closed_first) {
    const uint32_t raw = std::min<uint32_t>(open_window(c) >> c.rcv_shift, 65535);
    time_wait_.add(table_.key(slot), c.fin_seq + 1, c.rcv_nxt, static_cast<uint16_t>(raw), now_ns());
  }
  release(slot, false, "closed");
}

// TIME-WAIT (RFC 9293 3.10.7.4), as Linux's tcp_timewait_state_process
// but for SYNs: an exact RST ends it, a late pure ACK is taken in silence,
// and anything else (above all the guest's FIN again: our ACK was lost)
// gets an ACK of the guest's FIN; a FIN restarts the 2 MSL. Any SYN opens
// a new connection, whatever its sequence number: on a point-to-point
// link no old duplicate SYN arrives after the FINs, and without timestamps
// (ferry offers none) RFC 6191's rule would answer half of the guest's
// quick port reuses with an ACK, costing a RST and a 1 s SYN retransmission.
bool TcpTranslator::segment_time_wait(const ParsedFrame& f, const ferry_conn_key& key,
                                      TimeWaitTable::Entry& tw) {
  const uint8_t fl = f.tcp.flags;
  const uint32_t sq = f.tcp.seq;
  if (fl & tcpflag::kRst) {
    if (sq == tw.rcv_nxt) time_wait_.erase(key);
    return true;
  }
  if ((fl & tcpflag::kSyn) && !(fl & (tcpflag::kAck | tcpflag::kFin))) {
    time_wait_.erase(key);
    return false;  // a new connection: opened as any SYN of no flow
  }
  const bool empty = f.tcp.payload_len == 0 && !(fl & (tcpflag::kSyn | tcpflag::kFin));
  if ((fl & tcpflag::kAck) && empty && sq == tw.rcv_nxt) return true;
  if (fl & tcpflag::kFin) tw.expires = now_ns() + TimeWaitTable::kLingerNs;
  counters_.time_wait_acks++;
  send_ack_for(f, tw.snd_nxt, tw.rcv_nxt, tw.window);
  return true;
}

// Batch end: the collected ACKs, then the released slots leave the table.
void TcpTranslator::flush_acks() {
  // The guest's segments: it read frames, the tap's queue may have room.
  if (std::exchange(guest_heard_, false) && !queue_wait_.empty()) wake_queue_waiters(now_ns(), false);
  for (uint32_t slot : ack_list_) {
    TcpConn& c = conns_[slot];
    if (c.ack_pending && c.state == TcpState::established) send_ack_now(slot);
    c.ack_pending = false;
  }
  ack_list_.clear();
  reap_released();
}

}  // namespace ferry

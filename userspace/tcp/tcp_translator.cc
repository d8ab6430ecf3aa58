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
//    twice and nothing is lost.
//  * guest -> host: in-order payload is written with send(MSG_DONTWAIT) and
//    ACKed: at the batch end, or for a small request up to 1 ms later on the
//    host's answer (ack_later()). The window we advertise is the free
//    space of the host socket's send buffer (SO_MEMINFO: sndbuf -
//    wmem_queued, less 1/8 for skb overhead; estimated between readings),
//    so the guest never sends what the socket cannot take (this is
//    what makes pasta's upload collapse when it ACKs half a segment). Its
//    right edge moves in steps of at least min(MSS, half the largest
//    window), never zeroed below the MSS (silly-window avoidance, see
//    window_to_advertise()): a guest at MTU 65520 behind a 1500-MTU route
//    (a ~60 KB socket) is offered what the socket takes.
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
//              guest FIN          -> kfGuestFin, then shutdown(SHUT_WR)
//                                    once staged data is written (kfShutWr)
//              host EOF (peek 0)  -> FIN to the guest (kfFinSent) after all
//                                    data; its ACK sets kfFinAcked
//              all four flags     -> close(), slot freed (no TIME_WAIT: the
//                                    guest's own stack keeps it)
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
// slot's latest ACK and window through process_ack() before snd_una or the
// window is used (segment, send_data, timers) and on the fast path's
// wake-ups (fast_progress); sync() keeps the slot's snd_nxt (= snd_max) ahead
// of every frame sent; the flow leaves the fast path during loss recovery.
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
//    ACK state is process_ack() (the future BPF fast path takes it over).
//  * a slot is either free (all zero but gen) or indexed in table_.
#include "tcp/tcp_translator.h"

#include <fcntl.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "codec/checksum.h"
#include "tcp/tcp_seq.h"

namespace ferry {

namespace {

namespace seq = tcpseq;

constexpr uint8_t kfGuestFin = tcpconn::kGuestFin;
constexpr uint8_t kfShutWr = tcpconn::kShutWr;
constexpr uint8_t kfHostEof = tcpconn::kHostEof;
constexpr uint8_t kfFinSent = tcpconn::kFinSent;
constexpr uint8_t kfFinAcked = tcpconn::kFinAcked;
constexpr uint8_t kfReadable = tcpconn::kReadable;
constexpr uint8_t kfWscale = tcpconn::kWscale;
constexpr uint8_t kfSack = tcpconn::kSack;

// SACK (RFC 2018) is offered so that, with out-of-order guest data held for
// reassembly, the guest learns of every hole at once: measured with 5 %
// loss at MTU 1500, a guest without it recovers one hole per round trip
// (plus RTOs) and a 16 MiB upload does not finish in 100 s. We only *send*
// SACK blocks; SACK blocks from the guest are ignored (RFC 2018 lets a
// sender do that), our own retransmission stays NewReno.
constexpr bool kOfferSack = true;

constexpr uint64_t kListenerBit = uint64_t{1} << 55;
constexpr uint32_t kGenMask = 0xffffff;
constexpr uint32_t kDefaultMss = 536;  // RFC 9293 §3.7.1 when the guest sent none
// How long an ACK of a small guest request may wait for the host's answer
// to carry it (RFC 1122 §4.2.3.2 allows up to 500 ms; the guest's stack is
// one hop away, so its RTO and loss probes are far beyond this).
constexpr uint64_t kDelayedAckNs = 1'000'000;
constexpr uint32_t kMinMss = 88;       // as Linux's TCP_MIN_MSS: a hostile guest's MSS 1
constexpr size_t kStageChunk = 65536;
constexpr uint32_t kStageChunks = 128;
constexpr uint32_t kBaseEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
constexpr uint32_t kOooChunks = 8;

// Reads the third field of net.ipv4.tcp_wmem: the largest send buffer a
// socket autotunes to, hence the largest window we will ever advertise.
uint64_t tcp_wmem_max() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
  uint64_t a = 0, b = 0, c = 0;
  if (f >> a >> b >> c && c > 0) return c;
  return 4u << 20;
}

// Fills a sockaddr for addr:port of addr's family.
socklen_t make_sockaddr(const InetAddr& addr, uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof(*ss));
  if (addr.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    s->sin_addr = addr.v4();
    return sizeof(*s);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  s->sin6_addr = addr.v6();
  return sizeof(*s);
}

// Our MSS for a family: the guest MTU less IP and TCP headers.
uint32_t our_mss(unsigned mtu, bool v6) {
  long m = static_cast<long>(mtu) - static_cast<long>(v6 ? kIpv6HeaderLen : kIpv4HeaderLen) -
           static_cast<long>(kTcpHeaderLen);
  if (m < static_cast<long>(kMinMss)) m = kMinMss;
  // The IP length fields bound a segment: 16 bits of total length (IPv4,
  // headers included) or of payload length (IPv6, its header excluded).
  long cap = v6 ? 65535 - static_cast<long>(kTcpHeaderLen)
                : 65535 - static_cast<long>(kIpv4HeaderLen + kTcpHeaderLen);
  if (m > cap) m = cap;
  return static_cast<uint32_t>(m);
}

// True for 255.255.255.255 (InetAddr has no broadcast predicate).
bool is_v4_broadcast(const InetAddr& a) {
  return a.is_v4() && a.b[12] == 0xff && a.b[13] == 0xff && a.b[14] == 0xff && a.b[15] == 0xff;
}

// setsockopt for an int value; errors are the caller's to ignore.
int set_int(int fd, int level, int opt, int v) {
  return setsockopt(fd, level, opt, &v, sizeof(v));
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

// Zeroed key: guest side, peer side, network-order ports.
ferry_conn_key TcpTranslator::make_key(const InetAddr& guest, uint16_t gport, const InetAddr& peer,
                                       uint16_t pport) {
  ferry_conn_key k;
  std::memset(&k, 0, sizeof(k));
  std::memcpy(k.guest_addr, guest.b.data(), 16);
  std::memcpy(k.peer_addr, peer.b.data(), 16);
  k.guest_port = htons(gport);
  k.peer_port = htons(pport);
  k.family = static_cast<uint8_t>(guest.is_v4() ? AF_INET : AF_INET6);
  k.protocol = IPPROTO_TCP;
  return k;
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

  void* sp = mmap(nullptr, kStageChunk * kStageChunks, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sp == MAP_FAILED) throw std::bad_alloc();
  stage_pool_ = static_cast<uint8_t*>(sp);
  stage_free_.reserve(kStageChunks);
  for (uint32_t i = kStageChunks; i > 0; i--) stage_free_.push_back(i);
  ack_list_.reserve(capacity_);
  void* op = mmap(nullptr, kOooChunk * kOooChunks, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (op == MAP_FAILED) throw std::bad_alloc();
  ooo_pool_ = static_cast<uint8_t*>(op);
  ooo_free_.reserve(kOooChunks);
  ooo_meta_.resize(kOooChunks);
  for (uint32_t i = kOooChunks; i > 0; i--) ooo_free_.push_back(i);

  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
  loop_.add_batch_end_hook([this] { flush_acks(); });
}

// Closes every socket (host peers see a reset) and unmaps the tables.
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
  munmap(stage_pool_, kStageChunk * kStageChunks);
  munmap(ooo_pool_, kOooChunk * kOooChunks);
}

// The connection in slot, or nullptr.
const TcpConn* TcpTranslator::conn(uint32_t slot) const {
  if (!table_.used(slot)) return nullptr;
  return &conns_[slot];
}

// epoll cookie: slot and generation.
uint64_t TcpTranslator::id_of(uint32_t slot) const {
  return slot | (uint64_t{conns_[slot].gen & kGenMask} << 32);
}

// ---- listening sockets -------------------------------------------------------

// One listening socket per forwarded port and family.
bool TcpTranslator::start(std::string* error) {
  const Config& cfg = link_.config();
  // One descriptor per flow: raise the soft limit toward the table size (the
  // hard limit stays the ceiling; what is left over gets RSTs, counted).
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = static_cast<rlim_t>(capacity_) + 4096;
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = std::min(want, rl.rlim_max);
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    return false;
  };
  for (const PortForward& fw : cfg.tcp_forwards) {
    if (fw.host_last < fw.host_first) return fail("tcp forward: empty port range");
    for (uint32_t port = fw.host_first; port <= fw.host_last; port++) {
      uint16_t gport = static_cast<uint16_t>(fw.guest_first + (port - fw.host_first));
      struct Want {
        InetAddr addr;
        bool v6;
      };
      Want wants[2];
      int nwant = 0;
      if (fw.bind_any || fw.bind_addr.is_unspecified()) {
        if (cfg.ipv4) wants[nwant++] = {*InetAddr::parse("0.0.0.0"), false};
        if (cfg.ipv6) wants[nwant++] = {*InetAddr::parse("::"), true};
      } else {
        wants[nwant++] = {fw.bind_addr, !fw.bind_addr.is_v4()};
      }
      int opened = 0;
      std::string last_err;
      for (int i = 0; i < nwant; i++) {
        int fd = socket(wants[i].v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
          last_err = std::strerror(errno);
          continue;
        }
        set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        if (wants[i].v6) set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        sockaddr_storage ss;
        socklen_t sl = make_sockaddr(wants[i].addr, static_cast<uint16_t>(port), &ss);
        if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0 || listen(fd, 1024) < 0) {
          last_err = "bind " + wants[i].addr.str() + " port " + std::to_string(port) + ": " +
                     std::strerror(errno);
          close(fd);
          continue;
        }
        Listener l{fd, static_cast<uint16_t>(port), gport, wants[i].v6};
        uint64_t id = kListenerBit | listeners_.size();
        if (!loop_.add(fd, EPOLLIN, tag_, id)) {
          last_err = std::string("epoll: ") + std::strerror(errno);
          close(fd);
          continue;
        }
        listeners_.push_back(l);
        opened++;
      }
      if (opened == 0) return fail("tcp forward port " + std::to_string(port) + ": " + last_err);
    }
  }
  return true;
}

// Accepts what is pending (bounded per wake-up, so one busy port cannot
// starve the loop; level-triggered, so the rest comes next round).
void TcpTranslator::listener_event(uint32_t index) {
  if (index >= listeners_.size()) return;
  const Listener& l = listeners_[index];
  for (int i = 0; i < 64; i++) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        counters_.fd_exhausted++;
        pause_listeners(now_ns());
      }
      return;
    }
    accept_one(l, fd);
  }
}

// Stops accepting for 100 ms (descriptors ran out): clients wait in the
// kernel's accept queue instead of ferry spinning on a ready listener.
void TcpTranslator::pause_listeners(uint64_t now) {
  if (listeners_resume_at_) return;
  for (size_t i = 0; i < listeners_.size(); i++)
    loop_.modify(listeners_[i].fd, 0, tag_, kListenerBit | i);
  listeners_resume_at_ = now + 100'000'000;
}

// An accepted host connection becomes a SYN to the guest from the client's
// real address (loopback shown as the gateway).
void TcpTranslator::accept_one(const Listener& l, int fd) {
  const Config& cfg = link_.config();
  auto refuse = [&] {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
  };
  sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return refuse();
  InetAddr client;
  uint16_t cport;
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    client = InetAddr::from_v4(s->sin_addr);
    cport = ntohs(s->sin_port);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    client = InetAddr::from_v6(s->sin6_addr);
    cport = ntohs(s->sin6_port);
  }
  bool v6 = !client.is_v4();
  if ((v6 && !cfg.ipv6) || (!v6 && !cfg.ipv4)) return refuse();
  InetAddr peer = client;
  if (client.is_loopback()) peer = v6 ? cfg.gateway6 : cfg.gateway4;
  InetAddr guest = v6 ? cfg.guest6.addr : cfg.guest4.addr;
  ferry_conn_key key = make_key(guest, l.guest_port, peer, cport);
  if (table_.lookup(key) != kNoSlot) return refuse();  // e.g. two loopback clients, same port
  uint32_t slot = table_.insert(key);
  if (slot == kNoSlot) {
    counters_.limit_rejected++;
    return refuse();
  }
  TcpConn& c = conns_[slot];
  uint32_t gen = c.gen + 1;
  c = TcpConn{};
  c.gen = gen;
  c.guest_addr = guest;
  c.peer_addr = peer;
  c.guest_port = l.guest_port;
  c.peer_port = cport;
  c.v6 = v6;
  c.inbound = true;
  c.fd = fd;
  c.state = TcpState::syn_sent;
  uint64_t now = now_ns();
  c.iss = isn_.isn(peer, cport, guest, l.guest_port, now);
  c.snd_una = c.iss;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.snd_nxt;
  c.mss = static_cast<uint16_t>(our_mss(cfg.mtu, v6));
  c.rcv_shift = our_shift_;
  c.flags = kfReadable;
  c.last_activity = now;
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  set_int(fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  if (!loop_.add(fd, kBaseEvents, tag_, id_of(slot))) {
    c.fd = -1;
    table_.remove(slot);
    c.state = TcpState::free;
    return refuse();
  }
  c.armed = kBaseEvents;
  counters_.conns_inbound++;
  if (verbose()) log_flow_open(ends_of(c));
  if (observer_) observer_->on_flow_added(slot, key, c);
  send_syn(slot);
  c.rtt_active = true;
  c.rtt_start = now;
  c.rtx_at = now + c.rto.rto();
  update_timer(slot);
}

// ---- guest segments -----------------------------------------------------------

// Entry point: validate, find the flow, dispatch by state.
void TcpTranslator::on_guest_segment(const ParsedFrame& f, std::span<const uint8_t> frame) {
  if (!f.ok() || !f.is_tcp()) return;
  if (f.tcp.payload_offset > frame.size() || f.tcp.payload_len > frame.size() - f.tcp.payload_offset) {
    counters_.dropped_segments++;
    return;
  }
  // Loopback is the host's own (reached through the gateway address, and
  // only with map_gateway): a guest naming 127/8 or ::1 itself is refused,
  // as the UDP translator does; so is a source equal to the destination
  // (a "LAND" probe).
  if (f.src.is_multicast() || f.dst.is_multicast() || f.src.is_unspecified() ||
      f.dst.is_unspecified() || is_v4_broadcast(f.dst) || is_v4_broadcast(f.src) ||
      f.src.is_loopback() || f.dst.is_loopback() || f.src == f.dst || f.tcp.sport == 0 ||
      f.tcp.dport == 0) {
    counters_.dropped_segments++;
    return;
  }
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

// No flow: a SYN opens one; anything else but a RST gets a RST.
void TcpTranslator::guest_segment_no_flow(const ParsedFrame& f, const ferry_conn_key& key) {
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kRst) return;
  if ((fl & (tcpflag::kSyn | tcpflag::kFin)) == (tcpflag::kSyn | tcpflag::kFin)) {
    counters_.dropped_segments++;  // SYN+FIN: a scan, never a real open (Linux drops it too)
    return;
  }
  if ((fl & tcpflag::kSyn) && !(fl & tcpflag::kAck)) return open_outbound(f, key);
  counters_.rst_unknown_flow++;
  send_rst_for(f);
}

// Guest SYN: non-blocking connect() to where the guest asked.
void TcpTranslator::open_outbound(const ParsedFrame& f, const ferry_conn_key& key) {
  const Config& cfg = link_.config();
  bool v6 = !f.src.is_v4();
  if (v6 == f.dst.is_v4()) return;
  if ((v6 && !cfg.ipv6) || (!v6 && !cfg.ipv4)) {
    send_rst_for(f);
    return;
  }
  InetAddr dest = f.dst;
  if (auto resolver = cfg.dns_tcp_target(f.dst, f.tcp.dport)) {
    dest = *resolver;  // DNS over TCP to the forwarder's address: the host's resolver
  } else if (cfg.map_gateway) {
    if (!v6 && dest == cfg.gateway4) dest = *InetAddr::parse("127.0.0.1");
    if (v6 && dest == cfg.gateway6) dest = *InetAddr::parse("::1");
  }
  uint32_t slot = table_.insert(key);
  if (slot == kNoSlot) {
    counters_.limit_rejected++;
    send_rst_for(f);
    return;
  }
  TcpConn& c = conns_[slot];
  uint32_t gen = c.gen + 1;
  c = TcpConn{};
  c.gen = gen;
  c.guest_addr = f.src;
  c.peer_addr = f.dst;
  c.guest_port = f.tcp.sport;
  c.peer_port = f.tcp.dport;
  c.v6 = v6;
  c.fd = -1;
  c.state = TcpState::connecting;
  uint64_t now = now_ns();
  c.last_activity = now;
  c.irs = f.tcp.seq;
  c.rcv_nxt = f.tcp.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  c.syn_payload = static_cast<uint16_t>(f.tcp.payload_len);  // a refusal ACKs it too
  uint32_t mine = our_mss(cfg.mtu, v6);
  uint32_t theirs = f.tcp.opts.has_mss ? f.tcp.opts.mss : kDefaultMss;
  c.mss = static_cast<uint16_t>(std::max(kMinMss, std::min(mine, theirs)));
  if (f.tcp.opts.has_wscale) {
    c.flags |= kfWscale;
    c.snd_shift = std::min<uint8_t>(f.tcp.opts.wscale, 14);
    c.rcv_shift = our_shift_;
  }
  if (kOfferSack && f.tcp.opts.sack_permitted) c.flags |= kfSack;
  c.snd_wnd = f.tcp.window;  // SYN windows are never scaled
  c.iss = isn_.isn(f.dst, f.tcp.dport, f.src, f.tcp.sport, now);
  c.snd_una = c.iss;
  c.snd_nxt = c.iss;
  c.snd_max = c.iss;

  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE) counters_.fd_exhausted++;
    counters_.connect_failed++;
    send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
    counters_.rst_to_guest++;
    release(slot, false, "error");
    return;
  }
  c.fd = fd;
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  counters_.conns_outbound++;
  if (verbose()) log_flow_open(ends_of(c));
  if (observer_) observer_->on_flow_added(slot, key, c);
  sockaddr_storage ss;
  socklen_t sl = make_sockaddr(dest, f.tcp.dport, &ss);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), sl);
  if (r < 0 && errno != EINPROGRESS) {
    counters_.connect_failed++;
    if (verbose()) log_flow_error(ends_of(c), "connect", errno);
    send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
    counters_.rst_to_guest++;
    release(slot, false, "connect-failed");
    return;
  }
  if (!loop_.add(fd, kBaseEvents | EPOLLOUT, tag_, id_of(slot))) {
    send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
    counters_.rst_to_guest++;
    release(slot, false, "error");
    return;
  }
  c.armed = kBaseEvents | EPOLLOUT;
  if (r == 0) return connect_done(slot, EPOLLOUT);
  c.state_at = now + timeouts_.connect_ns;
  update_timer(slot);
}

// Host connect() finished (or failed): SYN-ACK or RST to the guest. A
// failed connect() always raises EPOLLERR or EPOLLHUP, so plain EPOLLOUT is
// success and costs no SO_ERROR / getpeername() round.
void TcpTranslator::connect_done(uint32_t slot, uint32_t events) {
  TcpConn& c = conns_[slot];
  int err = 0;
  socklen_t el = sizeof(err);
  bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  if (failed && getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
  if (failed && err == 0) {
    // ERR/HUP but no pending error: ask whether it connected after all.
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(c.fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) {
      if (errno == ENOTCONN) return;  // still in progress
      err = errno;
    }
  }
  if (err != 0) {
    counters_.connect_failed++;
    if (verbose()) log_flow_error(ends_of(c), "connect", err);
    send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
    counters_.rst_to_guest++;
    release(slot, false, "connect-failed");
    return;
  }
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  c.state = TcpState::syn_rcvd;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.snd_nxt;
  // kfReadable comes with EPOLLIN (this event's, or the one the MOD below
  // re-polls): peeking an empty socket at ESTABLISHED would be a wasted call.
  set_events(slot, kBaseEvents);
  uint64_t now = now_ns();
  c.state_at = 0;
  c.retries = 0;
  send_syn_ack(slot);
  c.rtt_active = true;
  c.rtt_start = now;
  c.rtx_at = now + c.rto.rto();
  update_timer(slot);
}

// CONNECTING: retransmitted SYNs are absorbed; an exact RST aborts.
void TcpTranslator::segment_connecting(uint32_t slot, const ParsedFrame& f) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kRst) {
    if (f.tcp.seq == c.rcv_nxt || f.tcp.seq == c.irs) {
      counters_.rst_from_guest++;
      release(slot, true, "guest-reset");
    }
    return;
  }
  if ((fl & tcpflag::kSyn) && !(fl & tcpflag::kAck)) return;  // retransmission, absorbed
  counters_.dropped_segments++;
}

// SYN_RCVD: a retransmitted SYN gets the SYN-ACK again; the first
// acceptable ACK establishes; a bad ACK gets a RST.
void TcpTranslator::segment_syn_rcvd(uint32_t slot, const ParsedFrame& f,
                                     std::span<const uint8_t> frame) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kRst) {
    if (f.tcp.seq == c.rcv_nxt) {
      counters_.rst_from_guest++;
      release(slot, true, "guest-reset");
    } else if (seq::in_range(f.tcp.seq, c.rcv_nxt, c.rcv_adv)) {
      counters_.challenge_acks++;
      send_ack_now(slot);
    }
    return;
  }
  if (fl & tcpflag::kSyn) {
    if (!(fl & tcpflag::kAck) && f.tcp.seq == c.irs) {
      send_syn_ack(slot);  // our SYN-ACK was lost
      return;
    }
    counters_.challenge_acks++;
    send_ack_now(slot);
    return;
  }
  if (!(fl & tcpflag::kAck)) {
    counters_.dropped_segments++;
    return;
  }
  if (f.tcp.ack != c.iss + 1) {
    counters_.bad_ack_rst++;
    send_rst_for(f);
    return;
  }
  become_established(slot, static_cast<uint32_t>(f.tcp.window) << c.snd_shift, f.tcp.seq, f.tcp.ack);
  if (f.tcp.payload_len > 0 || (fl & tcpflag::kFin)) segment_established(slot, f, frame);
  if (conns_[slot].state == TcpState::established) send_data(slot);
}

// SYN_SENT (inbound): the guest's SYN-ACK establishes, its RST refuses.
void TcpTranslator::segment_syn_sent(uint32_t slot, const ParsedFrame& f,
                                     std::span<const uint8_t> frame) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kAck) {
    if (f.tcp.ack != c.iss + 1) {
      if (!(fl & tcpflag::kRst)) {
        counters_.bad_ack_rst++;
        send_rst_for(f);
      }
      return;
    }
  }
  if (fl & tcpflag::kRst) {
    if (fl & tcpflag::kAck) {
      counters_.rst_from_guest++;
      release(slot, true, "guest-refused");  // the host client sees the refusal as a reset
    }
    return;
  }
  if (!((fl & tcpflag::kSyn) && (fl & tcpflag::kAck))) {
    counters_.dropped_segments++;  // simultaneous open is not supported
    return;
  }
  const Config& cfg = link_.config();
  c.irs = f.tcp.seq;
  c.rcv_nxt = f.tcp.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  uint32_t mine = our_mss(cfg.mtu, c.v6);
  uint32_t theirs = f.tcp.opts.has_mss ? f.tcp.opts.mss : kDefaultMss;
  c.mss = static_cast<uint16_t>(std::max(kMinMss, std::min(mine, theirs)));
  if (f.tcp.opts.has_wscale) {
    c.flags |= kfWscale;
    c.snd_shift = std::min<uint8_t>(f.tcp.opts.wscale, 14);
    c.rcv_shift = our_shift_;
  } else {
    c.snd_shift = 0;
    c.rcv_shift = 0;
  }
  if (kOfferSack && f.tcp.opts.sack_permitted) c.flags |= kfSack;
  become_established(slot, f.tcp.window /* unscaled in a SYN-ACK */, f.tcp.seq, f.tcp.ack);
  send_ack_now(slot);
  if (f.tcp.payload_len > 0 && conns_[slot].state == TcpState::established) {
    guest_data(slot, f.tcp.seq + 1,
               frame.subspan(f.tcp.payload_offset, f.tcp.payload_len),
               (fl & tcpflag::kFin) != 0);
  }
  if (conns_[slot].state == TcpState::established) send_data(slot);
}

// Our SYN (or SYN-ACK) was ACKed by the guest's segment (seq, ack) carrying
// window `wnd` (already scaled as this segment's kind requires): the
// connection is ESTABLISHED; the handshake's RTT is sampled unless it was
// retransmitted (Karn), and only the idle timer is left.
void TcpTranslator::become_established(uint32_t slot, uint32_t wnd, uint32_t seq, uint32_t ack) {
  TcpConn& c = conns_[slot];
  const uint64_t now = now_ns();
  c.state = TcpState::established;
  counters_.conns_established++;
  c.snd_una = c.iss + 1;
  c.snd_wnd = wnd;
  c.snd_wl1 = seq;
  c.snd_wl2 = ack;
  if (c.rtt_active && c.retries == 0) c.rto.sample(now - c.rtt_start);
  c.rtt_active = false;
  c.retries = 0;
  c.rto.reset_backoff();
  c.rtx_at = 0;
  c.state_at = now + timeouts_.idle_ns;
  update_timer(slot);
}

// ESTABLISHED (and half-closed): RFC 9293 §3.10.7.4 in order: sequence
// check, RST, SYN, ACK, data, FIN.
void TcpTranslator::segment_established(uint32_t slot, const ParsedFrame& f,
                                        std::span<const uint8_t> frame) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  uint32_t sq = f.tcp.seq;
  uint64_t now = now_ns();
  c.last_activity = now;
  if (fl & tcpflag::kRst) {
    // RFC 5961 §3: exact sequence resets, in-window gets a challenge ACK.
    if (sq == c.rcv_nxt) {
      counters_.rst_from_guest++;
      release(slot, true, "guest-reset");
    } else if (seq::in_range(sq, c.rcv_nxt, c.rcv_adv)) {
      counters_.challenge_acks++;
      send_ack_now(slot);
    }
    return;
  }
  std::span<const uint8_t> payload = frame.subspan(f.tcp.payload_offset, f.tcp.payload_len);
  bool fin = (fl & tcpflag::kFin) != 0;
  uint32_t seg_len = static_cast<uint32_t>(payload.size()) + (fin ? 1u : 0u);
  uint32_t wnd = seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  bool acceptable;
  if (seg_len == 0)
    acceptable = sq == c.rcv_nxt || (wnd > 0 && seq::in_range(sq, c.rcv_nxt, c.rcv_nxt + wnd));
  else
    acceptable = sq == c.rcv_nxt ||
                 (seq::lt(sq, c.rcv_nxt + std::max<uint32_t>(wnd, 1)) &&
                  seq::gt(sq + seg_len, c.rcv_nxt));
  if (!acceptable) {
    // Old duplicates (the guest missed our ACK), probes, out of window.
    counters_.dropped_segments++;
    send_ack_now(slot);
    return;
  }
  if (fl & tcpflag::kSyn) {
    counters_.challenge_acks++;  // RFC 5961 §4
    send_ack_now(slot);
    return;
  }
  if (!(fl & tcpflag::kAck)) {
    counters_.dropped_segments++;
    return;
  }
  // RFC 9293 3.10.7.4: what lies beyond the window's right edge (rcv_adv)
  // is trimmed, a FIN there too; a zero-window probe is thus not taken.
  const uint32_t edge = seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv : c.rcv_nxt;
  const bool trimmed = seq::gt(sq + seg_len, edge);
  if (trimmed) {
    payload = payload.first(seq::gt(edge, sq) ? std::min<size_t>(edge - sq, payload.size()) : 0);
    fin = false;
  }
  fast_fold(slot);  // absorbed ACKs first: this one may duplicate them
  bool pure = seg_len == 0;
  seg_len = static_cast<uint32_t>(payload.size()) + (fin ? 1u : 0u);
  uint32_t wnd_before = c.snd_una + c.snd_wnd;
  if (!process_ack(slot, sq, f.tcp.ack, f.tcp.window, pure, now_ns())) {
    send_ack_now(slot);  // ACK of data never sent
    return;
  }
  if (conns_[slot].state != TcpState::established) return;
  if (seg_len > 0) {
    guest_data(slot, sq, payload, fin);
    if (conns_[slot].state != TcpState::established) return;
  }
  if (trimmed) send_ack_now(slot);  // tell the guest at once where the window ends
  uint32_t wnd_after = c.snd_una + c.snd_wnd;
  if (seq::gt(wnd_after, wnd_before) || seq::gt(wnd_after, c.snd_nxt) ||
      (c.flags & kfFinSent))
    send_data(slot);
  if (conns_[slot].state == TcpState::established) maybe_finish(slot);
}

// ACK and window from the guest: advances snd_una (discarding ACKed bytes
// from the host socket), samples RTT (Karn) from when the ACK arrived
// (arrived_ns; 0 = unknown, no sample: an ACK the fast path absorbed long
// before it is folded must not teach the estimator the delay), counts
// duplicate ACKs (fast retransmit at three, NewReno partial ACKs), updates
// the send window.
bool TcpTranslator::process_ack(uint32_t slot, uint32_t sq, uint32_t ack, uint16_t raw_window,
                                bool pure_ack, uint64_t arrived_ns) {
  TcpConn& c = conns_[slot];
  if (seq::gt(ack, c.snd_max)) return false;
  uint32_t wnd = static_cast<uint32_t>(raw_window) << c.snd_shift;
  uint64_t now = now_ns();
  if (seq::gt(ack, c.snd_una)) {
    uint32_t acked = ack - c.snd_una;
    if ((c.flags & kfFinSent) && seq::gt(ack, c.fin_seq)) {
      acked--;  // the FIN is not a byte in the socket
      c.flags |= kfFinAcked;
    }
    while (acked > 0) {
      ssize_t r = recv(c.fd, nullptr, acked, MSG_TRUNC | MSG_DONTWAIT);
      if (r <= 0) break;
      acked -= static_cast<uint32_t>(std::min<ssize_t>(r, acked));
    }
    c.snd_una = ack;
    if (seq::lt(c.snd_nxt, c.snd_una)) c.snd_nxt = c.snd_una;
    if (c.snd_una == c.snd_max && pure_ack) {
      // The socket's queue may now be empty: have its kernel ACK the host's
      // sender now, not at its delayed-ACK timer (40 ms), which a sender
      // holding a small segment (Nagle) or out of send buffer waits for.
      // Not when guest data comes with this ACK: what we write to the host
      // next carries the ACK (a request/response flow would otherwise cost
      // the host an extra pure ACK per exchange: +10 us pinned RR).
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    if (c.rtt_active && seq::ge(ack, c.rtt_seq)) {
      if (arrived_ns >= c.rtt_start && arrived_ns != 0) c.rto.sample(arrived_ns - c.rtt_start);
      c.rtt_active = false;
    }
    c.retries = 0;
    c.rto.reset_backoff();
    c.dupacks = 0;
    if (c.in_recovery) {
      if (seq::lt(ack, c.recover))
        retransmit_one(slot);  // partial ACK: the next hole
      else
        c.in_recovery = false;
    }
    c.rtx_at = (c.snd_una == c.snd_max) ? 0 : now + c.rto.rto();
    update_timer(slot);
  } else if (ack == c.snd_una && pure_ack && c.snd_max != c.snd_una && wnd == c.snd_wnd) {
    if (++c.dupacks == 3 && !c.in_recovery) {
      counters_.fast_retransmits++;
      c.in_recovery = true;
      c.recover = c.snd_max;
      retransmit_one(slot);
    }
  }
  if (seq::lt(c.snd_wl1, sq) || (c.snd_wl1 == sq && seq::le(c.snd_wl2, ack))) {
    c.snd_wnd = wnd;
    c.snd_wl1 = sq;
    c.snd_wl2 = ack;
  }
  if (fast_) fast_->sync(slot, c, c.snd_max);  // recovery moves it off/on the fast path
  return true;
}

// Guest payload (and FIN) at sq: in-order bytes go to the host socket.
void TcpTranslator::guest_data(uint32_t slot, uint32_t sq, std::span<const uint8_t> payload,
                               bool fin) {
  TcpConn& c = conns_[slot];
  uint32_t end = sq + static_cast<uint32_t>(payload.size());
  if (c.flags & kfGuestFin) {
    send_ack_now(slot);  // retransmitted FIN or data after FIN: re-ACK
    return;
  }
  if (seq::gt(sq, c.rcv_nxt)) {
    counters_.ooo_segments++;
    ooo_store(slot, sq, payload);  // a FIN here is not kept: it comes again
    send_dup_ack(slot);            // the guest fast-retransmits after three
    return;
  }
  if (seq::lt(end, c.rcv_nxt) || (end == c.rcv_nxt && !fin)) {
    send_ack_now(slot);  // entirely old
    return;
  }
  payload = payload.subspan(c.rcv_nxt - sq);
  size_t accepted = 0;
  if (!payload.empty()) {
    if (!flush_stage(slot) && !table_.used(slot)) return;
    uint8_t* chunk = c.stage ? stage_pool_ + (c.stage - 1) * kStageChunk : nullptr;
    if (c.stage && c.stage_len > c.stage_off) {
      // Earlier tail still waits: append what fits, behind it.
      size_t room = kStageChunk - c.stage_len;
      if (room < payload.size() && c.stage_off > 0) {
        std::memmove(chunk, chunk + c.stage_off, c.stage_len - c.stage_off);
        c.stage_len -= c.stage_off;
        c.stage_off = 0;
        room = kStageChunk - c.stage_len;
      }
      accepted = std::min(room, payload.size());
      std::memcpy(chunk + c.stage_len, payload.data(), accepted);
      c.stage_len += static_cast<uint32_t>(accepted);
      counters_.staged_bytes += accepted;
    } else {
      ssize_t n = send(c.fd, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          reset_both(slot, "host-error", errno);
          return;
        }
        n = 0;
      }
      accepted = static_cast<size_t>(n);
      wrote_to_host(c, accepted);
      if (accepted < payload.size()) {
        counters_.partial_writes++;
        c.sndbuf_known = false;  // the estimate was too high
        size_t tail = payload.size() - accepted;
        if (!c.stage && !stage_free_.empty()) {
          c.stage = stage_free_.back();
          stage_free_.pop_back();
          c.stage_off = c.stage_len = 0;
        }
        if (c.stage && tail <= kStageChunk) {
          chunk = stage_pool_ + (c.stage - 1) * kStageChunk;
          std::memcpy(chunk, payload.data() + accepted, tail);
          c.stage_off = 0;
          c.stage_len = static_cast<uint32_t>(tail);
          counters_.staged_bytes += tail;
          accepted = payload.size();
        } else {
          counters_.stage_exhausted++;
        }
        set_events(slot, c.armed | EPOLLOUT);
      }
    }
    c.rcv_nxt += static_cast<uint32_t>(accepted);
    c.rcv_data_at = now_ns();
    if (accepted < payload.size()) {
      send_ack_now(slot);
      return;
    }
    if (c.ooo && !c.stage && !fin) {
      if (!flush_ooo(slot)) return;  // the hole is filled: out-of-order data follows
    }
  }
  if (fin) {
    ooo_release(slot);
    c.rcv_nxt++;
    c.flags |= kfGuestFin;
    if (!c.stage) {
      shutdown(c.fd, SHUT_WR);
      c.flags |= kfShutWr;
    }
    ack_later(slot);  // the host usually closes at once: our FIN carries it
    uint64_t now = now_ns();
    c.state_at = std::min(c.state_at ? c.state_at : UINT64_MAX, now + timeouts_.half_closed_idle_ns);
    update_timer(slot);
    return;
  }
  ack_later(slot);
}

// Keeps an out-of-order guest segment so that once the guest retransmits
// the hole, everything behind it is written and ACKed at once: without SACK
// the guest learns only about the first hole, so dropping what follows it
// would cost one round trip per segment (or an RTO). Each connection with
// holes borrows one chunk from a fixed pool: a ring of kOooChunk bytes
// indexed by sequence number (valid while everything held lies within
// [rcv_nxt, rcv_nxt + kOooChunk), which the window guarantees) and a sorted
// table of up to kOooIntervals disjoint ranges.
void TcpTranslator::ooo_store(uint32_t slot, uint32_t sq, std::span<const uint8_t> payload) {
  TcpConn& c = conns_[slot];
  if (payload.empty()) return;
  if (!c.ooo) {
    if (ooo_free_.empty()) {
      counters_.ooo_dropped++;
      return;
    }
    c.ooo = ooo_free_.back();
    ooo_free_.pop_back();
    ooo_meta_[c.ooo - 1].n = 0;
  }
  OooMeta& m = ooo_meta_[c.ooo - 1];
  uint32_t start = sq;
  uint32_t end = sq + static_cast<uint32_t>(payload.size());
  uint32_t limit = c.rcv_nxt + static_cast<uint32_t>(kOooChunk);
  if (seq::ge(start, limit)) {
    counters_.ooo_dropped++;
    return;
  }
  if (seq::gt(end, limit)) end = limit;
  // Merge [start, end) into the sorted, disjoint, non-adjacent list.
  uint32_t s0 = start, e0 = end;
  unsigned first = 0;
  while (first < m.n && seq::lt(m.iv[first][1], s0)) first++;
  unsigned last = first;  // [first, last) overlap or touch the new range
  while (last < m.n && seq::le(m.iv[last][0], e0)) {
    s0 = seq::min(s0, m.iv[last][0]);
    e0 = seq::max(e0, m.iv[last][1]);
    last++;
  }
  unsigned n_after = m.n - (last - first) + 1;
  if (n_after > kOooIntervals) {
    counters_.ooo_dropped++;  // too fragmented: the guest resends it
    return;
  }
  if (last - first != 1) {
    std::memmove(&m.iv[first + 1], &m.iv[last], sizeof(m.iv[0]) * (m.n - last));
  }
  m.iv[first][0] = s0;
  m.iv[first][1] = e0;
  m.n = static_cast<uint16_t>(n_after);
  m.last = start;
  uint8_t* ring = ooo_pool_ + (c.ooo - 1) * kOooChunk;
  size_t len = end - start;
  size_t pos = start & (kOooChunk - 1);
  size_t part = std::min(len, kOooChunk - pos);
  std::memcpy(ring + pos, payload.data(), part);
  if (part < len) std::memcpy(ring, payload.data() + part, len - part);
  counters_.ooo_kept_bytes += len;
}

// Writes out-of-order data that has become contiguous at rcv_nxt; false
// when the connection was reset meanwhile.
bool TcpTranslator::flush_ooo(uint32_t slot) {
  TcpConn& c = conns_[slot];
  while (c.ooo) {
    OooMeta& m = ooo_meta_[c.ooo - 1];
    unsigned drop = 0;
    while (drop < m.n && seq::le(m.iv[drop][1], c.rcv_nxt)) drop++;
    if (drop) {
      std::memmove(&m.iv[0], &m.iv[drop], sizeof(m.iv[0]) * (m.n - drop));
      m.n = static_cast<uint16_t>(m.n - drop);
    }
    if (m.n == 0) {
      ooo_release(slot);
      break;
    }
    if (seq::gt(m.iv[0][0], c.rcv_nxt)) break;  // a hole remains
    const uint8_t* ring = ooo_pool_ + (c.ooo - 1) * kOooChunk;
    uint32_t len = m.iv[0][1] - c.rcv_nxt;
    size_t pos = c.rcv_nxt & (kOooChunk - 1);
    iovec iv[2];
    iv[0].iov_base = const_cast<uint8_t*>(ring + pos);
    iv[0].iov_len = std::min<size_t>(len, kOooChunk - pos);
    iv[1].iov_base = const_cast<uint8_t*>(ring);
    iv[1].iov_len = len - iv[0].iov_len;
    msghdr mh{};
    mh.msg_iov = iv;
    mh.msg_iovlen = iv[1].iov_len ? 2 : 1;
    ssize_t n = sendmsg(c.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(slot, c.armed | EPOLLOUT);
        break;
      }
      reset_both(slot, "host-error", errno);
      return false;
    }
    c.rcv_nxt += static_cast<uint32_t>(n);
    wrote_to_host(c, static_cast<size_t>(n));
    queue_ack(slot);
    if (static_cast<uint32_t>(n) < len) {
      counters_.partial_writes++;
      set_events(slot, c.armed | EPOLLOUT);
      break;
    }
  }
  return true;
}

// Returns the connection's reassembly chunk to the pool, and its memory to
// the kernel (loss is rare; a chunk's pages should not stay resident).
void TcpTranslator::ooo_release(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (!c.ooo) return;
  madvise(ooo_pool_ + (c.ooo - 1) * kOooChunk, kOooChunk, MADV_DONTNEED);
  ooo_free_.push_back(c.ooo);
  c.ooo = 0;
}

// Writes staged guest bytes; true when nothing is staged any more.
bool TcpTranslator::flush_stage(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (!c.stage) return true;
  uint8_t* chunk = stage_pool_ + (c.stage - 1) * kStageChunk;
  while (c.stage_off < c.stage_len) {
    ssize_t n = send(c.fd, chunk + c.stage_off, c.stage_len - c.stage_off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(slot, c.armed | EPOLLOUT);
        return false;
      }
      if (errno == EINTR) continue;
      reset_both(slot, "host-error", errno);
      return false;
    }
    wrote_to_host(c, static_cast<size_t>(n));
    c.stage_off += static_cast<uint32_t>(n);
  }
  stage_free_.push_back(c.stage);
  c.stage = 0;
  c.stage_off = c.stage_len = 0;
  if (c.ooo && !flush_ooo(slot)) return false;
  if ((c.flags & kfGuestFin) && !(c.flags & kfShutWr)) {
    shutdown(c.fd, SHUT_WR);
    c.flags |= kfShutWr;
    maybe_finish(slot);
  }
  return true;
}

// ---- host socket events ------------------------------------------------------------

// Dispatches one epoll event to a listener or a connection (stale
// generations are ignored: the slot was reused within the batch).
void TcpTranslator::on_io(uint64_t id, uint32_t events) {
  if (id & kListenerBit) return listener_event(static_cast<uint32_t>(id & 0xffffffff));
  uint32_t slot = static_cast<uint32_t>(id & 0xffffffff);
  uint32_t gen = static_cast<uint32_t>(id >> 32) & kGenMask;
  if (slot >= capacity_ || !table_.used(slot)) return;
  if ((conns_[slot].gen & kGenMask) != gen) return;
  host_event(slot, events);
}

// Readiness on a connection's host socket.
void TcpTranslator::host_event(uint32_t slot, uint32_t events) {
  TcpConn& c = conns_[slot];
  if (c.state == TcpState::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    connect_done(slot, events);
    if (!table_.used(slot) || c.state != TcpState::syn_rcvd) return;
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
  if (events & (EPOLLRDHUP | EPOLLHUP)) c.flags |= kfHostEof | kfReadable;
  if (events & EPOLLIN) c.flags |= kfReadable;
  if ((events & EPOLLOUT) && (c.armed & EPOLLOUT)) {
    c.sndbuf_known = false;  // the peer freed space
    bool drained = flush_stage(slot);
    if (!table_.used(slot)) return;
    if (drained && !flush_ooo(slot)) return;
    if (c.state == TcpState::established) send_window_update(slot);
  }
  if (c.state == TcpState::established) send_data(slot);
}

// ---- sending to the guest ---------------------------------------------------------

// One control segment (no payload) to the guest.
bool TcpTranslator::send_segment(const TcpConn& c, uint8_t flags, uint32_t sq, uint32_t ack,
                                 uint16_t window, const TcpOptions* opts) {
  TcpSegment seg;
  seg.ip.eth_src = link_.our_mac();
  seg.ip.eth_dst = link_.guest_mac();
  seg.ip.src = c.peer_addr;
  seg.ip.dst = c.guest_addr;
  seg.sport = c.peer_port;
  seg.dport = c.guest_port;
  seg.seq = sq;
  seg.ack = ack;
  seg.flags = flags;
  seg.window = window;
  if (opts) seg.opts = *opts;
  size_t n = build_tcp_frame(std::span<uint8_t>(scratch_.data(), scratch_.size()), seg);
  if (n == 0) return false;
  if (!link_.send_to_guest(std::span<const uint8_t>(scratch_.data(), n))) {
    counters_.guest_tx_dropped++;
    return false;
  }
  return true;
}

// RST for a segment that belongs to no flow (RFC 9293 §3.10.7.1).
void TcpTranslator::send_rst_for(const ParsedFrame& f) {
  if (f.tcp.flags & tcpflag::kRst) return;
  TcpConn c{};
  c.peer_addr = f.dst;
  c.guest_addr = f.src;
  c.peer_port = f.tcp.dport;
  c.guest_port = f.tcp.sport;
  if (f.tcp.flags & tcpflag::kAck) {
    send_segment(c, tcpflag::kRst, f.tcp.ack, 0, 0);
  } else {
    uint32_t len = static_cast<uint32_t>(f.tcp.payload_len) + ((f.tcp.flags & tcpflag::kSyn) ? 1 : 0) +
                   ((f.tcp.flags & tcpflag::kFin) ? 1 : 0);
    send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, f.tcp.seq + len, 0);
  }
}

// Options of our SYN / SYN-ACK: MSS, window scale and SACK-permitted when
// the guest offered them (always offered in our own SYN). Never timestamps.
TcpOptions TcpTranslator::syn_options(const TcpConn& c) const {
  TcpOptions o;
  o.has_mss = true;
  o.mss = static_cast<uint16_t>(our_mss(link_.config().mtu, c.v6));
  if (c.inbound || (c.flags & kfWscale)) {
    o.has_wscale = true;
    o.wscale = our_shift_;
  }
  o.sack_permitted = kOfferSack && (c.inbound || (c.flags & kfSack));
  return o;
}

// SYN-ACK for an outbound connection (window unscaled, as in any SYN).
void TcpTranslator::send_syn_ack(uint32_t slot) {
  TcpConn& c = conns_[slot];
  uint16_t shift = c.rcv_shift;
  c.rcv_shift = 0;
  uint16_t w = window_to_advertise(slot);
  c.rcv_shift = static_cast<uint8_t>(shift);
  TcpOptions o = syn_options(c);
  send_segment(c, tcpflag::kSyn | tcpflag::kAck, c.iss, c.rcv_nxt, w, &o);
  c.rcv_acked = c.rcv_nxt;
}

// SYN for an inbound connection.
void TcpTranslator::send_syn(uint32_t slot) {
  TcpConn& c = conns_[slot];
  TcpOptions o = syn_options(c);
  uint16_t w = static_cast<uint16_t>(std::min<uint32_t>(65535, max_window_));
  send_segment(c, tcpflag::kSyn, c.iss, 0, w, &o);
}

// The window to advertise (raw, scaled down): free space of the host
// socket's send buffer, never moving the right edge left. Also keeps
// EPOLLOUT interest exactly while the socket is not writable by the
// kernel's own measure, so that its write-space wake-up brings a window
// update. SO_MEMINFO is read only when the estimate (sndbuf_free) has used
// up half of the last reading or is down to a few segments: a
// request/response flow reads it once per many transactions, a bulk upload
// every half buffer, and a small or closed window is always fresh (the
// guest's probes must see the host reader's progress).
//
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
uint16_t TcpTranslator::window_to_advertise(uint32_t slot) {
  TcpConn& c = conns_[slot];
  const int64_t reread_below = std::max<int64_t>(c.sndbuf_read / 2, int64_t{4} * c.mss);
  if (c.fd >= 0 && (!c.sndbuf_known || c.sndbuf_free < reread_below)) {
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t ml = sizeof(mem);
    if (getsockopt(c.fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) == 0) {
      int64_t sndbuf = mem[SK_MEMINFO_SNDBUF];
      int64_t queued = mem[SK_MEMINFO_WMEM_QUEUED];
      int64_t free_space = sndbuf - queued;
      c.sndbuf_writable = free_space >= queued / 2;
      free_space -= free_space / 8;
      c.sndbuf_free = c.sndbuf_read = std::max<int64_t>(free_space, 0);
      c.sndbuf_size = sndbuf;
      c.sndbuf_known = true;
    }
  }
  int64_t free_space = c.fd >= 0 && c.sndbuf_known ? c.sndbuf_free : 0;
  if (c.stage) free_space -= static_cast<int64_t>(c.stage_len - c.stage_off) + static_cast<int64_t>(kStageChunk);
  if (free_space < 0) free_space = 0;
  const int64_t largest = std::min<int64_t>({c.sndbuf_size * 7 / 12, int64_t{max_window_},
                                             int64_t{65535} << c.rcv_shift});
  const uint32_t offer = static_cast<uint32_t>(std::min<int64_t>(free_space, largest));
  const uint32_t open = seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  const uint32_t step = static_cast<uint32_t>(std::min<int64_t>(c.mss, largest / 2));
  uint32_t win = open;
  if (offer > open && (offer - open >= step || (open < step && c.sndbuf_writable))) win = offer;
  uint32_t unit = 1u << c.rcv_shift;
  uint32_t raw = std::min<uint32_t>((win + unit - 1) >> c.rcv_shift, 65535);
  uint32_t edge = c.rcv_nxt + (raw << c.rcv_shift);
  if (seq::gt(edge, c.rcv_adv)) c.rcv_adv = edge;
  if (c.state == TcpState::established || c.state == TcpState::syn_rcvd) {
    bool want_out = (c.sndbuf_known && !c.sndbuf_writable) || c.stage;
    if (want_out && !(c.armed & EPOLLOUT))
      set_events(slot, c.armed | EPOLLOUT);
    else if (!want_out && (c.armed & EPOLLOUT))
      set_events(slot, c.armed & ~static_cast<uint32_t>(EPOLLOUT));
  }
  return static_cast<uint16_t>(raw);
}

// Bytes just written to the host socket use up the free-space estimate.
void TcpTranslator::wrote_to_host(TcpConn& c, size_t n) {
  c.sndbuf_free -= static_cast<int64_t>(n);
  c.bytes_to_host += n;
  counters_.bytes_to_host += n;
}

// ACK now with the current window (also clears a pending delayed ACK).
void TcpTranslator::send_ack_now(uint32_t slot) {
  TcpConn& c = conns_[slot];
  ack_sent(slot);
  if (fast_) fast_->sync(slot, c, c.snd_max);  // rcv_nxt: what BPF may absorb
  uint16_t w = window_to_advertise(slot);
  TcpOptions o;
  bool sack = sack_blocks(slot, &o);
  send_segment(c, tcpflag::kAck, c.snd_nxt, c.rcv_nxt, w, sack ? &o : nullptr);
}

// The host socket freed space: an ACK with the new window, but only when
// the right edge moved or an ACK is owed (an unchanged pure ACK would
// count as a duplicate at the guest). Also recomputes the interest in
// EPOLLOUT.
void TcpTranslator::send_window_update(uint32_t slot) {
  TcpConn& c = conns_[slot];
  const uint32_t edge = c.rcv_adv;
  window_to_advertise(slot);
  if (c.rcv_adv != edge || c.rcv_acked != c.rcv_nxt) send_ack_now(slot);
}

// SACK blocks for what reassembly holds (RFC 2018 §4: the block with the
// most recently received segment first, then the others in order).
bool TcpTranslator::sack_blocks(uint32_t slot, TcpOptions* o) const {
  const TcpConn& c = conns_[slot];
  if (!(c.flags & kfSack) || !c.ooo) return false;
  const OooMeta& m = ooo_meta_[c.ooo - 1];
  uint8_t n = 0;
  int first = -1;
  for (unsigned i = 0; i < m.n; i++)
    if (seq::gt(m.iv[i][1], c.rcv_nxt) && seq::in_range(m.last, m.iv[i][0], m.iv[i][1])) first = static_cast<int>(i);
  if (first >= 0) {
    o->sack[n][0] = m.iv[first][0];
    o->sack[n++][1] = m.iv[first][1];
  }
  for (unsigned i = 0; i < m.n && n < 4; i++) {
    if (static_cast<int>(i) == first || seq::le(m.iv[i][1], c.rcv_nxt)) continue;
    o->sack[n][0] = seq::max(m.iv[i][0], c.rcv_nxt);
    o->sack[n++][1] = m.iv[i][1];
  }
  o->sack_count = n;
  return n > 0;
}

// Duplicate ACK: same ACK number and the *same* window as the last ACK
// (the right edge unchanged), or the guest would not count it as a
// duplicate (RFC 5681 §2: a window change makes it a window update).
void TcpTranslator::send_dup_ack(uint32_t slot) {
  TcpConn& c = conns_[slot];
  ack_sent(slot);
  uint32_t win = seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  uint32_t raw = std::min<uint32_t>(win >> c.rcv_shift, 65535);
  TcpOptions o;
  bool sack = sack_blocks(slot, &o);
  send_segment(c, tcpflag::kAck, c.snd_nxt, c.rcv_nxt, static_cast<uint16_t>(raw), sack ? &o : nullptr);
}

// ACK of in-order guest data. Once two full segments are unacknowledged
// (RFC 1122 §4.2.3.2) it goes at the batch end; a smaller request waits up
// to kDelayedAckNs for the host's answer, whose first frame carries the
// ACK: a request/response exchange then costs one frame each way, not two.
// A delayed ACK that expires unanswered turns delaying off for the flow
// (a guest that waits for it, Nagle's algorithm, must not wait again)
// until host data once more follows guest data within kDelayedAckNs.
void TcpTranslator::ack_later(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.delack_off || c.rcv_nxt - c.rcv_acked >= 2u * c.mss) {
    queue_ack(slot);
    return;
  }
  if (c.ack_at == 0) {
    c.ack_at = now_ns() + kDelayedAckNs;
    update_timer(slot);
  }
}

// A segment with ACK = rcv_nxt is leaving: nothing is pending any more.
void TcpTranslator::ack_sent(uint32_t slot) {
  TcpConn& c = conns_[slot];
  c.ack_pending = false;
  c.rcv_acked = c.rcv_nxt;
  if (c.ack_at) {
    c.ack_at = 0;
    update_timer(slot);
  }
}

// ACK at the end of this batch (one ACK for many segments).
void TcpTranslator::queue_ack(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.ack_pending) return;
  c.ack_pending = true;
  ack_list_.push_back(slot);
}

// Batch end: the collected ACKs.
void TcpTranslator::flush_acks() {
  for (uint32_t slot : ack_list_) {
    if (!table_.used(slot)) continue;
    TcpConn& c = conns_[slot];
    if (c.ack_pending && c.state == TcpState::established) send_ack_now(slot);
    c.ack_pending = false;
  }
  ack_list_.clear();
}

// Peeks host data into frames and sends it within the guest's window; sends
// our FIN once the host has closed and every byte went out.
void TcpTranslator::send_data(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return;
  fast_fold(slot);
  uint64_t now = now_ns();
  bool have_window = false;
  uint16_t raw_win = 0;
  bool stall_checked = false;
  for (int round = 0; round < 64; round++) {
    if (c.flags & kfFinSent) {
      if (c.snd_nxt == c.fin_seq) send_fin(slot);  // go-back reached the FIN
      return;
    }
    if (!(c.flags & (kfReadable | kfHostEof))) return;
    uint32_t wnd_end = c.snd_una + c.snd_wnd;
    uint32_t avail = seq::gt(wnd_end, c.snd_nxt) ? wnd_end - c.snd_nxt : 0;
    if (avail == 0) {
      if ((c.flags & kfHostEof)) {
        // Zero window but the host closed: the FIN may go if all data went.
        int inq = 0;
        if (ioctl(c.fd, SIOCINQ, &inq) == 0 && static_cast<uint32_t>(inq) == c.snd_nxt - c.snd_una) {
          send_fin(slot);
          return;
        }
      }
      if (c.snd_una == c.snd_max && c.rtx_at == 0) {  // persist timer
        c.rtx_at = now + c.rto.rto();
        update_timer(slot);
      }
      if (fast_ && !stall_checked) {  // BPF wakes us when ACKs open the window
        stall_checked = true;
        if (fast_->stall(slot, c) && fast_fold(slot)) continue;
      }
      return;
    }
    if (!have_window) {
      raw_win = window_to_advertise(slot);
      have_window = true;
    }
    size_t hdr = tcp_frame_header_len(c.v6, TcpOptions{});
    // One frame's payload: an MSS, or with offloads as many whole MSS as fit
    // in one IP packet (the guest's stack takes it as a GSO super-segment).
    const uint32_t unit = offloads_ ? std::max<uint32_t>(c.mss, kMaxSuperSegment / c.mss * c.mss) : c.mss;
    size_t n = 0;
    size_t want = 0;
    while (avail > 0 && n < frame_count_) {
      uint32_t l = std::min<uint32_t>(unit, avail);
      iov_[n].iov_base = frame_pool_.data() + n * frame_stride_ + hdr;
      iov_[n].iov_len = l;
      want += l;
      avail -= l;
      n++;
    }
    msghdr mh{};
    mh.msg_iov = iov_.data();
    mh.msg_iovlen = n;
    ssize_t r = recvmsg(c.fd, &mh, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c.flags &= static_cast<uint8_t>(~kfReadable);
        host_drained(slot);
        return;
      }
      reset_both(slot, "host-error", errno);
      return;
    }
    if (r == 0) {
      c.flags &= static_cast<uint8_t>(~kfReadable);
      c.flags |= kfHostEof;
      send_fin(slot);
      return;
    }
    bool retrans = seq::lt(c.snd_nxt, c.snd_max);
    // The host closed and this peek reached the end of its data: our FIN
    // rides on the last segment (one frame, not two, for a server that
    // answers and closes).
    bool fin_too = (c.flags & kfHostEof) && static_cast<size_t>(r) < want;
    if (fin_too) mark_fin(slot, c.snd_nxt + static_cast<uint32_t>(r));
    // before the guest can ACK it
    if (fast_) fast_->sync(slot, c, seq::max(c.snd_max, c.snd_nxt + static_cast<uint32_t>(r) + (fin_too ? 1 : 0)));
    size_t off = 0;
    for (size_t i = 0; i < n && off < static_cast<size_t>(r); i++) {
      size_t l = std::min(iov_[i].iov_len, static_cast<size_t>(r) - off);
      TcpSegment seg;
      seg.ip.eth_src = link_.our_mac();
      seg.ip.eth_dst = link_.guest_mac();
      seg.ip.src = c.peer_addr;
      seg.ip.dst = c.guest_addr;
      seg.sport = c.peer_port;
      seg.dport = c.guest_port;
      seg.seq = c.snd_nxt + static_cast<uint32_t>(off);
      seg.ack = c.rcv_nxt;
      bool last = off + l == static_cast<size_t>(r);
      seg.flags = tcpflag::kAck | (last ? tcpflag::kPsh : 0) | (last && fin_too ? tcpflag::kFin : 0);
      seg.window = raw_win;
      uint8_t* fb = frame_pool_.data() + i * frame_stride_;
      seg.payload = std::span<const uint8_t>(fb + hdr, l);
      seg.partial_checksum = offloads_;
      size_t fl = build_tcp_frame(std::span<uint8_t>(fb, frame_stride_), seg);
      if (fl && !send_data_frame(c, fb, fl, hdr, l)) counters_.guest_tx_dropped++;
      counters_.segments_to_guest++;
      off += l;
    }
    if (c.delack_off && now - c.rcv_data_at < kDelayedAckNs) c.delack_off = false;  // answers again
    ack_sent(slot);
    counters_.bytes_to_guest += static_cast<uint64_t>(r);
    if (!retrans) c.bytes_to_guest += static_cast<uint64_t>(r);
    c.snd_nxt += static_cast<uint32_t>(r) + (fin_too ? 1 : 0);
    c.snd_max = seq::max(c.snd_max, c.snd_nxt);
    if (retrans) counters_.retransmits++;
    if (!c.rtt_active && !retrans) {
      c.rtt_active = true;
      c.rtt_seq = c.snd_nxt;
      c.rtt_start = now;
    }
    if (c.rtx_at == 0 || c.snd_una == c.snd_nxt - static_cast<uint32_t>(r) - (fin_too ? 1 : 0)) {
      c.rtx_at = now + c.rto.rto();
      update_timer(slot);
    }
    if (fin_too) {
      c.flags &= static_cast<uint8_t>(~kfReadable);
      return;
    }
    if (static_cast<size_t>(r) < want) {
      if (!(c.flags & kfHostEof)) {
        c.flags &= static_cast<uint8_t>(~kfReadable);
        host_drained(slot);
        return;
      }
    }
  }
}

// The host socket holds only bytes in flight. Its kernel ACKs the host's
// sender only once they leave it (we peek, so its window stays closed), and a
// sender waiting for that ACK (Nagle's tail, a small send buffer) stalls until
// the delayed-ACK timer: with the fast path absorbing the guest's ACKs, ask
// for a wake-up once the guest has ACKed everything.
void TcpTranslator::host_drained(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (fast_ && c.snd_nxt != c.snd_una && fast_->drained(slot, c)) fast_fold(slot);
}

// Sends one data frame built by send_data(): with port offloads the TCP
// checksum is left partial and a payload above the MSS goes as a
// super-segment the guest's stack takes whole.
bool TcpTranslator::send_data_frame(const TcpConn& c, uint8_t* frame, size_t len, size_t hdr,
                                    size_t payload) {
  if (!offloads_) return link_.send_to_guest(std::span<const uint8_t>(frame, len));
  TxOffload off;
  off.csum_start = static_cast<uint16_t>(kEthHeaderLen + (c.v6 ? kIpv6HeaderLen : kIpv4HeaderLen));
  off.csum_offset = 16;  // TCP checksum field
  if (payload > c.mss) {
    off.gso_size = c.mss;
    off.gso_type = c.v6 ? 4 : 1;  // VIRTIO_NET_HDR_GSO_TCPV6 / _TCPV4
    off.hdr_len = static_cast<uint16_t>(hdr);
  }
  iovec v{frame, len};
  return link_.send_to_guest_offloaded(&v, 1, off);
}

// Records that our FIN goes out at fin_seq (now, behind every byte of
// host data): the half-closed idle timeout starts.
void TcpTranslator::mark_fin(uint32_t slot, uint32_t fin_seq) {
  TcpConn& c = conns_[slot];
  c.fin_seq = fin_seq;
  c.flags |= kfFinSent;
  uint64_t now = now_ns();
  c.state_at = std::min(c.state_at ? c.state_at : UINT64_MAX, now + timeouts_.half_closed_idle_ns);
  update_timer(slot);
}

// Our FIN (first time or again): after every byte of host data.
void TcpTranslator::send_fin(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (!(c.flags & kfFinSent)) mark_fin(slot, c.snd_nxt);
  uint16_t w = window_to_advertise(slot);
  if (fast_) fast_->sync(slot, c, seq::max(c.snd_max, c.fin_seq + 1));
  send_segment(c, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, w);
  ack_sent(slot);
  c.snd_nxt = c.fin_seq + 1;
  c.snd_max = seq::max(c.snd_max, c.snd_nxt);
  if (c.rtx_at == 0) {
    c.rtx_at = now_ns() + c.rto.rto();
    update_timer(slot);
  }
}

// Resends the first unacknowledged segment (fast retransmit, partial ACK,
// RTO), leaving snd_nxt and the peek offset where they were.
bool TcpTranslator::retransmit_one(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.snd_una == c.snd_max) return false;
  c.rtt_active = false;  // Karn
  counters_.retransmits++;
  uint32_t data_end = (c.flags & kfFinSent) ? c.fin_seq : c.snd_max;
  if ((c.flags & kfFinSent) && c.snd_una == c.fin_seq) {
    uint16_t w = window_to_advertise(slot);
    send_segment(c, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, w);
    return true;
  }
  uint32_t len = std::min<uint32_t>(c.mss, data_end - c.snd_una);
  size_t hdr = tcp_frame_header_len(c.v6, TcpOptions{});
  uint8_t* fb = frame_pool_.data();
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  ssize_t r = recv(c.fd, fb + hdr, len, MSG_PEEK | MSG_DONTWAIT);
  uint32_t cur = seq::min(c.snd_nxt, data_end) - c.snd_una;
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, static_cast<int>(cur));
  if (r <= 0) return false;
  TcpSegment seg;
  seg.ip.eth_src = link_.our_mac();
  seg.ip.eth_dst = link_.guest_mac();
  seg.ip.src = c.peer_addr;
  seg.ip.dst = c.guest_addr;
  seg.sport = c.peer_port;
  seg.dport = c.guest_port;
  seg.seq = c.snd_una;
  seg.ack = c.rcv_nxt;
  seg.flags = tcpflag::kAck | tcpflag::kPsh;
  seg.window = window_to_advertise(slot);
  seg.payload = std::span<const uint8_t>(fb + hdr, static_cast<size_t>(r));
  size_t fl = build_tcp_frame(std::span<uint8_t>(fb, frame_stride_), seg);
  if (fl && !link_.send_to_guest(std::span<const uint8_t>(fb, fl))) counters_.guest_tx_dropped++;
  // A FIN sent right behind this data is resent together with it only when
  // it is the last thing outstanding; otherwise the next partial ACK does it.
  if ((c.flags & kfFinSent) && c.snd_una + static_cast<uint32_t>(r) == c.fin_seq) {
    send_segment(c, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, seg.window);
  }
  return true;
}

// ---- timers and teardown --------------------------------------------------------

// Earliest of all connections' deadlines.
uint64_t TcpTranslator::next_deadline_ns() const {
  uint64_t d = timers_.top_deadline();
  if (listeners_resume_at_ && listeners_resume_at_ < d) d = listeners_resume_at_;
  return d == TimerHeap::kNone ? kNever : d;
}

// Runs every expired connection timer.
void TcpTranslator::on_timer(uint64_t now) {
  if (listeners_resume_at_ && listeners_resume_at_ <= now) {
    listeners_resume_at_ = 0;
    for (size_t i = 0; i < listeners_.size(); i++)
      loop_.modify(listeners_[i].fd, EPOLLIN, tag_, kListenerBit | i);
  }
  for (int guard = 0; guard < 100000 && !timers_.empty() && timers_.top_deadline() <= now; guard++) {
    uint32_t slot = timers_.top_slot();
    uint32_t gen = conns_[slot].gen;
    handle_timer(slot, now);
    if (table_.used(slot) && conns_[slot].gen == gen && timers_.deadline(slot) <= now) {
      // Defensive: a handler that left an expired deadline must not spin.
      TcpConn& c = conns_[slot];
      if (c.rtx_at && c.rtx_at <= now) c.rtx_at = 0;
      if (c.state_at && c.state_at <= now) c.state_at = 0;
      if (c.ack_at && c.ack_at <= now) c.ack_at = 0;
      update_timer(slot);
    } else if (!table_.used(slot)) {
      timers_.cancel(slot);
    }
  }
}

// Sets the slot's heap deadline to the earlier of its timers.
void TcpTranslator::update_timer(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  uint64_t d = TimerHeap::kNone;
  if (c.rtx_at) d = c.rtx_at;
  if (c.state_at && c.state_at < d) d = c.state_at;
  if (c.ack_at && c.ack_at < d) d = c.ack_at;
  timers_.set(slot, d);
}

// One connection's expired timers.
void TcpTranslator::handle_timer(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (c.ack_at && c.ack_at <= now) {
    c.ack_at = 0;
    if (c.state == TcpState::established && c.rcv_acked != c.rcv_nxt) {
      c.delack_off = true;  // no answer came: this flow ACKs at once from now on
      send_ack_now(slot);
    }
  }
  if (c.state_at && c.state_at <= now) {
    if (c.state == TcpState::connecting) {
      counters_.connect_failed++;
      counters_.timeouts++;
      send_segment(c, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
      counters_.rst_to_guest++;
      release(slot, true, "connect-timeout");
      return;
    }
    bool half = (c.flags & (kfGuestFin | kfFinSent)) != 0;
    uint64_t limit = half ? timeouts_.half_closed_idle_ns : timeouts_.idle_ns;
    if (c.last_activity + limit > now) {
      c.state_at = c.last_activity + limit;
    } else {
      counters_.timeouts++;
      reset_both(slot, "idle-timeout");
      return;
    }
  }
  if (fast_ && c.rtx_at && c.rtx_at <= now && c.state == TcpState::established) {
    fast_progress(slot);  // absorbed ACKs may have answered this timer
    if (!table_.used(slot)) return;
  }
  if (c.rtx_at && c.rtx_at <= now) {
    c.rtx_at = 0;
    switch (c.state) {
      case TcpState::syn_rcvd:
      case TcpState::syn_sent:
        if (++c.retries > timeouts_.syn_retries) {
          counters_.timeouts++;
          if (c.state == TcpState::syn_rcvd) {
            send_segment(c, tcpflag::kRst | tcpflag::kAck, c.iss + 1, c.rcv_nxt, 0);
            counters_.rst_to_guest++;
          }
          release(slot, true, "syn-timeout");
          return;
        }
        c.rto.back_off();
        c.rtt_active = false;
        if (c.state == TcpState::syn_rcvd)
          send_syn_ack(slot);
        else
          send_syn(slot);
        c.rtx_at = now + c.rto.rto();
        break;
      case TcpState::established:
        if (c.snd_una != c.snd_max) {
          if (++c.retries > timeouts_.max_retries) {
            counters_.timeouts++;
            reset_both(slot, "retransmit-timeout");
            return;
          }
          counters_.rto_expired++;
          c.rto.back_off();
          c.in_recovery = true;
          c.recover = c.snd_max;
          c.dupacks = 0;
          if (fast_) fast_->sync(slot, c, c.snd_max);  // every ACK here while recovering
          retransmit_one(slot);
          c.rtx_at = now + c.rto.rto();
        } else if ((c.flags & (kfReadable | kfHostEof)) && !(c.flags & kfFinSent) &&
                   seq::ge(c.snd_nxt, c.snd_una + c.snd_wnd)) {
          // Zero-window probe: an old sequence number makes the guest ACK
          // with its current window.
          counters_.zero_window_probes++;
          uint16_t w = window_to_advertise(slot);
          send_segment(c, tcpflag::kAck, c.snd_una - 1, c.rcv_nxt, w);
          c.rto.back_off();
          c.rtx_at = now + c.rto.rto();
        }
        break;
      default:
        break;
    }
  }
  update_timer(slot);
}

// Changes the epoll interest set (only on transitions).
void TcpTranslator::set_events(uint32_t slot, uint32_t events) {
  TcpConn& c = conns_[slot];
  if (c.fd < 0 || c.armed == events) return;
  if (loop_.modify(c.fd, events, tag_, id_of(slot))) c.armed = events;
}

// RST to the guest and to the host peer, slot freed.
void TcpTranslator::reset_both(uint32_t slot, const char* why, int err) {
  TcpConn& c = conns_[slot];
  if (err != 0 && verbose()) log_flow_error(ends_of(c), "host", err);
  send_segment(c, tcpflag::kRst | tcpflag::kAck, c.snd_nxt, c.rcv_nxt, 0);
  counters_.rst_to_guest++;
  release(slot, true, why);
}

// Closes the socket (with SO_LINGER {1,0}: the peer gets a RST) and frees
// the slot; the generation survives so stale epoll events are recognised.
void TcpTranslator::release(uint32_t slot, bool linger0, const char* why) {
  TcpConn& c = conns_[slot];
  if (verbose()) log_flow_close(ends_of(c), c.bytes_to_host, c.bytes_to_guest, why);
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
  if (c.stage) stage_free_.push_back(c.stage);
  ooo_release(slot);
  timers_.cancel(slot);
  if (observer_ && table_.used(slot)) observer_->on_flow_removed(slot, table_.key(slot));
  table_.remove(slot);
  uint32_t gen = c.gen;
  c = TcpConn{};
  c.gen = gen;
  c.fd = -1;
  counters_.conns_closed++;
}

// Frees a connection whose both directions are closed and acknowledged.
void TcpTranslator::maybe_finish(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  constexpr uint8_t kAll = kfGuestFin | kfShutWr | kfFinSent | kfFinAcked;
  if ((c.flags & kAll) != kAll) return;
  if (c.rcv_acked != c.rcv_nxt) send_ack_now(slot);  // a delayed ACK of the guest's FIN
  release(slot, false, "closed");
}

// ---- BPF fast path ----------------------------------------------------------------

// Feeds the fast path's latest absorbed ACK and window through
// process_ack(), as if that ACK had arrived here when BPF took it (the
// later ACK wins; the
// window only from an ACK not older than the last window update). Never a
// duplicate: BPF counts those and wakes fast_progress(). True on a change.
bool TcpTranslator::fast_fold(uint32_t slot) {
  if (!fast_) return false;
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return false;
  uint32_t ack = 0, wnd = 0;
  uint64_t arrived = 0;
  if (!fast_->progress(slot, &ack, &wnd, &arrived)) return false;
  bool advance = seq::gt(ack, c.snd_una);
  bool window = seq::ge(ack, c.snd_wl2) && wnd != c.snd_wnd;
  if (!advance && !window) return false;
  uint32_t raw = std::min<uint32_t>(wnd >> c.snd_shift, 65535);
  // BPF absorbs pure ACKs only; the RTT sample is taken from their arrival
  return process_ack(slot, c.snd_wl1, ack, static_cast<uint16_t>(raw), true, arrived);
}

// The fast path's wake-up (window reopened, duplicate run, FIN acked, or
// the activity scan): fold, fast-retransmit as process_ack() would on the
// third duplicate, send, and finish the connection if both sides are done.
void TcpTranslator::fast_progress(uint32_t slot, bool dup_run, uint32_t dup_ack) {
  if (slot >= capacity_ || !table_.used(slot)) return;
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return;
  fast_fold(slot);
  if (dup_run && dup_ack == c.snd_una && c.snd_una != c.snd_max && !c.in_recovery) {
    counters_.fast_retransmits++;
    c.in_recovery = true;
    c.recover = c.snd_max;
    if (fast_) fast_->sync(slot, c, c.snd_max);  // every ACK here while recovering
    retransmit_one(slot);
  }
  send_data(slot);
  if (table_.used(slot) && c.state == TcpState::established) maybe_finish(slot);
}

}  // namespace ferry

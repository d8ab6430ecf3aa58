// TCP translator, handshake: how connections begin.
//
// Theory of operation
// -------------------
//  * Inbound (a host client reaches a forwarded port): the listeners accept
//    (at most 64 per wake-up; paused 100 ms when descriptors run out), each
//    accepted socket takes a slot in SYN_SENT and ferry sends the guest a
//    SYN from the client's real address (the policy's guest_view: loopback
//    shown as the gateway),
//    retransmitted with back-off by the timers. The guest's SYN-ACK
//    establishes; its RST refuses (the host client sees a reset).
//  * Outbound (a guest SYN for no flow): the destination policy
//    (policy/destination_policy.h) decides whether the guest may open it and
//    which host address it reaches (the gateway is the host's loopback with
//    the mapping; DNS to the forwarder is the host's resolver). Refused: a
//    RST acknowledging the SYN (no slot, no socket; counted by the policy,
//    per reason), or nothing when the refusal is not answered (a spoofed
//    source, a multicast or broadcast destination). Allowed: a slot in
//    CONNECTING and a non-blocking connect() from a host socket of the
//    instance (common/host_socket.h: it carries --mark). Success -> SYN_RCVD
//    and a SYN-ACK; failure or the connect timeout -> refuse(): a RST that
//    acknowledges the SYN and any data in it (RFC 9293 §3.10.7.1). The
//    guest's ACK of our SYN-ACK establishes.
//  * Options (negotiate): MSS toward the guest = min(its option or 536,
//    ours), at least 88; window scaling only when both sent it (ours from
//    net.ipv4.tcp_wmem's maximum, the guest's clamped to 14); SACK-permitted
//    echoed when offered; never timestamps. SYN windows are never scaled.
//    Payload in a guest SYN is not acknowledged (the guest sends it again).
//  * RSTs in the SYN states follow RFC 5961 (guest_rst); a SYN on a
//    synchronized flow gets a challenge ACK; a bad ACK gets a RST.
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/host_socket.h"
#include "policy/destination_policy.h"
#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// ---- listening sockets -------------------------------------------------------

// One listening socket per forwarded port and family.
Status TcpTranslator::start() {
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
  for (const PortForward& fw : cfg.tcp_forwards) {
    if (fw.host_last < fw.host_first) return Status::failure("tcp forward: empty port range");
    for (uint32_t port = fw.host_first; port <= fw.host_last; port++) {
      const uint16_t gport = static_cast<uint16_t>(fw.guest_first + (port - fw.host_first));
      if (Status st = open_listeners(fw, static_cast<uint16_t>(port), gport); !st)
        return Status::failure("tcp forward port " + std::to_string(port) + ": " + st.message(), st.err());
    }
  }
  return {};
}

// The listeners of one forwarded port: fw's address, or all addresses of
// each family in use. Fails (with the last error) only when none opened.
Status TcpTranslator::open_listeners(const PortForward& fw, uint16_t port, uint16_t gport) {
  const Config& cfg = link_.config();
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
  Status last(EINVAL, "no address family");
  for (int i = 0; i < nwant; i++) {
    int fd = open_host_socket(wants[i].v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                              cfg.socket_mark);
    if (fd < 0) {
      last = Status::from_errno("socket");
      continue;
    }
    set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (wants[i].v6) set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    sockaddr_storage ss;
    socklen_t sl = to_sockaddr(wants[i].addr, port, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0 || listen(fd, 1024) < 0) {
      last = Status::from_errno("bind " + wants[i].addr.str() + " port " + std::to_string(port));
      close(fd);
      continue;
    }
    // A slot a closed forward left (-t auto), else a new one: the index is
    // the listener's epoll id, so a slot keeps its place in the vector.
    uint32_t index = static_cast<uint32_t>(listeners_.size());
    if (!free_listeners_.empty()) index = free_listeners_.back();
    if (!loop_.add(fd, EPOLLIN, tag_, kListenerBit | index)) {
      last = Status::from_errno("epoll");
      close(fd);
      continue;
    }
    if (index == listeners_.size()) listeners_.push_back({});
    else free_listeners_.pop_back();
    listeners_[index] = Listener{fd, port, gport, wants[i].v6};
    opened++;
  }
  return opened > 0 ? Status() : last;
}

Status TcpTranslator::open_forward(uint16_t port) {
  PortForward fw;
  fw.host_first = fw.host_last = fw.guest_first = port;
  return open_listeners(fw, port, port);
}

void TcpTranslator::close_forward(uint16_t port) {
  for (size_t i = 0; i < listeners_.size(); i++) {
    Listener& l = listeners_[i];
    if (l.fd < 0 || l.host_port != port) continue;
    loop_.remove(l.fd);
    close(l.fd);
    l = Listener{};
    free_listeners_.push_back(static_cast<uint32_t>(i));
  }
}

// Accepts what is pending (bounded per wake-up, so one busy port cannot
// starve the loop; level-triggered, so the rest comes next round).
void TcpTranslator::listener_event(uint32_t index) {
  if (index >= listeners_.size() || listeners_[index].fd < 0) return;  // closed by close_forward()
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
    if (listeners_[i].fd >= 0) loop_.modify(listeners_[i].fd, 0, tag_, kListenerBit | i);
  listeners_resume_at_ = now + 100'000'000;
}

// An accepted host connection becomes a SYN to the guest from the client's
// address as the policy shows it to the guest (loopback as the gateway).
void TcpTranslator::accept_one(const Listener& l, int fd) {
  const Config& cfg = link_.config();
  auto refuse_host = [&] {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
  };
  sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return refuse_host();
  InetAddr client;
  uint16_t cport = 0;
  if (!from_sockaddr(ss, &client, &cport)) return refuse_host();
  bool v6 = !client.is_v4();
  if ((v6 && !cfg.ipv6) || (!v6 && !cfg.ipv4)) return refuse_host();
  const InetAddr peer = link_.policy().guest_view(client);
  InetAddr guest = v6 ? cfg.guest6.addr : cfg.guest4.addr;
  ferry_conn_key key = make_key(guest, l.guest_port, peer, cport);
  reap_released();
  if (table_.lookup(key) != kNoSlot) return refuse_host();  // e.g. two loopback clients, same port
  uint32_t slot = claim_slot(key, guest, l.guest_port, peer, cport, v6);
  if (slot == kNoSlot) return refuse_host();
  TcpConn& c = conns_[slot];
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
  c.flags = kReadable;
  c.last_activity = now;
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  set_int(fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  if (!loop_.add(fd, kBaseEvents, tag_, id_of(slot))) {
    c.fd = -1;
    c.state = TcpState::free;
    table_.remove(slot);  // never announced: not a release
    return refuse_host();
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

// ---- guest segments of no flow, outbound opens --------------------------------

// No flow: one in TIME-WAIT answers for itself; a SYN opens one; anything
// else but a RST gets a RST.
void TcpTranslator::guest_segment_no_flow(const ParsedFrame& f, const ferry_conn_key& key) {
  uint8_t fl = f.tcp.flags;
  if (TimeWaitTable::Entry* tw = time_wait_.find(key, now_ns()); tw && segment_time_wait(f, key, *tw)) return;
  if (fl & tcpflag::kRst) return;
  if ((fl & (tcpflag::kSyn | tcpflag::kFin)) == (tcpflag::kSyn | tcpflag::kFin)) {
    counters_.dropped_segments++;  // SYN+FIN: a scan, never a real open (Linux drops it too)
    return;
  }
  if ((fl & tcpflag::kSyn) && !(fl & tcpflag::kAck)) return open_outbound(f, key);
  counters_.rst_unknown_flow++;
  send_rst_for(f);
}

// Guest SYN: the destination policy's verdict, then a non-blocking
// connect() to the host address it names.
void TcpTranslator::open_outbound(const ParsedFrame& f, const ferry_conn_key& key) {
  const bool v6 = f.l3 == L3Kind::ipv6;
  const Verdict v = link_.policy().decide(FlowProto::tcp, v6, f.src, f.dst, f.tcp.dport, now_ns());
  if (!v.allowed()) {
    // An address of the other family (IPv4-mapped) cannot be answered from.
    if (v.answered() && f.src.is_v4() == f.dst.is_v4()) send_rst_for(f);
    return;
  }
  uint32_t slot = claim_slot(key, f.src, f.tcp.sport, f.dst, f.tcp.dport, v6);
  if (slot == kNoSlot) {
    send_rst_for(f);
    return;
  }
  TcpConn& c = conns_[slot];
  c.state = TcpState::connecting;
  uint64_t now = now_ns();
  c.last_activity = now;
  c.irs = f.tcp.seq;
  c.rcv_nxt = f.tcp.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  c.syn_payload = static_cast<uint16_t>(f.tcp.payload_len);  // a refusal ACKs it too
  negotiate(c, f.tcp.opts);
  c.snd_wnd = f.tcp.window;  // SYN windows are never scaled
  c.iss = isn_.isn(f.dst, f.tcp.dport, f.src, f.tcp.sport, now);
  c.snd_una = c.iss;
  c.snd_nxt = c.iss;
  c.snd_max = c.iss;

  // With -o / --outbound-if4/6: tied to the interface here, bound to the address below.
  int fd = open_outbound_socket(link_.config(), v6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, v.host);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE) counters_.fd_exhausted++;
    counters_.connect_failed++;
    return refuse(slot, false, "error");
  }
  c.fd = fd;
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  counters_.conns_outbound++;
  if (verbose()) log_flow_open(ends_of(c));
  if (observer_) observer_->on_flow_added(slot, key, c);
  sockaddr_storage ss;
  socklen_t sl;
  if (has_outbound_address(link_.config(), v6, v.host)) {
    // The port is connect()'s to choose, per destination, not bind()'s.
    set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);  // SOL_IP: IPv6 sockets too
    sl = outbound_bind_address(link_.config(), v6, v.host, 0, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
      counters_.connect_failed++;
      if (verbose()) log_flow_error(ends_of(c), "bind -o", errno);
      return refuse(slot, false, "connect-failed");
    }
  }
  sl = to_sockaddr(v.host, f.tcp.dport, &ss);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&ss), sl);
  if (r < 0 && errno != EINPROGRESS) {
    counters_.connect_failed++;
    if (verbose()) log_flow_error(ends_of(c), "connect", errno);
    return refuse(slot, false, "connect-failed");
  }
  if (!loop_.add(fd, kBaseEvents | EPOLLOUT, tag_, id_of(slot))) return refuse(slot, false, "error");
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
    return refuse(slot, false, "connect-failed");
  }
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  c.state = TcpState::syn_rcvd;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.snd_nxt;
  // kReadable comes with EPOLLIN (this event's, or the one the MOD below
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

// RST|ACK at the guest's SYN (+ its payload), then the slot goes.
void TcpTranslator::refuse(uint32_t slot, bool linger0, const char* why) {
  const TcpConn& c = conns_[slot];
  emit_control(slot, tcpflag::kRst | tcpflag::kAck, 0, c.rcv_nxt + c.syn_payload, 0);
  counters_.rst_to_guest++;
  release(slot, linger0, why);
}

// ---- the SYN states --------------------------------------------------------------

// CONNECTING: retransmitted SYNs are absorbed; an exact RST aborts.
void TcpTranslator::segment_connecting(uint32_t slot, const ParsedFrame& f) {
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kRst) return guest_rst(slot, f.tcp.seq);
  if ((fl & tcpflag::kSyn) && !(fl & tcpflag::kAck)) return;  // retransmission, absorbed
  counters_.dropped_segments++;
}

// SYN_RCVD: a retransmitted SYN gets the SYN-ACK again; a segment outside
// the window an ACK; the first acceptable ACK establishes; a bad ACK gets a
// RST.
void TcpTranslator::segment_syn_rcvd(uint32_t slot, const ParsedFrame& f,
                                     std::span<const uint8_t> frame) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  if (fl & tcpflag::kRst) return guest_rst(slot, f.tcp.seq);
  if (fl & tcpflag::kSyn) {
    if (!(fl & tcpflag::kAck) && f.tcp.seq == c.irs) {
      send_syn_ack(slot);  // our SYN-ACK was lost
      return;
    }
    counters_.challenge_acks++;
    send_ack_now(slot);
    return;
  }
  // RFC 9293 3.10.7.4, first check: a segment outside the window we
  // offered in the SYN-ACK is answered with an ACK and establishes nothing.
  const uint32_t seg_len = static_cast<uint32_t>(f.tcp.payload_len) + ((fl & tcpflag::kFin) ? 1u : 0u);
  if (!segment_acceptable(c, f.tcp.seq, seg_len)) {
    counters_.dropped_segments++;
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
  if (c.state == TcpState::established) send_data(slot);
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
  c.irs = f.tcp.seq;
  c.rcv_nxt = f.tcp.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  negotiate(c, f.tcp.opts);
  become_established(slot, f.tcp.window /* unscaled in a SYN-ACK */, f.tcp.seq, f.tcp.ack);
  send_ack_now(slot);
  if (f.tcp.payload_len > 0 && c.state == TcpState::established) {
    guest_data(slot, f.tcp.seq + 1,
               frame.subspan(f.tcp.payload_offset, f.tcp.payload_len),
               (fl & tcpflag::kFin) != 0);
  }
  if (c.state == TcpState::established) send_data(slot);
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
  c.max_snd_wnd = std::max(c.max_snd_wnd, wnd);
  c.snd_wl1 = seq;
  c.snd_wl2 = ack;
  if (c.rtt_active && c.retries == 0) c.rto.sample(now - c.rtt_start);
  c.rtt_active = false;
  c.retries = 0;
  c.rto.reset_backoff();
  c.rtx_at = 0;
  c.cc.init(c.mss, initial_window_);  // the initial window (congestion.h)
  c.state_at = now + timeouts_.idle_ns;
  update_timer(slot);
}

// ---- options ---------------------------------------------------------------------

// From the guest's SYN (outbound) or SYN-ACK (inbound): the MSS toward it,
// window scaling when it sent the option (we offered ours or will echo
// it), SACK when it is permitted both ways.
void TcpTranslator::negotiate(TcpConn& c, const TcpOptions& o) {
  uint32_t mine = our_mss(link_.config().mtu, c.v6);
  uint32_t theirs = o.has_mss ? o.mss : kDefaultMss;
  c.mss = static_cast<uint16_t>(std::max(kMinMss, std::min(mine, theirs)));
  if (o.has_wscale) {
    c.flags |= kWscale;
    c.snd_shift = std::min<uint8_t>(o.wscale, 14);
    c.rcv_shift = our_shift_;
  } else {
    c.snd_shift = 0;
    c.rcv_shift = 0;
  }
  if (kOfferSack && o.sack_permitted) c.flags |= kSack;
}

// Options of our SYN / SYN-ACK: MSS, window scale and SACK-permitted when
// the guest offered them (always offered in our own SYN). Never timestamps.
TcpOptions TcpTranslator::syn_options(const TcpConn& c) const {
  TcpOptions o;
  o.has_mss = true;
  o.mss = static_cast<uint16_t>(our_mss(link_.config().mtu, c.v6));
  if (c.inbound || (c.flags & kWscale)) {
    o.has_wscale = true;
    o.wscale = our_shift_;
  }
  o.sack_permitted = kOfferSack && (c.inbound || (c.flags & kSack));
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
  emit_control(slot, tcpflag::kSyn | tcpflag::kAck, c.iss, c.rcv_nxt, w, &o);
  c.rcv_acked = c.rcv_nxt;
}

// SYN for an inbound connection.
void TcpTranslator::send_syn(uint32_t slot) {
  TcpConn& c = conns_[slot];
  TcpOptions o = syn_options(c);
  uint16_t w = static_cast<uint16_t>(std::min<uint32_t>(65535, max_window_));
  emit_control(slot, tcpflag::kSyn, c.iss, 0, w, &o);
}

}  // namespace ferry

// FastPathBridge: see fastpath_bridge.h for the theory of operation (who
// writes which slot field, when a flow is eligible, how wake-ups come).
#include "fastpath/fastpath_bridge.h"

#include <sys/epoll.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "bpf/classify.h"

namespace ferry {

namespace {

// Bytes of room that must open before a stalled sender is woken: a quarter
// (1/divisor) of the window it stalled on, at least one MSS, never more
// than that window (or everything acknowledged could not wake it).
uint32_t wake_room_for(const TcpConn& c, uint32_t divisor) {
  if (divisor == 0 || c.snd_wnd == 0) return 1;
  uint32_t room = std::max<uint32_t>(c.snd_wnd / divisor, c.mss);
  return std::min(room, c.snd_wnd);
}

}  // namespace

// Sizes the per-flow table; nothing is registered until open().
FastPathBridge::FastPathBridge(EventLoop& loop, TcpTranslator& tcp, Options opts)
    : loop_(loop), tcp_(tcp), opts_(opts), scan_interval_(opts.scan_min_ns) {}

// Leaves the translator on the slow path; the maps go with the attachment.
FastPathBridge::~FastPathBridge() {
  tcp_.set_fast_path(nullptr);
  if (events_fd_ >= 0) loop_.remove(events_fd_);
  if (flows_ != nullptr) munmap(flows_, sizeof(Flow) * nflows_);
}

// Defaults plus FERRY_WAKE_DIVISOR (a measurement knob of `ferry run` and
// `ferry attach`).
FastPathBridge::Options FastPathBridge::Options::from_environment() {
  Options o;
  if (const char* d = std::getenv("FERRY_WAKE_DIVISOR")) o.wake_divisor = static_cast<uint32_t>(std::atoi(d));
  return o;
}

// Opens on the loaded classifier's maps (`ferry run`).
Status FastPathBridge::open(const BpfAttachment& bpf) {
  if (bpf.skeleton() == nullptr) return Status::failure("BPF classifier not loaded");
  return open(fastpath_map_fds(bpf));
}

// Maps the slots, opens the ring, registers with the loop and the translator.
Status FastPathBridge::open(const FastPathMapFds& fds) {
  if (Status st = map_.open(fds); !st.ok()) return st;
  if (Status st = events_.open(fds, [this](const ferry_event& ev) { on_event(ev); }); !st.ok()) return st;
  // untouched pages stay zero and cost no memory (as the translator's table)
  void* p = mmap(nullptr, sizeof(Flow) * map_.capacity(), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::failure("fast path: no memory for the flow table", ENOMEM);
  flows_ = static_cast<Flow*>(p);
  nflows_ = map_.capacity();
  events_fd_ = events_.epoll_fd();
  if (events_fd_ < 0 || !loop_.add(events_fd_, EPOLLIN, loop_.register_handler(this), 0)) {
    events_fd_ = -1;
    return Status::failure("fast path: cannot watch the event ring");
  }
  loop_.add_timer_client(this);
  tcp_.set_fast_path(this);
  return {};
}

// New absorbed ACKs since the last call (acks_absorbed moved). The ACK is
// read before the window: BPF writes them in that order, so a torn read
// pairs an older ACK with a newer window, i.e. a right edge never beyond
// the guest's real one. The arrival time is read after the ACK: BPF writes
// it first, so it is that ACK's or a later one's, never earlier.
bool FastPathBridge::progress(uint32_t slot, uint32_t* ack, uint32_t* window, uint64_t* ack_ns) {
  if (slot >= nflows_ || !(flows_[slot].bits & (kPublished | kDrain))) return false;
  Flow& f = flows_[slot];
  auto n = static_cast<uint32_t>(map_.acks_absorbed(slot));
  if (n == f.absorbed_seen) return false;
  f.absorbed_seen = n;
  *ack = map_.ack_from_guest(slot);
  *window = map_.guest_window(slot);
  *ack_ns = map_.last_ack_ns(slot);
  counters_.folds++;
  return true;
}

// Keeps the slot current with what the translator sent; moves the flow
// onto or off the fast path as its eligibility changes.
void FastPathBridge::sync(uint32_t slot, const TcpConn& c, uint32_t snd_max) {
  if (slot >= nflows_) return;
  Flow& f = flows_[slot];
  bool want = may_absorb(c) && (snd_max - (c.iss + 1) >= kPublishMinBytes || (f.bits & kPublished));
  if (!(f.bits & kPublished)) {
    if (want && !(f.bits & kFailed)) publish(slot, c, snd_max);
    return;
  }
  if (!want) {
    retire(slot, tcp_.table().key(slot));
    return;
  }
  if (snd_max != f.snd_nxt) {
    map_.set_snd_nxt(slot, snd_max);  // before FIN_PENDING: FIN_ACKED compares with it
    f.snd_nxt = snd_max;
  }
  map_.set_rcv_nxt(slot, c.rcv_nxt);
  if ((c.flags & tcpconn::kFinSent) && !(f.bits & kFin)) {
    map_.set_fin_pending(slot, true);
    f.bits |= kFin;
  }
  watch(slot, worth_watching(c, snd_max));
}

// BPF may absorb a flow's ACKs only while it is ESTABLISHED with its host
// socket and not repairing loss (then every ACK must reach process_ack()).
bool FastPathBridge::may_absorb(const TcpConn& c) {
  return c.state == TcpState::established && !c.in_recovery && c.fd >= 0;
}

// The scan is for flows with enough in flight that freeing the host socket
// promptly matters. A request/response flow keeps a few bytes outstanding:
// a 1 ms timer for it only costs wake-ups (measured: RR free-running 2-3x
// slower); its progress is folded when the guest's next segment or an
// expiring timer makes the translator look.
bool FastPathBridge::worth_watching(const TcpConn& c, uint32_t snd_max) {
  return snd_max - c.snd_una >= kWatchMinBytes;
}

// The sender stopped on the guest's window: arm WINDOW_OPEN with a
// threshold, and report a window that is (enough) open already.
bool FastPathBridge::stall(uint32_t slot, const TcpConn& c) {
  if (!published(slot) && may_absorb(c) && !(flows_[slot].bits & kFailed))
    publish(slot, c, c.snd_max);  // window-limited: its ACKs are worth absorbing
  if (!published(slot)) return false;
  if (map_.slot(slot) == nullptr) return false;
  uint32_t room = wake_room_for(c, opts_.wake_divisor);
  map_.set_wake_room(slot, room);  // before stall_epoch
  counters_.stalls++;
  watch(slot, true);  // the scan backs up the event while stalled
  if (!map_.stall(slot)) return false;
  uint32_t edge = map_.ack_from_guest(slot) + map_.guest_window(slot);
  int32_t open = static_cast<int32_t>(edge - flows_[slot].snd_nxt);
  if (open <= 0 || static_cast<uint32_t>(open) < room) return false;
  counters_.stall_open++;
  return true;
}

// The host socket ran dry with bytes in flight: arm WINDOW_OPEN to fire once
// the guest has ACKed them all, and only then (FERRY_WAKE_ALL_ACKED: no
// amount of room, which a growing window gives a partial ACK, spends it).
// No scan: a request/response flow drains its socket after every response,
// and its next request (data, never absorbed) folds the ACK anyway.
bool FastPathBridge::drained(uint32_t slot, const TcpConn&) {
  if (!published(slot)) return false;
  if (map_.slot(slot) == nullptr) return false;
  map_.set_wake_room(slot, FERRY_WAKE_ALL_ACKED);
  counters_.drained++;
  map_.stall(slot);  // bumps the epoch, then reads what BPF absorbed
  return map_.ack_from_guest(slot) == flows_[slot].snd_nxt;  // ACKed already
}

// A flow entered the translator's table: nothing published yet.
void FastPathBridge::on_flow_added(uint32_t slot, const ferry_conn_key&, const TcpConn&) {
  if (slot < nflows_ && !(flows_[slot].bits & kPublished)) flows_[slot].bits = 0;
}

// A flow left the table (close, reset, timeout): off the fast path.
void FastPathBridge::on_flow_removed(uint32_t slot, const ferry_conn_key& key) {
  if (slot >= nflows_) return;
  if (flows_[slot].bits & kPublished) retire(slot, key);
  flows_[slot].bits = 0;
}

// Publishes a flow seeded from the translator's state (one bpf() call).
void FastPathBridge::publish(uint32_t slot, const TcpConn& c, uint32_t snd_max) {
  Flow& f = flows_[slot];
  ConnSlotInit init;
  init.snd_una = c.snd_una;
  init.snd_nxt = snd_max;
  init.rcv_nxt = c.rcv_nxt;
  init.guest_window = c.snd_wnd;
  init.guest_wscale = c.snd_shift;
  init.timestamps = false;  // ferry never negotiates them
  init.state = static_cast<uint8_t>(c.state);
  init.mss = c.mss;
  uint32_t gen = 0;
  if (!map_.publish(slot, tcp_.table().key(slot), init, &gen).ok()) {
    f.bits |= kFailed;
    counters_.publish_failed++;
    return;
  }
  counters_.published++;
  f.gen = gen;
  f.snd_nxt = snd_max;
  f.absorbed_seen = 0;
  f.bits = static_cast<uint8_t>((f.bits & kWatched) | kPublished);
  if (c.flags & tcpconn::kFinSent) {
    map_.set_fin_pending(slot, true);
    f.bits |= kFin;
  }
  watch(slot, worth_watching(c, snd_max));
}

// Takes a flow off the fast path (one bpf() call).
void FastPathBridge::retire(uint32_t slot, const ferry_conn_key& key) {
  map_.retire(slot, key);
  counters_.retired++;
  watch(slot, false);
  // BPF may have absorbed one more ACK on another CPU while we retired: the
  // slot keeps it (until published again) and progress() still reads it.
  flows_[slot].bits = static_cast<uint8_t>((flows_[slot].bits & kFailed) | kDrain);
}

// Counts flows the activity scan must keep an eye on; starts the scan.
void FastPathBridge::watch(uint32_t slot, bool on) {
  Flow& f = flows_[slot];
  if (on == ((f.bits & kWatched) != 0)) return;
  if (on) {
    f.bits |= kWatched;
    if (watched_++ == 0) {
      scan_interval_ = opts_.scan_min_ns;
      next_scan_ = now_ns() + scan_interval_;
    }
  } else {
    f.bits = static_cast<uint8_t>(f.bits & ~kWatched);
    watched_--;
  }
}

// The scan's deadline while any published flow has data outstanding.
uint64_t FastPathBridge::next_deadline_ns() const { return watched_ > 0 ? next_scan_ : kNever; }

// Runs the activity scan when due.
void FastPathBridge::on_timer(uint64_t now) {
  if (watched_ == 0 || now < next_scan_) return;
  uint32_t n = scan();
  scan_interval_ = n > 0 ? opts_.scan_min_ns : std::min(scan_interval_ * 2, opts_.scan_max_ns);
  next_scan_ = now + scan_interval_;
}

// Folds and serves every flow whose activity bit is set; returns how many.
uint32_t FastPathBridge::scan() {
  counters_.scans++;
  uint32_t n = map_.drain_activity([this](uint32_t slot) {
    if (published(slot)) tcp_.fast_progress(slot);
  });
  counters_.scan_visits += n;
  return n;
}

// The event ring is readable: drain it.
void FastPathBridge::on_io(uint64_t, uint32_t) {
  counters_.event_wakeups++;
  events_.consume();
}

// One record: act for the flow's current generation only.
void FastPathBridge::on_event(const ferry_event& ev) {
  counters_.events++;
  if (ev.slot >= nflows_ || !(flows_[ev.slot].bits & kPublished) ||
      flows_[ev.slot].gen != ev.gen) {
    counters_.stale_events++;
    return;
  }
  switch (ev.kind) {
    case FERRY_EV_WINDOW_OPEN:
      counters_.window_open++;
      tcp_.fast_progress(ev.slot);
      break;
    case FERRY_EV_FAST_RETRANSMIT:
      counters_.fast_retransmit++;
      tcp_.fast_progress(ev.slot, true, ev.ack);
      break;
    case FERRY_EV_FIN_ACKED:
      counters_.fin_acked++;
      tcp_.fast_progress(ev.slot);
      break;
    default:
      counters_.stale_events++;
      break;
  }
}

// "name=value" pairs of every counter, in their list's order.
std::string FastPathBridge::counters_line() const {
  std::string line;
#define FERRY_FASTPATH_PAIR(field, where) \
  line += (line.empty() ? "" : " ") + std::string(#field "=") + std::to_string(counters_.field);
  FERRY_FASTPATH_BRIDGE_COUNTERS(FERRY_FASTPATH_PAIR)
#undef FERRY_FASTPATH_PAIR
  return line;
}

}  // namespace ferry

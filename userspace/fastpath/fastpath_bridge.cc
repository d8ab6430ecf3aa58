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
    : loop_(loop), tcp_(tcp), opts_(opts) {}

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
  // one Flow per translator slot; untouched pages stay zero and cost no
  // memory (as the translator's table)
  const uint32_t nflows = tcp_.table().capacity();
  void* p = mmap(nullptr, sizeof(Flow) * nflows, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::failure("fast path: no memory for the flow table", ENOMEM);
  flows_ = static_cast<Flow*>(p);
  nflows_ = nflows;
  // map slots, lowest first (popped from the back)
  free_map_slots_.resize(map_.capacity());
  for (uint32_t i = 0; i < map_.capacity(); i++) free_map_slots_[i] = map_.capacity() - 1 - i;
  owner_.assign(map_.capacity(), 0);
  events_fd_ = events_.epoll_fd();
  if (events_fd_ < 0 || !loop_.add(events_fd_, EPOLLIN, loop_.register_handler(this), 0)) {
    events_fd_ = -1;
    return Status::failure("fast path: cannot watch the event ring");
  }
  tcp_.set_fast_path(this);
  return {};
}

// New absorbed ACKs since the last call (acks_absorbed moved). The ACK is
// read before the window: BPF writes them in that order, so a torn read
// pairs an older ACK with a newer window, i.e. a right edge never beyond
// the guest's real one. The RTT stamp is read after the ACK: BPF writes it
// first, so with an ACK at or past rtt_seq it is that crossing's arrival.
bool FastPathBridge::progress(uint32_t slot, uint32_t* ack, uint32_t* window, uint64_t* ack_ns) {
  if (slot >= nflows_ || !(flows_[slot].bits & (kPublished | kDrain))) return false;
  Flow& f = flows_[slot];
  const uint32_t m = f.map_slot;
  auto n = static_cast<uint32_t>(map_.acks_absorbed(m));
  if (n == f.absorbed_seen) return false;
  f.absorbed_seen = n;
  *ack = map_.ack_from_guest(m);
  *window = map_.guest_window(m);
  *ack_ns = map_.rtt_ack_ns(m);
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
    map_.set_snd_nxt(f.map_slot, snd_max);  // before FIN_PENDING: FIN_ACKED compares with it
    f.snd_nxt = snd_max;
  }
  map_.set_rcv_nxt(f.map_slot, c.rcv_nxt);
  map_.set_rtt_seq(f.map_slot, rtt_seq_for(c, snd_max));
  if ((c.flags & tcpconn::kFinSent) && !(f.bits & kFin)) {
    map_.set_fin_pending(f.map_slot, true);
    f.bits |= kFin;
  }
}

// The sequence whose ACK's arrival BPF stamps: the translator's timed
// segment's end, or (not timing yet) the end of what is about to leave,
// which the translator times when it is new data (send_data() starts its
// sample right after this sync, with rtt_seq = snd_max).
uint32_t FastPathBridge::rtt_seq_for(const TcpConn& c, uint32_t snd_max) {
  return c.rtt_active ? c.rtt_seq : snd_max;
}

// BPF may absorb a flow's ACKs only while it is ESTABLISHED with its host
// socket and not repairing loss (then every ACK must reach process_ack()).
bool FastPathBridge::may_absorb(const TcpConn& c) {
  return c.state == TcpState::established && !c.in_recovery && c.fd >= 0;
}

// The sender stopped on the guest's window: arm WINDOW_OPEN for wake_room
// bytes of room or the ACK of everything, and report a window that is
// (enough) open already. Stopped by its congestion window instead (the
// guest's leaves at least an MSS of room), room is no measure: what lets
// it go on is bytes leaving the flight, so it wakes at the ACK of a share
// of the flight, as drained() does (room would wake it at every ACK).
bool FastPathBridge::stall(uint32_t slot, const TcpConn& c) {
  if (!published(slot) && may_absorb(c) && !(flows_[slot].bits & kFailed))
    publish(slot, c, c.snd_max);  // window-limited: its ACKs are worth absorbing
  if (!published(slot)) return false;
  const uint32_t snd_nxt = flows_[slot].snd_nxt;
  const auto guest_room = static_cast<int32_t>(c.snd_una + c.snd_wnd - snd_nxt);
  bool due;
  if (guest_room >= static_cast<int32_t>(c.mss)) {
    counters_.cwnd_stalls++;
    due = map_.arm_wake(flows_[slot].map_slot, FERRY_WAKE_ROOM_NONE, flight_share_acked(c, snd_nxt), c.snd_una);
  } else {
    counters_.stalls++;
    due = map_.arm_wake(flows_[slot].map_slot, wake_room_for(c, opts_.wake_divisor), snd_nxt, c.snd_una);
  }
  if (due) counters_.stall_open++;
  return due;
}

// The host socket holds only bytes in flight: arm WINDOW_OPEN for the ACK
// of a quarter of a large flight (freeing that much of the socket's queue
// lets the host's sender go on) or of all of a small one; no room wakes
// it (a partial ACK with a grown window would spend the wake-up). True when
// that much is ACKed already.
bool FastPathBridge::drained(uint32_t slot, const TcpConn& c) {
  if (!published(slot)) return false;
  const uint32_t snd_nxt = flows_[slot].snd_nxt;
  uint32_t wake_ack = snd_nxt;
  if (snd_nxt - c.snd_una >= kPartialWakeMinBytes) wake_ack = flight_share_acked(c, snd_nxt);
  counters_.drained++;
  return map_.arm_wake(flows_[slot].map_slot, FERRY_WAKE_ROOM_NONE, wake_ack, c.snd_una);
}

// The sequence at which 1/wake_divisor of the flight (at least an MSS, at
// most all of it) is acknowledged; with the divisor 0, the next ACK.
uint32_t FastPathBridge::flight_share_acked(const TcpConn& c, uint32_t snd_nxt) const {
  const uint32_t flight = snd_nxt - c.snd_una;
  if (opts_.wake_divisor == 0) return c.snd_una + std::min<uint32_t>(1, flight);
  return c.snd_una + std::min(std::max<uint32_t>(flight / opts_.wake_divisor, c.mss), flight);
}

// A flow entered the translator's table: nothing published yet.
void FastPathBridge::on_flow_added(uint32_t slot, const ferry_conn_key&, const TcpConn&) {
  if (slot < nflows_ && !(flows_[slot].bits & kPublished)) {
    release_map_slot(slot);
    flows_[slot].bits = 0;
  }
}

// A flow left the table (close, reset, timeout): off the fast path.
void FastPathBridge::on_flow_removed(uint32_t slot, const ferry_conn_key& key) {
  if (slot >= nflows_) return;
  if (flows_[slot].bits & kPublished) retire(slot, key);
  release_map_slot(slot);
  flows_[slot].bits = 0;
}

// Gives the flow a conn_state index of its own, unless it has one; false
// when every index is taken.
bool FastPathBridge::take_map_slot(uint32_t slot) {
  Flow& f = flows_[slot];
  if (f.bits & kHasSlot) return true;
  if (free_map_slots_.empty()) return false;
  f.map_slot = free_map_slots_.back();
  free_map_slots_.pop_back();
  owner_[f.map_slot] = slot;
  f.bits |= kHasSlot;
  return true;
}

// Returns the flow's conn_state index (the flow left the table: nothing of
// it is read any more).
void FastPathBridge::release_map_slot(uint32_t slot) {
  Flow& f = flows_[slot];
  if (!(f.bits & kHasSlot)) return;
  free_map_slots_.push_back(f.map_slot);
  f.bits &= static_cast<uint8_t>(~kHasSlot);
}

// Publishes a flow seeded from the translator's state (one bpf() call).
void FastPathBridge::publish(uint32_t slot, const TcpConn& c, uint32_t snd_max) {
  Flow& f = flows_[slot];
  if (!take_map_slot(slot)) {
    counters_.no_slot++;  // stays on the userspace path; the next sync tries again
    return;
  }
  ConnSlotInit init;
  init.snd_una = c.snd_una;
  init.snd_nxt = snd_max;
  init.rcv_nxt = c.rcv_nxt;
  init.guest_window = c.snd_wnd;
  init.guest_wscale = c.snd_shift;
  init.timestamps = false;  // ferry never negotiates them
  init.state = static_cast<uint8_t>(c.state);
  init.mss = c.mss;
  init.rtt_seq = rtt_seq_for(c, snd_max);
  uint32_t gen = 0;
  if (!map_.publish(f.map_slot, tcp_.table().key(slot), init, &gen).ok()) {
    f.bits |= kFailed;
    counters_.publish_failed++;
    return;
  }
  counters_.published++;
  f.gen = gen;
  f.snd_nxt = snd_max;
  f.absorbed_seen = 0;
  f.bits = kPublished | kHasSlot;
  if (c.flags & tcpconn::kFinSent) {
    map_.set_fin_pending(f.map_slot, true);
    f.bits |= kFin;
  }
}

// Takes a flow off the fast path (one bpf() call).
void FastPathBridge::retire(uint32_t slot, const ferry_conn_key& key) {
  map_.retire(flows_[slot].map_slot, key);
  counters_.retired++;
  // BPF may have absorbed one more ACK on another CPU while we retired: the
  // slot keeps it (until published again) and progress() still reads it.
  flows_[slot].bits = static_cast<uint8_t>((flows_[slot].bits & (kFailed | kHasSlot)) | kDrain);
}

// The event ring is readable: act on up to kEventsPerWakeup records. Each
// one sends, and our frames make the guest ACK inside our own writev(), so
// BPF posts the next wake-up before we return: drained to the end, the ring
// never emptied and the loop never came back to epoll_wait() (a 100-stream
// download: no epoll_wait, no tap read, no timer for seconds). The rest wait
// for the next turn of the loop, after the tap, the sockets and the timers.
void FastPathBridge::on_io(uint64_t, uint32_t) {
  counters_.event_wakeups++;
  events_.consume(kEventsPerWakeup);
}

// One record: act for the flow's current generation only.
void FastPathBridge::on_event(const ferry_event& ev) {
  counters_.events++;
  const uint32_t slot = ev.slot < owner_.size() ? owner_[ev.slot] : nflows_;
  if (slot >= nflows_ || !(flows_[slot].bits & kPublished) || flows_[slot].map_slot != ev.slot ||
      flows_[slot].gen != ev.gen) {
    counters_.stale_events++;
    return;
  }
  switch (ev.kind) {
    case FERRY_EV_WINDOW_OPEN:
      counters_.window_open++;
      tcp_.fast_progress(slot);
      break;
    case FERRY_EV_FAST_RETRANSMIT:
      counters_.fast_retransmit++;
      tcp_.fast_progress(slot, true, ev.ack);
      break;
    case FERRY_EV_FIN_ACKED:
      counters_.fin_acked++;
      tcp_.fast_progress(slot);
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

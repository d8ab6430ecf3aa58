// Fast-path maps, userspace side: see fastpath_maps.h for the theory of
// operation. Memory ordering: the slot array is shared with BPF programs on
// every CPU; userspace publishes a slot by writing all fields first and the
// flags word last with a release store, and reads BPF's fields with acquire
// loads. Flag changes after publication are read-modify-write loops on the
// flags word, which only userspace writes (so there is no lost update).
#include "bpf/fastpath_maps.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/classify.h"

#include "ferry_classify.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry {

namespace {

// Maps an mmapable BPF array given by fd, whose values must be value_size
// bytes, into *out; *len gets the mapped bytes and *entries its length.
Status map_array(int fd, uint32_t value_size, void** out, size_t* len, uint32_t* entries) {
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &info_len) != 0)
    return Status(fd < 0 ? EBADF : errno, "fast-path map info");
  if (info.value_size != value_size || info.max_entries == 0) {
    return Status::failure(std::string("BPF map ") + info.name + ": value size " +
                           std::to_string(info.value_size) + ", expected " + std::to_string(value_size));
  }
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t value = (static_cast<size_t>(info.value_size) + 7) & ~size_t{7};
  size_t bytes = value * info.max_entries;
  *len = (bytes + page - 1) / page * page;
  *entries = info.max_entries;
  void* p = mmap(nullptr, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::from_errno(std::string("mmap BPF map ") + info.name);
  *out = p;
  return {};
}

template <class T>
T load_acquire(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <class T>
void store_release(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

}  // namespace

// ---- ConnMap --------------------------------------------------------------------

ConnMap::~ConnMap() {
  if (slots_ != nullptr) munmap(slots_, slots_len_);
}

FastPathMapFds fastpath_map_fds(const BpfAttachment& bpf) {
  FastPathMapFds f;
  ferry_classify* skel = bpf.skeleton();
  if (skel == nullptr) return f;
  f.conn_hash = bpf_map__fd(skel->maps.conn_hash);
  f.conn_state = bpf_map__fd(skel->maps.conn_state);
  f.events = bpf_map__fd(skel->maps.events);
  return f;
}

Status ConnMap::open(const BpfAttachment& bpf) {
  if (bpf.skeleton() == nullptr) return Status::failure("BPF classifier not loaded");
  return open(fastpath_map_fds(bpf));
}

Status ConnMap::open(const FastPathMapFds& fds) {
  if (slots_ != nullptr) return Status::failure("connection map already open");
  if (fds.conn_hash < 0) return Status::failure("no conn_hash map");
  uint32_t slots = 0;
  void* s = nullptr;
  if (Status st = map_array(fds.conn_state, sizeof(ferry_conn_slot), &s, &slots_len_, &slots); !st.ok())
    return st;
  slots_ = static_cast<ferry_conn_slot*>(s);
  capacity_ = slots;
  hash_fd_ = fds.conn_hash;
  return {};
}

Status ConnMap::publish(uint32_t i, const ferry_conn_key& key, const ConnSlotInit& init,
                        uint32_t* gen) {
  ferry_conn_slot* s = slot(i);
  if (s == nullptr) return Status::failure("slot " + std::to_string(i) + " out of range", ERANGE);
  store_release(&s->flags, 0u);  // off the fast path while we rewrite it
  uint32_t g = s->gen + 1;
  if (g == 0) g = 1;
  std::memset(static_cast<void*>(s), 0, sizeof(*s));
  s->gen = g;
  s->snd_nxt = init.snd_nxt;
  s->rcv_nxt = init.rcv_nxt;
  s->rtt_seq = init.rtt_seq;
  s->guest_wscale = init.guest_wscale;
  s->state = init.state;
  s->mss = init.mss;
  // BPF's fields, seeded while BPF cannot see the slot (not eligible)
  s->ack_from_guest = init.snd_una;
  s->guest_window = init.guest_window;
  store_release(&s->flags, FERRY_SLOT_ELIGIBLE | (init.timestamps ? FERRY_SLOT_TIMESTAMPS : 0u));
  if (bpf_map_update_elem(hash_fd_, &key, &i, BPF_NOEXIST) != 0) {
    int e = errno;
    store_release(&s->flags, 0u);
    return Status(e, "insert flow into conn_hash");
  }
  if (gen != nullptr) *gen = g;
  return {};
}

void ConnMap::retire(uint32_t i, const ferry_conn_key& key) {
  if (ferry_conn_slot* s = slot(i)) store_release(&s->flags, 0u);
  if (hash_fd_ >= 0) bpf_map_delete_elem(hash_fd_, &key);
}

void ConnMap::update_flags(uint32_t i, uint32_t set, uint32_t clear) {
  ferry_conn_slot* s = slot(i);
  if (s == nullptr) return;
  uint32_t f = load_acquire(&s->flags);
  store_release(&s->flags, (f | set) & ~clear);
}

void ConnMap::set_snd_nxt(uint32_t i, uint32_t v) {
  if (ferry_conn_slot* s = slot(i)) store_release(&s->snd_nxt, v);
}

void ConnMap::set_rcv_nxt(uint32_t i, uint32_t v) {
  ferry_conn_slot* s = slot(i);
  if (s != nullptr && s->rcv_nxt != v) store_release(&s->rcv_nxt, v);  // only userspace writes it
}

void ConnMap::set_rtt_seq(uint32_t i, uint32_t v) {
  ferry_conn_slot* s = slot(i);
  if (s != nullptr && s->rtt_seq != v) store_release(&s->rtt_seq, v);  // only userspace writes it
}

void ConnMap::set_fin_pending(uint32_t i, bool on) {
  update_flags(i, on ? FERRY_SLOT_FIN_PENDING : 0u, on ? 0u : FERRY_SLOT_FIN_PENDING);
}

void ConnMap::set_eligible(uint32_t i, bool on) {
  update_flags(i, on ? FERRY_SLOT_ELIGIBLE : 0u, on ? 0u : FERRY_SLOT_ELIGIBLE);
}

bool ConnMap::arm_wake(uint32_t i, uint32_t room, uint32_t wake_ack, uint32_t una) {
  ferry_conn_slot* s = slot(i);
  if (s == nullptr) return false;
  store_release(&s->wake_room, room);  // the thresholds before the epoch
  store_release(&s->wake_ack, wake_ack);
  // a new epoch only if the previous one was answered: one event per stall
  uint32_t done = load_acquire(&s->stall_epoch_done);
  if (s->stall_epoch == done) store_release(&s->stall_epoch, s->stall_epoch + 1);
  // pairs with BPF's atomic between its slot stores and its epoch load
  // (the contract's "no lost wake-up"): an ACK BPF did not post for is seen here
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t ack = load_acquire(&s->ack_from_guest);
  uint32_t win = load_acquire(&s->guest_window);
  return ferry_wake_due(ack, una, win, s->snd_nxt, room, wake_ack) != 0;
}

uint32_t ConnMap::ack_from_guest(uint32_t i) const {
  const ferry_conn_slot* s = slot(i);
  return s != nullptr ? load_acquire(&s->ack_from_guest) : 0;
}
uint32_t ConnMap::guest_window(uint32_t i) const {
  const ferry_conn_slot* s = slot(i);
  return s != nullptr ? load_acquire(&s->guest_window) : 0;
}
uint32_t ConnMap::dup_acks(uint32_t i) const {
  const ferry_conn_slot* s = slot(i);
  return s != nullptr ? load_acquire(&s->dup_acks) : 0;
}
uint64_t ConnMap::acks_absorbed(uint32_t i) const {
  const ferry_conn_slot* s = slot(i);
  return s != nullptr ? load_acquire(&s->acks_absorbed) : 0;
}
uint64_t ConnMap::rtt_ack_ns(uint32_t i) const {
  const ferry_conn_slot* s = slot(i);
  return s != nullptr ? load_acquire(&s->rtt_ack_ns) : 0;
}

// ---- FastPathEvents -----------------------------------------------------------------

FastPathEvents::~FastPathEvents() {
  if (rb_ != nullptr) ring_buffer__free(rb_);
}

Status FastPathEvents::open(const BpfAttachment& bpf, Handler handler) {
  if (bpf.skeleton() == nullptr) return Status::failure("BPF classifier not loaded");
  return open(fastpath_map_fds(bpf), std::move(handler));
}

Status FastPathEvents::open(const FastPathMapFds& fds, Handler handler) {
  if (rb_ != nullptr) return Status::failure("event consumer already open");
  if (fds.events < 0) return Status::failure("no events ring buffer");
  handler_ = std::move(handler);
  rb_ = ring_buffer__new(fds.events, &FastPathEvents::trampoline, this, nullptr);
  if (rb_ == nullptr) return Status::from_errno("open events ring buffer");
  return {};
}

int FastPathEvents::epoll_fd() const { return rb_ != nullptr ? ring_buffer__epoll_fd(rb_) : -1; }

int FastPathEvents::trampoline(void* ctx, void* data, size_t size) {
  auto* self = static_cast<FastPathEvents*>(ctx);
  if (size < sizeof(ferry_event)) return 0;
  ferry_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  self->count_++;
  if (self->handler_) self->handler_(ev);
  // a negative return stops libbpf's loop after this record (consumed)
  return self->limit_ > 0 && self->count_ >= self->limit_ ? -EAGAIN : 0;
}

int FastPathEvents::consume(int max_records) {
  if (rb_ == nullptr) return 0;
  count_ = 0;
  limit_ = max_records;
  ring_buffer__consume(rb_);  // -EAGAIN when it stopped at the limit
  return count_;
}

void FastPathEvents::on_io(uint64_t, uint32_t) { consume(); }

}  // namespace ferry

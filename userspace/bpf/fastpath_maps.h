// Fast-path maps, userspace side: the connection table shared with the BPF
// classifier, and the ring-buffer consumer that wakes the control plane.
//
// Theory of operation: the contract (include/ferry/contract.h) defines the
// slot layout and who writes which field. ConnMap memory-maps `conn_state`
// once (mmap on the map fds, BPF_F_MMAPABLE), so reading what
// BPF wrote and writing what userspace owns costs no syscall; inserting or
// removing a flow in `conn_hash` costs one bpf() call, once per connection.
//
// Slot life (the TCP translator drives it):
//   publish(slot, key, init)   zero the slot, fill it, mark it eligible
//                              (release), then insert the key -> slot;
//   set_snd_nxt / set_rcv_nxt / set_rtt_seq / set_fin_pending / arm_wake()
//                              as the connection moves;
//   ack_from_guest() etc.      BPF's fields, read with acquire loads;
//   retire(slot, key)          unmark eligible, delete the key; the slot may
//                              be reused afterwards (its gen changes).
// Events carry the slot's gen: an event whose gen differs from the slot's
// current gen belongs to an earlier connection and is ignored by the caller.
//
// Either copy of the maps: `ferry run`'s classifier (open(BpfAttachment))
// or `ferry attach`'s program (bpf/ferry_attach.bpf.c includes the same
// bpf/fastpath.h), given by fd (open(FastPathMapFds)); the fds are
// borrowed (conn_hash's is used by every publish/retire), so the maps'
// owner outlives the ConnMap and FastPathEvents made from them.
//
// FastPathEvents is an IoHandler: register it with the event loop on
// epoll_fd(); on_io() drains the ring (ring_buffer__consume) and calls the
// handler once per record. BPF posts only records userspace must act on
// (a wake-up userspace armed is due, fast retransmit, FIN acked), each at
// most once per cause, so wake-ups are never one per ACK.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "codec/addr.h"
#include "common/conn_key.h"
#include "common/status.h"
#include "ferry/contract.h"
#include "loop/event_loop.h"

struct ring_buffer;

namespace ferry {

class BpfAttachment;

// The values userspace gives a slot when it publishes it.
struct ConnSlotInit {
  uint32_t snd_una = 0;       // seeds ack_from_guest
  uint32_t snd_nxt = 0;
  uint32_t rcv_nxt = 0;       // only pure ACKs with this sequence number are absorbed
  uint32_t rtt_seq = 0;       // the ACK reaching it is time-stamped
  uint32_t guest_window = 0;  // scaled, seeds guest_window
  uint8_t guest_wscale = 0;
  bool timestamps = false;    // TS-only pure ACKs may be absorbed
  uint8_t state = 0;
  uint16_t mss = 0;
};

// The fast-path maps of one loaded program, by fd (-1: absent). Borrowed:
// the owner of the BPF object keeps them open while a ConnMap or
// FastPathEvents made from them is in use.
struct FastPathMapFds {
  int conn_hash = -1;
  int conn_state = -1;
  int events = -1;
};

// The loaded classifier's fast-path maps (all -1 when not loaded).
FastPathMapFds fastpath_map_fds(const BpfAttachment& bpf);

class ConnMap {
 public:
  ConnMap() = default;
  ~ConnMap();
  ConnMap(const ConnMap&) = delete;
  ConnMap& operator=(const ConnMap&) = delete;

  // Maps the loaded classifier's connection maps.
  Status open(const BpfAttachment& bpf);
  // Maps the connection maps given by fd (any program that includes
  // bpf/fastpath.h); checks their value sizes against the contract.
  Status open(const FastPathMapFds& fds);
  bool is_open() const { return slots_ != nullptr; }
  uint32_t capacity() const { return capacity_; }

  // The slot, or nullptr when out of range / not open.
  ferry_conn_slot* slot(uint32_t i) const {
    return i < capacity_ && slots_ != nullptr ? &slots_[i] : nullptr;
  }

  // Publishes a slot for `key` (see the theory of operation); the slot's
  // new gen is returned in *gen. Fails if the key is already present.
  Status publish(uint32_t slot, const ferry_conn_key& key, const ConnSlotInit& init,
                 uint32_t* gen = nullptr);
  // Takes the slot off the fast path and removes its key. Idempotent.
  void retire(uint32_t slot, const ferry_conn_key& key);

  // Userspace-owned fields: every store into a slot goes through these.
  void set_snd_nxt(uint32_t slot, uint32_t snd_nxt);
  void set_rcv_nxt(uint32_t slot, uint32_t rcv_nxt);  // only when it changed
  void set_rtt_seq(uint32_t slot, uint32_t seq);      // only when it changed
  void set_fin_pending(uint32_t slot, bool on);
  // Arms WINDOW_OPEN (the contract's "Wake-ups"): BPF posts it on the first
  // absorbed ACK that leaves `room` bytes of room or reaches `wake_ack`.
  // Returns true when that holds already for what BPF last absorbed (una:
  // the caller's acknowledged sequence): then act now instead of waiting.
  // Together with BPF's ordering no ACK is missed by both sides; the
  // caller's retransmission or persist timer still runs while it waits.
  bool arm_wake(uint32_t slot, uint32_t room, uint32_t wake_ack, uint32_t una);
  // Allows or forbids absorption without retiring the slot.
  void set_eligible(uint32_t slot, bool on);

  // BPF-owned fields (acquire loads; 0 for a bad slot).
  uint32_t ack_from_guest(uint32_t slot) const;
  uint32_t guest_window(uint32_t slot) const;
  uint32_t dup_acks(uint32_t slot) const;
  uint64_t acks_absorbed(uint32_t slot) const;
  // When BPF absorbed the ACK that first reached rtt_seq (CLOCK_MONOTONIC ns,
  // as now_ns()); read after ack_from_guest(), it is that ACK's arrival if
  // the ACK read is at or past rtt_seq, else an older stamp.
  uint64_t rtt_ack_ns(uint32_t slot) const;

 private:
  void update_flags(uint32_t slot, uint32_t set, uint32_t clear);

  ferry_conn_slot* slots_ = nullptr;
  size_t slots_len_ = 0;  // mapped bytes
  uint32_t capacity_ = 0;
  int hash_fd_ = -1;
};

class FastPathEvents : public IoHandler {
 public:
  using Handler = std::function<void(const ferry_event&)>;

  FastPathEvents() = default;
  ~FastPathEvents() override;
  FastPathEvents(const FastPathEvents&) = delete;
  FastPathEvents& operator=(const FastPathEvents&) = delete;

  // Opens the consumer on the classifier's `events` ring buffer.
  Status open(const BpfAttachment& bpf, Handler handler);
  // Same, on the ring buffer fds.events.
  Status open(const FastPathMapFds& fds, Handler handler);
  // The fd to register for EPOLLIN (the loop's add(fd, EPOLLIN, tag, 0)).
  int epoll_fd() const;
  // Hands pending records to the handler, at most max_records of them (0:
  // every one, including any the handler's own work makes BPF post
  // meanwhile); returns how many. The rest stay in the ring, which stays
  // readable (level-triggered), for the next call.
  int consume(int max_records = 0);
  // IoHandler: the ring buffer became readable.
  void on_io(uint64_t id, uint32_t events) override;

 private:
  static int trampoline(void* ctx, void* data, size_t size);

  ring_buffer* rb_ = nullptr;
  Handler handler_;
  int count_ = 0;
  int limit_ = 0;  // consume()'s max_records
};

}  // namespace ferry

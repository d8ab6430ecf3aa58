// TapQueueEstimate: how many of the frames ferry wrote toward an attached
// tap device (`ferry attach TAP`, a VM's tap) still sit unread in that
// tap's queue, from the device's own counters.
//
// Theory of operation
// -------------------
// `ferry attach TAP` writes each frame to its private tap; a tcx program
// redirects it out of TAP, into tun_net_xmit, which puts it in the tap's
// ring (txqueuelen entries) for the reader (QEMU) or, the ring full, drops
// it (TX dropped). ferry's write succeeds either way. The kernel counts the
// other end exactly: tx_packets when the reader READS a frame
// (tun_put_user), tx_dropped when tun_net_xmit drops one. So
//     occupancy = written - (read + dropped) since a baseline
// where `written` is ferry's own count of frames it handed over (the
// port's tx_frames: no hook on the data path). Two things make that count
// differ from the ring's entries, and the estimate handles both:
//   * TAP without TSO (a guest with its offloads off): a super-segment
//     ferry writes is cut into gso segments before tun_net_xmit, one entry
//     each. The port counts both (tx_frames, tx_segments), and the tap's
//     tx_bytes tells which the ring holds: over a window of reads in
//     which ferry wrote super-segments, reads larger on average than a
//     piece of the guest's MTU prove TAP takes them whole (count frames);
//     kDecideReads reads no larger and below the geometric mean of our
//     frames' and our segments' sizes say TAP cuts them (count segments);
//     small reads (ACK-sized frames) decide nothing. Until a window decides, segments are
//     counted (the pessimistic unit: a full ring is never overrun while
//     undecided, at worst the sender waits for the first reads). Every
//     change of unit starts a new epoch.
//   * frames the host kernel itself sends on TAP (IPv6 neighbour discovery,
//     MLD): consumed but never written by us, they make the estimate drift
//     low. Occupancy cannot be negative, so a negative value is absorbed
//     into the baseline (rebaselines).
// Both corrections err low (a frame counted consumed that is not), the safe
// side for the one wrong verdict that could stall a sender: "full" while the
// ring is empty. For that one (counting segments when TAP took TSO back: a
// guest rebooted with offloads on), the estimate is advisory: when it says
// the ring holds frames but nothing was read or dropped for kStuckNs, it
// is dropped (releases: occupancy 0, counting frames again), so a sender
// throttled by it waits at most that long.
//
// Cheap by construction: the counters are read only when needed. Between
// readings, occupancy <= written_now - consumed_at_last_read (consumption
// only grows), so room() answers from memory while that upper bound leaves
// room, and reads (one netlink request and its answer) only when it does
// not, at most once per kMinReadIntervalNs. txqueuelen (the capacity) is
// re-read with the counters at most once a second.
//
// still_queued(): the ring is a FIFO and drops happen only at enqueue, so a
// frame ferry wrote as the W-th (its mark) that was not dropped is still
// unread while read + dropped since the baseline < W (the frames read
// before it are at most W - 1 less the drops). "Not dropped" is proven by
// two readings around its write with tx_dropped unchanged (the write path,
// tap write -> tcx redirect -> tun_net_xmit, runs inside ferry's write()):
// the estimate keeps the latest such drop-free interval of marks.
// Anything it cannot prove is "not queued" (the caller resends: never a
// stall from a wrong "queued").
//
// No allocation, no syscall but the source's reads; not thread-safe (the
// translator's loop).
#pragma once

#include <cstdint>

#include "ferry/counters.h"
#include "port/frame_port.h"

namespace ferry {

// A tap's counters toward its reader, as read from the kernel.
struct DevTxCounters {
  uint64_t tx_packets = 0;  // frames its reader read
  uint64_t tx_dropped = 0;  // frames dropped: the ring was full
  uint64_t tx_bytes = 0;    // bytes its reader read
};

// Where the counters come from (a netlink socket in production, a table in tests).
class DevTxCounterSource {
 public:
  virtual ~DevTxCounterSource() = default;
  // The current counters; false when they cannot be read.
  virtual bool read(DevTxCounters* out) = 0;
  // The device's txqueuelen (its ring's size); 0 when unknown.
  virtual uint32_t txqueuelen() = 0;
};

class TapQueueEstimate {
 public:
  struct Counters {
    FERRY_TAP_QUEUE_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };
  // A frame's place in the ring's order: the write count after it, in the
  // units of that epoch.
  struct Mark {
    uint64_t index = 0;
    uint32_t epoch = 0;
  };

  // Reads in a window that decides the unit is segments.
  static constexpr uint64_t kDecideReads = 16;
  // Fewest nanoseconds between two readings of the counters.
  static constexpr uint64_t kMinReadIntervalNs = 50'000;
  // Occupancy claimed with no read or drop for this long is dropped.
  static constexpr uint64_t kStuckNs = 1'000'000'000;
  // txqueuelen is re-read at most this often.
  static constexpr uint64_t kCapacityReadNs = 1'000'000'000;

  // written: the port's counters (tx_frames, tx_segments, tx_bytes), read,
  // never written; mtu: the guest's (a cut piece is at most that and kPieceOverhead).
  TapQueueEstimate(DevTxCounterSource& source, const PortCounters& written, unsigned mtu);
  static constexpr unsigned kPieceOverhead = 18;  // Ethernet header and a VLAN tag

  // The first reading: baseline and capacity. False when the counters or
  // txqueuelen cannot be read: then the estimate must not be used.
  bool start(uint64_t now);

  // Ring entries ferry may still write now, headroom kept for frames
  // outside TCP's control (ARP/NDP answers, pure ACKs, UDP); reads the
  // counters only when the upper bound leaves fewer than `want` entries.
  uint32_t room(uint32_t want, uint64_t now);
  // True while the ring's entries are counted as gso segments, not frames
  // (TAP has no TSO, or no window decided yet).
  bool counts_segments() const { return segments_; }
  // The mark of the frame written last.
  Mark mark() const { return Mark{written(), epoch_}; }
  // The frame at mark m is provably still unread in the ring (not read,
  // not dropped); reads the counters at most once.
  bool still_queued(Mark m, uint64_t now);

  uint32_t capacity() const { return capacity_; }
  // Entries kept free for frames outside TCP's control.
  uint32_t headroom() const { return headroom_; }
  // Occupancy as of the last reading plus what was written since (an upper bound, less the drift).
  uint64_t upper() const;
  const Counters& counters() const { return counters_; }

 private:
  uint64_t written() const { return segments_ ? port_.tx_segments : port_.tx_frames; }
  // Reads the counters (rate-limited unless forced); false when not read.
  bool refresh(uint64_t now, bool force);
  // Occupancy 0 from now on, the unit undecided (the stuck rule, a failed read).
  void release(uint64_t now);
  // Decides the unit when the window holds kDecideReads reads; true when it changed.
  bool decide(const DevTxCounters& d);
  // A new decision window from these counters.
  void open_window(const DevTxCounters& d);
  void set_capacity(uint32_t qlen);

  DevTxCounterSource& source_;
  const PortCounters& port_;
  const unsigned piece_max_;  // the largest frame a cut super-segment gives
  bool started_ = false;
  bool segments_ = true;  // the unit: gso segments, else frames
  bool decided_ = false;  // ... as a window decided (else the pessimistic default)
  uint32_t epoch_ = 1;
  uint32_t capacity_ = 0;
  uint32_t headroom_ = 0;
  // consumed (in each unit) = tx_packets + tx_dropped + offset; offsets
  // move only up (rebaselines), so consumed never overstates the ring's
  // progress in the wrong direction.
  int64_t off_frames_ = 0, off_segments_ = 0;
  uint64_t consumed_ = 0;     // in the current units, at the last reading
  uint64_t last_counted_ = 0;  // tx_packets + tx_dropped at the last reading
  uint64_t last_dropped_ = 0;  // tx_dropped at the last reading
  uint64_t written_at_read_ = 0;  // written() at the last reading
  uint64_t read_at_ = 0;          // when
  uint64_t progress_at_ = 0;      // when read + dropped last moved
  uint64_t capacity_at_ = 0;      // when txqueuelen was last read
  // The latest interval (clean_lo_, clean_hi_] of marks known not dropped.
  uint64_t clean_lo_ = 0, clean_hi_ = 0;
  // The decision window's start: the device's reads and bytes, our frames,
  // segments and bytes.
  uint64_t win_reads_ = 0, win_read_bytes_ = 0, win_frames_ = 0, win_segments_ = 0, win_bytes_ = 0;
  Counters counters_;
};

}  // namespace ferry

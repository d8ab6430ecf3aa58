// NsTcpRelay: pasta's -T. A process in the guest that connects to its own
// loopback (127.0.0.1:PORT or [::1]:PORT) reaches the host's loopback on
// the rule's target port, socket to socket: no frame crosses the guest's
// link.
//
// Theory of operation. The listeners were made inside the guest's
// namespace before the sandbox (ns_listeners.h); a socket keeps its
// namespace, so the translator accepts on them without entering anything.
// A steered listener (`-T all`, ns_steering.h) takes many ports: the port
// of each connection is its accepted socket's own, its target the rule's.
// Each accepted connection (the guest's end, side 0) gets a host socket
// (side 1, ferry's own namespace: the host's) that connects without
// blocking to the host's loopback of the same family. Bytes then move both
// ways through one fixed buffer per direction (kBufferBytes, allocated
// once per connection when it is accepted, never per byte):
//   direction s reads side s into its buffer only when the buffer is empty
//   and writes it to side 1-s until it is empty again; a write the other
//   side cannot take (EAGAIN) keeps the rest, and direction s reads no more
//   until the other side's EPOLLOUT: the sockets' own buffers are the
//   backpressure. read()/write() into a fixed buffer rather than splice(2):
//   two descriptors per connection instead of six (two pipes), which a
//   rootless ferry under the caller's descriptor limit feels, no new system
//   call in the sandbox's allow-list, and the same edge-triggered state
//   machine for both directions; loopback-to-loopback copies are not what
//   limits ferry.
// Both sockets are registered once, edge-triggered (EPOLLIN | EPOLLOUT |
// EPOLLRDHUP | EPOLLET): every event pumps both directions until each
// blocks, so no edge is lost and no epoll_ctl is made per state change. A
// pump moves at most kChunksPerTurn buffers per direction; a connection
// with more to move is queued and pumped again on the next loop turn (a
// zero timer), so one bulk transfer cannot starve the others.
// States of a connection:
//   connecting  host connect in progress; nothing moves. Its EPOLLOUT (or
//               error) decides: an error (the host's port refused) closes
//               the guest's socket with SO_LINGER 0, a RST: the guest sees
//               its connection reset, as pasta's does (counted);
//   open        both directions move;
//   half-closed end of stream read on side s, once its buffer is written,
//               becomes shutdown(SHUT_WR) of side 1-s; the other direction
//               goes on;
//   closed      both directions shut: both sockets closed, the slot free.
// An error on either side (a reset, EPIPE) resets the other side too
// (SO_LINGER 0) and frees the slot. The table is fixed (max_conns slots);
// a connection beyond it is accepted and reset at once (counted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/flow_log.h"
#include "common/status.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"
#include "nsfwd/ns_listeners.h"

namespace ferry {

class NsTcpRelay final : public IoHandler, public TimerClient {
 public:
  static constexpr size_t kDefaultMaxConns = 1024;
  static constexpr size_t kBufferBytes = 64 * 1024;  // per direction
  static constexpr size_t kChunksPerTurn = 16;      // per direction and pump
  static constexpr size_t kAcceptsPerEvent = 64;

  struct Counters {
    FERRY_NS_TCP_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  // mark: SO_MARK of the host sockets (0: none); verbose: -v lines.
  NsTcpRelay(EventLoop& loop, uint32_t mark, bool verbose, size_t max_conns = kDefaultMaxConns);
  ~NsTcpRelay() override;
  NsTcpRelay(const NsTcpRelay&) = delete;
  NsTcpRelay& operator=(const NsTcpRelay&) = delete;

  // Takes the listening sockets (ours to close) and watches them; rules
  // give a steered listener's connections their target (ns_steering.h).
  Status start(std::vector<NsListener> listeners, std::vector<NsForward> rules = {});
  // In the parent after the translator's fork: closes this process's
  // copies of the listeners (the translator's stay; no epoll change).
  void drop_listeners_here();

  void on_io(uint64_t id, uint32_t events) override;
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  const Counters& counters() const { return counters_; }
  size_t connection_count() const { return used_; }
  size_t listener_count() const { return listeners_.size(); }

 private:
  // One direction: bytes read from side s, not yet written to side 1 - s.
  struct Direction {
    uint32_t off = 0, len = 0;
    bool eof = false;   // side s said end of stream
    bool shut = false;  // shutdown(SHUT_WR) made on side 1 - s
    uint64_t bytes = 0;
  };
  struct Conn {
    bool used = false;
    uint32_t gen = 0;  // bumped each time the slot is taken (see conn_id)
    bool connecting = false;
    bool queued = false;  // in again_: more to move on the next turn
    int fd[2] = {-1, -1};  // [0] the guest's (accepted), [1] the host's
    Direction dir[2];      // dir[s]: side s -> side 1 - s
    uint16_t guest_port = 0, listen_port = 0;
    bool v6 = false;
    std::unique_ptr<uint8_t[]> buf;  // 2 * kBufferBytes: dir[0]'s, then dir[1]'s
  };

  void accept_on(size_t listener);
  // Moves what each direction can; closes the connection when it is done.
  void pump(uint32_t slot);
  // Ends the connection: rst resets both sides (SO_LINGER 0).
  void finish(uint32_t slot, bool rst, const char* reason, int err);
  // The -v log's view: the guest's port > the forwarded port, on loopback.
  static FlowEnds ends(const Conn& c);

  EventLoop& loop_;
  uint32_t mark_;
  bool verbose_;
  uint8_t tag_ = 0;
  std::vector<NsListener> listeners_;
  std::vector<NsForward> rules_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_;   // free slots (a stack)
  std::vector<uint32_t> again_;  // slots to pump on the next turn
  std::vector<uint32_t> turn_;   // the turn being pumped
  size_t used_ = 0;
  Counters counters_;
};

}  // namespace ferry

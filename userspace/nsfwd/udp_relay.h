// NsUdpRelay: pasta's -U. A datagram a process in the guest sends to its
// own loopback (127.0.0.1:PORT or [::1]:PORT) reaches the host's loopback
// on the rule's target port, and the host's answers come back to that
// process, from 127.0.0.1:PORT ([::1]:PORT) as it expects.
//
// Theory of operation. Each forwarded port and family has a socket bound on
// the guest's loopback, made inside the guest's namespace before the
// sandbox (ns_listeners.h). A datagram read from it (source S, the guest's
// socket) goes out of the flow for (that socket, S): a host socket of
// ferry's own namespace, connect()ed to the host's loopback target, opened
// with the first datagram. What the host socket reads goes back with
// sendto(S) on the guest-side socket. Flows live in a fixed table
// (max_flows, allocated once) with a hash index; one that carried nothing
// for idle_timeout_ns (180 s, as ferry's UDP flows) is closed by a scan
// once a second. With the table full (or no descriptor left) a new source's
// datagram is dropped and counted; the flows there are kept. An ICMP error
// on a flow (nothing listens on the host's port) is counted: the guest's
// loopback has no way to be told, so its datagram is lost as on a real
// network. Reads and writes use one 64 KiB buffer (allocated once), up to
// kBatch datagrams per event and socket; every socket is level-triggered.
#pragma once

#include <sys/socket.h>

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

class NsUdpRelay final : public IoHandler, public TimerClient {
 public:
  static constexpr size_t kDefaultMaxFlows = 1024;
  static constexpr uint64_t kDefaultIdleTimeoutNs = 180ull * 1000 * 1000 * 1000;
  static constexpr uint64_t kScanNs = 1000ull * 1000 * 1000;
  static constexpr size_t kBatch = 16;

  struct Counters {
    FERRY_NS_UDP_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  NsUdpRelay(EventLoop& loop, uint32_t mark, bool verbose, size_t max_flows = kDefaultMaxFlows);
  ~NsUdpRelay() override;
  NsUdpRelay(const NsUdpRelay&) = delete;
  NsUdpRelay& operator=(const NsUdpRelay&) = delete;

  // Takes the bound guest-side sockets (ours to close) and watches them.
  Status start(std::vector<NsListener> sockets);
  // In the parent after the translator's fork: closes this process's copies.
  void drop_sockets_here();
  void set_idle_timeout_ns(uint64_t ns) { idle_timeout_ns_ = ns; }
  // Closes every flow (the -v log's reason: why).
  void close_flows(const char* why);

  void on_io(uint64_t id, uint32_t events) override;
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  const Counters& counters() const { return counters_; }
  size_t flow_count() const { return used_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Flow {
    bool used = false;
    uint32_t socket = 0;  // index into sockets_: the guest-side socket
    sockaddr_storage guest{};
    socklen_t guest_len = 0;
    int fd = -1;  // the host socket
    uint64_t last_used = 0;
    uint64_t to_host = 0, to_guest = 0;
    uint32_t hnext = kNone;
  };

  uint32_t hash(uint32_t socket, const sockaddr_storage& a, socklen_t len) const;
  uint32_t lookup(uint32_t socket, const sockaddr_storage& a, socklen_t len) const;
  uint32_t open_flow(uint32_t socket, const sockaddr_storage& a, socklen_t len, uint64_t now);
  void close_flow(uint32_t slot, const char* why);
  void from_guest(uint32_t socket);
  void from_host(uint32_t slot);
  FlowEnds ends(const Flow& f) const;

  EventLoop& loop_;
  uint32_t mark_;
  bool verbose_;
  uint8_t tag_ = 0;
  uint64_t idle_timeout_ns_ = kDefaultIdleTimeoutNs;
  uint64_t next_scan_ = kNever;
  std::vector<NsListener> sockets_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> buckets_;  // hash index: first slot of each chain
  std::vector<uint32_t> free_;
  size_t used_ = 0;
  std::unique_ptr<uint8_t[]> buf_;  // one datagram
  Counters counters_;
};

}  // namespace ferry

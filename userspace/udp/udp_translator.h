// UdpTranslator: the guest's UDP flows, each translated to one host UDP
// socket (the passt model), and inbound UDP port forwards (-u).
//
// Outbound: a guest datagram (guest addr:port -> dest addr:port) opens a
// flow with its own host socket, bound to the guest's source port when the
// host can bind it (else an ephemeral port), connect()ed to where the
// destination policy (policy/destination_policy.h) maps the destination (the
// gateway address becomes 127.0.0.1 / ::1); a destination it refuses gets an
// ICMP "administratively prohibited". Replies read
// from that socket go back to the guest from dest:port, so the guest sees the
// address it talked to. A refused/unreachable destination (ICMP reported on
// the connected socket) becomes an ICMP/ICMPv6 destination unreachable to the
// guest.
// Inbound: each forwarded host port has a bound socket (dual-stack when it
// binds all addresses). A datagram from host client C:cp to host port hp goes
// to the guest's port (guest_first + hp - host_first) from C:cp (a loopback
// C shown as the gateway). It opens a flow keyed by what the guest sees, so
// the guest's replies go back to C:cp from the forwarded socket.
//
// Flows live in a fixed-size table (max_flows, allocated once) with a hash
// index and an LRU list; a flow idle for idle_timeout_ns is closed. With the
// table full (or no descriptor left) a new flow is refused and the flows
// there are kept: the guest gets ICMP "administratively prohibited" for its
// datagram, a forward's host client's datagram is dropped; both counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ferry/counters.h"
#include "codec/addr.h"
#include "codec/frame.h"
#include "common/flow_log.h"
#include "common/guest_link.h"
#include "common/status.h"
#include "loop/event_loop.h"
#include "policy/destination_policy.h"

namespace ferry {

struct UdpCounters {
  FERRY_UDP_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class UdpTranslator final : public IoHandler, public TimerClient {
 public:
  static constexpr size_t kDefaultMaxFlows = 8192;
  static constexpr uint64_t kDefaultIdleTimeoutNs = 180ull * 1000 * 1000 * 1000;
  static constexpr size_t kBatch = 16;           // datagrams per recvmmsg
  static constexpr size_t kMaxForwardSockets = 65535;  // -u all

  // Registers with the loop (handler, timer client). No socket is opened yet.
  UdpTranslator(EventLoop& loop, GuestLink& link, size_t max_flows = kDefaultMaxFlows);
  ~UdpTranslator() override;
  UdpTranslator(const UdpTranslator&) = delete;
  UdpTranslator& operator=(const UdpTranslator&) = delete;

  // Binds the -u forward sockets from config().udp_forwards. On failure
  // the Status says which (sockets opened so far stay open and are closed
  // by the destructor).
  Status start();

  // -u auto: a socket bound to host port `port` (all addresses) for the
  // guest's same port; the Status says why not (EACCES below the
  // unprivileged port start, EADDRINUSE, EMFILE; EEXIST when an outbound
  // flow of the guest's socket on that port holds it already: an
  // unconnected guest client's socket looks like a server's).
  Status open_forward(uint16_t port);
  // Closes what open_forward(port) opened, and the flows it carried.
  void close_forward(uint16_t port);

  // One parsed guest UDP datagram (f.is_udp()); frame is the raw bytes.
  void on_guest_datagram(const ParsedFrame& f, std::span<const uint8_t> frame);

  void set_idle_timeout_ns(uint64_t ns) { idle_timeout_ns_ = ns; }
  // Closes every flow now (the -v log's reason: why): a process that ends
  // with _exit() runs no destructor.
  void close_flows(const char* why);

  // IoHandler: a flow socket or a forward socket is readable (or has an error).
  void on_io(uint64_t id, uint32_t events) override;
  // TimerClient: idle expiry, oldest flow first.
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  const UdpCounters& counters() const { return counters_; }
  size_t flow_count() const { return nflows_; }
  size_t forward_socket_count() const { return forward_count_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Flow {
    bool used = false;
    bool inbound = false;  // created by a forward socket: replies via sendto on it
    InetAddr guest, peer;  // as the guest sees them
    uint16_t guest_port = 0, peer_port = 0;
    InetAddr host_peer;    // where the host socket sends (mapped gateway, or the client)
    uint16_t host_port = 0;
    int fd = -1;           // own socket (outbound); the forward socket (inbound, not owned)
    bool fd_v6 = false;    // inbound: the forward socket is AF_INET6 (v4 peers as mapped)
    uint32_t last_len = 0; // last guest payload length, for ICMP error quotes
    uint64_t to_host = 0, to_guest = 0;  // payload bytes each way (the -v log)
    bool error_logged = false;           // the -v log has shown an error of this flow
    bool source_port_kept = false;       // outbound: bound to guest_port on the host
    uint64_t last_used = 0;
    uint32_t hnext = kNone;
    uint32_t lru_prev = kNone, lru_next = kNone;
  };

  struct Forward {
    int fd = -1;
    uint16_t host_port = 0;
    uint16_t guest_port = 0;
    bool v6 = false;  // AF_INET6 (dual-stack when bound to all addresses)
  };

  struct Key {
    InetAddr guest, peer;
    uint16_t guest_port, peer_port;
  };

  Status open_forward_socket(const PortForward& r, uint16_t port, uint16_t guest_port);
  bool holds_source_port(uint16_t port) const;
  uint32_t hash(const Key& k) const;
  uint32_t lookup(const Key& k) const;
  uint32_t alloc_flow(const Key& k, uint64_t now);
  // why: the -v log's reason ("idle", "error", "exit").
  void free_flow(uint32_t slot, const char* why);
  // The flow's ends for the -v log.
  static FlowEnds ends_of(const Flow& f);
  bool verbose() const { return link_.config().verbose; }
  void touch(uint32_t slot, uint64_t now);
  void lru_unlink(uint32_t slot);
  void lru_push_back(uint32_t slot);
  uint32_t open_outbound(const Key& k, const InetAddr& host, uint64_t now, bool* exhausted);
  static bool bind_source_port(const Config& c, int fd, bool v6, const InetAddr& host, uint16_t port, bool* ok);
  void refuse(const ParsedFrame& f, std::span<const uint8_t> frame, bool answer);
  void drain_flow(uint32_t slot);
  void drain_forward(size_t index);
  void send_unreachable(Flow& fl, int err);
  // The -v log's error line, once per flow (a guest sending to a closed
  // port meets the same error with every datagram).
  void log_error_once(Flow& fl, const char* what, int err);
  bool deliver(Flow& fl, uint8_t* frame_buf, size_t payload_len, bool payload_at_v6_offset);

  EventLoop& loop_;
  GuestLink& link_;
  uint8_t tag_ = 0;
  uint64_t idle_timeout_ns_ = kDefaultIdleTimeoutNs;
  uint64_t hash_seed_[2] = {0, 0};
  std::vector<Flow> flows_;
  std::vector<uint32_t> buckets_;
  uint32_t bucket_mask_ = 0;
  std::vector<uint32_t> free_list_;
  uint32_t lru_head_ = kNone, lru_tail_ = kNone;
  size_t nflows_ = 0;
  std::vector<Forward> forwards_;     // fd -1: a slot close_forward() freed
  std::vector<size_t> free_forwards_;  // ... those slots, for the next open_forward()
  size_t forward_count_ = 0;           // open forward sockets
  // recvmmsg buffers: kBatch frames of kMaxFrameLen, allocated once.
  std::unique_ptr<uint8_t[]> bufs_;
  // one IP fragment at a time, for datagrams larger than the guest's MTU
  std::unique_ptr<uint8_t[]> frag_buf_;
  uint32_t frag_id_ = 0;
  UdpCounters counters_;
};

}  // namespace ferry

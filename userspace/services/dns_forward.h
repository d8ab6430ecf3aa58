// DNS forwarder: the guest's UDP queries to the forwarder's address, relayed
// to the host's resolvers (ServicesConfig::upstreams, from /etc/resolv.conf,
// loopback resolvers included: the sockets are the host's).
//
// Theory of operation. A query (UDP to forward_addr:53) from a source that
// is not the guest's is dropped and counted as spoofed by the destination
// policy (the translator's source check comes after the guest services,
// which a DHCP client without an address must reach). A query is checked
// (check_dns_query: header, QR clear, one question with a well-formed name)
// and gets a slot in a fixed table of kMaxInFlight. Its ID is replaced by a
// host-side ID (slot in the low byte, a per-slot generation in the high
// byte) and it is sent from one of two host sockets (one per upstream
// family, unconnected, opened at start) to the first upstream. The
// answer's ID picks the slot back; it is accepted only from the upstream the
// query went to (port 53) while the slot still holds that query, gets the
// guest's ID back and goes to the guest from forward_addr:53 unchanged
// otherwise (fragmented by the translator when above the guest's MTU).
// A guest's retransmission (same source, port and ID while the query is in
// flight) is sent to the next upstream: that is how a dead resolver is
// skipped, with no copy of the query kept. A slot expires kQueryTimeoutNs
// after its last send (the guest then has given up or retried); with the
// table full a new query is counted and dropped.
// DNS over TCP is not relayed here: the TCP translator connects a guest's
// connection to forward_addr:53 to an upstream (Config::dns_tcp_target).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "ferry/counters.h"
#include "codec/frame.h"
#include "common/guest_link.h"
#include "common/status.h"
#include "loop/event_loop.h"

namespace ferry::services {

struct DnsCounters {
  FERRY_DNS_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class DnsForwarder final : public IoHandler, public TimerClient {
 public:
  static constexpr size_t kMaxInFlight = 256;
  static constexpr uint64_t kQueryTimeoutNs = 10'000'000'000;  // > glibc's 5 s retry
  static constexpr size_t kReadsPerWakeup = 32;

  DnsForwarder(EventLoop& loop, GuestLink& link);
  ~DnsForwarder() override;
  DnsForwarder(const DnsForwarder&) = delete;
  DnsForwarder& operator=(const DnsForwarder&) = delete;

  // Opens the host sockets the upstreams need; fails if none opens.
  Status start();

  // A guest UDP datagram to the forwarder's address, port 53.
  void on_query(const ParsedFrame& f, std::span<const uint8_t> frame);

  void on_io(uint64_t id, uint32_t events) override;
  uint64_t next_deadline_ns() const override { return earliest_; }
  void on_timer(uint64_t now) override;

  const DnsCounters& counters() const { return counters_; }
  size_t in_flight() const;
  // The resolvers' port (53; tests point it at a resolver of their own).
  void set_upstream_port(uint16_t port) { upstream_port_ = port; }

 private:
  struct Query {
    bool used = false;
    uint8_t gen = 0;
    uint8_t upstream = 0;   // index into config().services.upstreams
    uint16_t guest_id = 0;
    uint16_t guest_port = 0;
    InetAddr guest, server;  // the guest's address, the address it asked
    uint64_t deadline = 0;
  };

  bool send_upstream(size_t slot, std::span<uint8_t> msg);
  void drain(int family_index);

  EventLoop& loop_;
  GuestLink& link_;
  uint8_t tag_ = 0;
  uint16_t upstream_port_ = 53;
  int fd_[2] = {-1, -1};  // [0] IPv4, [1] IPv6 upstreams
  std::array<Query, kMaxInFlight> q_{};
  uint64_t earliest_ = kNever;
  DnsCounters counters_;
  std::array<uint8_t, 65536> msg_{};  // one query or answer
  std::array<uint8_t, kMaxFrameLen> out_{};
};

}  // namespace ferry::services

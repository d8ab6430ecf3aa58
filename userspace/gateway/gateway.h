// Gateway services: ARP proxy, NDP neighbour advertisements, ICMP/ICMPv6 echo.
//
// The Translator hands the Gateway every parsed guest frame that is ARP,
// ICMP or ICMPv6 (on_guest_frame). The Gateway answers through GuestLink:
//   * ARP: "who has X" for any X but the guest's own address is answered
//     with our MAC (the passt model: everything is reached through us).
//     A probe (sender 0.0.0.0, RFC 5227) is answered only for the gateway's
//     own address (as Linux does for its local addresses: a guest given
//     that address sees the conflict). Other probes, gratuitous ARP
//     (sender == target), replies and requests for the guest's own address
//     (its address conflict detection) are ignored; a sender other than the
//     guest's address is counted as spoofed and not answered.
//   * NDP: neighbour solicitations that pass RFC 4861 7.1.1 (hop limit 255,
//     code 0, length >= 24, target not multicast, options well formed) for
//     any target but the guest's own address get a solicited advertisement
//     with our MAC; the router flag is set for the gateway. Duplicate
//     address detection (from the unspecified address, to the target's
//     solicited-node group, without a source link-layer option) of one of
//     the gateway's own addresses is defended with an unsolicited NA to all
//     nodes (RFC 4861 7.2.4); DAD of any other address is ignored, an
//     invalid one dropped. Router solicitations are the RA service's.
//   * Echo to the gateway's link-local address (ferry's own on the link,
//     where its router advertisements come from): answered by ferry.
//   * Echo to the gateway address: answered by ferry itself. The gateway
//     stands for the host's loopback (Config::map_gateway), and loopback
//     always answers echo, so answering here is equivalent, needs no socket
//     and no privilege. Without the mapping (--no-map-gw) the gateway is no
//     destination: the policy refuses it like any refused one below.
//   * Echo to any other destination: the destination policy
//     (policy/destination_policy.h) decides; a refused one is answered with
//     ICMP "administratively prohibited". An allowed one is sent from a host socket and the
//     reply relayed to the guest with the guest's own id. Sockets are
//     unprivileged ping sockets (SOCK_DGRAM/IPPROTO_ICMP{,V6}, one per
//     in-flight echo flow; the kernel picks the id and the socket tells the
//     flows apart) when net.ipv4.ping_group_range allows; otherwise one raw
//     socket per family (we run as root), on which each flow gets the id
//     kRawIdBase + slot so replies map back to the slot without a lookup.
//     The flow table is fixed-size (kMaxEchoFlows); a flow expires after
//     echo_timeout_ns without traffic, and the least recently used flow is
//     evicted when a new one finds the table full.
//
// Guest input is hostile: every frame is re-checked here (status ok, sizes)
// before any field is used; anything unexpected is counted and dropped.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "codec/addr.h"
#include "codec/frame.h"
#include "common/guest_link.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"

namespace ferry {

struct GatewayCounters {
  FERRY_GATEWAY_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class Gateway final : public IoHandler, public TimerClient {
 public:
  static constexpr size_t kMaxEchoFlows = 64;
  static constexpr uint64_t kDefaultEchoTimeoutNs = 60ull * 1000 * 1000 * 1000;
  static constexpr uint16_t kRawIdBase = 0xfe00;  // raw mode: id = base + slot

  // Registers itself with the loop (handler and timer client).
  Gateway(EventLoop& loop, GuestLink& link);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // One parsed guest frame (ARP, ICMP or ICMPv6); frame is the raw bytes
  // it was parsed from. Never throws, never reads outside frame.
  void on_guest_frame(const ParsedFrame& f, std::span<const uint8_t> frame);

  // Asks the guest for its MAC, as a router does for a neighbour it does not
  // know: an ARP request (IPv4 target) or a neighbour solicitation (IPv6)
  // from the gateway's address. The answer is learned by the Translator
  // like any guest frame. False when the family is off or the send failed.
  bool solicit(const InetAddr& target);

  // Forwarding of echoes to other destinations (default on). Off: such
  // echoes are dropped and counted.
  void set_echo_forwarding(bool on) { forward_echo_ = on; }
  void set_echo_timeout_ns(uint64_t ns) { echo_timeout_ns_ = ns; }
  // Opens the raw echo sockets now, while the process is still privileged:
  // for a translator that will run as a user net.ipv4.ping_group_range
  // refuses ping sockets (userspace/sandbox). A family that fails stays as it was.
  void open_raw_echo_sockets() {
    (void)ensure_raw(false);
    (void)ensure_raw(true);
  }

  // IoHandler: a host ICMP socket is readable.
  void on_io(uint64_t id, uint32_t events) override;
  // TimerClient: expiry of idle echo flows.
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  const GatewayCounters& counters() const { return counters_; }
  // Echo flows in use (tests, `ferry stats`).
  size_t echo_flows() const;

 private:
  enum class SockMode : uint8_t { unknown, dgram, raw };

  struct EchoFlow {
    bool used = false;
    bool v6 = false;
    InetAddr guest;   // the guest's source address
    InetAddr dest;    // what the guest pinged (the reply's source)
    uint16_t guest_id = 0;
    uint16_t host_id = 0;  // dgram: learned from the socket; raw: kRawIdBase + slot
    int fd = -1;           // dgram mode only
    uint64_t last_used = 0;
  };

  void handle_arp(const ParsedFrame& f);
  void handle_icmp(const ParsedFrame& f, std::span<const uint8_t> frame);
  void handle_ns(const ParsedFrame& f, std::span<const uint8_t> frame);
  L2L3 answer_to(const ParsedFrame& f) const;
  void answer_echo(const ParsedFrame& f, std::span<const uint8_t> frame);
  void forward_echo(const ParsedFrame& f, std::span<const uint8_t> frame);
  int find_or_open_flow(const ParsedFrame& f, uint64_t now);
  int open_dgram(bool v6, const InetAddr& dest);
  int open_echo_socket(bool v6, int type, const InetAddr& dest);
  bool ensure_raw(bool v6);
  void close_flow(size_t slot);
  void relay_reply(size_t slot, uint8_t* icmp, size_t len);
  void drain_dgram(size_t slot);
  void drain_raw(bool v6);
  bool send(size_t len);

  EventLoop& loop_;
  GuestLink& link_;
  uint8_t tag_ = 0;
  bool forward_echo_ = true;
  uint64_t echo_timeout_ns_ = kDefaultEchoTimeoutNs;
  SockMode mode_[2] = {SockMode::unknown, SockMode::unknown};  // [v6]
  int raw_fd_[2] = {-1, -1};
  std::array<EchoFlow, kMaxEchoFlows> flows_{};
  GatewayCounters counters_;
  // One frame or datagram at a time; allocated once with the Gateway.
  std::array<uint8_t, kMaxFrameLen> out_{};
  std::array<uint8_t, kMaxFrameLen> io_{};
};

}  // namespace ferry

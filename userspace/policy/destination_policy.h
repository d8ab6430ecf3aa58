// DestinationPolicy: the one place that decides where a guest's new flow may
// go and which host address it reaches (as passt's fwd.c is for passt). TCP,
// UDP and ICMP echo ask it for every new flow; the translators only carry
// out the answer (connect to Verdict::host, or refuse: a RST for TCP, ICMP
// "administratively prohibited" for UDP and echo, see policy/refusal.h).
//
// Theory of operation, in the order decide() applies it:
//   1. family: a destination of the other family than the frame (an
//      IPv4-mapped address in an IPv6 packet would reach IPv4, bypassing -6),
//      or a family the instance does not serve                     -> family
//   2. source: not the guest's configured address                   -> spoofed
//      (the caller drops it silently: answering would reflect)
//   3. unspecified destination, the guest itself, port 0            -> invalid
//   4. multicast; broadcast: 255.255.255.255, the guest subnet's and the
//      node's IPv4 subnets' directed broadcasts                     -> multicast / broadcast
//   5. TCP to ferry's DNS forwarder (its address, port 53; UDP there is the
//      forwarder's own and never reaches a translator): the host's
//      resolver (Config::dns_tcp_target), with or without the mapping -> none
//   6. the gateway address: only with the gateway mapping (and on its ports,
//      when it names some), and not under a --deny; reaches the host's
//      loopback (127.0.0.1 / ::1)                                   -> gateway / rule
//   7. loopback named by the guest itself                           -> loopback
//   8. the rules: the user's (--allow / --deny) against the defaults
//      (deny 169.254.0.0/16, fe80::/10, 0.0.0.0/8, and each node address
//      when allow_node is off); the most specific wins, the user's at a tie
//                                                                   -> default_deny / node / rule
// Steps 1-4 and 7 are not rules: no option opens them (a guest never needs
// them through a translator, and each has been an attack path). Everything
// else that is not refused goes to the destination the guest named.
//
// State: only counters and the NodeAddresses snapshot. The Config is read
// live (it is the translator's, read-only once it runs).
#pragma once

#include <cstdint>

#include "common/config.h"
#include "policy/node_addresses.h"

namespace ferry {

enum class FlowProto : uint8_t { tcp, udp, echo };

enum class Refusal : uint8_t {
  none,
  family,        // other family than the frame's, or one the instance does not serve
  spoofed,       // the source is not the guest's configured address
  invalid,       // unspecified destination, the guest itself, port 0
  multicast,
  broadcast,
  gateway,       // the gateway address without the mapping, or a port it does not open
  loopback,      // loopback named by the guest (only the gateway mapping reaches it)
  default_deny,  // link-local, 0.0.0.0/8 (defaults an --allow may open)
  node,          // one of the host's own addresses (allow_node off)
  rule,          // a --deny rule
};
inline constexpr size_t kRefusalKinds = static_cast<size_t>(Refusal::rule) + 1;
// Stable counter-name suffix ("family", "default_deny" ...).
const char* to_string(Refusal r);

// 255.255.255.255, or the directed broadcast of net (none for /31, /32).
bool is_v4_broadcast(const InetAddr& a, const InetPrefix& net);

struct Verdict {
  Refusal refusal = Refusal::none;
  InetAddr host;  // the host socket's destination (the gateway mapped to loopback)
  bool allowed() const { return refusal == Refusal::none; }
  // True when the refusal is answered (RST, ICMP prohibited): never for a
  // spoofed source (it would reflect), nor, as RFC 1812 4.3.2.7 has it,
  // for a multicast or broadcast destination.
  bool answered() const {
    return refusal != Refusal::none && refusal != Refusal::spoofed && refusal != Refusal::multicast &&
           refusal != Refusal::broadcast;
  }
};

class DestinationPolicy {
 public:
  struct Counters {
    uint64_t refused[kRefusalKinds] = {};  // per reason; [none] and [spoofed] stay 0
    uint64_t spoofed_source = 0;           // frames dropped for their source address
    uint64_t refused_total() const;
  };

  explicit DestinationPolicy(const Config& cfg) : cfg_(cfg) {}

  // May the guest open a `proto` flow from src to dst:port (port 0 for echo),
  // in a frame of family v6? Counts what it refuses.
  Verdict decide(FlowProto proto, bool frame_v6, const InetAddr& src, const InetAddr& dst, uint16_t port,
                 uint64_t now_ns);
  // True when src is the guest's: its configured IPv4 address; for IPv6,
  // any address of its configured prefix but the gateway's (SLAAC, privacy
  // addresses).
  bool source_is_guest(bool frame_v6, const InetAddr& src) const;
  // What the guest sees as the peer of a host address (an inbound client, a
  // reply's source): the host's loopback is the gateway.
  InetAddr guest_view(const InetAddr& host_peer) const;
  // A frame dropped for its source (the gateway's ARP/NDP checks).
  void count_spoofed() { counters_.spoofed_source++; }

  const Counters& counters() const { return counters_; }
  NodeAddresses& node_addresses() { return node_; }

 private:
  Refusal classify(FlowProto proto, bool frame_v6, const InetAddr& src, const InetAddr& dst, uint16_t port,
                   uint64_t now_ns, InetAddr* host);
  const Config& cfg_;
  NodeAddresses node_;
  Counters counters_;
};

}  // namespace ferry

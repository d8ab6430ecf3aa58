// DestinationPolicy: see destination_policy.h for the order of the checks.
#include "policy/destination_policy.h"

#include "policy/rules.h"

namespace ferry {

namespace {

// The built-in denials an --allow may override: link-local (where clouds
// keep their metadata service) and "this network".
const std::vector<DestinationRule>& default_denials() {
  static const std::vector<DestinationRule> rules = {
      {*InetPrefix::parse("169.254.0.0/16"), 0, 0, false},
      {*InetPrefix::parse("fe80::/10"), 0, 0, false},
      {*InetPrefix::parse("0.0.0.0/8"), 0, 0, false},
  };
  return rules;
}

// True when a is strictly more specific than b (prefix, then port span);
// the action does not count.
bool strictly_more_specific(const DestinationRule& a, const DestinationRule& b) {
  DestinationRule a2 = a, b2 = b;
  a2.allow = b2.allow = true;
  return more_specific(a2, b2);
}

const InetAddr kLoopback4 = *InetAddr::parse("127.0.0.1");
const InetAddr kLoopback6 = *InetAddr::parse("::1");

}  // namespace

bool is_v4_broadcast(const InetAddr& a, const InetPrefix& net) {
  if (!a.is_v4()) return false;
  const uint8_t* b = a.v4_bytes();
  if ((b[0] & b[1] & b[2] & b[3]) == 0xff) return true;
  if (!net.addr.is_v4() || net.len >= 31 || !a.same_prefix(net.addr, net.len)) return false;
  const uint32_t v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  const uint32_t host_mask = net.len == 0 ? 0xffffffffu : (0xffffffffu >> net.len);
  return (v & host_mask) == host_mask;
}

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::none: return "none";
    case Refusal::family: return "family";
    case Refusal::spoofed: return "spoofed";
    case Refusal::invalid: return "invalid";
    case Refusal::multicast: return "multicast";
    case Refusal::broadcast: return "broadcast";
    case Refusal::gateway: return "gateway";
    case Refusal::loopback: return "loopback";
    case Refusal::default_deny: return "default_deny";
    case Refusal::node: return "node";
    case Refusal::rule: return "rule";
  }
  return "?";
}

uint64_t DestinationPolicy::Counters::refused_total() const {
  uint64_t n = 0;
  for (uint64_t v : refused) n += v;
  return n;
}

bool DestinationPolicy::source_is_guest(bool frame_v6, const InetAddr& src) const {
  if (!frame_v6) return cfg_.ipv4 && src == cfg_.guest4.addr;
  // IPv6: any address of the guest's prefix but the gateway's, for the
  // addresses a guest makes itself there (SLAAC from the router
  // advertisements, privacy addresses).
  return cfg_.ipv6 && !src.is_v4() && src.same_prefix(cfg_.guest6.addr, cfg_.guest6.len) && src != cfg_.gateway6 &&
         !src.is_multicast();
}

InetAddr DestinationPolicy::guest_view(const InetAddr& host_peer) const {
  if (!host_peer.is_loopback()) return host_peer;
  return host_peer.is_v4() ? cfg_.gateway4 : cfg_.gateway6;
}

Verdict DestinationPolicy::decide(FlowProto proto, bool frame_v6, const InetAddr& src, const InetAddr& dst,
                                  uint16_t port, uint64_t now_ns) {
  Verdict v;
  v.host = dst;
  v.refusal = classify(proto, frame_v6, src, dst, port, now_ns, &v.host);
  if (v.refusal == Refusal::spoofed)
    counters_.spoofed_source++;
  else if (v.refusal != Refusal::none)
    counters_.refused[static_cast<size_t>(v.refusal)]++;
  return v;
}

Refusal DestinationPolicy::classify(FlowProto proto, bool frame_v6, const InetAddr& src, const InetAddr& dst,
                                    uint16_t port, uint64_t now_ns, InetAddr* host) {
  // 1. family
  if (dst.is_v4() == frame_v6 || src.is_v4() == frame_v6 || (frame_v6 ? !cfg_.ipv6 : !cfg_.ipv4))
    return Refusal::family;
  // 2. source
  if (!source_is_guest(frame_v6, src)) return Refusal::spoofed;
  // 3. nonsense
  if (dst.is_unspecified() || dst == src || (proto != FlowProto::echo && port == 0)) return Refusal::invalid;
  // 4. one-to-many
  if (dst.is_multicast()) return Refusal::multicast;
  if (!frame_v6 && (is_v4_broadcast(dst, cfg_.guest4) || node_.is_broadcast(dst, now_ns))) return Refusal::broadcast;
  // 5. ferry's DNS forwarder over TCP: the host's resolver
  if (proto == FlowProto::tcp) {
    if (auto resolver = cfg_.dns_tcp_target(dst, port)) {
      *host = *resolver;
      return Refusal::none;
    }
  }
  const DestinationRule* user = most_specific_match(cfg_.destination_rules, dst, port);
  // 6. the gateway
  if (dst == (frame_v6 ? cfg_.gateway6 : cfg_.gateway4)) {
    if (!cfg_.map_gateway) return Refusal::gateway;
    if (proto != FlowProto::echo && !cfg_.map_gateway_ports.empty()) {
      bool open = false;
      for (const PortRange& r : cfg_.map_gateway_ports) open = open || (port >= r.first && port <= r.last);
      if (!open) return Refusal::gateway;
    }
    if (user != nullptr && !user->allow) return Refusal::rule;
    *host = frame_v6 ? kLoopback6 : kLoopback4;
    return Refusal::none;
  }
  // 7. loopback, named directly
  if (dst.is_loopback()) return Refusal::loopback;
  // 8. rules: the defaults (and the node's addresses) against the user's
  const DestinationRule* dflt = most_specific_match(default_denials(), dst, port);
  DestinationRule node_rule;
  Refusal dflt_kind = Refusal::default_deny;
  if (!cfg_.allow_node && node_.is_node(dst, now_ns)) {
    node_rule = DestinationRule{InetPrefix{dst, dst.is_v4() ? 32u : 128u}, 0, 0, false};
    dflt = &node_rule;
    dflt_kind = Refusal::node;
  }
  if (dflt != nullptr && (user == nullptr || strictly_more_specific(*dflt, *user))) return dflt_kind;
  if (user != nullptr && !user->allow) return Refusal::rule;
  return Refusal::none;
}

}  // namespace ferry

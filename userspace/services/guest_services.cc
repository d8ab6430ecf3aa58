// GuestServices: dispatch a guest frame to the service it is for (see guest_services.h).
#include "services/guest_services.h"

namespace ferry::services {

namespace {
const InetAddr kAllDhcpAgents = *InetAddr::parse("ff02::1:2");
}  // namespace

GuestServices::GuestServices(EventLoop& loop, GuestLink& link)
    : link_(link),
      link_local_(link_local_from_mac(link.our_mac())),
      dhcp4_(link),
      dhcp6_(link),
      ra_(std::make_unique<RaServer>(loop, link)),
      dns_(std::make_unique<DnsForwarder>(loop, link)) {}

Status GuestServices::start() {
  const Config& c = link_.config();
  if (!c.services.dns_forward) return {};
  return dns_->start();
}

bool GuestServices::take(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const Config& c = link_.config();
  const ServicesConfig& s = c.services;
  const bool v6 = f.l3 == L3Kind::ipv6;
  if (f.l3 != L3Kind::ipv4 && !v6) return false;
  if (v6 && f.protocol == IPPROTO_ICMPV6) {
    if (f.icmp.type != kIcmp6RouterSolicit || !s.ra || !c.ipv6) return false;
    ra_->on_solicit(f, frame);
    return true;
  }
  if (f.protocol != IPPROTO_UDP) return false;
  if (!v6 && f.udp.dport == kDhcp4ServerPort && s.dhcp4 && c.ipv4) {
    dhcp4_.on_datagram(f, frame);
    return true;
  }
  if (v6 && f.udp.dport == kDhcp6ServerPort && s.dhcp6 && c.ipv6 && (f.dst == kAllDhcpAgents || f.dst == link_local_)) {
    dhcp6_.on_datagram(f, frame);
    return true;
  }
  if (f.udp.dport == 53 && s.dns_forward && (v6 ? c.ipv6 : c.ipv4) &&
      f.dst == s.forward_addr(v6, v6 ? c.gateway6 : c.gateway4)) {
    dns_->on_query(f, frame);
    return true;
  }
  return false;
}

}  // namespace ferry::services

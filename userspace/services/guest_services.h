// GuestServices: the one hook between the Translator and the services a
// real router and its DHCP/DNS server would offer the guest.
//
// The Translator offers each parsed guest frame to take() before its own
// address checks (a DHCP DISCOVER comes from 0.0.0.0); take() returns true
// for the frames that belong to a service that runs, which then answers or
// counts and drops them:
//   UDP to port 67 (IPv4)                          -> Dhcp4Server
//   ICMPv6 router solicitation                     -> RaServer (also periodic)
//   UDP to port 547 at ff02::1:2 or our link-local -> Dhcp6Server
//   UDP to the forwarder's address, port 53        -> DnsForwarder
// Everything else (and everything of a service switched off) goes on to the
// translators as before. Each service lives in its own file; this one only
// dispatches and owns them.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "codec/frame.h"
#include "common/guest_link.h"
#include "common/status.h"
#include "loop/event_loop.h"
#include "services/dhcp4.h"
#include "services/dhcp6.h"
#include "services/dns_forward.h"
#include "services/ra.h"

namespace ferry::services {

class GuestServices {
 public:
  GuestServices(EventLoop& loop, GuestLink& link);

  // Opens the DNS forwarder's host sockets (when it runs).
  Status start();

  // True when `f` was a service's frame (consumed).
  bool take(const ParsedFrame& f, std::span<const uint8_t> frame);

  const Dhcp4Server& dhcp4() const { return dhcp4_; }
  const RaServer& ra() const { return *ra_; }
  const Dhcp6Server& dhcp6() const { return dhcp6_; }
  const DnsForwarder& dns() const { return *dns_; }

 private:
  GuestLink& link_;
  InetAddr link_local_;  // ours, where DHCPv6 may be unicast
  Dhcp4Server dhcp4_;
  Dhcp6Server dhcp6_;
  std::unique_ptr<RaServer> ra_;
  std::unique_ptr<DnsForwarder> dns_;
};

}  // namespace ferry::services

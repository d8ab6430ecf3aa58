// Configuring the guest's side of a link from inside its namespace.
//
// Theory of operation: ferry (`ferry run`, the CNI plugin) owns the guest's
// namespace set-up; the guest runs unprivileged and gets a link that is
// ready before its first instruction. configure_guest_link() enters the
// namespace (NetnsGuard), and in this order, because each step relies on the
// one before:
//   1. IPv6 quieting sysctls on the link (quiet_ipv6), while it is still down,
//      so bringing it up starts neither DAD nor router solicitations;
//   2. MTU (when asked);
//   3. lo up, link up;
//   4. addresses (IPv6 with IFA_F_NODAD: not tentative, usable at once);
//   5. default routes via the gateways (need the link up and the prefix
//      route of the address, so the gateway is on-link).
// It returns to the caller's namespace in every case. A family whose
// address is unset is skipped; without addr6, IPv6 is disabled on the link
// (disable_ipv6=1: no link-local address, no guest IPv6 traffic at all),
// and a kernel without IPv6 is fine.
#pragma once

#include <optional>
#include <string>

#include "codec/addr.h"
#include "common/config.h"
#include "common/status.h"

namespace ferry {

struct GuestLinkSetup {
  std::string ifname = "eth0";
  unsigned mtu = 0;  // 0: leave as it is
  std::optional<InetPrefix> addr4;
  std::optional<InetAddr> gateway4;  // default route; needs addr4
  std::optional<InetPrefix> addr6;
  std::optional<InetAddr> gateway6;  // default route; needs addr6
};

// The set-up `ferry run` gives its guest: the interface name, and per family
// in use (Config::ipv4/ipv6) the guest's address and the gateway.
GuestLinkSetup guest_link_setup(const Config& config);

// Applies `setup` to the link named setup.ifname inside namespace `ns_fd`.
Status configure_guest_link(int ns_fd, const GuestLinkSetup& setup);

}  // namespace ferry

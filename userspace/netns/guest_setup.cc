// configure_guest_link(): see guest_setup.h for the order and its reasons.
#include "netns/guest_setup.h"

#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry {

GuestLinkSetup guest_link_setup(const Config& config) {
  GuestLinkSetup setup;
  setup.ifname = config.ifname;
  if (config.ipv4) {
    setup.addr4 = config.guest4;
    setup.gateway4 = config.gateway4;
  }
  if (config.ipv6) {
    setup.addr6 = config.guest6;
    setup.gateway6 = config.gateway6;
  }
  return setup;
}

// Enters the namespace, configures the link step by step, leaves.
Status configure_guest_link(int ns_fd, const GuestLinkSetup& setup) {
  NetnsGuard guard;
  if (Status st = guard.enter(ns_fd); !st) return st;
  Result<Netlink> nl = Netlink::open();
  if (!nl) return nl.status();
  Result<int> ifindex = nl->link_index(setup.ifname);
  if (!ifindex) return ifindex.status();

  if (setup.addr6) {
    if (Status st = quiet_ipv6(setup.ifname); !st) return st;
  } else {
    // IPv4 only: no IPv6 at all on the link, so no link-local address, no
    // solicitations, nothing for ferry to answer. A kernel without IPv6
    // has no such file, which is just as good.
    Status st = write_sysctl("net/ipv6/conf/" + setup.ifname + "/disable_ipv6", "1");
    if (!st && st.err() != ENOENT) return st;
  }
  // Frames ferry sends to an address the guest does not own (answers to a
  // spoofing guest) must not be routed back out of the link: no IPv4
  // forwarding for what arrives on it (the namespace may inherit
  // ip_forward=1 from the host). Scoped to ferry's link, so a namespace
  // given with --netns keeps routing between its other interfaces.
  if (Status st = write_sysctl("net/ipv4/conf/" + setup.ifname + "/forwarding", "0"); !st && st.err() != ENOENT)
    return st;
  if (setup.mtu != 0) {
    if (Status st = nl->set_mtu(*ifindex, setup.mtu); !st) return st;
  }
  if (Status st = nl->bring_lo_up(); !st) return st;
  if (Status st = nl->set_link_up(*ifindex, true); !st) return st;
  if (setup.addr4) {
    if (Status st = nl->add_address(*ifindex, *setup.addr4); !st) return st;
  }
  if (setup.addr6) {
    if (Status st = nl->add_address(*ifindex, *setup.addr6); !st) return st;
  }
  if (setup.addr4 && setup.gateway4) {
    if (Status st = nl->add_default_route(*ifindex, *setup.gateway4); !st) return st;
  }
  if (setup.addr6 && setup.gateway6) {
    if (Status st = nl->add_default_route(*ifindex, *setup.gateway6); !st) return st;
  }
  return Status();
}

}  // namespace ferry

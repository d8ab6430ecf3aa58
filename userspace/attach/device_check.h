// Which devices `ferry attach` serves without --force.
//
// ferry takes every frame that arrives on DEV's ingress and answers as the
// guest's only router, so DEV must be a link with exactly one guest behind
// it that the host itself does not use: the host end of a veth pair or a
// tap. Refused, each with a one-line reason:
//   * loopback, and any kind but veth or a tap (a NIC, a bond, a macvlan, a
//     tun without Ethernet): taking its ingress cuts the host off and
//     serves every L2 neighbour;
//   * a bridge, or a link enslaved to a bridge or bond: its frames are the
//     bridge's (other pods') to switch;
//   * a link holding an address (IPv6 link-local ones aside): the host uses
//     it, and would lose it.
// --force skips these checks (ferry-cni passes it in chained mode once it
// has verified that DEV is the peer of the pod's own veth).
#pragma once

#include <string>

#include "attach/datapath.h"

namespace ferry::attach {

// "" when `ferry attach` may serve the device, else why not (one line,
// starting with the device's name).
std::string device_refusal(const std::string& dev, const DeviceInfo& d);

}  // namespace ferry::attach

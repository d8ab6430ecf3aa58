// device_refusal: see device_check.h.
#include "attach/device_check.h"

#include <linux/if_tun.h>
#include <net/if_arp.h>

namespace ferry::attach {

std::string device_refusal(const std::string& dev, const DeviceInfo& d) {
  const std::string hint = " (--force to attach anyway)";
  if (d.loopback) return dev + " is the loopback device" + hint;
  if (d.kind == "bridge") return dev + " is a bridge: its frames belong to every port behind it" + hint;
  if (d.master != 0)
    return dev + " is enslaved to another device (ifindex " + std::to_string(d.master) + "), a bridge or bond port" +
           hint;
  const bool veth = d.kind == "veth";
  const bool tap = d.kind == "tun" && d.type == ARPHRD_ETHER && (d.tun_type == 0 || d.tun_type == IFF_TAP);
  if (!veth && !tap) {
    const std::string k = d.kind.empty() ? "a device without a link kind (a physical NIC?)" : "of kind " + d.kind;
    return dev + " is " + k + ", not a veth or a tap" + hint;
  }
  if (!d.addresses.empty())
    return dev + " holds the address " + d.addresses.front().str() + ": the host uses it" + hint;
  return "";
}

}  // namespace ferry::attach

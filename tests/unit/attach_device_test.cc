// Which devices `ferry attach` takes without --force (attach/device_check.h),
// on hand-made DeviceInfo values: no device, no privileges.
// test-libs: ferry_attach
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>

#include <string>
#include <vector>

#include "attach/device_check.h"

namespace ferry::attach {
namespace {

DeviceInfo Dev(const char* kind, unsigned short type = ARPHRD_ETHER) {
  DeviceInfo d;
  d.kind = kind;
  d.type = type;
  return d;
}

TEST(AttachDevice, Refusals) {
  struct Case {
    const char* what;
    DeviceInfo d;
    const char* want;  // "" accepted, else a word of the reason
  };
  DeviceInfo lo = Dev("", ARPHRD_LOOPBACK);
  lo.loopback = true;
  DeviceInfo port = Dev("veth");
  port.master = 7;
  DeviceInfo addressed = Dev("veth");
  addressed.addresses.push_back(*InetPrefix::parse("10.0.0.1/24"));
  DeviceInfo tap = Dev("tun");
  tap.tun_type = IFF_TAP;
  DeviceInfo tun = Dev("tun", ARPHRD_NONE);
  tun.tun_type = IFF_TUN;
  const std::vector<Case> cases = {
      {"veth", Dev("veth"), ""},
      {"tap", tap, ""},
      {"lo", lo, "loopback"},
      {"bridge", Dev("bridge"), "bridge"},
      {"bridge port", port, "enslaved"},
      {"addressed veth", addressed, "10.0.0.1/24"},
      {"NIC", Dev(""), "physical NIC"},
      {"vxlan", Dev("vxlan"), "kind vxlan"},
      {"tun (L3)", tun, "not a veth or a tap"},
  };
  for (const Case& c : cases) {
    const std::string why = device_refusal("dev0", c.d);
    if (*c.want == '\0') {
      EXPECT_EQ(why, "") << c.what;
    } else {
      EXPECT_NE(why.find(c.want), std::string::npos) << c.what << ": " << why;
      EXPECT_EQ(why.rfind("dev0 ", 0), 0u) << why;
      EXPECT_NE(why.find("--force"), std::string::npos) << why;
      EXPECT_EQ(why.find('\n'), std::string::npos) << why;
    }
  }
}

}  // namespace
}  // namespace ferry::attach

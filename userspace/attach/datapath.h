// Datapath: joins an existing device DEV to a private tap that ferry reads.
//
// Theory of operation (see bpf/ferry_attach.bpf.c for the programs):
//   1. probe DEV in its namespace (index, MTU, driver, XDP program present);
//   2. make a private tap `fyN` (N = DEV's ifindex) in DEV's namespace:
//      disable_ipv6=1, IFF_NOARP, no addresses, DEV's MTU, up. The host's
//      stack therefore never sends or receives anything on it;
//   3. load ferry_attach.bpf.o with both ifindexes as read-only data and
//      the fast-path maps (bpf/maps.h: conn_hash, conn_state, activity,
//      events) sized to the flow table, and the `conns` view (a ConnsMap,
//      the map-only ferry_conns.bpf.o) as large; pin them with stats and
//      attach_stats under FERRY_PIN_ROOT/DEV. The service opens
//      the fast-path maps by fd (map_fd) for the TCP fast path, exactly as
//      `ferry run` does with its classifier's;
//   4. tcx ingress on the tap (ferry -> guest: out of DEV), kept as an fd:
//      it dies with the tap;
//   5. the guest side last, so that the way back exists before the first
//      frame is taken: tcx ingress (hook tc) or XDP (hook xdp: driver mode,
//      generic if the driver refuses) on DEV, as a bpf_link pinned as
//      `link_dev`. The pin keeps it attached if the service dies; since its
//      redirect target (the tap) is then gone, DEV's guest frames are
//      dropped, never passed to the host's stack, until `ferry detach`.
// bpf_links (tcx, XDP link) rather than clsact filters: they coexist with
// other owners' programs and qdiscs, and removing ours can never take
// anything else with it.
//
// Hook choice, measured on this machine (kernel 6.18, 2 shared vCPUs, iperf3
// one stream, guest -> 127.0.0.1 in the host namespace through ferry attach,
// Gbit/s per run; the machine is shared, so +-15 %). Two rounds: the private
// tap as TapPort first made it (no vnet header: the tap's xmit segments and
// checksums for it), and with TapPort's offloads (vnet header, CSUM+TSO:
// super-segments cross the redirect whole), which were being added as this
// was written:
//
//   veth MTU  hook (mode)      guest tx csum offload   plain tap        offload tap
//   65520     tc  (tcx)        on (the default)        4.56 4.85 4.21   3.87 3.91
//   65520     tc  (tcx)        off                     3.87 4.53 3.94   3.38 3.60
//   65520     xdp (generic*)   off                     3.94 4.68 5.13   3.96 3.78
//   65520     xdp (generic*)   on  (the default)       0    0    0      3.28 4.32
//   1500      tc  (tcx)        on                      1.05 1.00 0.91   3.65 3.43
//   1500      tc  (tcx)        off                     0.85 0.82 0.72   0.73 0.83
//   1500      xdp (driver)     off                     0.97 0.97 0.90   0.79 0.78
//   1500      xdp (driver)     on  (the default)       0    0    0      0    0
//   (* native XDP on a veth refuses MTU 65520 for a non-frags program, so
//    the kernel's generic, skb-based XDP is used)
//
// tcx ingress works with every guest configuration and is the fastest or
// equal everywhere; with the offload tap it is 4.5x XDP at MTU 1500, since
// the guest's 64 KiB super-segments stay whole through bpf_redirect. Native
// XDP turns the skb into an xdp_frame and loses CHECKSUM_PARTIAL and GSO:
// with a guest's default offloads every TCP segment reaches ferry with an
// unfinished checksum and is dropped (0). Generic XDP keeps the skb, so it
// works only where native XDP is refused. So tc is the default; xdp stays
// selectable (--hook xdp) for guests that send full checksums
// (`ethtool -K eth0 tx off`). Reproduce: ATTACH_BENCH=1 FERRY=build/ferry
// bash tests/e2e/attach_hooks.sh.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/conns_map.h"
#include "codec/addr.h"
#include "common/status.h"
#include "ferry/conn_view.h"
#include "ferry/contract.h"
#include "port/tap.h"

struct ferry_attach;

namespace ferry::attach {

enum class Hook { tc, xdp };
const char* to_string(Hook h);

struct DeviceInfo {
  int ifindex = 0;
  unsigned mtu = 0;
  bool up = false;
  std::string driver;        // "veth", "tun", ... (ethtool), "" if unknown
  uint32_t xdp_prog_id = 0;  // an XDP program already on DEV, 0 none
  std::string kind;          // rtnetlink's link kind ("veth", "bridge", "tun" ...)
  uint8_t tun_type = 0;      // for kind "tun": IFF_TUN or IFF_TAP (0: not told)
  unsigned short type = 0;   // ARPHRD_*
  bool loopback = false;     // IFF_LOOPBACK
  int master = 0;            // ifindex of the bridge/bond DEV is enslaved to, 0 none
  std::vector<InetPrefix> addresses;  // DEV's addresses, IPv6 link-local ones left out
};

// Looks DEV up inside namespace ns_fd (-1: the calling thread's).
Result<DeviceInfo> probe_device(int ns_fd, const std::string& dev);

struct DatapathOptions {
  std::string dev;
  int dev_ns_fd = -1;  // DEV's namespace; -1: the calling thread's
  Hook hook = Hook::tc;
  uint32_t max_conns = FERRY_MAX_CONNS_DEFAULT;
  bool force = false;  // attach even though DEV has another XDP program
  bool fastpath = true;  // size the fast-path maps (else one entry each)
};

class Datapath {
 public:
  static Result<std::unique_ptr<Datapath>> create(const DatapathOptions& opts);
  ~Datapath();  // teardown()
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Detaches DEV's link, unpins, closes the tap. Idempotent.
  void teardown();

  TapPort& port() { return *tap_; }
  ferry_conn_view* conns() { return conns_->view(); }
  // A loaded map's fd by name ("conn_hash", "events", ...), -1 if none.
  // Valid until teardown().
  int map_fd(const char* name) const;
  uint32_t conns_entries() const { return conns_->entries(); }
  const DeviceInfo& device() const { return dev_; }
  int tap_ifindex() const { return tap_->ifindex(); }
  const std::string& tap_name() const { return tap_->ifname(); }
  uint32_t dev_prog_id() const { return dev_prog_id_; }
  uint32_t tap_prog_id() const { return tap_prog_id_; }
  uint32_t dev_link_id() const { return dev_link_id_; }
  // "tcx", "xdp-driver", "xdp-generic"
  const std::string& attach_mode() const { return attach_mode_; }

 private:
  Datapath() = default;

  std::string instance_;
  DeviceInfo dev_;
  std::unique_ptr<TapPort> tap_;
  ::ferry_attach* skel_ = nullptr;
  int tap_link_fd_ = -1;
  int dev_link_fd_ = -1;
  uint32_t dev_prog_id_ = 0, tap_prog_id_ = 0, dev_link_id_ = 0;
  std::string attach_mode_;
  std::unique_ptr<ConnsMap> conns_;
  bool pinned_ = false;
};

// What `ferry detach` does after the service is gone: detaches the pinned
// DEV link, removes every pin and the pin dir of `instance`. Nothing there is fine.
Status remove_pins(const std::string& instance);

// Whether `instance`'s pinned DEV link still acts on a device: true while
// the link is pinned and its device exists (or when that cannot be told),
// false when no link is pinned or its device is gone (the kernel keeps a
// defunct link with ifindex 0, in whatever namespace the device was). A
// dead service's DEV link keeps the guest's frames from the host's stack:
// only when this is false may a sweep remove its pins and files.
bool dev_link_active(const std::string& instance);

// The bytes to mmap for an array of `entries` values of `value_size`.
size_t mmap_len(uint32_t entries, size_t value_size);

}  // namespace ferry::attach

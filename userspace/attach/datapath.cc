// Datapath: see datapath.h for the theory of operation.
//
// Failure handling: create() builds the pieces in order and, on any error,
// the half-built Datapath's destructor undoes exactly what was built (links
// detached, pins removed, tap closed), so a failed attach leaves nothing.
#include "attach/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attach/instance.h"
#include "ferry_attach.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)
#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry::attach {

namespace {

constexpr int kBpfTcxIngress = 46;  // BPF_TCX_INGRESS; libbpf 1.1's headers predate it
constexpr unsigned kTapMaxMtu = 65535 - 14;

// Pins made under the instance's dir (the link last: it is the one that matters).
constexpr const char* kPinnedMaps[] = {"stats", "attach_stats", "conn_hash", "conn_state", "events"};

// The driver name of an interface through ETHTOOL_GDRVINFO, "" when unknown.
std::string driver_of(const std::string& dev) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return {};
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, dev.data(), std::min(dev.size(), sizeof(ifr.ifr_name) - 1));
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  std::string out;
  if (::ioctl(s, SIOCETHTOOL, &ifr) == 0) out.assign(info.driver, strnlen(info.driver, sizeof(info.driver)));
  ::close(s);
  return out;
}

// Sets IFF_UP and IFF_NOARP on a link of the current namespace.
Status set_up_noarp(const std::string& name) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return Status::from_errno("socket");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof(ifr.ifr_name) - 1));
  Status st;
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    st = Status::from_errno("SIOCGIFFLAGS " + name);
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_NOARP);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) st = Status::from_errno("set " + name + " up");
  }
  ::close(s);
  return st;
}

// The id of a prog or link fd, 0 on error.
uint32_t prog_id(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}
uint32_t link_id(int fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Enters ns_fd when it is valid; a no-op guard otherwise.
Status enter_opt(NetnsGuard& g, int ns_fd) { return ns_fd >= 0 ? g.enter(ns_fd) : Status(); }

}  // namespace

const char* to_string(Hook h) { return h == Hook::xdp ? "xdp" : "tc"; }

size_t mmap_len(uint32_t entries, size_t value_size) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t raw = static_cast<size_t>(entries) * ((value_size + 7) & ~size_t{7});
  return (raw + page - 1) / page * page;
}

Result<DeviceInfo> probe_device(int ns_fd, const std::string& dev) {
  if (!valid_ifname(dev)) return Status(EINVAL, "bad device name '" + dev + "'");
  NetnsGuard g;
  if (Status st = enter_opt(g, ns_fd); !st) return st;
  Result<Netlink> nl = Netlink::open();
  if (!nl) return nl.status();
  Result<LinkInfo> li = nl->get_link(std::string_view(dev));
  if (!li) {
    if (li.status().err() == ENODEV) return Status(ENODEV, "no device '" + dev + "'");
    return li.status();
  }
  DeviceInfo d;
  d.ifindex = li->index;
  d.mtu = li->mtu;
  d.up = (li->flags & IFF_UP) != 0;
  d.driver = driver_of(dev);
  if (bpf_xdp_query_id(d.ifindex, 0, &d.xdp_prog_id) != 0) d.xdp_prog_id = 0;
  d.kind = li->kind;
  d.tun_type = li->tun_type;
  d.type = li->type;
  d.loopback = (li->flags & IFF_LOOPBACK) != 0;
  d.master = li->master;
  Result<std::vector<AddrInfo>> addrs = nl->addresses(li->index);
  if (!addrs) return addrs.status();
  for (const AddrInfo& a : *addrs)
    if (!a.prefix.addr.is_link_local_v6()) d.addresses.push_back(a.prefix);
  return d;
}

Result<std::unique_ptr<Datapath>> Datapath::create(const DatapathOptions& o) {
  std::unique_ptr<Datapath> dp(new Datapath());
  dp->instance_ = o.dev;
  Result<DeviceInfo> dev = probe_device(o.dev_ns_fd, o.dev);
  if (!dev) return dev.status();
  dp->dev_ = *dev;
  if (dp->dev_.xdp_prog_id != 0 && !o.force) {
    return Status(EBUSY, "'" + o.dev + "' already has an XDP program (id " + std::to_string(dp->dev_.xdp_prog_id) +
                             "); --force to attach anyway");
  }

  // 2. the private tap
  NetnsFd here;
  int ns_fd = o.dev_ns_fd;
  if (ns_fd < 0) {
    Result<NetnsFd> cur = current_netns();
    if (!cur) return cur.status();
    here = std::move(*cur);
    ns_fd = here.get();
  }
  TapOptions topts;
  topts.ifname = "fy" + std::to_string(dp->dev_.ifindex);
  topts.mtu = std::min(std::max(dp->dev_.mtu, 68u), kTapMaxMtu);
  Result<std::unique_ptr<TapPort>> tap = TapPort::create(ns_fd, topts);
  if (!tap) return Status(tap.status().err(), "private tap: " + tap.status().message());
  dp->tap_ = std::move(*tap);
  {
    NetnsGuard g;
    if (Status st = g.enter(ns_fd); !st) return st;
    // No IPv6 on the tap: no link-local address, no router solicitations.
    (void)write_sysctl("net/ipv6/conf/" + dp->tap_->ifname() + "/disable_ipv6", "1");
    if (Status st = set_up_noarp(dp->tap_->ifname()); !st) return st;
    if (!dp->dev_.up) {
      Result<Netlink> nl = Netlink::open();
      if (!nl) return nl.status();
      if (Status st = nl->set_link_up(dp->dev_.ifindex); !st) return st;
    }
  }

  // 3. the programs and maps
  ::ferry_attach* skel = ferry_attach__open();
  if (skel == nullptr) return Status::from_errno("open BPF object ferry_attach");
  dp->skel_ = skel;
  skel->rodata->tap_ifindex = static_cast<uint32_t>(dp->tap_->ifindex());
  skel->rodata->dev_ifindex = static_cast<uint32_t>(dp->dev_.ifindex);
  // the fast-path maps (bpf/fastpath.h), as the classifier sizes them; one
  // entry each without the fast path (the program still references them)
  const uint32_t fp_conns = o.fastpath ? ferry_fastpath_slots(o.max_conns) : 1u;
  bpf_map__set_max_entries(skel->maps.conn_hash, fp_conns);
  bpf_map__set_max_entries(skel->maps.conn_state, fp_conns);
  bpf_program__set_autoload(o.hook == Hook::xdp ? skel->progs.ferry_attach_dev_tc : skel->progs.ferry_attach_dev_xdp,
                            false);
  if (int err = ferry_attach__load(skel); err != 0) return Status(-err, "load BPF programs");
  if (o.hook == Hook::xdp) {
    const uint32_t key = 0, val = static_cast<uint32_t>(dp->tap_->ifindex());
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.tx_port), &key, &val, BPF_ANY) != 0)
      return Status::from_errno("devmap entry for the tap");
  }
  Result<std::unique_ptr<ConnsMap>> conns = ConnsMap::create(o.max_conns);  // the view: no program's
  if (!conns) return conns.status();
  dp->conns_ = std::move(*conns);

  // Pins: a stale dir was cleaned by the caller; anything left now is not ours.
  const std::string dir = pin_dir(o.dev);
  Result<bool> made = make_pin_dir(o.dev);
  if (!made) return made.status();
  if (!*made) return Status(EEXIST, "pin directory " + dir + " exists (another ferry?)");
  dp->pinned_ = true;
  for (const char* name : kPinnedMaps) {
    bpf_map* m = bpf_object__find_map_by_name(skel->obj, name);
    if (m == nullptr || bpf_map__pin(m, (dir + "/" + name).c_str()) != 0) return Status::from_errno(std::string("pin ") + name);
  }
  if (Status st = dp->conns_->pin(dir + "/conns"); !st) return st;

  // 4. the way back: tap ingress -> out of DEV
  const int tap_prog = bpf_program__fd(skel->progs.ferry_attach_tap_tc);
  dp->tap_prog_id_ = prog_id(tap_prog);
  {
    NetnsGuard g;
    if (Status st = g.enter(ns_fd); !st) return st;
    dp->tap_link_fd_ = bpf_link_create(tap_prog, dp->tap_->ifindex(), static_cast<bpf_attach_type>(kBpfTcxIngress), nullptr);
    if (dp->tap_link_fd_ < 0) return Status(-dp->tap_link_fd_, "tcx ingress on the private tap");

    // 5. the guest's frames
    if (o.hook == Hook::tc) {
      const int p = bpf_program__fd(skel->progs.ferry_attach_dev_tc);
      dp->dev_prog_id_ = prog_id(p);
      dp->dev_link_fd_ = bpf_link_create(p, dp->dev_.ifindex, static_cast<bpf_attach_type>(kBpfTcxIngress), nullptr);
      if (dp->dev_link_fd_ < 0) return Status(-dp->dev_link_fd_, "tcx ingress on " + o.dev);
      dp->attach_mode_ = "tcx";
    } else {
      const int p = bpf_program__fd(skel->progs.ferry_attach_dev_xdp);
      dp->dev_prog_id_ = prog_id(p);
      if (dp->dev_.xdp_prog_id != 0) {  // --force: the other program goes, in its own mode
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        uint32_t mode_flag = 0;
        if (bpf_xdp_query(dp->dev_.ifindex, 0, &q) == 0) {
          if (q.skb_prog_id != 0) mode_flag = XDP_FLAGS_SKB_MODE;
          else if (q.drv_prog_id != 0) mode_flag = XDP_FLAGS_DRV_MODE;
        }
        if (int err = bpf_xdp_detach(dp->dev_.ifindex, mode_flag, nullptr); err != 0)
          return Status(-err, "remove the XDP program already on " + o.dev + " (a bpf_link? its owner must remove it)");
      }
      LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = XDP_FLAGS_DRV_MODE);
      dp->dev_link_fd_ = bpf_link_create(p, dp->dev_.ifindex, BPF_XDP, &lo);
      dp->attach_mode_ = "xdp-driver";
      if (dp->dev_link_fd_ < 0) {
        LIBBPF_OPTS(bpf_link_create_opts, lo2, .flags = XDP_FLAGS_SKB_MODE);
        dp->dev_link_fd_ = bpf_link_create(p, dp->dev_.ifindex, BPF_XDP, &lo2);
        dp->attach_mode_ = "xdp-generic";
      }
      if (dp->dev_link_fd_ < 0) return Status(-dp->dev_link_fd_, "XDP on " + o.dev);
    }
  }
  dp->dev_link_id_ = link_id(dp->dev_link_fd_);
  if (bpf_obj_pin(dp->dev_link_fd_, (dir + "/link_dev").c_str()) != 0) return Status::from_errno("pin link_dev");
  return dp;
}

Datapath::~Datapath() { teardown(); }

int Datapath::map_fd(const char* name) const {
  if (skel_ == nullptr) return -1;
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name);
  return m != nullptr ? bpf_map__fd(m) : -1;
}

void Datapath::teardown() {
  if (dev_link_fd_ >= 0) {  // stop taking guest frames first
    bpf_link_detach(dev_link_fd_);
    ::close(dev_link_fd_);
    dev_link_fd_ = -1;
  }
  if (pinned_) {
    (void)remove_dir_flat(pin_dir(instance_));
    pinned_ = false;
  }
  if (tap_link_fd_ >= 0) {
    bpf_link_detach(tap_link_fd_);
    ::close(tap_link_fd_);
    tap_link_fd_ = -1;
  }
  conns_.reset();
  if (skel_ != nullptr) {
    ferry_attach__destroy(skel_);
    skel_ = nullptr;
  }
  tap_.reset();
}

Status remove_pins(const std::string& instance) {
  const std::string dir = pin_dir(instance);
  const std::string link = dir + "/link_dev";
  const int fd = bpf_obj_get(link.c_str());
  if (fd >= 0) {
    bpf_link_detach(fd);  // detach even if someone else holds the link open
    ::close(fd);
  }
  return remove_dir_flat(dir);
}

bool dev_link_active(const std::string& instance) {
  const int fd = bpf_obj_get((pin_dir(instance) + "/link_dev").c_str());
  if (fd < 0) return errno != ENOENT;
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  const bool got = bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
  ::close(fd);
  if (!got) return true;
  // An XDP link's and a tcx link's ifindex are both the union's first
  // field (linux/bpf.h); libbpf 1.1's headers name only xdp's.
  constexpr uint32_t kLinkTypeTcx = 11;  // BPF_LINK_TYPE_TCX, Linux 6.6
  if (info.type != BPF_LINK_TYPE_XDP && info.type != kLinkTypeTcx) return true;
  return info.xdp.ifindex != 0;
}

}  // namespace ferry::attach

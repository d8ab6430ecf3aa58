// NetlinkTxCounters: a tap's counters toward its reader (TapQueueEstimate's
// source) through a NETLINK_ROUTE socket of the tap's namespace.
//
// Theory of operation: the socket is opened by the privileged service
// before the translator forks and enters its sandbox; the sandboxed child
// keeps using it. A netlink socket belongs to the namespace it was made in
// for life, and reading a link's counters needs no capability, so the
// seccomp allow-list needs nothing new: sendto() and recv() on a socket the
// translator already holds (userspace/sandbox/seccomp_filter.cc). A reading
// is one RTM_GETSTATS (IFLA_STATS_LINK_64 only) and its answer, without
// allocation; txqueuelen is one RTM_GETLINK (rare: once a second at most).
#pragma once

#include <utility>

#include "netns/netlink.h"
#include "tapq/tap_queue_estimate.h"

namespace ferry {

class NetlinkTxCounters final : public DevTxCounterSource {
 public:
  NetlinkTxCounters(Netlink nl, int ifindex) : nl_(std::move(nl)), ifindex_(ifindex) {}
  bool read(DevTxCounters* out) override;
  uint32_t txqueuelen() override;

 private:
  Netlink nl_;
  int ifindex_;
};

}  // namespace ferry

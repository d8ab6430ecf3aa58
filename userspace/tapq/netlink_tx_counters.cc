// See netlink_tx_counters.h.
#include "tapq/netlink_tx_counters.h"

namespace ferry {

// One RTM_GETSTATS.
bool NetlinkTxCounters::read(DevTxCounters* out) {
  LinkTxStats st;
  if (!nl_.link_tx_stats(ifindex_, &st).ok()) return false;
  out->tx_packets = st.tx_packets;
  out->tx_dropped = st.tx_dropped;
  out->tx_bytes = st.tx_bytes;
  return true;
}

// One RTM_GETLINK; 0 when the link cannot be read.
uint32_t NetlinkTxCounters::txqueuelen() {
  Result<LinkInfo> li = nl_.get_link(ifindex_);
  return li ? li->txqlen : 0;
}

}  // namespace ferry

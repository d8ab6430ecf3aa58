// Flow log: what `-v` prints, one line per flow event on stderr.
//
// Theory of operation: the TCP and UDP translators call these when a flow
// enters their table (open) and when it leaves it (close: bytes each way and
// why), and for errors a flow meets (a refused connect, a failed send). One
// line per event, never per frame; nothing is printed unless the caller's
// Config::verbose is set, so the data path pays one branch. Lines are
// stable for scripts:
//   ferry: tcp open 198.18.0.2:41234 > 198.18.0.1:8080 outbound
//   ferry: tcp close 198.18.0.2:41234 > 198.18.0.1:8080 outbound to_host=120 to_guest=5400 reason=closed
//   ferry: tcp close ... reason=closed recovery=rtx:3,rto:0,tlp:1,fast:1,tlp_rec:0,lost_rtx:0
//   ferry: udp error 198.18.0.2:5353 > 198.18.0.1:53 outbound send: Connection refused
// The guest's end comes first, then the peer as the guest sees it; `outbound`
// flows were opened by the guest, `inbound` ones by a -t/-u forward.
#pragma once

#include <cstdint>

#include "codec/addr.h"

namespace ferry {

// The two ends of a flow as the guest sees them.
struct FlowEnds {
  const char* proto;  // "tcp", "udp"
  InetAddr guest;
  uint16_t guest_port;
  InetAddr peer;
  uint16_t peer_port;
  bool inbound;
};

// A flow entered the table.
void log_flow_open(const FlowEnds& e);
// A flow left it: bytes it carried each way and why it ended; detail (TCP:
// the loss-recovery tally, when anything was resent) is appended when set.
void log_flow_close(const FlowEnds& e, uint64_t to_host, uint64_t to_guest, const char* reason,
                    const char* detail = nullptr);
// An error on a flow: what failed and errno (0: none).
void log_flow_error(const FlowEnds& e, const char* what, int err);

}  // namespace ferry

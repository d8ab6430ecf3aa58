// Destination rules: parsing `--allow` / `--deny CIDR[:PORTS]` and finding
// the rule that decides a destination.
//
// Syntax: CIDR is ADDR/LEN or a bare ADDR (a host: /32 or /128); PORTS is
// PORT, FIRST-LAST or a comma list of those (one rule each). An IPv6
// address without /LEN takes its ports in brackets: [fd00::1]:443. Without
// PORTS a rule covers every port and ICMP echo; with PORTS it covers only
// TCP and UDP to those ports.
//
// Precedence ("most specific wins"): the longer prefix; at equal prefixes
// the narrower port range (a rule without ports is the widest); at a full
// tie deny beats allow. The order on the command line never matters.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace ferry {

// Appends the rules in `text` (allow or deny) to `out`; a failure is one
// line naming the bad part (then `out` is unchanged).
Status parse_destination_rules(std::string_view text, bool allow, std::vector<DestinationRule>* out);

// "198.18.0.0/15:80-81" / "fd00::/8" (ports only when the rule has them).
std::string to_string(const DestinationRule& r);

// True when r covers dst:port (port 0: ICMP echo, covered by rules without ports).
bool rule_matches(const DestinationRule& r, const InetAddr& dst, uint16_t port);

// True when a is more specific than b (see the precedence above).
bool more_specific(const DestinationRule& a, const DestinationRule& b);

// The most specific rule of `rules` that covers dst:port, or nullptr.
const DestinationRule* most_specific_match(const std::vector<DestinationRule>& rules, const InetAddr& dst,
                                           uint16_t port);

}  // namespace ferry

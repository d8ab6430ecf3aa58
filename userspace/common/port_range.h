// Port numbers and ranges as the command line writes them, for every option
// that takes ports (-t/-u forwards, --allow/--deny rules, --map-gw-ports).
//
// Theory of operation: a port is a decimal 1..65535 spanning all of its
// text (no sign, no spaces, no 0: port 0 means "any" to the socket API, so
// it is never a port a user names); a range is "P" or "FIRST-LAST" with
// FIRST <= LAST. Nothing is accepted partially.
#pragma once

#include <cstdint>
#include <string_view>

namespace ferry {

// A decimal port 1..65535 spanning all of text.
bool parse_port(std::string_view text, uint16_t* port);

// "P" (first = last = P) or "FIRST-LAST", ascending, inclusive.
bool parse_port_range(std::string_view text, uint16_t* first, uint16_t* last);

}  // namespace ferry

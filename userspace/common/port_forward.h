// Parsing of port-forwarding rules, passt's syntax:
//   -t PORT                 host PORT -> guest PORT, all host addresses
//   -t FIRST-LAST           a range, each port to itself
//   -t PORT:GUESTPORT       host PORT -> guest GUESTPORT
//   -t F-L:GF-GL            ranges of equal size
//   -t ADDR/SPEC            bind only ADDR (IPv4 or IPv6) on the host
//   -t SPEC,SPEC...         several rules in one option
//   -t none                 no forwarding (the default)
// Port 0, inverted or unequal ranges and garbage are errors with a message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"

namespace ferry {

// Appends the rules in `spec` to `out`. On error returns false and sets *error
// to a one-line description naming the bad part.
bool parse_port_forwards(std::string_view spec, std::vector<PortForward>* out, std::string* error);

// Human-readable form of one rule ("127.0.0.1/8080:80", "8000-8010").
std::string to_string(const PortForward& f);

}  // namespace ferry

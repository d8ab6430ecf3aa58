// Parsing of port-forwarding rules, passt's and pasta's syntax:
//   -t PORT                 host PORT -> guest PORT, all host addresses
//   -t FIRST-LAST           a range, each port to itself
//   -t PORT:GUESTPORT       host PORT -> guest GUESTPORT
//   -t F-L:GF-GL            ranges of equal size
//   -t ADDR/SPEC            bind only ADDR (IPv4 or IPv6) on the host
//   -t SPEC,SPEC...         several rules in one option
//   -t all                  every port that is not ephemeral and not in use
//                           on the host (HostPorts), each to itself
//   -t ~PORT, ~F-L          exclude host ports from every rule of the option;
//                           an option of exclusions only means all,~...
//   -t auto                 every port the guest listens on, each to itself,
//                           followed as it changes (ferry run; see
//                           autofwd/auto_forward.h); exclusions in the same
//                           option apply to it (-t auto,~22), and it may
//                           stand beside explicit rules (not beside `all`)
//   -t none                 no forwarding (the default)
// Port 0, inverted or unequal ranges, an option left with no port (and no
// `auto`), `auto` with `all` and garbage are errors with a message.
#pragma once

#include <bitset>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/port_range.h"  // PORT and FIRST-LAST, as --allow/--deny read them
#include "common/status.h"

namespace ferry {

// What `all` must leave out on this host: the kernel's ephemeral range
// (where the host's own outgoing connections take their ports) and ports
// already bound by the host's sockets of the protocol.
struct HostPorts {
  uint16_t ephemeral_first = 32768, ephemeral_last = 60999;
  std::bitset<65536> in_use;
};

// Reads HostPorts of the caller's network namespace: the ephemeral range
// from /proc/sys/net/ipv4/ip_local_port_range, the ports in use from
// /proc/net/tcp{,6} (listening sockets) or /proc/net/udp{,6} (every socket).
HostPorts read_host_ports(bool udp);

// Appends the rules in `spec` to `out`. A failure is one line naming the bad
// part (then `out` is unchanged). `host` is consulted for
// `all` (nullptr: nothing in use, the default ephemeral range); *skipped (if
// given) gets the number of ports `all` left out because they were in use.
// `auto` turns auto_spec on and adds the option's exclusions to it
// (auto_spec nullptr: `auto` is refused).
Status parse_port_forwards(std::string_view spec, std::vector<PortForward>* out, const HostPorts* host = nullptr,
                           size_t* skipped = nullptr, AutoForwardSpec* auto_spec = nullptr);

// Appends the -T/-U rules in `spec` (`opt`: "-T" or "-U", for messages) to
// `out`: the grammar above without ADDR/ (the listening side is always the
// guest's loopback) and without `auto`; `all` and exclusions only are every
// port outside the default ephemeral range (the guest's namespace is new:
// nothing of it is in use). Rule i: guest loopback PORT -> host loopback
// GUESTPORT of pasta's `PORT:TARGET`. A failure is one line.
Status parse_ns_forwards(std::string_view spec, const char* opt, std::vector<NsForward>* out);

// The number of guest loopback ports the -T/-U rules forward (only_all:
// those made by `all`).
size_t ns_forwarded_port_count(const std::vector<NsForward>& rules, bool only_all = false);

// The number of host ports the rules forward (only_all: those made by `all`).
size_t forwarded_port_count(const std::vector<PortForward>& rules, bool only_all = false);

// Keeps the lowest `keep` ports of the rules made by `all` (rules in
// ascending order, as the parser makes them) and drops the rest; other
// rules stay. Returns how many ports were dropped. The same for -T/-U.
size_t trim_all_ports(std::vector<PortForward>* rules, size_t keep);
size_t trim_all_ports(std::vector<NsForward>* rules, size_t keep);

// Human-readable form of one rule ("127.0.0.1/8080:80", "8000-8010").
std::string to_string(const PortForward& f);

}  // namespace ferry

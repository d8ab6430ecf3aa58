// The host's /etc/resolv.conf, as the guest services need it.
//
// parse_resolv_conf() reads the lines glibc reads (resolv.conf(5)):
// `nameserver ADDR` (at most 3 used, as glibc; a scoped `fe80::1%eth0`
// is skipped: the scope means nothing to the guest), `search D...` and
// `domain D` (the last of the two wins, as in glibc), comments with # or ;.
// Without any nameserver line the resolver is 127.0.0.1, glibc's default.
// render_guest_resolv_conf() writes the file a `ferry run` guest sees when
// the host's resolvers are all loopback addresses, which the guest cannot
// reach as such.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "codec/addr.h"

namespace ferry::services {

inline constexpr const char* kHostResolvConf = "/etc/resolv.conf";

struct ResolvConf {
  std::vector<InetAddr> nameservers;
  std::vector<std::string> search;  // `search`, or the one `domain`
  std::vector<std::string> options; // `options` lines, verbatim after the keyword
  bool defaulted = false;           // no nameserver line: 127.0.0.1 assumed
};

ResolvConf parse_resolv_conf(std::string_view text);
// Reads and parses `path`; a missing or unreadable file is an empty one.
ResolvConf read_resolv_conf(const char* path = kHostResolvConf);

// True when every nameserver is a loopback address (127/8, ::1).
bool only_loopback(const ResolvConf& rc);

// "nameserver A" per server, a search line, then the host's options lines.
std::string render_guest_resolv_conf(const std::vector<InetAddr>& servers, const std::vector<std::string>& search,
                                     const ResolvConf& host);

}  // namespace ferry::services

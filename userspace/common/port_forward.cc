// Port-forward rule parser (see port_forward.h for the syntax).
// Every number is range-checked; nothing is accepted partially: a spec that
// fails leaves `out` as it was.
//
// A spec is read in two passes: first every comma-separated item is parsed
// into a rule, an exclusion or `all`; then exclusions (and, for `all`, the
// host's ephemeral range and ports in use) are cut out of the rules, which
// splits a rule into the runs of ports left, each keeping its guest offset.
#include "common/port_forward.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "common/socket_table.h"

namespace ferry {

namespace {

// Parses one rule (no commas) into *rule.
Status parse_one(std::string_view text, PortForward* rule) {
  PortForward r;
  const size_t slash = text.rfind('/');
  if (slash != std::string_view::npos) {
    auto addr = InetAddr::parse(text.substr(0, slash));
    if (!addr) {
      return Status::failure("bad address in port forward '" + std::string(text) + "'");
    }
    r.bind_addr = *addr;
    r.bind_any = false;
    text = text.substr(slash + 1);
  }
  const size_t colon = text.find(':');
  const std::string_view host = text.substr(0, colon);
  if (!parse_port_range(host, &r.host_first, &r.host_last)) {
    return Status::failure("bad port or range '" + std::string(host) +
                           "' (ports are 1-65535, FIRST-LAST ascending)");
  }
  r.guest_first = r.host_first;
  if (colon != std::string_view::npos) {
    uint16_t gf = 0, gl = 0;
    const std::string_view guest = text.substr(colon + 1);
    if (!parse_port_range(guest, &gf, &gl)) {
      return Status::failure("bad guest port or range '" + std::string(guest) + "'");
    }
    const bool single = gf == gl;
    if (!single && gl - gf != r.host_last - r.host_first) {
      return Status::failure("host and guest ranges differ in size in '" + std::string(text) + "'");
    }
    if (single && r.host_first != r.host_last) {
      return Status::failure("a host range needs a guest range of the same size in '" + std::string(text) + "'");
    }
    r.guest_first = gf;
  }
  *rule = r;
  return {};
}

// Host ports of `r` not in `cut`, appended to *out as runs (each keeping
// its guest offset); returns how many ports were appended.
size_t append_runs(const PortForward& r, const std::bitset<65536>& cut, std::vector<PortForward>* out) {
  size_t n = 0;
  uint32_t p = r.host_first;
  while (p <= r.host_last) {
    while (p <= r.host_last && cut[p]) p++;
    if (p > r.host_last) break;
    uint32_t q = p;
    while (q + 1 <= r.host_last && !cut[q + 1]) q++;
    PortForward run = r;
    run.host_first = static_cast<uint16_t>(p);
    run.host_last = static_cast<uint16_t>(q);
    run.guest_first = static_cast<uint16_t>(r.guest_first + (p - r.host_first));
    out->push_back(run);
    n += q - p + 1;
    p = q + 1;
  }
  return n;
}

// Ports bound in a /proc/net/{tcp,udp}[6] table (TCP: listening sockets;
// UDP: every socket), loopback included, are set in *in_use.
void read_proc_net(const char* path, bool listen_only, std::bitset<65536>* in_use) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  SocketTableParser parser({listen_only ? SocketFilter::kTcpListen : SocketFilter::kAnyState, false}, in_use);
  char buf[16384];
  read_socket_table(fd, &parser, buf, sizeof(buf));
  close(fd);
}

}  // namespace

HostPorts read_host_ports(bool udp) {
  HostPorts h;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    unsigned lo = 0, hi = 0;
    if (std::fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1 && lo <= hi && hi <= 65535) {
      h.ephemeral_first = static_cast<uint16_t>(lo);
      h.ephemeral_last = static_cast<uint16_t>(hi);
    }
    std::fclose(f);
  }
  read_proc_net(udp ? "/proc/net/udp" : "/proc/net/tcp", !udp, &h.in_use);
  read_proc_net(udp ? "/proc/net/udp6" : "/proc/net/tcp6", !udp, &h.in_use);
  return h;
}

namespace {

// trim_all_ports for either kind of rule: First/Last name its port range.
template <class Rule, uint16_t Rule::*First, uint16_t Rule::*Last>
size_t trim_all(std::vector<Rule>* rules, size_t keep) {
  size_t kept = 0, dropped = 0;
  std::vector<Rule> out;
  for (const Rule& r : *rules) {
    if (!r.from_all) {
      out.push_back(r);
      continue;
    }
    const size_t n = r.*Last - r.*First + 1u;
    if (kept + n <= keep) {
      out.push_back(r);
      kept += n;
      continue;
    }
    const size_t room = keep - kept;
    if (room > 0) {
      Rule part = r;
      part.*Last = static_cast<uint16_t>(r.*First + room - 1);
      out.push_back(part);
    }
    kept += room;
    dropped += n - room;
  }
  *rules = std::move(out);
  return dropped;
}

}  // namespace

size_t trim_all_ports(std::vector<PortForward>* rules, size_t keep) {
  return trim_all<PortForward, &PortForward::host_first, &PortForward::host_last>(rules, keep);
}

size_t trim_all_ports(std::vector<NsForward>* rules, size_t keep) {
  return trim_all<NsForward, &NsForward::listen_first, &NsForward::listen_last>(rules, keep);
}

size_t forwarded_port_count(const std::vector<PortForward>& rules, bool only_all) {
  size_t n = 0;
  for (const PortForward& r : rules)
    if (!only_all || r.from_all) n += r.host_last - r.host_first + 1u;
  return n;
}

Status parse_port_forwards(std::string_view spec, std::vector<PortForward>* out, const HostPorts* host, size_t* skipped, AutoForwardSpec* auto_spec) {
  if (skipped) *skipped = 0;
  if (spec == "none") return {};
  const std::string whole(spec);
  std::vector<PortForward> rules;
  std::bitset<65536> excluded;
  bool all = false, follow = false;
  while (true) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    if (item == "all") {
      all = true;
    } else if (item == "auto") {
      if (auto_spec == nullptr) {
        return Status::failure(
            "port spec 'auto' is not supported here (it follows the listeners of ferry run's guest)");
      }
      follow = true;
    } else if (!item.empty() && item[0] == '~') {
      uint16_t first = 0, last = 0;
      if (!parse_port_range(item.substr(1), &first, &last)) {
        return Status::failure("bad exclusion '" + std::string(item) + "' (want ~PORT or ~FIRST-LAST)");
      }
      for (uint32_t p = first; p <= last; p++) excluded.set(p);
    } else {
      PortForward rule;
      if (Status st = parse_one(item, &rule); !st.ok()) return st;
      rules.push_back(rule);
    }
    if (comma == std::string_view::npos) break;
    spec = spec.substr(comma + 1);
  }
  if (follow && all) {
    return Status::failure("port spec '" + whole + "' has both auto and all (all forwards every port already)");
  }
  if (rules.empty() && !all && !follow) all = true;  // only exclusions: all but those
  std::vector<PortForward> parsed;
  for (const PortForward& r : rules) append_runs(r, excluded, &parsed);
  if (all) {
    const HostPorts defaults;
    const HostPorts& h = host ? *host : defaults;
    std::bitset<65536> cut = excluded;
    for (uint32_t p = h.ephemeral_first; p <= h.ephemeral_last; p++) cut.set(p);
    std::bitset<65536> busy = h.in_use & ~cut;
    busy.reset(0);
    if (skipped) *skipped = busy.count();
    cut |= busy;
    PortForward every;
    every.host_first = 1;
    every.host_last = 65535;
    every.guest_first = 1;
    every.from_all = true;
    append_runs(every, cut, &parsed);
  }
  if (parsed.empty() && !follow) {
    return Status::failure("port spec '" + whole + "' leaves no port to forward");
  }
  if (follow) {
    auto_spec->enabled = true;
    auto_spec->excluded |= excluded;
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return {};
}

Status parse_ns_forwards(std::string_view spec, const char* opt, std::vector<NsForward>* out) {
  for (std::string_view rest = spec; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    if (item == "auto") {
      return Status::failure(std::string(opt) + " auto is not supported (name the ports)");
    }
    if (item.find('/') != std::string_view::npos) {
      return Status::failure(std::string(opt) + " '" + std::string(item) +
                             "': no ADDR/ (the guest's loopback is where ferry listens)");
    }
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  std::vector<PortForward> rules;
  if (Status st = parse_port_forwards(spec, &rules); !st.ok()) return st;
  for (const PortForward& r : rules) {
    NsForward f;
    f.listen_first = r.host_first;
    f.listen_last = r.host_last;
    f.target_first = r.guest_first;
    f.from_all = r.from_all;
    out->push_back(f);
  }
  return {};
}

size_t ns_forwarded_port_count(const std::vector<NsForward>& rules, bool only_all) {
  size_t n = 0;
  for (const NsForward& r : rules)
    if (!only_all || r.from_all) n += r.listen_last - r.listen_first + 1u;
  return n;
}

std::string to_string(const PortForward& f) {
  std::string s;
  if (!f.bind_any) s = f.bind_addr.str() + "/";
  s += std::to_string(f.host_first);
  if (f.host_last != f.host_first) s += "-" + std::to_string(f.host_last);
  if (f.guest_first != f.host_first) {
    s += ":" + std::to_string(f.guest_first);
    if (f.host_last != f.host_first) s += "-" + std::to_string(f.guest_first + (f.host_last - f.host_first));
  }
  return s;
}

}  // namespace ferry

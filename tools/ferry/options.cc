// Translator option parsing for the ferry CLI (see options.h).
#include "options.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/port_forward.h"
#include "policy/rules.h"
#include "services/dns_name.h"

namespace ferry::cli {

namespace {

// Descriptors kept for flows, the tap, epoll and the rest when `all` is trimmed.
constexpr size_t kFdMargin = 4096;

// Parses an unsigned decimal in [lo, hi] that must span all of text.
bool parse_uint(std::string_view text, unsigned long lo, unsigned long hi, unsigned long* out) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Parses "0x" followed by up to 8 hex digits.
bool parse_hex(std::string_view text, unsigned long* out) {
  if (text.size() < 3 || text.size() > 10 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return false;
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), v, 16);
  if (ec != std::errc() || p != text.data() + text.size()) return false;
  *out = v;
  return true;
}

}  // namespace

bool parse_translator_option(int argc, char** argv, int* i, Config* c, std::string* error) {
  const std::string_view opt = argv[*i];
  // Fetches the option's value, or reports it missing.
  auto value = [&](const char** v) {
    if (*i + 1 >= argc) {
      *error = "option " + std::string(opt) + " needs a value";
      return false;
    }
    *v = argv[++*i];
    return true;
  };
  const char* v = nullptr;

  if (opt == "-a" || opt == "--address") {
    if (!value(&v)) return true;
    auto p = InetPrefix::parse(v);
    if (!p || p->addr.is_unspecified() || p->addr.is_multicast() || p->addr.is_loopback()) {
      *error = "bad guest address '" + std::string(v) + "' (want ADDR/PREFIX, e.g. 198.18.0.2/24)";
      return true;
    }
    (p->addr.is_v4() ? c->guest4 : c->guest6) = *p;
  } else if (opt == "-g" || opt == "--gateway") {
    if (!value(&v)) return true;
    auto a = InetAddr::parse(v);
    if (!a || a->is_unspecified() || a->is_multicast() || a->is_loopback()) {
      *error = "bad gateway address '" + std::string(v) + "'";
      return true;
    }
    (a->is_v4() ? c->gateway4 : c->gateway6) = *a;
  } else if (opt == "-m" || opt == "--mtu") {
    unsigned long mtu = 0;
    if (!value(&v)) return true;
    if (!parse_uint(v, 1280, 65520, &mtu)) {
      *error = "bad MTU '" + std::string(v) + "' (1280-65520)";
      return true;
    }
    c->mtu = static_cast<unsigned>(mtu);
  } else if (opt == "-I" || opt == "--ifname") {
    if (!value(&v)) return true;
    const size_t len = std::strlen(v);
    if (len == 0 || len >= 16 || std::strpbrk(v, "/: \t\n") != nullptr) {
      *error = "bad interface name '" + std::string(v) + "'";
      return true;
    }
    c->ifname = v;
  } else if (opt == "-t" || opt == "--tcp-ports") {
    if (!value(&v)) return true;
    const HostPorts host = read_host_ports(false);
    size_t skipped = 0;
    if (parse_port_forwards(v, &c->tcp_forwards, error, &host, &skipped)) c->tcp_ports_skipped += skipped;
  } else if (opt == "-u" || opt == "--udp-ports") {
    if (!value(&v)) return true;
    const HostPorts host = read_host_ports(true);
    size_t skipped = 0;
    if (parse_port_forwards(v, &c->udp_forwards, error, &host, &skipped)) c->udp_ports_skipped += skipped;
  } else if (opt == "--map-gw") {
    c->map_gateway = true;
  } else if (opt == "--no-map-gw") {
    c->map_gateway = false;
  } else if (opt == "--map-gw-ports") {
    if (!value(&v)) return true;
    // The same syntax as a rule's ports: PORT, FIRST-LAST, comma lists.
    std::vector<DestinationRule> r;
    if (!parse_destination_rules(std::string("0.0.0.0/0:") + v, true, &r, error)) {
      *error = "bad --map-gw-ports '" + std::string(v) + "' (PORT, FIRST-LAST, comma lists; 1-65535)";
      return true;
    }
    c->map_gateway = true;
    for (const DestinationRule& x : r) c->map_gateway_ports.push_back({x.port_first, x.port_last});
  } else if (opt == "--allow" || opt == "--deny") {
    if (!value(&v)) return true;
    parse_destination_rules(v, opt == "--allow", &c->destination_rules, error);
  } else if (opt == "--node") {
    c->allow_node = true;
  } else if (opt == "--no-node") {
    c->allow_node = false;
  } else if (opt == "--mark") {
    unsigned long mark = 0;
    if (!value(&v)) return true;
    if (!parse_uint(v, 0, 0xffffffffUL, &mark) && !parse_hex(v, &mark)) {
      *error = "bad --mark '" + std::string(v) + "' (0-4294967295, or 0x hex)";
      return true;
    }
    c->socket_mark = static_cast<uint32_t>(mark);
  } else if (opt == "-4" || opt == "--ipv4-only") {
    c->ipv6 = false;
  } else if (opt == "-6" || opt == "--ipv6-only") {
    c->ipv4 = false;
  } else if (opt == "--no-fastpath") {
    c->fastpath = false;
  } else if (opt == "--max-conns") {
    unsigned long n = 0;
    if (!value(&v)) return true;
    if (!parse_uint(v, 16, 262144, &n)) {
      *error = "bad --max-conns '" + std::string(v) + "' (16-262144)";
      return true;
    }
    c->max_conns = static_cast<uint32_t>(n);
  } else if (opt == "--no-dhcp") {
    c->services.dhcp4 = false;
  } else if (opt == "--no-ra") {
    c->services.ra = false;
  } else if (opt == "--no-dhcpv6") {
    c->services.dhcp6 = false;
  } else if (opt == "--no-dns") {
    c->services.dns_forward = false;
  } else if (opt == "--dns") {
    if (!value(&v)) return true;
    auto a = InetAddr::parse(v);
    if (!a || a->is_unspecified() || a->is_multicast()) {
      *error = "bad --dns address '" + std::string(v) + "'";
      return true;
    }
    c->services.dns.push_back(*a);
  } else if (opt == "--dns-forward") {
    if (!value(&v)) return true;
    auto a = InetAddr::parse(v);
    if (!a || a->is_unspecified() || a->is_multicast() || a->is_loopback()) {
      *error = "bad --dns-forward address '" + std::string(v) + "'";
      return true;
    }
    (a->is_v4() ? c->services.dns_forward4 : c->services.dns_forward6) = *a;
  } else if (opt == "--search") {
    if (!value(&v)) return true;
    for (std::string_view rest = v; !rest.empty();) {
      const size_t comma = rest.find(',');
      const std::string_view d = rest.substr(0, comma);
      if (!services::valid_dns_name(d)) {
        *error = "bad --search domain '" + std::string(d) + "'";
        return true;
      }
      c->services.search.emplace_back(d);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    c->services.search_given = true;
  } else if (opt == "--domain") {
    if (!value(&v)) return true;
    if (!services::valid_dns_name(v)) {
      *error = "bad --domain '" + std::string(v) + "'";
      return true;
    }
    c->services.domain = v;
  } else if (opt == "--hostname") {
    if (!value(&v)) return true;
    const std::string_view h = v;
    if (!services::valid_dns_name(h) || h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != std::string_view::npos) {
      *error = "bad --hostname '" + std::string(v) + "' (letters, digits, '-' and '.')";
      return true;
    }
    c->services.hostname = v;
  } else if (opt == "--route") {
    if (!value(&v)) return true;
    const std::string_view spec = v;
    const size_t comma = spec.find(',');
    auto dst = InetPrefix::parse(spec.substr(0, comma));
    std::optional<InetAddr> via;
    if (comma != std::string_view::npos) via = InetAddr::parse(spec.substr(comma + 1));
    if (!dst || !dst->addr.is_v4() || (comma != std::string_view::npos && (!via || !via->is_v4()))) {
      *error = "bad --route '" + std::string(v) + "' (want DST/PREFIX[,GATEWAY], IPv4)";
      return true;
    }
    Route4 r;
    r.dst = *dst;
    if (via) r.via = *via;  // unset: the gateway, filled in by validate_config
    c->services.routes.push_back(r);
  } else if (opt == "--max-udp-flows") {
    unsigned long n = 0;
    if (!value(&v)) return true;
    if (!parse_uint(v, 1, 65536, &n)) {
      *error = "bad --max-udp-flows '" + std::string(v) + "' (1-65536)";
      return true;
    }
    c->max_udp_flows = static_cast<uint32_t>(n);
  } else if (opt == "-v" || opt == "--verbose") {
    c->verbose = true;
  } else {
    return false;
  }
  return true;
}

bool validate_config(const Config& c, std::string* error) {
  if (!c.ipv4 && !c.ipv6) {
    *error = "-4 and -6 together leave no address family";
    return false;
  }
  if (c.ipv4 && !c.guest4.addr.same_prefix(c.gateway4, c.guest4.len)) {
    *error = "gateway " + c.gateway4.str() + " is not in " + c.guest4.str();
    return false;
  }
  if (c.ipv4 && c.guest4.addr == c.gateway4) {
    *error = "guest address and gateway are both " + c.gateway4.str();
    return false;
  }
  if (c.ipv6 && c.guest6.addr == c.gateway6) {
    *error = "guest address and gateway are both " + c.gateway6.str();
    return false;
  }
  if (c.ipv6 && !c.gateway6.is_link_local_v6() && !c.guest6.addr.same_prefix(c.gateway6, c.guest6.len)) {
    *error = "gateway " + c.gateway6.str() + " is not in " + c.guest6.str();
    return false;
  }
  const ServicesConfig& s = c.services;
  if (c.ipv4 && !s.dns_forward4.is_unspecified() &&
      (!s.dns_forward4.same_prefix(c.guest4.addr, c.guest4.len) || s.dns_forward4 == c.guest4.addr)) {
    *error = "--dns-forward " + s.dns_forward4.str() + " is not an address of " + c.guest4.str() + " other than the guest's";
    return false;
  }
  if (c.ipv6 && !s.dns_forward6.is_unspecified() &&
      (!s.dns_forward6.same_prefix(c.guest6.addr, c.guest6.len) || s.dns_forward6 == c.guest6.addr)) {
    *error = "--dns-forward " + s.dns_forward6.str() + " is not an address of " + c.guest6.str() + " other than the guest's";
    return false;
  }
  for (const Route4& r : s.routes) {
    if (!r.via.is_unspecified() && r.via.is_v4() && !r.via.same_prefix(c.guest4.addr, c.guest4.len)) {
      *error = "--route gateway " + r.via.str() + " is not in " + c.guest4.str();
      return false;
    }
  }
  return true;
}

void finish_services_config(Config* c, const services::ResolvConf& host) {
  ServicesConfig& s = c->services;
  for (Route4& r : s.routes)
    if (r.via.is_unspecified() || !r.via.is_v4()) r.via = c->gateway4;
  s.upstreams = host.nameservers;
  if (!s.search_given) s.search = host.search;
}

void prepare_forwards(Config* c) {
  if (c->verbose && c->tcp_ports_skipped)
    std::fprintf(stderr, "ferry: -t all: %zu ports in use on the host skipped\n", c->tcp_ports_skipped);
  if (c->verbose && c->udp_ports_skipped)
    std::fprintf(stderr, "ferry: -u all: %zu ports in use on the host skipped\n", c->udp_ports_skipped);
  // A descriptor per forwarded port and family (TCP: one IPv4 and one IPv6
  // listener), plus the flow table and a margin: `all` needs tens of thousands.
  const size_t fams = (c->ipv4 ? 1 : 0) + (c->ipv6 ? 1 : 0);
  const size_t need_tcp = fams * forwarded_port_count(c->tcp_forwards);
  const size_t need_udp = forwarded_port_count(c->udp_forwards);
  const rlim_t want = static_cast<rlim_t>(need_tcp + need_udp + c->max_conns + kFdMargin);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < want) {
    rlimit raised{want, std::max(want, rl.rlim_max)};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {  // only root with CAP_SYS_RESOURCE raises the hard limit
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  // What does not fit: `all` keeps its lowest ports, and says so.
  const size_t limit = static_cast<size_t>(rl.rlim_cur);
  if (need_tcp + need_udp + kFdMargin <= limit) return;
  const size_t all_tcp = fams * forwarded_port_count(c->tcp_forwards, true);
  const size_t all_udp = forwarded_port_count(c->udp_forwards, true);
  const size_t fixed = need_tcp - all_tcp + need_udp - all_udp;
  size_t budget = limit > fixed + kFdMargin ? limit - fixed - kFdMargin : 0;
  size_t budget_tcp = all_udp ? budget / 2 : budget;
  if (!all_tcp) budget_tcp = 0;
  const size_t budget_udp = budget - budget_tcp;
  auto trim = [&](std::vector<PortForward>* rules, size_t keep, const char* flag) {
    const size_t had = forwarded_port_count(*rules, true);
    if (had <= keep) return;
    trim_all_ports(rules, keep);
    std::fprintf(stderr, "ferry: %s all: the descriptor limit (%zu) allows %zu of %zu ports; forwarding the lowest\n",
                 flag, limit, keep, had);
  };
  if (fams) trim(&c->tcp_forwards, budget_tcp / fams, "-t");
  trim(&c->udp_forwards, budget_udp, "-u");
}

const char* translator_options_help() {
  return "  -a, --address ADDR/PREFIX  guest address, IPv4 or IPv6 (198.18.0.2/24, fd00:f::2/64)\n"
         "  -g, --gateway ADDR         gateway address, IPv4 or IPv6 (198.18.0.1, fd00:f::1)\n"
         "  -m, --mtu N                guest MTU, 1280-65520 (65520)\n"
         "  -I, --ifname NAME          guest interface name (eth0)\n"
         "  -t, --tcp-ports SPEC       forward host TCP ports into the guest:\n"
         "                             PORT, FIRST-LAST, PORT:GUESTPORT, ADDR/PORT, comma lists,\n"
         "                             all (non-ephemeral ports not in use on the host),\n"
         "                             ~PORT or ~FIRST-LAST excluded (alone: all but those)\n"
         "  -u, --udp-ports SPEC       the same for UDP\n"
         "      --map-gw / --no-map-gw connections to the gateway reach the host's loopback (on);\n"
         "                             without the mapping the gateway address is refused\n"
         "      --map-gw-ports LIST    the mapping opens only these ports (PORT, FIRST-LAST, commas)\n"
         "      --allow CIDR[:PORTS]   the guest may reach CIDR (on PORTS); repeatable\n"
         "      --deny CIDR[:PORTS]    the guest may not; the most specific rule wins, deny at a tie.\n"
         "                             Denied unless allowed: 169.254.0.0/16, fe80::/10, 0.0.0.0/8.\n"
         "                             Always denied: loopback (but the gateway mapping), multicast,\n"
         "                             broadcast, IPv4-mapped IPv6. IPv6 without /LEN: [ADDR]:PORTS\n"
         "      --node / --no-node     the host's own addresses are reachable (on)\n"
         "      --mark N               SO_MARK N on every host socket (needs CAP_NET_ADMIN)\n"
         "  -4, --ipv4-only            no IPv6\n"
         "  -6, --ipv6-only            no IPv4\n"
         "      --no-fastpath          no BPF at all: classify and translate in userspace only\n"
         "      --max-conns N          TCP flows at once, 16-262144 (131072); sizes every\n"
         "                             per-flow table and BPF map; more get a RST\n"
         "      --max-udp-flows N      UDP flows (host sockets) at once, 1-65536 (8192); a\n"
         "                             new flow beyond closes the least recently used\n"
         "  -v, --verbose              log each TCP/UDP flow's open and close (addresses,\n"
         "                             ports, bytes each way, reason) and its errors to\n"
         "                             stderr, one line each\n"
         "guest services (DHCPv4, router advertisements, DHCPv6, DNS forwarding; all on):\n"
         "      --no-dhcp              no DHCPv4 server\n"
         "      --no-ra                no router advertisements\n"
         "      --no-dhcpv6            no DHCPv6 server (RAs then carry no M/O flags)\n"
         "      --no-dns               no DNS forwarder\n"
         "      --dns ADDR             hand out this DNS server instead of the forwarder\n"
         "                             (repeatable; per family)\n"
         "      --dns-forward ADDR     the forwarder's address in the guest's subnet (the gateway)\n"
         "      --search D[,D...]      search list handed out (the host's resolv.conf search)\n"
         "      --domain NAME          DHCP domain name, option 15 (the first search domain)\n"
         "      --hostname NAME        DHCP host name, option 12\n"
         "      --route DST/P[,GW]     a classless static route for DHCP option 121 (GW: the gateway)\n";
}

}  // namespace ferry::cli

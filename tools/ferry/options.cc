// Translator option parsing for the ferry CLI (see options.h).
#include "options.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/host_socket.h"
#include "common/port_forward.h"
#include "policy/rules.h"
#include "services/dns_name.h"

namespace ferry::cli {

namespace {

// Descriptors kept for flows, the tap, epoll and the rest when `all` is trimmed.
constexpr size_t kFdMargin = 4096;

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

namespace {

// -a, --address: the guest's IPv4 or IPv6 address and prefix.
bool apply_address(Config& c, const char* v, std::string* error) {
  auto p = InetPrefix::parse(v);
  if (!p || p->addr.is_unspecified() || p->addr.is_multicast() || p->addr.is_loopback()) {
    *error = "bad guest address '" + std::string(v) + "' (want ADDR/PREFIX, e.g. 198.18.0.2/24)";
    return false;
  }
  (p->addr.is_v4() ? c.guest4 : c.guest6) = *p;
  return true;
}

// -g, --gateway: per family.
bool apply_gateway(Config& c, const char* v, std::string* error) {
  auto a = InetAddr::parse(v);
  if (!a || a->is_unspecified() || a->is_multicast() || a->is_loopback()) {
    *error = "bad gateway address '" + std::string(v) + "'";
    return false;
  }
  (a->is_v4() ? c.gateway4 : c.gateway6) = *a;
  return true;
}

bool apply_mtu(Config& c, const char* v, std::string* error) {
  unsigned long mtu = 0;
  if (!option::parse_uint(v, 1280, 65520, &mtu)) {
    *error = "bad MTU '" + std::string(v) + "' (1280-65520)";
    return false;
  }
  c.mtu = static_cast<unsigned>(mtu);
  return true;
}

// -I, --ifname: a name the kernel takes (under IFNAMSIZ, no '/', ':' or blanks).
bool apply_ifname(Config& c, const char* v, std::string* error) {
  const size_t len = std::strlen(v);
  if (len == 0 || len >= 16 || std::strpbrk(v, "/: \t\n") != nullptr) {
    *error = "bad interface name '" + std::string(v) + "'";
    return false;
  }
  c.ifname = v;
  return true;
}

// -t/-u: pasta's port specs; `all` skips the host's ports in use (counted).
bool apply_ports(bool udp, Config& c, const char* v, std::string* error) {
  const HostPorts host = read_host_ports(udp);
  size_t skipped = 0;
  const Status st = parse_port_forwards(v, udp ? &c.udp_forwards : &c.tcp_forwards, &host, &skipped,
                                        udp ? &c.udp_auto : &c.tcp_auto);
  if (!option::from_status(st, error)) return false;
  (udp ? c.udp_ports_skipped : c.tcp_ports_skipped) += skipped;
  return true;
}
bool apply_tcp_ports(Config& c, const char* v, std::string* error) { return apply_ports(false, c, v, error); }
bool apply_udp_ports(Config& c, const char* v, std::string* error) { return apply_ports(true, c, v, error); }

// -T/-U: the guest's loopback ports to the host's (`ferry run` only; the
// other commands refuse them, see refuse_ns_forwards).
bool apply_tcp_ns(Config& c, const char* v, std::string* error) {
  return option::from_status(parse_ns_forwards(v, "-T", &c.tcp_ns_forwards), error);
}
bool apply_udp_ns(Config& c, const char* v, std::string* error) {
  return option::from_status(parse_ns_forwards(v, "-U", &c.udp_ns_forwards), error);
}

// --map-gw-ports: the same syntax as a rule's ports; implies --map-gw.
bool apply_map_gw_ports(Config& c, const char* v, std::string* error) {
  std::vector<DestinationRule> r;
  if (!parse_destination_rules(std::string("0.0.0.0/0:") + v, true, &r).ok()) {
    *error = "bad --map-gw-ports '" + std::string(v) + "' (PORT, FIRST-LAST, comma lists; 1-65535)";
    return false;
  }
  c.map_gateway = true;
  for (const DestinationRule& x : r) c.map_gateway_ports.push_back({x.port_first, x.port_last});
  return true;
}

bool apply_allow(Config& c, const char* v, std::string* error) {
  return option::from_status(parse_destination_rules(v, true, &c.destination_rules), error);
}
bool apply_deny(Config& c, const char* v, std::string* error) {
  return option::from_status(parse_destination_rules(v, false, &c.destination_rules), error);
}

// --mark: decimal or 0x hex, 32 bits.
bool apply_mark(Config& c, const char* v, std::string* error) {
  unsigned long mark = 0;
  if (!option::parse_uint(v, 0, 0xffffffffUL, &mark) && !parse_hex(v, &mark)) {
    *error = "bad --mark '" + std::string(v) + "' (0-4294967295, or 0x hex)";
    return false;
  }
  c.socket_mark = static_cast<uint32_t>(mark);
  return true;
}

// -o, --outbound: the source address of outbound host sockets, per family.
bool apply_outbound(Config& c, const char* v, std::string* error) {
  auto a = InetAddr::parse(v);
  if (!a || a->is_unspecified() || a->is_multicast() || a->is_loopback()) {
    *error = "bad -o address '" + std::string(v) + "' (one of the host's IPv4 or IPv6 addresses)";
    return false;
  }
  (a->is_v4() ? c.outbound4 : c.outbound6) = *a;
  return true;
}

// --outbound-if4/6: the interface outbound host sockets of a family are tied to.
template <std::string Config::*Field>
bool apply_outbound_if(Config& c, const char* v, std::string* error) {
  const size_t len = std::strlen(v);
  if (len == 0 || len >= 16 || std::strpbrk(v, "/: \t\n") != nullptr) {
    *error = "bad interface name '" + std::string(v) + "'";
    return false;
  }
  c.*Field = v;
  return true;
}

// A size in bytes: decimal, optionally followed by k, M or G (KiB, MiB, GiB).
bool parse_size(std::string_view text, uint64_t* out) {
  unsigned shift = 0;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: break;
    }
    if (shift) text.remove_suffix(1);
  }
  unsigned long v = 0;
  if (!option::parse_uint(text, 0, (1ul << 40) - 1, &v)) return false;
  *out = uint64_t{v} << shift;
  return true;
}

// --pcap FILE, made absolute against the working directory (`ferry
// attach`'s service runs in /).
bool apply_pcap(Config& c, const char* v, std::string* error) {
  if (*v == '\0') {
    *error = "--pcap needs a file name";
    return false;
  }
  c.pcap_path = v;
  if (v[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) c.pcap_path = std::string(cwd) + "/" + v;
  }
  return true;
}

// --pcap-size: at least the file's header, a record header and room.
bool apply_pcap_size(Config& c, const char* v, std::string* error) {
  constexpr uint64_t kLeast = 1024;
  if (!parse_size(v, &c.pcap_max_bytes) || c.pcap_max_bytes < kLeast) {
    *error = "bad --pcap-size '" + std::string(v) + "' (bytes, at least 1024; suffixes k, M, G: powers of 1024)";
    return false;
  }
  return true;
}

bool apply_max_conns(Config& c, const char* v, std::string* error) {
  unsigned long n = 0;
  if (!option::parse_uint(v, 16, 262144, &n)) {
    *error = "bad --max-conns '" + std::string(v) + "' (16-262144)";
    return false;
  }
  c.max_conns = static_cast<uint32_t>(n);
  return true;
}

bool apply_max_udp_flows(Config& c, const char* v, std::string* error) {
  unsigned long n = 0;
  if (!option::parse_uint(v, 1, 65536, &n)) {
    *error = "bad --max-udp-flows '" + std::string(v) + "' (1-65536)";
    return false;
  }
  c.max_udp_flows = static_cast<uint32_t>(n);
  return true;
}

// --no-dhcp, --no-ra, --no-dhcpv6, --no-dns: a guest service off.
template <bool ServicesConfig::*Service>
bool service_off(Config& c, const char*, std::string*) {
  c.services.*Service = false;
  return true;
}

// --dns: a server handed out instead of the forwarder; repeatable.
bool apply_dns(Config& c, const char* v, std::string* error) {
  auto a = InetAddr::parse(v);
  if (!a || a->is_unspecified() || a->is_multicast()) {
    *error = "bad --dns address '" + std::string(v) + "'";
    return false;
  }
  c.services.dns.push_back(*a);
  return true;
}

bool apply_dns_forward(Config& c, const char* v, std::string* error) {
  auto a = InetAddr::parse(v);
  if (!a || a->is_unspecified() || a->is_multicast() || a->is_loopback()) {
    *error = "bad --dns-forward address '" + std::string(v) + "'";
    return false;
  }
  (a->is_v4() ? c.services.dns_forward4 : c.services.dns_forward6) = *a;
  return true;
}

// --search: a comma list of DNS names.
bool apply_search(Config& c, const char* v, std::string* error) {
  for (std::string_view rest = v; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view d = rest.substr(0, comma);
    if (!services::valid_dns_name(d)) {
      *error = "bad --search domain '" + std::string(d) + "'";
      return false;
    }
    c.services.search.emplace_back(d);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  c.services.search_given = true;
  return true;
}

bool apply_domain(Config& c, const char* v, std::string* error) {
  if (!services::valid_dns_name(v)) {
    *error = "bad --domain '" + std::string(v) + "'";
    return false;
  }
  c.services.domain = v;
  return true;
}

bool apply_hostname(Config& c, const char* v, std::string* error) {
  const std::string_view h = v;
  if (!services::valid_dns_name(h) ||
      h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != std::string_view::npos) {
    *error = "bad --hostname '" + std::string(v) + "' (letters, digits, '-' and '.')";
    return false;
  }
  c.services.hostname = v;
  return true;
}

// --route DST/PREFIX[,GATEWAY], IPv4; no gateway: ours, filled in later.
bool apply_route(Config& c, const char* v, std::string* error) {
  const std::string_view spec = v;
  const size_t comma = spec.find(',');
  auto dst = InetPrefix::parse(spec.substr(0, comma));
  std::optional<InetAddr> via;
  if (comma != std::string_view::npos) via = InetAddr::parse(spec.substr(comma + 1));
  if (!dst || !dst->addr.is_v4() || (comma != std::string_view::npos && (!via || !via->is_v4()))) {
    *error = "bad --route '" + std::string(v) + "' (want DST/PREFIX[,GATEWAY], IPv4)";
    return false;
  }
  Route4 r;
  r.dst = *dst;
  if (via) r.via = *via;  // unset: the gateway, filled in by finish_services_config
  c.services.routes.push_back(r);
  return true;
}

// The translator's options: addresses, link, forwards, policy, limits.
constexpr Option<Config> kTranslatorOptions[] = {
    {{"--address", 'a', "ADDR/PREFIX", "guest address, IPv4 or IPv6 (198.18.0.2/24, fd00:f::2/64)"}, apply_address},
    {{"--gateway", 'g', "ADDR", "gateway address, IPv4 or IPv6 (198.18.0.1, fd00:f::1)"}, apply_gateway},
    {{"--mtu", 'm', "N", "guest MTU, 1280-65520 (65520)"}, apply_mtu},
    {{"--ifname", 'I', "NAME", "guest interface name (eth0)"}, apply_ifname},
    {{"--tcp-ports", 't', "SPEC",
      "forward host TCP ports into the guest:\n"
      "PORT, FIRST-LAST, PORT:GUESTPORT, ADDR/PORT, comma lists,\n"
      "all (non-ephemeral ports not in use on the host),\n"
      "auto (ferry run: the ports the guest listens on, followed\n"
      "every second), ~PORT or ~FIRST-LAST excluded (alone: all\n"
      "but those)"},
     apply_tcp_ports},
    {{"--udp-ports", 'u', "SPEC", "the same for UDP"}, apply_udp_ports},
    {{"--tcp-ns", 'T', "SPEC",
      "the guest's own 127.0.0.1:PORT and [::1]:PORT reach the\n"
      "host's loopback (ferry run only): PORT, FIRST-LAST,\n"
      "PORT:HOSTPORT, comma lists, all, ~PORT, ~FIRST-LAST"},
     apply_tcp_ns},
    {{"--udp-ns", 'U', "SPEC", "the same for UDP"}, apply_udp_ns},
    {{"--map-gw", 0, nullptr,
      "connections to the gateway reach the host's loopback (on);\n"
      "without the mapping the gateway address is refused",
      "--map-gw / --no-map-gw"},
     option::set<&Config::map_gateway, true>},
    {{"--no-map-gw", 0, nullptr, nullptr}, option::set<&Config::map_gateway, false>},
    {{"--map-gw-ports", 0, "LIST", "the mapping opens only these ports (PORT, FIRST-LAST, commas)"}, apply_map_gw_ports},
    {{"--allow", 0, "CIDR[:PORTS]", "the guest may reach CIDR (on PORTS); repeatable"}, apply_allow},
    {{"--deny", 0, "CIDR[:PORTS]",
      "the guest may not; the most specific rule wins, deny at a tie.\n"
      "Denied unless allowed: 169.254.0.0/16, fe80::/10, 0.0.0.0/8.\n"
      "Always denied: loopback (but the gateway mapping), multicast,\n"
      "broadcast, IPv4-mapped IPv6. IPv6 without /LEN: [ADDR]:PORTS"},
     apply_deny},
    {{"--node", 0, nullptr, "the host's own addresses are reachable (on)", "--node / --no-node"},
     option::set<&Config::allow_node, true>},
    {{"--no-node", 0, nullptr, nullptr}, option::set<&Config::allow_node, false>},
    {{"--mark", 0, "N", "SO_MARK N on every host socket (needs CAP_NET_ADMIN)"}, apply_mark},
    {{"--outbound", 'o', "ADDR",
      "source address of outbound TCP, UDP and ICMP echo host\n"
      "sockets (one per family; not toward the host's loopback)"},
     apply_outbound},
    {{"--outbound-if4", 0, "IF", "tie outbound IPv4 host sockets to interface IF"},
     apply_outbound_if<&Config::outbound_if4>},
    {{"--outbound-if6", 0, "IF", "the same for IPv6"}, apply_outbound_if<&Config::outbound_if6>},
    {{"--pcap", 0, "FILE",
      "every frame to and from the guest into FILE (libpcap\n"
      "format: tcpdump -r, Wireshark), but those BPF absorbs"},
     apply_pcap},
    {{"--pcap-size", 0, "BYTES", "the capture stops at BYTES (k, M, G suffixes; 128M)"}, apply_pcap_size},
    {{"--ipv4-only", '4', nullptr, "no IPv6"}, option::set<&Config::ipv6, false>},
    {{"--ipv6-only", '6', nullptr, "no IPv4"}, option::set<&Config::ipv4, false>},
    {{"--no-fastpath", 0, nullptr, "no BPF at all: classify and translate in userspace only"},
     option::set<&Config::fastpath, false>},
    {{"--max-conns", 0, "N",
      "TCP flows at once, 16-262144 (131072); sizes every\n"
      "per-flow table and BPF map; more get a RST"},
     apply_max_conns},
    {{"--max-udp-flows", 0, "N",
      "UDP flows (host sockets) at once, 1-65536 (8192); a\n"
      "new flow beyond closes the least recently used"},
     apply_max_udp_flows},
    {{"--verbose", 'v', nullptr,
      "log each TCP/UDP flow's open and close (addresses,\n"
      "ports, bytes each way, reason) and its errors to\n"
      "stderr, one line each"},
     option::set<&Config::verbose, true>},
};

// The guest services' options.
constexpr Option<Config> kServiceOptions[] = {
    {{"--no-dhcp", 0, nullptr, "no DHCPv4 server"}, service_off<&ServicesConfig::dhcp4>},
    {{"--no-ra", 0, nullptr, "no router advertisements"}, service_off<&ServicesConfig::ra>},
    {{"--no-dhcpv6", 0, nullptr, "no DHCPv6 server (RAs then carry no M/O flags)"}, service_off<&ServicesConfig::dhcp6>},
    {{"--no-dns", 0, nullptr, "no DNS forwarder"}, service_off<&ServicesConfig::dns_forward>},
    {{"--dns", 0, "ADDR",
      "hand out this DNS server instead of the forwarder\n"
      "(repeatable; per family)"},
     apply_dns},
    {{"--dns-forward", 0, "ADDR", "the forwarder's address in the guest's subnet (the gateway)"}, apply_dns_forward},
    {{"--search", 0, "D[,D...]", "search list handed out (the host's resolv.conf search)"}, apply_search},
    {{"--domain", 0, "NAME", "DHCP domain name, option 15 (the first search domain)"}, apply_domain},
    {{"--hostname", 0, "NAME", "DHCP host name, option 12"}, apply_hostname},
    {{"--route", 0, "DST/P[,GW]", "a classless static route for DHCP option 121 (GW: the gateway)"}, apply_route},
};

}  // namespace

void add_translator_options(OptionParser& p, Config* config) {
  p.add(kTranslatorOptions, config);
  p.text("guest services (DHCPv4, router advertisements, DHCPv6, DNS forwarding; all on):\n");
  p.add(kServiceOptions, config);
}

Status refuse_ns_forwards(const Config& c) {
  if (c.tcp_ns_forwards.empty() && c.udp_ns_forwards.empty()) return {};
  return Status::failure(std::string(c.tcp_ns_forwards.empty() ? "-U" : "-T") +
                         " is for ferry run only: there is no guest namespace of ferry's own to listen in");
}

Status validate_config(const Config& c) {
  if (!c.ipv4 && !c.ipv6) {
    return Status::failure("-4 and -6 together leave no address family");
  }
  // -o and --outbound-if4/6 name what this host has (its addresses, links).
  if (Status st = check_outbound(c); !st.ok()) return st;
  if (c.ipv4 && !c.guest4.addr.same_prefix(c.gateway4, c.guest4.len)) {
    return Status::failure("gateway " + c.gateway4.str() + " is not in " + c.guest4.str());
  }
  if (c.ipv4 && c.guest4.addr == c.gateway4) {
    return Status::failure("guest address and gateway are both " + c.gateway4.str());
  }
  if (c.ipv6 && c.guest6.addr == c.gateway6) {
    return Status::failure("guest address and gateway are both " + c.gateway6.str());
  }
  if (c.ipv6 && !c.gateway6.is_link_local_v6() && !c.guest6.addr.same_prefix(c.gateway6, c.guest6.len)) {
    return Status::failure("gateway " + c.gateway6.str() + " is not in " + c.guest6.str());
  }
  const ServicesConfig& s = c.services;
  if (c.ipv4 && !s.dns_forward4.is_unspecified() &&
      (!s.dns_forward4.same_prefix(c.guest4.addr, c.guest4.len) || s.dns_forward4 == c.guest4.addr)) {
    return Status::failure("--dns-forward " + s.dns_forward4.str() + " is not an address of " + c.guest4.str() +
                           " other than the guest's");
  }
  if (c.ipv6 && !s.dns_forward6.is_unspecified() &&
      (!s.dns_forward6.same_prefix(c.guest6.addr, c.guest6.len) || s.dns_forward6 == c.guest6.addr)) {
    return Status::failure("--dns-forward " + s.dns_forward6.str() + " is not an address of " + c.guest6.str() +
                           " other than the guest's");
  }
  for (const Route4& r : s.routes) {
    if (!r.via.is_unspecified() && r.via.is_v4() && !r.via.same_prefix(c.guest4.addr, c.guest4.len)) {
      return Status::failure("--route gateway " + r.via.str() + " is not in " + c.guest4.str());
    }
  }
  return {};
}

Status refuse_auto_forwards(const Config& c) {
  if (!c.tcp_auto.enabled && !c.udp_auto.enabled) return {};
  return Status::failure(std::string(c.tcp_auto.enabled ? "-t" : "-u") +
                         " auto is for ferry run only (it follows the listening sockets of the guest's namespace)");
}

void finish_services_config(Config* c, const services::ResolvConf& host) {
  ServicesConfig& s = c->services;
  for (Route4& r : s.routes)
    if (r.via.is_unspecified() || !r.via.is_v4()) r.via = c->gateway4;
  s.upstreams = host.nameservers;
  if (!s.search_given) s.search = host.search;
}

namespace {

// One forward option's descriptors: what its explicit rules fix and what
// its `all` asks for, and what one of its ports costs.
struct ForwardKind {
  const char* flag;
  size_t per_port;  // descriptors a port takes (listeners per family)
  size_t fixed;     // the explicit rules' ports
  size_t all;       // the ports `all` made
};

// -t, -u, -T, -U in that order. steer_tcp_ns: -T all goes through one
// listener per family (nsfwd/ns_steering.h), so its ports cost nothing.
std::vector<ForwardKind> forward_kinds(const Config& c, bool steer_tcp_ns) {
  const size_t fams = (c.ipv4 ? 1 : 0) + (c.ipv6 ? 1 : 0);
  auto kind = [](const char* flag, size_t per_port, size_t total, size_t all) {
    return ForwardKind{flag, per_port, total - all, all};
  };
  const size_t t_all = ns_forwarded_port_count(c.tcp_ns_forwards, true);
  return {kind("-t", fams, forwarded_port_count(c.tcp_forwards), forwarded_port_count(c.tcp_forwards, true)),
          kind("-u", 1, forwarded_port_count(c.udp_forwards), forwarded_port_count(c.udp_forwards, true)),
          kind("-T", fams, ns_forwarded_port_count(c.tcp_ns_forwards) - (steer_tcp_ns ? t_all : 0),
               steer_tcp_ns ? 0 : t_all),
          kind("-U", fams, ns_forwarded_port_count(c.udp_ns_forwards), ns_forwarded_port_count(c.udp_ns_forwards, true))};
}

}  // namespace

ForwardFds forward_fds(const Config& c, bool steer_tcp_ns) {
  ForwardFds f;
  for (const ForwardKind& k : forward_kinds(c, steer_tcp_ns)) {
    f.fixed += k.per_port * k.fixed;
    f.all += k.per_port * k.all;
  }
  return f;
}

void trim_all_forwards(Config* c, bool steer_tcp_ns, size_t budget, size_t limit, const char* who,
                       const std::string& beside) {
  const std::vector<ForwardKind> kinds = forward_kinds(*c, steer_tcp_ns);
  size_t with_all = 0;
  for (const ForwardKind& k : kinds) with_all += k.all && k.per_port ? 1 : 0;
  for (size_t i = 0; i < kinds.size(); i++) {
    const ForwardKind& k = kinds[i];
    if (!k.all || !k.per_port) continue;
    // An even share each; the last option with `all` takes the remainder.
    const size_t share = --with_all == 0 ? budget : budget / (with_all + 1);
    budget -= share;
    const size_t keep = share / k.per_port;
    if (k.all <= keep) continue;
    switch (i) {
      case 0: trim_all_ports(&c->tcp_forwards, keep); break;
      case 1: trim_all_ports(&c->udp_forwards, keep); break;
      case 2: trim_all_ports(&c->tcp_ns_forwards, keep); break;
      default: trim_all_ports(&c->udp_ns_forwards, keep); break;
    }
    std::fprintf(stderr, "%s: %s all: the descriptor limit (%zu) allows %zu of %zu ports%s; forwarding the lowest\n",
                 who, k.flag, limit, keep, k.all, beside.c_str());
  }
}

void prepare_forwards(Config* c, bool steer_tcp_ns) {
  if (c->verbose && c->tcp_ports_skipped)
    std::fprintf(stderr, "ferry: -t all: %zu ports in use on the host skipped\n", c->tcp_ports_skipped);
  if (c->verbose && c->udp_ports_skipped)
    std::fprintf(stderr, "ferry: -u all: %zu ports in use on the host skipped\n", c->udp_ports_skipped);
  // A descriptor per forwarded port and family (TCP, -T, -U: one per
  // family), plus the flow table and a margin: `all` needs tens of thousands.
  const ForwardFds need = forward_fds(*c, steer_tcp_ns);
  const rlim_t want = static_cast<rlim_t>(need.fixed + need.all + c->max_conns + kFdMargin);
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
  if (need.fixed + need.all + kFdMargin <= limit) return;
  const size_t budget = limit > need.fixed + kFdMargin ? limit - need.fixed - kFdMargin : 0;
  trim_all_forwards(c, steer_tcp_ns, budget, limit, "ferry", "");
}

}  // namespace ferry::cli

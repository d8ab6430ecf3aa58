// Translator option parsing for the ferry CLI (see options.h).
#include "options.h"

#include <charconv>
#include <cstring>
#include <string_view>

#include "common/port_forward.h"

namespace ferry::cli {

namespace {

// Parses an unsigned decimal in [lo, hi] that must span all of text.
bool parse_uint(std::string_view text, unsigned long lo, unsigned long hi, unsigned long* out) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) return false;
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
    parse_port_forwards(v, &c->tcp_forwards, error);
  } else if (opt == "-u" || opt == "--udp-ports") {
    if (!value(&v)) return true;
    parse_port_forwards(v, &c->udp_forwards, error);
  } else if (opt == "--map-gw") {
    c->map_gateway = true;
  } else if (opt == "--no-map-gw") {
    c->map_gateway = false;
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
  return true;
}

const char* translator_options_help() {
  return "  -a, --address ADDR/PREFIX  guest address, IPv4 or IPv6 (198.18.0.2/24, fd00:f::2/64)\n"
         "  -g, --gateway ADDR         gateway address, IPv4 or IPv6 (198.18.0.1, fd00:f::1)\n"
         "  -m, --mtu N                guest MTU, 1280-65520 (65520)\n"
         "  -I, --ifname NAME          guest interface name (eth0)\n"
         "  -t, --tcp-ports SPEC       forward host TCP ports into the guest:\n"
         "                             PORT, FIRST-LAST, PORT:GUESTPORT, ADDR/PORT, comma lists\n"
         "  -u, --udp-ports SPEC       the same for UDP\n"
         "      --map-gw / --no-map-gw connections to the gateway reach the host's loopback (on)\n"
         "  -4, --ipv4-only            no IPv6\n"
         "  -6, --ipv6-only            no IPv4\n"
         "      --no-fastpath          no BPF at all: classify and translate in userspace only\n"
         "      --max-conns N          size of the TCP flow table (131072)\n"
         "  -v, --verbose              log each TCP/UDP flow's open and close (addresses,\n"
         "                             ports, bytes each way, reason) and its errors to\n"
         "                             stderr, one line each\n";
}

}  // namespace ferry::cli

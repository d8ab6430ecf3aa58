// Destination rules: see rules.h for the syntax and the precedence.
#include "policy/rules.h"

#include "common/port_range.h"

namespace ferry {

namespace {

// Prefix with its host bits cleared, so that to_string shows what matches.
InetPrefix normalized(InetPrefix p) {
  const unsigned bits = p.addr.is_v4() ? 32 : 128;
  const unsigned base = p.addr.is_v4() ? 96 : 0;
  for (unsigned i = p.len; i < bits; i++) {
    const unsigned bit = base + i;
    p.addr.b[bit / 8] = static_cast<uint8_t>(p.addr.b[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return p;
}

// Number of ports a rule covers (65536 for "every port").
unsigned port_span(const DestinationRule& r) {
  return r.has_ports() ? unsigned{r.port_last} - r.port_first + 1 : 65536u;
}

}  // namespace

Status parse_destination_rules(std::string_view text, bool allow, std::vector<DestinationRule>* out) {
  const std::string what = std::string(allow ? "--allow" : "--deny") + " '" + std::string(text) + "'";
  std::string_view net_text = text, ports_text;
  bool has_ports = false;
  if (!text.empty() && text.front() == '[') {  // [v6addr]:ports
    const size_t close = text.find(']');
    if (close == std::string_view::npos || (close + 1 < text.size() && text[close + 1] != ':')) {
      return Status::failure("bad " + what + " (want [ADDR]:PORTS)");
    }
    net_text = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      ports_text = text.substr(close + 2);
      has_ports = true;
    }
  } else if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    const size_t colon = text.find(':', slash);
    if (colon != std::string_view::npos) {
      net_text = text.substr(0, colon);
      ports_text = text.substr(colon + 1);
      has_ports = true;
    }
  } else if (const size_t colon = text.find(':'); colon != std::string_view::npos &&
                                                   text.find(':', colon + 1) == std::string_view::npos) {
    net_text = text.substr(0, colon);  // a.b.c.d:ports
    ports_text = text.substr(colon + 1);
    has_ports = true;
  }
  std::optional<InetPrefix> net = InetPrefix::parse(net_text);
  if (!net) {
    return Status::failure("bad " + what + " (want CIDR[:PORTS], e.g. 169.254.169.254/32:80 or [fd00::1]:443)");
  }
  std::vector<DestinationRule> add;
  DestinationRule base{normalized(*net), 0, 0, allow};
  if (!has_ports) {
    add.push_back(base);
  } else {
    size_t start = 0;
    while (true) {
      const size_t comma = ports_text.find(',', start);
      std::string_view one = ports_text.substr(start, comma == std::string_view::npos ? ports_text.npos : comma - start);
      DestinationRule r = base;
      if (!parse_port_range(one, &r.port_first, &r.port_last)) {
        return Status::failure("bad ports '" + std::string(one) + "' in " + what + " (1-65535, FIRST-LAST ascending)");
      }
      add.push_back(r);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  out->insert(out->end(), add.begin(), add.end());
  return {};
}

std::string to_string(const DestinationRule& r) {
  std::string s = r.net.str();
  if (!r.has_ports()) return s;
  s += ":" + std::to_string(r.port_first);
  if (r.port_last != r.port_first) s += "-" + std::to_string(r.port_last);
  return s;
}

bool rule_matches(const DestinationRule& r, const InetAddr& dst, uint16_t port) {
  if (r.net.addr.is_v4() != dst.is_v4() || !dst.same_prefix(r.net.addr, r.net.len)) return false;
  if (!r.has_ports()) return true;
  return port >= r.port_first && port <= r.port_last;
}

bool more_specific(const DestinationRule& a, const DestinationRule& b) {
  if (a.net.len != b.net.len) return a.net.len > b.net.len;
  if (port_span(a) != port_span(b)) return port_span(a) < port_span(b);
  return !a.allow && b.allow;
}

const DestinationRule* most_specific_match(const std::vector<DestinationRule>& rules, const InetAddr& dst,
                                           uint16_t port) {
  const DestinationRule* best = nullptr;
  for (const DestinationRule& r : rules) {
    if (!rule_matches(r, dst, port)) continue;
    if (best == nullptr || more_specific(r, *best)) best = &r;
  }
  return best;
}

}  // namespace ferry

// Port-forward rule parser (see port_forward.h for the syntax).
// Every number is range-checked; nothing is accepted partially: a spec that
// fails leaves `out` as it was.
#include "common/port_forward.h"

#include <charconv>

namespace ferry {

namespace {

// Parses a decimal port 1..65535 that must span all of `text`.
bool parse_port(std::string_view text, uint16_t* port) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Parses "P" or "F-L" into an inclusive range.
bool parse_range(std::string_view text, uint16_t* first, uint16_t* last) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_port(text, first)) return false;
    *last = *first;
    return true;
  }
  return parse_port(text.substr(0, dash), first) && parse_port(text.substr(dash + 1), last) &&
         *first <= *last;
}

// Parses one rule (no commas) into *rule.
bool parse_one(std::string_view text, PortForward* rule, std::string* error) {
  PortForward r;
  const size_t slash = text.rfind('/');
  if (slash != std::string_view::npos) {
    auto addr = InetAddr::parse(text.substr(0, slash));
    if (!addr) {
      *error = "bad address in port forward '" + std::string(text) + "'";
      return false;
    }
    r.bind_addr = *addr;
    r.bind_any = false;
    text = text.substr(slash + 1);
  }
  const size_t colon = text.find(':');
  const std::string_view host = text.substr(0, colon);
  if (!parse_range(host, &r.host_first, &r.host_last)) {
    *error = "bad port or range '" + std::string(host) + "' (ports are 1-65535, FIRST-LAST ascending)";
    return false;
  }
  r.guest_first = r.host_first;
  if (colon != std::string_view::npos) {
    uint16_t gf = 0, gl = 0;
    const std::string_view guest = text.substr(colon + 1);
    if (!parse_range(guest, &gf, &gl)) {
      *error = "bad guest port or range '" + std::string(guest) + "'";
      return false;
    }
    const bool single = gf == gl;
    if (!single && gl - gf != r.host_last - r.host_first) {
      *error = "host and guest ranges differ in size in '" + std::string(text) + "'";
      return false;
    }
    if (single && r.host_first != r.host_last) {
      *error = "a host range needs a guest range of the same size in '" + std::string(text) + "'";
      return false;
    }
    r.guest_first = gf;
  }
  *rule = r;
  return true;
}

}  // namespace

bool parse_port_forwards(std::string_view spec, std::vector<PortForward>* out, std::string* error) {
  if (spec == "none") return true;
  std::vector<PortForward> parsed;
  while (true) {
    const size_t comma = spec.find(',');
    PortForward rule;
    if (!parse_one(spec.substr(0, comma), &rule, error)) return false;
    parsed.push_back(rule);
    if (comma == std::string_view::npos) break;
    spec = spec.substr(comma + 1);
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return true;
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

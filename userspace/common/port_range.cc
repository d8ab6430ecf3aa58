// Port numbers and ranges: see port_range.h.
#include "common/port_range.h"

#include "common/option_table.h"

namespace ferry {

bool parse_port(std::string_view text, uint16_t* port) {
  unsigned long v = 0;
  if (!option::parse_uint(text, 1, 65535, &v)) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool parse_port_range(std::string_view text, uint16_t* first, uint16_t* last) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_port(text, first)) return false;
    *last = *first;
    return true;
  }
  return parse_port(text.substr(0, dash), first) && parse_port(text.substr(dash + 1), last) && *first <= *last;
}

}  // namespace ferry

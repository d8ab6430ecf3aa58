// Flow log: see flow_log.h for the line formats.
#include "common/flow_log.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace ferry {

namespace {

// "ADDR:PORT", IPv6 in brackets.
std::string endpoint(const InetAddr& a, uint16_t port) {
  return a.is_v4() ? a.str() + ":" + std::to_string(port) : "[" + a.str() + "]:" + std::to_string(port);
}

// "tcp 198.18.0.2:41234 > 198.18.0.1:8080 outbound"
std::string ends(const FlowEnds& e, const char* event) {
  return std::string(e.proto) + " " + event + " " + endpoint(e.guest, e.guest_port) + " > " +
         endpoint(e.peer, e.peer_port) + (e.inbound ? " inbound" : " outbound");
}

}  // namespace

void log_flow_open(const FlowEnds& e) { std::fprintf(stderr, "ferry: %s\n", ends(e, "open").c_str()); }

void log_flow_close(const FlowEnds& e, uint64_t to_host, uint64_t to_guest, const char* reason,
                    const char* detail) {
  std::fprintf(stderr, "ferry: %s to_host=%llu to_guest=%llu reason=%s%s%s\n", ends(e, "close").c_str(),
               static_cast<unsigned long long>(to_host), static_cast<unsigned long long>(to_guest), reason,
               detail ? " " : "", detail ? detail : "");
}

void log_flow_error(const FlowEnds& e, const char* what, int err) {
  std::fprintf(stderr, "ferry: %s %s%s%s\n", ends(e, "error").c_str(), what, err ? ": " : "",
               err ? std::strerror(err) : "");
}

}  // namespace ferry

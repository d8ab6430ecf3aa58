// DHCPv6 server for the one guest (RFC 8415; DNS options RFC 3646).
//
// Theory of operation. Like the DHCPv4 server there is one address to give
// (Config::guest6) and no binding table: any client on the link gets it in
// its IA_NA. The server's DUID is a DUID-LL of our MAC. Messages:
//   SOLICIT -> ADVERTISE (preference 255, so clients need not wait for
//     others), or REPLY with the binding (and Rapid Commit) when the client
//     asked for Rapid Commit: there is no other server to wait for;
//   REQUEST, RENEW -> REPLY with the IA_NA binding (T1/T2 = 1/2 and 4/5 of
//     the lifetime); REBIND too (it carries no server id);
//   CONFIRM -> REPLY with status Success when every address is on our
//     prefix, NotOnLink otherwise;
//   RELEASE, DECLINE -> REPLY with status Success (nothing to free);
//   INFORMATION-REQUEST -> REPLY with DNS servers and search list only.
// Every REPLY/ADVERTISE echoes the client id and carries our server id, DNS
// servers (23) and the domain list (24). Validation (RFC 8415 16): a client
// id in everything but INFORMATION-REQUEST; a server id in REQUEST, RENEW,
// RELEASE, DECLINE, and it must be ours; none in SOLICIT, CONFIRM, REBIND.
// Messages that fail are counted and dropped. Replies go from our link-local
// address port 547 to the client's address port 546.
// Options are parsed with checked lengths (2-byte code, 2-byte length, each
// inside the message); nothing is allocated per message.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "ferry/counters.h"
#include "codec/frame.h"
#include "common/guest_link.h"

namespace ferry::services {

inline constexpr uint16_t kDhcp6ClientPort = 546;
inline constexpr uint16_t kDhcp6ServerPort = 547;

enum class Dhcp6Type : uint8_t {
  solicit = 1, advertise = 2, request = 3, confirm = 4, renew = 5, rebind = 6, reply = 7,
  release = 8, decline = 9, information_request = 11,
};

struct Dhcp6Request {
  uint8_t type = 0;
  uint8_t xid[3] = {};
  std::span<const uint8_t> client_id;  // empty when absent (points into the message)
  std::span<const uint8_t> server_id;
  bool has_ia_na = false;
  bool has_ia = false;                 // any IA option: IA_NA, IA_TA or IA_PD
  uint32_t iaid = 0;                   // of the first IA_NA
  bool rapid_commit = false;
  bool confirm_off_link = false;       // CONFIRM: an IA address outside our prefix
};

enum class Dhcp6Parse : uint8_t { ok, truncated, bad_option, not_client_message };

// Parses a client message (the UDP payload). `prefix` decides CONFIRM's
// on-link test. Spans in *out point into msg.
Dhcp6Parse parse_dhcp6(std::span<const uint8_t> msg, const InetPrefix& prefix, Dhcp6Request* out);

struct Dhcp6Counters {
  FERRY_DHCP6_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class Dhcp6Server {
 public:
  explicit Dhcp6Server(GuestLink& link);

  // A guest UDP datagram to port 547.
  void on_datagram(const ParsedFrame& f, std::span<const uint8_t> frame);

  // The answer's payload into out; its length, 0 when it does not fit.
  // Public for tests.
  size_t build_answer(const Dhcp6Request& req, Dhcp6Type type, std::span<uint8_t> out) const;

  std::span<const uint8_t> duid() const { return std::span<const uint8_t>(duid_.data(), duid_.size()); }
  const Dhcp6Counters& counters() const { return counters_; }

 private:
  GuestLink& link_;
  std::array<uint8_t, 10> duid_{};  // DUID-LL: type 3, hardware type 1, MAC
  Dhcp6Counters counters_;
  std::array<uint8_t, 2048> out_{};
};

}  // namespace ferry::services

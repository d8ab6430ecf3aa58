// DHCPv4 server for the one guest (RFC 2131, options RFC 2132, 3397, 3442).
//
// Theory of operation. The guest is alone on its link and its address is
// fixed (Config::guest4), so there is no pool and no lease table: every
// client on the link is offered that address. Messages, by type:
//   DISCOVER -> OFFER; REQUEST -> ACK when it asks for the guest's address
//   (requested-IP option in SELECTING/INIT-REBOOT, ciaddr when RENEWING or
//   REBINDING) and names us as server if it names one, else NAK (another
//   server id: ignored, the client chose someone else); INFORM -> ACK with
//   the configuration but no lease, unicast to ciaddr; RELEASE and DECLINE
//   are counted (there is nothing to free).
// Replies go out from the gateway (the server identifier) port 67 to port 68:
// broadcast when the client set the broadcast flag or for a NAK, else unicast
// to the offered address and the client's hardware address (we write the
// Ethernet frame ourselves, so no ARP is needed).
// Options in every OFFER/ACK: 53, 54, 51/58/59 (not for INFORM), 1, 3, 6 (the
// servers handed out), 15, 119 (uncompressed, RFC 3397; split into several
// instances past 255 bytes, RFC 3396), 26, 12 with --hostname, 121 when routes
// are configured (with the default route in it: a client that takes 121
// ignores 3, RFC 3442). A reply is at least 300 bytes of BOOTP.
// Input is hostile: parse_dhcp4() checks every length (fixed header, magic
// cookie, each option inside the options field) before use; a malformed
// message is counted and dropped. No allocation per message.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "ferry/counters.h"
#include "codec/addr.h"
#include "codec/frame.h"
#include "common/guest_link.h"

namespace ferry::services {

inline constexpr uint16_t kDhcp4ServerPort = 67;
inline constexpr uint16_t kDhcp4ClientPort = 68;
inline constexpr size_t kDhcp4FixedLen = 236;  // op .. file
inline constexpr size_t kDhcp4MinLen = kDhcp4FixedLen + 4;  // + magic cookie

enum class Dhcp4Type : uint8_t {
  none = 0, discover = 1, offer = 2, request = 3, decline = 4, ack = 5, nak = 6, release = 7, inform = 8,
};

// What the server reads from a client's message.
struct Dhcp4Request {
  uint32_t xid = 0;
  uint16_t flags = 0;  // bit 15: broadcast
  InetAddr ciaddr, giaddr;
  MacAddr chaddr;
  Dhcp4Type type = Dhcp4Type::none;
  bool has_requested = false;
  InetAddr requested;  // option 50
  bool has_server_id = false;
  InetAddr server_id;  // option 54
  std::span<const uint8_t> client_id;  // option 61 (points into the message), empty when absent
};

enum class Dhcp4Parse : uint8_t {
  ok,
  truncated,       // shorter than the fixed header and cookie
  not_request,     // op is not BOOTREQUEST, or hardware not Ethernet/6
  bad_cookie,
  bad_option,      // an option's length runs past the field, or a known option has the wrong length
  no_type,         // no (valid) message type
};

// Parses one DHCP message (the UDP payload). Never reads outside msg.
Dhcp4Parse parse_dhcp4(std::span<const uint8_t> msg, Dhcp4Request* out);

struct Dhcp4Counters {
  FERRY_DHCP4_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class Dhcp4Server {
 public:
  explicit Dhcp4Server(GuestLink& link) : link_(link) {}

  // A guest UDP datagram to port 67 (f parsed from frame).
  void on_datagram(const ParsedFrame& f, std::span<const uint8_t> frame);

  const Dhcp4Counters& counters() const { return counters_; }

  // Builds the reply payload (BOOTREPLY with options) into out; returns its
  // length, 0 when it does not fit. Public for tests.
  size_t build_reply(const Dhcp4Request& req, Dhcp4Type type, std::span<uint8_t> out) const;

 private:
  void reply(const ParsedFrame& f, const Dhcp4Request& req, Dhcp4Type type);

  GuestLink& link_;
  Dhcp4Counters counters_;
  std::array<uint8_t, 2048> out_{};  // one reply frame
};

}  // namespace ferry::services

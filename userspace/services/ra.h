// Router advertisements for the guest (RFC 4861 6.2, RDNSS/DNSSL of RFC 8106).
//
// Theory of operation. The gateway is the guest's only router. Its RAs come
// from the gateway's link-local address (fe80:: + EUI-64 of our MAC, which
// the Gateway's NDP answers with the router flag) to all-nodes (ff02::1),
// hop limit 255, and carry:
//   * M and O flags when the DHCPv6 server runs (addresses and other
//     configuration available there);
//   * router lifetime 1800 s (the default route), reachable/retrans 0;
//   * source link-layer address (our MAC), MTU (Config::mtu);
//   * the guest's prefix (Config::guest6) with L set, and A set when it is a
//     /64, so SLAAC forms an address in it;
//   * RDNSS with the DNS servers handed out, DNSSL with the search list
//     (lifetime 1800 s, 3 x the longest interval, RFC 8106 5.1).
// When: once at start, the first three 16 s apart, then every 200-600 s
// (RFC 4861 6.2.4's MAX_INITIAL_RTR_ADVERT*, Min/MaxRtrAdvInterval); and
// in answer to a valid router solicitation (6.1.1: hop limit 255, code 0,
// options of non-zero length inside the message, no source link-layer
// option from the unspecified address), at most one every 3 s
// (MIN_DELAY_BETWEEN_RAS): a solicitation inside that gap moves the next
// advertisement to its end instead. Malformed solicitations are counted and
// dropped. The advertisement is built once per send into a fixed buffer.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "ferry/counters.h"
#include "codec/frame.h"
#include "common/guest_link.h"
#include "loop/event_loop.h"

namespace ferry::services {

inline constexpr uint8_t kIcmp6RouterSolicit = 133;
inline constexpr uint8_t kIcmp6RouterAdvert = 134;

struct RaCounters {
  FERRY_RA_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
};

class RaServer final : public TimerClient {
 public:
  static constexpr uint64_t kSecond = 1'000'000'000;
  static constexpr uint64_t kInitialInterval = 16 * kSecond;
  static constexpr int kInitialAdverts = 3;
  static constexpr uint64_t kMinInterval = 200 * kSecond, kMaxInterval = 600 * kSecond;
  static constexpr uint64_t kMinDelayBetweenRas = 3 * kSecond;
  static constexpr uint16_t kRouterLifetime = 1800;
  static constexpr uint32_t kDnsLifetime = 1800;
  static constexpr uint32_t kValidLifetime = 86400, kPreferredLifetime = 14400;

  // Registers itself as a timer client; the first RA goes out at once.
  RaServer(EventLoop& loop, GuestLink& link);

  // An ICMPv6 router solicitation from the guest.
  void on_solicit(const ParsedFrame& f, std::span<const uint8_t> frame);

  uint64_t next_deadline_ns() const override { return next_; }
  void on_timer(uint64_t now) override;

  // The advertisement's ICMPv6 body (after type/code/checksum) into out;
  // its length, 0 when it does not fit. Public for tests.
  size_t build_body(std::span<uint8_t> out) const;

  const RaCounters& counters() const { return counters_; }

 private:
  void send(uint64_t now);

  GuestLink& link_;
  RaCounters counters_;
  uint64_t next_ = 0;         // next advertisement (periodic or delayed answer)
  uint64_t last_sent_ = 0;
  int initial_left_ = kInitialAdverts;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  std::array<uint8_t, 2048> out_{};
};

}  // namespace ferry::services

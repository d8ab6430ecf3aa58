// Translator: the dispatcher between a FramePort and the protocol translators.
//
// Data flows one way per direction:
//   guest -> port -> Translator::on_guest_frame -> parse_frame -> {GuestServices,
//   Gateway, TcpTranslator, UdpTranslator} -> host sockets
//   host sockets -> translators -> GuestLink::send_to_guest -> port -> guest
// A frame toward a guest whose MAC is not known yet (it has sent nothing, and
// nobody told us: `ferry attach` without --guest-mac) is held in a small
// fixed queue while the gateway asks for the MAC as a router does (ARP
// request, neighbour solicitation; again at most once a second while frames
// wait); the guest's answer, like any frame of its, teaches the MAC, and
// the held frames leave then (those younger than kHeldMaxAgeNs). A frame
// too big for a slot, or pushed out by newer ones, is dropped and counted:
// TCP retransmits it.
// The Translator owns nothing but the dispatch: it parses each frame once,
// learns the guest's MAC, drops (and counts) what is malformed or not meant
// for us, and hands the parsed frame to exactly one protocol handler. It is
// also the GuestLink every handler sends through.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "autofwd/auto_forward.h"
#include "ferry/counters.h"
#include "common/config.h"
#include "common/guest_link.h"
#include "common/status.h"
#include "codec/frame.h"
#include "loop/event_loop.h"
#include "policy/destination_policy.h"
#include "policy/refusal.h"
#include "port/frame_port.h"
#include "tapq/tap_queue_estimate.h"
#include "translator/reassembly.h"

namespace ferry {

class Gateway;
namespace services {
class GuestServices;
}
class TcpTranslator;
class UdpTranslator;

class Translator final : public GuestLink, public FrameSink, public IoHandler, public ForwardOpener {
 public:
  struct Counters {
    FERRY_TRANSLATOR_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  static constexpr size_t kHeldFrames = 8;
  static constexpr size_t kHeldFrameMax = 2048;
  static constexpr uint64_t kHeldMaxAgeNs = 3'000'000'000;
  static constexpr uint64_t kSolicitIntervalNs = 1'000'000'000;

  Translator(EventLoop& loop, FramePort& port, Config config);
  ~Translator() override;

  // Opens listening sockets for forwarded ports and starts reading the port.
  Status start();
  // -t/-u auto (config().tcp_auto/udp_auto): follows the guest's listening
  // sockets in `tables`, opened in its namespace (autofwd/auto_forward.h).
  void follow_guest_listeners(ListenTables tables);
  // The follower, or nullptr (no auto).
  const AutoForward* auto_forward() const { return auto_forward_.get(); }
  // ForwardOpener: the TCP and UDP translators' open_forward()/close_forward().
  Status open_forward(bool udp, uint16_t port) override;
  void close_forward(bool udp, uint16_t port) override;

  // FrameSink: one guest frame, valid for the duration of the call.
  void on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) override;
  // IoHandler: the port's fd is readable.
  void on_io(uint64_t id, uint32_t events) override;

  // GuestLink
  const Config& config() const override { return config_; }
  DestinationPolicy& policy() override { return policy_; }
  const MacAddr& our_mac() const override { return config_.our_mac; }
  const MacAddr& guest_mac() const override { return guest_mac_; }
  bool send_to_guest(std::span<const uint8_t> frame) override;
  bool send_to_guest(const iovec* iov, int iovcnt) override;
  bool offloads() const override { return port_.offloads(); }
  bool send_to_guest_offloaded(const iovec* iov, int iovcnt, const TxOffload& offload) override;

  // The guest's MAC before its first frame arrives (a tap knows it; so does
  // whoever made a veth).
  void set_guest_mac(const MacAddr& mac) {
    guest_mac_ = mac;
    guest_mac_known_ = true;
  }
  bool guest_mac_known() const { return guest_mac_known_; }

  // Called once when the port's device disappears (deleted by the guest or
  // an operator). The translator has by then stopped watching the port and
  // said so on stderr; the owner decides what ends (`ferry attach`: the
  // service; `ferry run`: nothing until CMD ends).
  void set_on_port_gone(std::function<void()> cb) { on_port_gone_ = std::move(cb); }
  // The port loses the guest's checksum-offload flag (`ferry attach --hook
  // xdp` in driver mode): a TCP/UDP checksum left partial by the guest is
  // taken (ChecksumPolicy::all_or_partial, counted in partial_checksums)
  // instead of dropped as malformed.
  void accept_partial_checksums(bool on) { partial_checksums_ok_ = on; }
  bool port_gone() const { return port_gone_; }

  // `ferry attach` on a tap (a VM's): the estimate of how full that tap's
  // queue toward its reader is (tapq/), from `source`, over this port's
  // writes; TCP's sender consults it. False (and no estimate) when its
  // counters cannot be read. Elsewhere there is none.
  bool watch_tap_queue(std::unique_ptr<DevTxCounterSource> source);
  // The estimate, or nullptr.
  const TapQueueEstimate* tap_queue() const { return tap_queue_.get(); }

  const Counters& counters() const { return counters_; }
  TcpTranslator& tcp() { return *tcp_; }
  UdpTranslator& udp() { return *udp_; }
  Gateway& gateway() { return *gateway_; }
  services::GuestServices& services() { return *services_; }
  const Reassembler& reassembler() const { return reasm_; }

 private:
  EventLoop& loop_;
  FramePort& port_;
  Config config_;
  DestinationPolicy policy_{config_};
  MacAddr guest_mac_{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  bool guest_mac_known_ = false;
  struct HeldFrame {
    uint16_t len = 0;  // 0: free
    bool offloaded = false;
    TxOffload offload;
    uint64_t at = 0;
  };
  std::array<HeldFrame, kHeldFrames> held_{};
  std::unique_ptr<uint8_t[]> held_buf_;  // kHeldFrames * kHeldFrameMax
  size_t held_next_ = 0;                 // the slot the next frame takes (oldest)
  uint64_t last_solicit_ns_[2] = {0, 0};  // [v6]
  bool soliciting_ = false;
  uint8_t tag_ = 0;
  Counters counters_;
  Reassembler reasm_;                    // the guest's IP fragments
  IcmpErrorPace icmp_errors_;            // pace of the ICMP errors sent here
  std::unique_ptr<uint8_t[]> frag_buf_;  // one fragment toward the guest
  uint32_t frag_id_ = 0;
  bool port_gone_ = false;
  bool partial_checksums_ok_ = false;
  std::function<void()> on_port_gone_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<services::GuestServices> services_;  // DHCP, RA, DHCPv6, DNS
  std::unique_ptr<TcpTranslator> tcp_;
  std::unique_ptr<UdpTranslator> udp_;
  std::unique_ptr<AutoForward> auto_forward_;  // after tcp_ and udp_: goes first
  std::unique_ptr<DevTxCounterSource> tap_queue_source_;
  std::unique_ptr<TapQueueEstimate> tap_queue_;  // after tcp_: goes first

  // The port's device is gone: stop watching it (its fd would report an
  // error on every wait), say so once, tell the owner.
  void handle_port_gone();
  // Queues a frame until the guest's MAC is known, asking for it; true when
  // held.
  bool hold_for_mac(const iovec* iov, int iovcnt, const TxOffload* offload);
  // Sends what waited, addressed to the MAC just learned.
  void release_held();
  // With --no-map-gw: an echo request to the gateway address is refused
  // (TCP and UDP: the destination policy). True when refused.
  bool refuse_unmapped_gateway(const ParsedFrame& f, std::span<const uint8_t> frame);
  // A packet of a protocol no part of ferry speaks: answered as a host
  // answers when it is for the gateway, else only counted.
  void unknown_protocol(const ParsedFrame& f, std::span<const uint8_t> frame);
};

}  // namespace ferry

// Translator: the dispatcher between a FramePort and the protocol translators.
//
// Data flows one way per direction:
//   guest -> port -> Translator::on_guest_frame -> parse_frame -> {Gateway,
//   TcpTranslator, UdpTranslator} -> host sockets
//   host sockets -> translators -> GuestLink::send_to_guest -> port -> guest
// The Translator owns nothing but the dispatch: it parses each frame once,
// learns the guest's MAC, drops (and counts) what is malformed or not meant
// for us, and hands the parsed frame to exactly one protocol handler. It is
// also the GuestLink every handler sends through.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "common/config.h"
#include "common/guest_link.h"
#include "loop/event_loop.h"
#include "port/frame_port.h"
#include "translator/reassembly.h"

namespace ferry {

class Gateway;
class TcpTranslator;
class UdpTranslator;

class Translator final : public GuestLink, public FrameSink, public IoHandler {
 public:
  struct Counters {
    uint64_t frames = 0;
    uint64_t malformed = 0;    // failed parse_frame()
    uint64_t not_for_us = 0;   // wrong destination MAC, or a source we refuse
    uint64_t unhandled = 0;    // well-formed but of no protocol we translate
    uint64_t fragmented = 0;   // frames to the guest above its MTU, sent as IP fragments
  };

  Translator(EventLoop& loop, FramePort& port, Config config);
  ~Translator() override;

  // Opens listening sockets for forwarded ports and starts reading the port.
  bool start(std::string* error);

  // FrameSink: one guest frame, valid for the duration of the call.
  void on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) override;
  // IoHandler: the port's fd is readable.
  void on_io(uint64_t id, uint32_t events) override;

  // GuestLink
  const Config& config() const override { return config_; }
  const MacAddr& our_mac() const override { return config_.our_mac; }
  const MacAddr& guest_mac() const override { return guest_mac_; }
  bool send_to_guest(std::span<const uint8_t> frame) override;
  bool send_to_guest(const iovec* iov, int iovcnt) override;
  bool offloads() const override { return port_.offloads(); }
  bool send_to_guest_offloaded(const iovec* iov, int iovcnt, const TxOffload& offload) override {
    return port_.send(iov, iovcnt, offload);
  }

  // The guest's MAC before its first frame arrives (a tap knows it).
  void set_guest_mac(const MacAddr& mac) { guest_mac_ = mac; }

  const Counters& counters() const { return counters_; }
  TcpTranslator& tcp() { return *tcp_; }
  UdpTranslator& udp() { return *udp_; }
  Gateway& gateway() { return *gateway_; }
  const Reassembler& reassembler() const { return reasm_; }

 private:
  EventLoop& loop_;
  FramePort& port_;
  Config config_;
  MacAddr guest_mac_{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  uint8_t tag_ = 0;
  Counters counters_;
  Reassembler reasm_;                    // the guest's IP fragments
  std::unique_ptr<uint8_t[]> frag_buf_;  // one fragment toward the guest
  uint32_t frag_id_ = 0;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<TcpTranslator> tcp_;
  std::unique_ptr<UdpTranslator> udp_;
};

}  // namespace ferry

// -t auto / -u auto: forward the ports the guest listens on, following
// changes, as pasta does.
//
// Theory of operation
// -------------------
//  * Once a second (kIntervalNs, a timer of the translator's event loop;
//    the first round when the loop starts) AutoForward reads the guest's
//    socket tables (listen_tables.h: fds opened in the guest's namespace
//    before the sandbox, re-read with pread from offset 0) into one port
//    set per protocol: TCP sockets in LISTEN, UDP sockets bound and not
//    connected (state 07, as pasta reads them), both families in one set
//    (a guest listener of either family forwards the port for both, as
//    pasta does, "IPv6 bound ports are also forwarded for IPv4").
//  * Loopback listeners (127.0.0.0/8, ::1) are left out: a forwarded
//    connection reaches the guest through its interface, at its own
//    address, where such a socket would refuse it.
//  * plan_changes() compares that set with what is forwarded: a port the
//    guest listens on, not excluded and not forwarded yet is opened (host
//    port = guest port, all host addresses of the families in use, through
//    the ForwardOpener: the TCP and UDP translators' open_forward()); a
//    forwarded port the guest no longer listens on is closed. Excluded:
//    the spec's `~PORT`s and the host ports of the same protocol's explicit
//    rules (ferry binds those itself already), and the guest-side ports of
//    -T/-U (ferry's own sockets in the guest, on its loopback).
//  * A port the host refuses (below net.ipv4.ip_unprivileged_port_start
//    without CAP_NET_BIND_SERVICE, which the sandboxed translator never
//    has; in use by a host process) is said once on stderr and remembered
//    as failed: tried again every kRetryRounds rounds, quietly, until it
//    opens or the guest stops listening (then forgotten: a new listener
//    is said again). EEXIST from the opener means ferry holds the port
//    already for the guest (an outbound UDP flow that kept the source port
//    of an unconnected guest client socket, which looks like a server's
//    in the table): not said, retried the same way.
//  * A round whose read fails changes nothing (a partial table must not
//    close forwards); it is counted.
// Costs: per round one pread() per 64 KiB of each table and one set
// operation over 65536 bits per protocol; nothing on the data path. All
// storage (sets, the read buffer) is allocated once, at construction.
#pragma once

#include <cstdint>
#include <memory>

#include "autofwd/listen_tables.h"
#include "common/config.h"
#include "common/socket_table.h"
#include "common/status.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"

namespace ferry {

// What opens and closes the host side of a forward.
class ForwardOpener {
 public:
  virtual ~ForwardOpener() = default;
  virtual Status open_forward(bool udp, uint16_t port) = 0;
  virtual void close_forward(bool udp, uint16_t port) = 0;
};

// One round's decisions for one protocol.
struct AutoForwardPlan {
  PortSet open;   // listened on, not excluded, not forwarded (nor failed, unless retried)
  PortSet close;  // forwarded, no longer listened on (or excluded)
};

// The step between two scans (see above); `failed` ports are left out
// unless `retry_failed`.
AutoForwardPlan plan_changes(const PortSet& listening, const PortSet& excluded, const PortSet& forwarded,
                             const PortSet& failed, bool retry_failed);

class AutoForward final : public TimerClient {
 public:
  static constexpr uint64_t kIntervalNs = 1'000'000'000;
  static constexpr unsigned kRetryRounds = 10;
  static constexpr size_t kReadChunk = 65536;

  struct Counters {
    FERRY_AUTO_FORWARD_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
  };

  // Follows config's tcp_auto/udp_auto (the enabled ones) from `tables`,
  // registered with loop as a timer client.
  AutoForward(EventLoop& loop, ListenTables tables, const Config& config, ForwardOpener& opener);
  AutoForward(const AutoForward&) = delete;
  AutoForward& operator=(const AutoForward&) = delete;

  // One round now (the timer's work; tests call it).
  void scan();

  uint64_t next_deadline_ns() const override { return next_round_; }
  void on_timer(uint64_t now) override;

  const Counters& counters() const { return counters_; }
  const PortSet& forwarded(bool udp) const { return side(udp).forwarded; }

 private:
  struct Side {
    bool enabled = false;
    PortSet excluded, forwarded, failed, listening;
  };
  Side& side(bool udp) { return udp ? udp_ : tcp_; }
  const Side& side(bool udp) const { return udp ? udp_ : tcp_; }
  // Reads one protocol's two tables into s.listening; false when a read failed.
  bool read_tables(bool udp, Side& s);
  void apply(bool udp, Side& s, bool retry_failed);

  ListenTables tables_;
  ForwardOpener& opener_;
  bool verbose_ = false;
  Side tcp_, udp_;
  std::unique_ptr<char[]> buf_;
  uint64_t next_round_ = 0;
  uint64_t rounds_ = 0;
  Counters counters_;
};

}  // namespace ferry

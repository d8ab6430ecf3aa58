// -t/-u auto: see auto_forward.h.
#include "autofwd/auto_forward.h"

#include <cerrno>
#include <cstdio>
#include <utility>

namespace ferry {

AutoForwardPlan plan_changes(const PortSet& listening, const PortSet& excluded, const PortSet& forwarded,
                             const PortSet& failed, bool retry_failed) {
  PortSet wanted = listening & ~excluded;
  wanted.reset(0);
  AutoForwardPlan p;
  p.open = wanted & ~forwarded;
  if (!retry_failed) p.open &= ~failed;
  p.close = forwarded & ~wanted;
  return p;
}

AutoForward::AutoForward(EventLoop& loop, ListenTables tables, const Config& config, ForwardOpener& opener)
    : tables_(std::move(tables)), opener_(opener), verbose_(config.verbose), buf_(new char[kReadChunk]) {
  for (const bool udp : {false, true}) {
    Side& s = side(udp);
    const AutoForwardSpec& spec = udp ? config.udp_auto : config.tcp_auto;
    s.enabled = spec.enabled;
    s.excluded = spec.excluded;
    // Ports the explicit rules bind on the host already.
    for (const PortForward& r : udp ? config.udp_forwards : config.tcp_forwards)
      for (uint32_t p = r.host_first; p <= r.host_last && p != 0; p++) s.excluded.set(p);
    // -T/-U: ferry's own sockets in the guest (on its loopback, which the
    // scan leaves out anyway): never forwarded back to the host.
    for (const NsForward& r : udp ? config.udp_ns_forwards : config.tcp_ns_forwards)
      for (uint32_t p = r.listen_first; p <= r.listen_last && p != 0; p++) s.excluded.set(p);
  }
  loop.add_timer_client(this);
}

void AutoForward::on_timer(uint64_t now) {
  if (now < next_round_) return;
  scan();
  next_round_ = now + kIntervalNs;
}

bool AutoForward::read_tables(bool udp, Side& s) {
  s.listening.reset();
  const SocketFilter filter{udp ? SocketFilter::kUdpUnconnected : SocketFilter::kTcpListen, true};
  for (const ListenTables::Table t : {udp ? ListenTables::kUdp4 : ListenTables::kTcp4,
                                      udp ? ListenTables::kUdp6 : ListenTables::kTcp6}) {
    SocketTableParser parser(filter, &s.listening);
    const bool ok = read_socket_table(tables_.fd(t), &parser, buf_.get(), kReadChunk);
    counters_.malformed_lines += parser.malformed();
    if (!ok) return false;
  }
  return true;
}

void AutoForward::scan() {
  const bool retry = rounds_ % kRetryRounds == 0;
  rounds_++;
  for (const bool udp : {false, true}) {
    Side& s = side(udp);
    if (!s.enabled) continue;
    if (!read_tables(udp, s)) {
      counters_.scan_errors++;
      continue;
    }
    apply(udp, s, retry);
  }
  counters_.scans++;
}

// Closes what the guest let go, opens what it listens on.
void AutoForward::apply(bool udp, Side& s, bool retry_failed) {
  const char* flag = udp ? "-u" : "-t";
  const AutoForwardPlan plan = plan_changes(s.listening, s.excluded, s.forwarded, s.failed, retry_failed);
  s.failed &= s.listening;  // a port the guest let go is forgotten (and said again if it comes back)
  for (size_t p = plan.close._Find_first(); p < plan.close.size(); p = plan.close._Find_next(p)) {
    opener_.close_forward(udp, static_cast<uint16_t>(p));
    s.forwarded.reset(p);
    counters_.closed++;
    if (verbose_) std::fprintf(stderr, "ferry: %s auto: port %zu no longer forwarded (the guest stopped listening)\n", flag, p);
  }
  for (size_t p = plan.open._Find_first(); p < plan.open.size(); p = plan.open._Find_next(p)) {
    const Status st = opener_.open_forward(udp, static_cast<uint16_t>(p));
    if (st.ok()) {
      s.forwarded.set(p);
      s.failed.reset(p);
      counters_.opened++;
      if (verbose_) std::fprintf(stderr, "ferry: %s auto: forwarding port %zu (the guest listens on it)\n", flag, p);
      continue;
    }
    counters_.open_failed++;
    const bool said = s.failed.test(p);
    s.failed.set(p);
    if (said || st.err() == EEXIST) continue;  // said already, or ferry's own (not the guest's server)
    std::fprintf(stderr, "ferry: %s auto: the guest listens on port %zu, not forwarded: %s%s\n", flag, p,
                 st.message().c_str(),
                 st.err() == EACCES ? " (a port below net.ipv4.ip_unprivileged_port_start needs "
                                      "CAP_NET_BIND_SERVICE, which the translator does not keep)"
                                    : "");
  }
}

}  // namespace ferry

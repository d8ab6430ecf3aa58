// See counters_file.h.
#include "counters_file.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/instance_lock.h"
#include "netns/netns.h"
#include "policy/destination_policy.h"
#include "services/guest_services.h"
#include "tcp/tcp_translator.h"
#include "udp/udp_translator.h"

namespace ferry::cli {

// /run/ferry-run/<instance>
std::string run_counters_dir(const std::string& instance) { return run_instance_dir(instance); }

// /run/ferry/<dev>/counters
std::string attach_counters_path(const std::string& dev) { return attach::run_dir(dev) + "/counters"; }

namespace {
// True for PREFIX<digits>.
bool is_prefix_pid(const std::string& name, const char* prefix) {
  const size_t n = std::strlen(prefix);
  return name.size() > n && name.rfind(prefix, 0) == 0 &&
         name.find_first_not_of("0123456789", n) == std::string::npos;
}
}  // namespace

bool is_vm_instance(const std::string& instance) { return is_prefix_pid(instance, "vm-"); }

// Live vm-PID directories under /run/ferry-run.
std::vector<std::string> list_vm_instances() {
  std::vector<std::string> names;
  DIR* d = opendir("/run/ferry-run");
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!is_vm_instance(name)) continue;
    const long pid = std::strtol(name.c_str() + 3, nullptr, 10);
    if (pid <= 0 || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) continue;
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// run-PID and vm-PID instances keep theirs apart from attached devices' run dirs.
std::string counters_path(const std::string& instance) {
  const bool run = is_prefix_pid(instance, "run-") || is_vm_instance(instance);
  return run ? run_counters_dir(instance) + "/counters" : attach_counters_path(instance);
}

// One line per counter; names are stable (scripts and `ferry status` read them).
attach::StateMap translator_counters(Translator& tr, const FramePort& port) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  const Translator::Counters& t = tr.counters();
  const PortCounters& p = port.counters();
  const TcpTranslator::Counters& tc = tr.tcp().counters();
  const UdpCounters& uc = tr.udp().counters();
  attach::StateMap m{
      {"written_at", std::to_string(static_cast<long long>(std::time(nullptr)))},
      {"frames", n(t.frames)},
      {"malformed", n(t.malformed)},
      {"not_for_us", n(t.not_for_us)},
      {"unhandled", n(t.unhandled)},
      {"held_for_mac", n(t.held_for_mac)},
      {"held_dropped", n(t.held_dropped)},
      {"refused_gateway", n(t.refused_gateway)},
      {"port_rx_frames", n(p.rx_frames)},
      {"port_rx_bytes", n(p.rx_bytes)},
      {"port_tx_frames", n(p.tx_frames)},
      {"port_tx_bytes", n(p.tx_bytes)},
      {"port_tx_dropped", n(p.tx_dropped)},
      {"tcp_conns_open", n(tr.tcp().connection_count())},
      {"tcp_conns_outbound", n(tc.conns_outbound)},
      {"tcp_conns_inbound", n(tc.conns_inbound)},
      {"tcp_conns_closed", n(tc.conns_closed)},
      {"tcp_connect_failed", n(tc.connect_failed)},
      {"tcp_bytes_to_host", n(tc.bytes_to_host)},
      {"tcp_bytes_to_guest", n(tc.bytes_to_guest)},
      {"tcp_retransmits", n(tc.retransmits)},
      {"tcp_fast_retransmits", n(tc.fast_retransmits)},
      {"tcp_rto_expired", n(tc.rto_expired)},
      {"tcp_zero_window_probes", n(tc.zero_window_probes)},
      {"tcp_guest_tx_dropped", n(tc.guest_tx_dropped)},
      {"tcp_rst_to_guest", n(tc.rst_to_guest)},
      {"tcp_dropped_segments", n(tc.dropped_segments)},
      {"tcp_challenge_acks", n(tc.challenge_acks)},
      {"udp_guest_datagrams", n(uc.guest_datagrams)},
      {"udp_host_received", n(uc.host_received)},
      {"udp_flows_opened", n(uc.flows_opened)},
      {"udp_flows_refused", n(uc.flows_refused)},
  };
  const services::GuestServices& sv = tr.services();
  const services::Dhcp4Counters& d4 = sv.dhcp4().counters();
  const services::RaCounters& ra = sv.ra().counters();
  const services::Dhcp6Counters& d6 = sv.dhcp6().counters();
  const services::DnsCounters& dns = sv.dns().counters();
  m.merge(attach::StateMap{
           {"dhcp4_offers", n(d4.offers)},
           {"dhcp4_acks", n(d4.acks)},
           {"dhcp4_naks", n(d4.naks)},
           {"dhcp4_malformed", n(d4.malformed)},
           {"ra_adverts", n(ra.adverts)},
           {"ra_malformed", n(ra.malformed)},
           {"dhcp6_advertises", n(d6.advertises)},
           {"dhcp6_replies", n(d6.replies)},
           {"dhcp6_malformed", n(d6.malformed)},
           {"dns_queries", n(dns.queries)},
           {"dns_answers", n(dns.answers)},
           {"dns_malformed", n(dns.malformed)},
           {"dns_timeouts", n(dns.timeouts)},
           {"dns_table_full", n(dns.table_full)},
  });
  // The destination policy: every refusal, by reason, and spoofed sources.
  const DestinationPolicy::Counters& pc = tr.policy().counters();
  m["policy_refused"] = n(pc.refused_total());
  for (size_t i = 0; i < kRefusalKinds; i++) {
    const Refusal r = static_cast<Refusal>(i);
    if (r == Refusal::none || r == Refusal::spoofed) continue;
    m[std::string("policy_refused_") + to_string(r)] = n(pc.refused[i]);
  }
  m["spoofed_source"] = n(pc.spoofed_source);
  return m;
}

// A NETLINK_ROUTE socket opened inside ns_fd.
std::optional<Netlink> GuestPathDrops::open_netlink(int ns_fd) {
  NetnsGuard g;
  if (ns_fd >= 0 && !g.enter(ns_fd).ok()) return std::nullopt;
  Result<Netlink> r = Netlink::open();
  if (!r) return std::nullopt;
  return std::optional<Netlink>(std::move(*r));
}

// One RTM_GETLINK per known device.
void GuestPathDrops::add_to(attach::StateMap& m) {
  if (!nl_) return;
  if (tap_ifindex_ > 0) {
    if (Result<LinkInfo> li = nl_->get_link(tap_ifindex_); li) {
      m["tap_rx_dropped"] = std::to_string(li->rx_dropped);
      m["tap_tx_dropped"] = std::to_string(li->tx_dropped);
    }
  }
  if (dev_ifindex_ > 0) {
    if (Result<LinkInfo> li = nl_->get_link(dev_ifindex_); li) m["dev_tx_dropped"] = std::to_string(li->tx_dropped);
  }
}

// Each run-PID and vm-PID directory whose instance is dead goes (common/instance_lock.h).
void cleanup_stale_run_counters() {
  DIR* d = opendir("/run/ferry-run");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!is_prefix_pid(name, "run-") && !is_vm_instance(name)) continue;
    char* end = nullptr;
    long pid = std::strtol(name.c_str() + name.find('-') + 1, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (!run_instance_is_stale(name, static_cast<int>(pid))) continue;
    (void)attach::remove_dir_flat(run_counters_dir(name));
  }
  closedir(d);
}

// key=value lines, one per counter.
std::string counters_text(Translator& tr, const FramePort& port) {
  std::string out;
  for (const auto& [k, v] : translator_counters(tr, port)) out += k + "=" + v + "\n";
  return out;
}

// Lines without '=' are ignored; values end at the newline.
attach::StateMap parse_counters_text(std::string_view text) {
  attach::StateMap m;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    m[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return m;
}

RunCountersFile::RunCountersFile(std::string instance, GuestPathDrops drops)
    : dir_(run_counters_dir(instance)), drops_(std::move(drops)) {}

RunCountersFile::~RunCountersFile() {
  if (ok_) (void)attach::remove_dir_flat(dir_);
}

// Makes /run/ferry-run/<instance>/.
bool RunCountersFile::open(std::string* error) {
  mkdir("/run/ferry-run", 0700);
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = dir_ + ": " + std::strerror(errno);
    return false;
  }
  ok_ = true;
  return true;
}

// Rewrites the file (atomically: a reader sees the old or the new one).
void RunCountersFile::write(std::string_view text) {
  if (!ok_) return;
  attach::StateMap m = parse_counters_text(text);
  drops_.add_to(m);
  (void)attach::write_state(dir_ + "/counters", m);
}

}  // namespace ferry::cli

// See counters_file.h.
#include "counters_file.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

#include "common/instance_lock.h"
#include "ferry/counters.h"
#include "netns/netns.h"
#include "gateway/gateway.h"
#include "policy/destination_policy.h"
#include "sandbox/private_dir.h"
#include "sandbox/service_cgroup.h"
#include "netns/user_namespace.h"
#include "services/guest_services.h"
#include "tcp/tcp_translator.h"
#include "udp/udp_translator.h"

namespace ferry::cli {

// Root: /run/ferry-run. Rootless: $XDG_RUNTIME_DIR/ferry-run if it is ours,
// else /tmp/ferry-run-UID (checked when made: RunCountersFile::open).
std::string run_base_dir() {
  if (privileged_for_network_setup()) return "/run/ferry-run";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  struct stat st {};
  if (xdg != nullptr && xdg[0] == '/' && lstat(xdg, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
    return std::string(xdg) + "/ferry-run";
  return "/tmp/ferry-run-" + std::to_string(geteuid());
}

// <base>/<instance>
std::string run_counters_dir(const std::string& instance) { return run_base_dir() + "/" + instance; }

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
bool is_run_instance(const std::string& instance) { return is_prefix_pid(instance, "run-"); }

namespace {
// Live directories under run_base_dir() whose name passes `want`.
std::vector<std::string> list_live(bool (*want)(const std::string&)) {
  std::vector<std::string> names;
  DIR* d = opendir(run_base_dir().c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!want(name)) continue;
    const long pid = std::strtol(name.c_str() + name.find('-') + 1, nullptr, 10);
    if (pid <= 0 || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) continue;
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

std::vector<std::string> list_vm_instances() { return list_live(is_vm_instance); }
std::vector<std::string> list_run_dir_instances() {
  return list_live([](const std::string& n) { return is_run_instance(n) || is_vm_instance(n); });
}

// run-PID and vm-PID instances keep theirs apart from attached devices' run dirs.
std::string counters_path(const std::string& instance) {
  const bool run = is_run_instance(instance) || is_vm_instance(instance);
  return run ? run_counters_dir(instance) + "/counters" : attach_counters_path(instance);
}

// Adds PREFIX+field for every `published` counter of one family's list
// (include/ferry/counters.h) from struct S.
#define FERRY_PUBLISH_FAMILY(LIST, PREFIX, S) \
  do {                                        \
    const auto& family_ = (S);                \
    const std::string prefix_ = (PREFIX);     \
    LIST(FERRY_PUBLISH_ONE)                   \
  } while (0)
#define FERRY_PUBLISH_ONE(field, where) \
  if (std::string_view(#where) == "published") m[prefix_ + #field] = std::to_string(family_.field);

// One line per published counter, plus written_at, the open connections and
// the destination policy's refusals; names are stable (scripts, `ferry
// status` and the CNI plugin read them).
attach::StateMap translator_counters(Translator& tr, const FramePort& port, const NsTcpRelay* ns_tcp,
                                     const NsUdpRelay* ns_udp) {
  attach::StateMap m{
      {"written_at", std::to_string(static_cast<long long>(std::time(nullptr)))},
      {"tcp_conns_open", std::to_string(tr.tcp().connection_count())},
  };
  FERRY_PUBLISH_FAMILY(FERRY_TRANSLATOR_COUNTERS, "", tr.counters());
  FERRY_PUBLISH_FAMILY(FERRY_PORT_COUNTERS, "port_", port.counters());
  FERRY_PUBLISH_FAMILY(FERRY_TCP_COUNTERS, "tcp_", tr.tcp().counters());
  FERRY_PUBLISH_FAMILY(FERRY_UDP_COUNTERS, "udp_", tr.udp().counters());
  FERRY_PUBLISH_FAMILY(FERRY_GATEWAY_COUNTERS, "gateway_", tr.gateway().counters());
  const services::GuestServices& sv = tr.services();
  FERRY_PUBLISH_FAMILY(FERRY_DHCP4_COUNTERS, "dhcp4_", sv.dhcp4().counters());
  FERRY_PUBLISH_FAMILY(FERRY_RA_COUNTERS, "ra_", sv.ra().counters());
  FERRY_PUBLISH_FAMILY(FERRY_DHCP6_COUNTERS, "dhcp6_", sv.dhcp6().counters());
  FERRY_PUBLISH_FAMILY(FERRY_DNS_COUNTERS, "dns_", sv.dns().counters());
  if (const AutoForward* af = tr.auto_forward()) FERRY_PUBLISH_FAMILY(FERRY_AUTO_FORWARD_COUNTERS, "auto_", af->counters());
  if (const TapQueueEstimate* q = tr.tap_queue()) {  // `ferry attach` on a tap
    FERRY_PUBLISH_FAMILY(FERRY_TAP_QUEUE_COUNTERS, "tapq_", q->counters());
    m["tapq_capacity"] = std::to_string(q->capacity());
  }
  if (ns_tcp) FERRY_PUBLISH_FAMILY(FERRY_NS_TCP_COUNTERS, "ns_tcp_", ns_tcp->counters());
  if (ns_udp) FERRY_PUBLISH_FAMILY(FERRY_NS_UDP_COUNTERS, "ns_udp_", ns_udp->counters());
  // The destination policy: every refusal, by reason, and spoofed sources.
  auto n = [](uint64_t v) { return std::to_string(v); };
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
#undef FERRY_PUBLISH_ONE
#undef FERRY_PUBLISH_FAMILY

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

// key=value lines, one per counter.
std::string counters_text(Translator& tr, const FramePort& port, const NsTcpRelay* ns_tcp, const NsUdpRelay* ns_udp) {
  std::string out;
  for (const auto& [k, v] : translator_counters(tr, port, ns_tcp, ns_udp)) out += k + "=" + v + "\n";
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

// Makes <base>/<instance>/, the base 0700 and checked to be ours.
bool RunCountersFile::open(std::string* error) {
  if (Status st = sandbox::ensure_private_dir(run_base_dir()); !st) {
    *error = st.message();
    return false;
  }
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

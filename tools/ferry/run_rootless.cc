// `ferry run` without privileges: see run_rootless.h.
#include "run_rootless.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/port_forward.h"
#include "options.h"
#include "netns/guest_setup.h"
#include "netns/netns.h"
#include "netns/user_namespace.h"

namespace ferry::cli::rootless {

namespace {

// Descriptors besides flows and listeners: tap, epoll, channel, DNS
// forwarder sockets (256 queries), echo flows (64), stdio, margin.
constexpr size_t kReservedFds = 512;
// The margin prepare_forwards() (options.cc) keeps beside the forwards.
constexpr size_t kAllMargin = 4096;

// A one-number sysctl of the caller's network namespace, or fallback.
long read_sysctl_number(const char* path, long fallback) {
  std::ifstream f(path);
  long v = fallback;
  if (!(f >> v)) return fallback;
  return v;
}

// Refuses explicit forwards below `first` (one line, false); rules made by
// `all` start at `first` instead (dropped when nothing is left).
bool check_forward_ports(std::vector<PortForward>* rules, const char* flag, uint16_t first) {
  for (auto it = rules->begin(); it != rules->end();) {
    if (it->host_first >= first) {
      ++it;
      continue;
    }
    if (!it->from_all) {
      std::fprintf(stderr,
                   "ferry run: %s %s: rootless ferry cannot bind host ports below %u "
                   "(net.ipv4.ip_unprivileged_port_start); forward a port >= %u to it (%s %u:%u)\n",
                   flag, to_string(*it).c_str(), first, first, flag, std::max<unsigned>(first, 8000),
                   it->guest_first);
      return false;
    }
    if (it->host_last < first) {
      it = rules->erase(it);
      continue;
    }
    it->guest_first = static_cast<uint16_t>(it->guest_first + (first - it->host_first));
    it->host_first = first;
    ++it;
  }
  return true;
}

// Fits --max-conns, --max-udp-flows and `all` forwards in the caller's
// descriptor limit (see run_rootless.h); false after one line when explicit
// values do not fit. Explicit forwards are fixed; with `all`, the flows get
// at most half of the rest (defaults shrink to it) and `all` keeps its
// lowest ports in what the flows leave.
bool fit_descriptor_limit(Config* c, const Given& given) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY) return true;
  // Rootless: no BPF, so -T all takes a listener per port too.
  const ForwardFds fwd = forward_fds(*c, false);
  const size_t explicit_fwd = fwd.fixed;
  const size_t fixed = explicit_fwd + kReservedFds;
  const size_t hard = static_cast<size_t>(rl.rlim_max);
  const size_t avail = hard > fixed ? hard - fixed : 0;
  const bool has_all = fwd.all > 0;
  const size_t flow_room = has_all ? avail / 2 : avail;
  size_t udp = c->max_udp_flows;
  size_t conns = c->max_conns;
  if (conns + udp > flow_room) {
    if (!given.max_udp_flows) udp = std::max<size_t>(1, std::min(udp, flow_room / 16));
    if (!given.max_conns) conns = flow_room > udp ? std::min(conns, flow_room - udp) : 0;
  }
  if (conns < 16 || conns + udp > avail) {
    std::fprintf(stderr,
                 "ferry run: --max-conns %zu and --max-udp-flows %zu need %zu descriptors with the forwards; "
                 "the descriptor limit (ulimit -Hn) is %zu: lower them or raise the limit\n",
                 conns, udp, conns + udp + fixed, hard);
    return false;
  }
  if (c->verbose && (conns != c->max_conns || udp != c->max_udp_flows))
    std::fprintf(stderr, "ferry run: rootless: --max-conns %zu --max-udp-flows %zu (descriptor limit %zu)\n", conns,
                 udp, hard);
  c->max_conns = static_cast<uint32_t>(conns);
  c->max_udp_flows = static_cast<uint32_t>(udp);
  if (!has_all) return true;
  // `all` in what the flows leave, and within prepare_forwards()'s margin
  // (kAllMargin), so that it finds everything fits and trims nothing more.
  const size_t after_flows = avail - conns - udp;
  const size_t within_margin = hard > explicit_fwd + kAllMargin ? hard - explicit_fwd - kAllMargin : 0;
  trim_all_forwards(c, false, std::min(after_flows, within_margin), hard, "ferry run",
                    " beside " + std::to_string(conns) + " connections");
  return true;
}

// Whether this process may open an ICMP ping socket (ping_group_range
// admits one of its groups); EACCES is the answer when it does not.
bool can_open_ping_socket(int family) {
  const int proto = family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  const int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
  if (fd < 0) return errno != EACCES && errno != EPERM;
  close(fd);
  return true;
}

}  // namespace

bool wanted() { return !privileged_for_network_setup(); }

int prepare(Config* config, sandbox::Options* sandbox_options, const Given& given) {
  if (given.netns) {
    std::fprintf(stderr, "ferry run: --netns needs root (rootless ferry makes the guest's namespaces itself)\n");
    return 2;
  }
  if (given.runas) {
    std::fprintf(stderr,
                 "ferry run: --runas needs root: rootless, the translator keeps your user, in a user namespace "
                 "of its own with no capabilities\n");
    return 2;
  }
  if (config->socket_mark != 0) {
    std::fprintf(stderr, "ferry run: --mark needs root (CAP_NET_ADMIN, or a cgroup of root's)\n");
    return 2;
  }
  const long start = read_sysctl_number("/proc/sys/net/ipv4/ip_unprivileged_port_start", 1024);
  const uint16_t first = static_cast<uint16_t>(std::clamp<long>(start, 0, 65535));
  if (!check_forward_ports(&config->tcp_forwards, "-t", first) ||
      !check_forward_ports(&config->udp_forwards, "-u", first))
    return 2;
  if (!fit_descriptor_limit(config, given)) return 2;
  if (config->fastpath) {
    if (!given.quiet)
      std::fprintf(stderr,
                   "ferry run: rootless: no BPF fast path (it needs CAP_BPF and CAP_NET_ADMIN); translating in "
                   "userspace\n");
    config->fastpath = false;
  }
  if (!given.quiet && !can_open_ping_socket(config->ipv4 ? AF_INET : AF_INET6)) {
    std::string range = "?";
    if (std::ifstream f("/proc/sys/net/ipv4/ping_group_range"); f) std::getline(f, range);
    std::replace(range.begin(), range.end(), '\t', ' ');
    std::fprintf(stderr,
                 "ferry run: rootless: net.ipv4.ping_group_range (%s) admits none of your groups: the guest's "
                 "pings to the gateway are answered, pings elsewhere are dropped\n",
                 range.c_str());
  }
  sandbox_options->own_user_namespace = true;
  sandbox_options->uid = getuid();
  sandbox_options->gid = getgid();
  sandbox_options->runas = std::to_string(getuid());
  return 0;
}

Result<Guest> make_guest(const Config& config) {
  TapOptions tap_options;
  tap_options.ifname = config.ifname;
  tap_options.mtu = config.mtu;
  const GuestLinkSetup setup = guest_link_setup(config);
  const bool tables = config.tcp_auto.enabled || config.udp_auto.enabled;
  // Inside the helper (root of the new namespaces): the tap and the link.
  auto inside = [&](HandBack* back) -> Status {
    Result<NetnsFd> here = current_netns();
    if (!here) return here.status();
    Result<std::unique_ptr<TapPort>> tap = TapPort::create(here->get(), tap_options);
    if (!tap) {
      if (tap.status().err() == EACCES)
        return Status(EACCES, tap.status().what() +
                                  " (rootless ferry needs /dev/net/tun open to all users, mode 0666, as udev makes it)");
      return tap.status();
    }
    if (Status st = configure_guest_link(here->get(), setup); !st) return st;
    // A copy: the TapPort closes its own when this scope ends (the tap
    // lives on as long as any fd of it does).
    const int copy = fcntl((*tap)->fd(), F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return Status::from_errno("dup the tap fd");
    back->fds.push_back(copy);
    if (tables) {  // -t/-u auto: the guest's socket tables, after the tap
      Result<ListenTables> t = ListenTables::open_here();
      if (!t) return t.status();
      for (int fd : t->release()) back->fds.push_back(fd);
    }
    const MacAddr& m = (*tap)->guest_mac();
    char text[64];
    std::snprintf(text, sizeof(text), "%d %02x:%02x:%02x:%02x:%02x:%02x", (*tap)->ifindex(), m.b[0], m.b[1],
                  m.b[2], m.b[3], m.b[4], m.b[5]);
    back->text = text;
    return Status();
  };
  Result<GuestNamespaces> ns = make_guest_namespaces(inside);
  if (!ns) return ns.status();
  if (ns->fds.size() != (tables ? 1u + ListenTables::kCount : 1u)) {
    for (int fd : ns->fds) close(fd);
    return Status(EPROTO, "no tap from the guest's namespace");
  }
  int ifindex = 0;
  unsigned mac[6]{};
  if (std::sscanf(ns->text.c_str(), "%d %x:%x:%x:%x:%x:%x", &ifindex, &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                  &mac[5]) != 7) {
    for (int fd : ns->fds) close(fd);
    return Status(EPROTO, "bad tap description from the guest's namespace");
  }
  MacAddr guest_mac;
  for (int i = 0; i < 6; i++) guest_mac.b[i] = static_cast<uint8_t>(mac[i]);
  Guest guest;
  guest.tap = TapPort::adopt(ns->fds[0], ifindex, config.ifname, guest_mac);
  if (tables) {
    Result<ListenTables> t = ListenTables::adopt(std::vector<int>(ns->fds.begin() + 1, ns->fds.end()));
    if (!t) return t.status();
    guest.tables = std::move(*t);
  }
  ns->fds.clear();
  guest.ns = std::move(*ns);
  return guest;
}

PrivateTempDir::~PrivateTempDir() {
  for (const std::string& f : files_) unlink(f.c_str());
  if (!path_.empty()) rmdir(path_.c_str());
}

bool PrivateTempDir::make() {
  const char* base = std::getenv("XDG_RUNTIME_DIR");
  if (base == nullptr || *base == '\0' || access(base, W_OK) != 0) base = std::getenv("TMPDIR");
  if (base == nullptr || *base == '\0' || access(base, W_OK) != 0) base = "/tmp";
  std::string tmpl = std::string(base) + "/ferry-run.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return false;
  path_ = tmpl;
  return true;
}

std::string PrivateTempDir::write(const std::string& name, const std::string& text) {
  const std::string p = path_ + "/" + name;
  std::ofstream out(p);
  out << text;
  out.close();
  files_.push_back(p);
  if (!out || chmod(p.c_str(), 0644) != 0) return "";
  return p;
}

}  // namespace ferry::cli::rootless

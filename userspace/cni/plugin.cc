// ferry-cni's commands: see plugin.h for the theory of operation.
//
// Every command locks only its own attachment (StateStore: one lock file
// per key), so one pod's slow IPAM or attach never stalls another's.
//
// ADD (main mode), step by step, and what undoes each step on failure:
//   0. lock the attachment; refuse CNI_NETNS when it is ferry-cni's own
//      namespace; a stale record of the same attachment is torn down first
//   1. record "adding"                         -> remove record
//   2. IPAM ADD (when configured)               -> IPAM DEL
//   3. veth host end + peer in CNI_NETNS        -> delete host end (takes the peer)
//   4. host end: no IPv6, up; pod end: IPv6 quiet or off, TX checksum
//      offload off for hook "xdp", lo up, link up, addresses, routes
//   5. ferry attach HOSTDEV ...                 -> ferry detach HOSTDEV
//   6. record "ready", print the result
// Chained mode runs 0, 1, 5, 6 on the host end of the pod's own veth: the
// peer (IFLA_LINK) of CNI_IFNAME, checked from both ends, never another
// interface of prevResult (a bridge, another pod's port); for hook "xdp" it
// also turns TX checksum offload off on the pod's end. A failed ADD undoes
// only what it made: `ferry detach` runs only after its own attach worked.
//
// Every attachment's translator gets the pod defaults of the destination
// policy (README "Security model"): no gateway mapping, the node's own
// addresses refused, unless mapGateway / allowNode / allow say otherwise,
// and an SO_MARK per attachment (socketMark, else socket_mark_for(key)).
//
// One address per family goes to the pod and to the translator (ferry
// translates for one guest address of each family); further IPAM addresses
// of a family are not configured.
#include "cni/plugin.h"

#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "cni/cni.h"
#include "cni/exec.h"
#include "cni/state.h"
#include "netns/netlink.h"
#include "netns/netns.h"
#include "netns/user_namespace.h"

namespace ferry::cni {

namespace {

constexpr int kLockWaitMs = 20000;
constexpr int kIpamTimeoutMs = 60000;
constexpr int kAttachTimeoutMs = 30000;
constexpr int kDetachTimeoutMs = 30000;
constexpr int kStatusTimeoutMs = 10000;
constexpr unsigned kDefaultMtu = 1500;

// One line on stderr: the runtime logs it.
void log(const std::string& s) { std::fprintf(stderr, "ferry-cni: %s\n", s.c_str()); }

// Trims trailing whitespace (program output in messages).
std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// An error value; nullopt is success.
using Err = std::optional<CniError>;

Err error(unsigned code, std::string msg, std::string details = "") {
  return CniError{code, std::move(msg), std::move(details)};
}

// A defer-list of undo steps, run in reverse unless dismissed.
class Rollback {
 public:
  ~Rollback() {
    if (armed_) run();
  }
  void add(std::function<void()> f) { steps_.push_back(std::move(f)); }
  void dismiss() { armed_ = false; }
  void run() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
    steps_.clear();
    armed_ = false;
  }

 private:
  std::vector<std::function<void()>> steps_;
  bool armed_ = true;
};

class Plugin {
 public:
  Plugin(CniEnv env, NetConf conf, std::string self_path)
      : env_(std::move(env)), conf_(std::move(conf)), self_(std::move(self_path)), store_(conf_.state_dir) {}

  Err add(json* out);
  Err del();
  Err check();
  Err status();
  Err gc();

 private:
  // The ferry binary: ferryPath, CNI_PATH, beside ferry-cni, then PATH.
  std::string ferry_binary() const;
  Err lock_attachment(const std::string& key);
  // Error 4 when CNI_NETNS is the namespace ferry-cni (and so ferry's host
  // sockets) runs in: ADD would configure the node's own network.
  Err refuse_own_netns() const;
  // The destination policy and mark of the attachment `key` into plan.
  void apply_policy(const std::string& key, AttachPlan* plan) const;
  // `extra_env` overrides parts of our environment (GC releasing the
  // addresses of an attachment other than the current one).
  Err run_ipam(Command cmd, CniResult* result, const std::vector<std::string>& extra_env = {});
  Err ferry_attach(const AttachPlan& plan);
  Err ferry_detach(const std::string& dev);
  // Detaches and, for main mode, deletes the link. Errors are collected in
  // the message; link and service already gone are not errors.
  Err teardown(const AttachmentRecord& r);
  Err add_main(const std::string& key, json* out);
  Err add_chained(const std::string& key, json* out);
  bool want_fastpath(Err* e) const;

  CniEnv env_;
  NetConf conf_;
  std::string self_;
  StateStore store_;
};

// ---- helpers ----------------------------------------------------------------------

// True when a link of that name exists in the caller's namespace.
bool link_exists(const std::string& name) {
  Result<Netlink> nl = Netlink::open();
  return nl && nl->get_link(name).ok();
}

// Deletes a link by name in the caller's namespace; absent is fine.
Status delete_link_named(const std::string& name) {
  Result<Netlink> nl = Netlink::open();
  if (!nl) return nl.status();
  Result<int> idx = nl->link_index(name);
  if (!idx) return idx.status().err() == ENODEV ? Status() : idx.status();
  Status st = nl->delete_link(*idx);
  return (st.ok() || st.err() == ENODEV) ? Status() : st;
}

// Turns TX checksum offload off on `ifname` in the calling thread's
// namespace (ethtool -K IF tx off). Frames taken by XDP lose the kernel's
// checksum-offload state, so with hook "xdp" the pod must send full
// checksums; the tc hook keeps the state and needs nothing.
Status disable_tx_checksum(const std::string& ifname) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno("socket for ethtool");
  ethtool_value ev{};
  ev.cmd = ETHTOOL_STXCSUM;
  ev.data = 0;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&ev);
  int rc = ::ioctl(fd, SIOCETHTOOL, &ifr);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status(err, "ethtool -K " + ifname + " tx off");
  return Status();
}

// The parent directory of a path ("" for none).
std::string dir_of(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

// A CNI error object printed by a delegated plugin, if that is what it is.
std::optional<CniError> error_from_output(const std::string& out) {
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto code = j.find("code");
  if (code == j.end() || !code->is_number_unsigned()) return std::nullopt;
  CniError e;
  e.code = code->get<unsigned>();
  if (auto m = j.find("msg"); m != j.end() && m->is_string()) e.msg = m->get<std::string>();
  if (auto d = j.find("details"); d != j.end() && d->is_string()) e.details = d->get<std::string>();
  return e;
}

// The pod's addresses and the gateway of each family (also the gw of IPAM
// routes that name none).
struct PodAddrs {
  std::vector<CniIp> ips;  // at most one per family, in IPAM's order
  std::optional<InetAddr> gw4, gw6;
};

std::string Plugin::ferry_binary() const {
  if (!conf_.ferry_path.empty()) return is_executable(conf_.ferry_path) ? conf_.ferry_path : "";
  // CNI_PATH first: where the runtime looks for plugins is where the
  // operator installed the matching ferry.
  if (std::string in_cni_path = find_in_dirs("ferry", env_.path); !in_cni_path.empty()) return in_cni_path;
  std::string beside = dir_of(self_) + "/ferry";
  if (!dir_of(self_).empty() && is_executable(beside)) return beside;
  std::vector<std::string> dirs;
  if (const char* p = std::getenv("PATH")) {
    std::stringstream ss(p);
    std::string d;
    while (std::getline(ss, d, ':')) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  return find_in_dirs("ferry", dirs);
}

Err Plugin::lock_attachment(const std::string& key) {
  Status st = store_.lock(key, kLockWaitMs);
  if (st.ok()) return std::nullopt;
  if (st.err() == EAGAIN) return error(kErrTryAgain, st.what());
  return error(kErrStateIo, "state directory: " + st.message());
}

Err Plugin::refuse_own_netns() const {
  Result<NetnsFd> pod = open_netns(env_.netns);
  if (!pod) return error(kErrInvalidEnv, "CNI_NETNS: " + pod.status().message());
  Result<NetnsFd> mine = current_netns();
  if (!mine) return error(kErrInvalidEnv, "own namespace: " + mine.status().message());
  if (same_netns(pod->get(), mine->get())) {
    return error(kErrInvalidEnv, "CNI_NETNS " + env_.netns +
                                     " is the namespace ferry-cni runs in (the node's): refusing to configure it as a pod");
  }
  return std::nullopt;
}

void Plugin::apply_policy(const std::string& key, AttachPlan* plan) const {
  plan->map_gateway = conf_.map_gateway;
  plan->map_gateway_ports = conf_.map_gateway_ports;
  plan->allow_node = conf_.allow_node;
  plan->allow = conf_.allow;
  plan->deny = conf_.deny;
  plan->socket_mark = conf_.socket_mark.value_or(socket_mark_for(key));
}

// The host end of the pod's veth: CNI_IFNAME's peer (IFLA_LINK, in another
// namespace), which must be a veth here whose own peer is CNI_IFNAME. Never
// a bridge or another pod's port, whatever prevResult lists first.
Result<std::string> pod_veth_peer(const std::string& netns, const std::string& ifname) {
  Result<NetnsFd> ns = open_netns(netns);
  if (!ns) return ns.status();
  LinkInfo pod;
  {
    NetnsGuard guard;
    if (Status st = guard.enter(ns->get()); !st) return st;
    Result<Netlink> nl = Netlink::open();
    if (!nl) return nl.status();
    Result<LinkInfo> li = nl->get_link(ifname);
    if (!li) return Status(li.status().err(), "pod interface " + ifname + ": " + li.status().message());
    pod = *li;
  }
  if (pod.kind != "veth") {
    return Status(ENODEV, "the pod's " + ifname + " is not a veth (kind '" + pod.kind + "'): ferry serves a veth's host end");
  }
  if (!pod.link_netnsid || pod.link == 0) {
    return Status(ENODEV, "the peer of the pod's " + ifname + " is in the pod's own namespace");
  }
  Result<Netlink> nl = Netlink::open();
  if (!nl) return nl.status();
  Result<LinkInfo> host = nl->get_link(pod.link);
  if (!host || host->kind != "veth" || host->link != pod.index || !host->link_netnsid) {
    return Status(ENODEV, "the peer of the pod's " + ifname + " (ifindex " + std::to_string(pod.link) +
                              ") is not in ferry-cni's namespace");
  }
  return host->name;
}

// Runs the IPAM plugin with our environment (CNI_COMMAND = cmd) and config.
Err Plugin::run_ipam(Command cmd, CniResult* result, const std::vector<std::string>& extra_env) {
  std::string path = find_in_dirs(conf_.ipam_type, env_.path);
  if (path.empty()) {
    return error(kErrInvalidConfig, "IPAM plugin '" + conf_.ipam_type + "' not found in CNI_PATH");
  }
  std::vector<std::string> env = extra_env;
  env.push_back("CNI_COMMAND=" + std::string(command_name(cmd)));
  Result<ExecResult> r = run_program(path, {}, conf_.raw.dump(), kIpamTimeoutMs, env);
  if (!r) return error(kErrIpamFailed, "IPAM plugin " + conf_.ipam_type + ": " + r.status().message());
  if (r->timed_out) return error(kErrIpamFailed, "IPAM plugin " + conf_.ipam_type + " timed out");
  if (r->exit_code != 0) {
    // The delegate's own CNI error goes to the runtime as it is.
    if (std::optional<CniError> e = error_from_output(r->out)) return e;
    return error(kErrIpamFailed, "IPAM plugin " + conf_.ipam_type + " failed (exit " +
                                     std::to_string(r->exit_code) + ")", trimmed(r->err));
  }
  if (cmd == Command::kAdd && result != nullptr) {
    json j = json::parse(r->out, nullptr, false);
    std::string why;
    std::optional<CniResult> res = j.is_discarded() ? std::nullopt : CniResult::from_json(j, &why);
    if (!res) return error(kErrIpamFailed, "IPAM plugin " + conf_.ipam_type + " gave no usable result", why);
    *result = *res;
  }
  return std::nullopt;
}

Err Plugin::ferry_attach(const AttachPlan& plan) {
  std::string ferry = ferry_binary();
  if (ferry.empty()) return error(kErrFerryMissing, "the ferry binary was not found (ferryPath, beside ferry-cni, PATH)");
  Result<ExecResult> r = run_program(ferry, attach_argv(plan), "", kAttachTimeoutMs);
  if (!r) return error(kErrAttachFailed, "ferry attach " + plan.device + ": " + r.status().message());
  if (r->timed_out) return error(kErrAttachFailed, "ferry attach " + plan.device + " timed out");
  if (r->exit_code != 0) {
    return error(kErrAttachFailed, "ferry attach " + plan.device + " failed (exit " + std::to_string(r->exit_code) + ")",
                 trimmed(r->err));
  }
  return std::nullopt;
}

Err Plugin::ferry_detach(const std::string& dev) {
  std::string ferry = ferry_binary();
  if (ferry.empty()) {
    // Without the binary nothing can have been attached by it; DEL goes on.
    log("ferry binary not found: skipping ferry detach " + dev);
    return std::nullopt;
  }
  Result<ExecResult> r = run_program(ferry, {"detach", dev}, "", kDetachTimeoutMs);
  if (!r) return error(kErrDetachFailed, "ferry detach " + dev + ": " + r.status().message());
  if (r->timed_out) return error(kErrDetachFailed, "ferry detach " + dev + " timed out");
  if (r->exit_code != 0) {
    return error(kErrDetachFailed, "ferry detach " + dev + " failed (exit " + std::to_string(r->exit_code) + ")",
                 trimmed(r->err));
  }
  return std::nullopt;
}

Err Plugin::teardown(const AttachmentRecord& r) {
  Err e = ferry_detach(r.host_dev);
  if (r.mode == "main") {
    // Deleting the host end also deletes the peer in the pod, wherever it is.
    if (Status st = delete_link_named(r.host_dev); !st && !e) {
      e = error(kErrLinkSetup, "delete " + r.host_dev + ": " + st.message());
    }
  }
  return e;
}

// `ferry attach` always loads its redirect programs; the fast path proper
// (pure ACKs absorbed in the kernel) is what "fastpath" switches.
bool Plugin::want_fastpath(Err* e) const {
  if (conf_.fastpath == Fastpath::kOff) return false;
  if (conf_.fastpath == Fastpath::kRequire && !bpf_available()) {
    *e = error(kErrNotAvailable, "fastpath is \"require\" but this node cannot load BPF programs");
  }
  return true;
}

// ---- ADD ------------------------------------------------------------------------------

// In a user namespace other than the host's (rootless Podman runs its CNI
// plugins in one) capabilities are that namespace's: ferry attach can load
// no BPF program and open no pin of the host's, so no pod can be served.
// Said before anything is made, instead of ferry attach's bpffs error.
const char* const kInUserNamespace =
    "ferry-cni runs in a user namespace (rootless Podman?): ferry attach needs the host's CAP_BPF and "
    "CAP_NET_ADMIN; for rootless containers run them in a namespace `podman unshare ferry run` serves "
    "(README: Rootless Podman)";

Err Plugin::add(json* out) {
  if (!in_initial_user_namespace()) return error(kErrNotAvailable, kInUserNamespace);
  const std::string key = attachment_key(conf_.name, env_.container_id, env_.ifname);
  if (Err e = lock_attachment(key)) return e;
  if (Err e = refuse_own_netns()) return e;
  if (std::optional<AttachmentRecord> old = store_.load(key)) {
    log("ADD of an attachment already recorded (" + old->host_dev + "): removing the old one first");
    if (Err e = teardown(*old)) return e;
    if (Status st = store_.remove(key); !st) return error(kErrStateIo, st.message());
  }
  return conf_.prev_result ? add_chained(key, out) : add_main(key, out);
}

Err Plugin::add_main(const std::string& key, json* out) {
  const std::string host = host_ifname_for(key);
  Result<NetnsFd> ns = open_netns(env_.netns);
  if (!ns) return error(kErrInvalidEnv, "CNI_NETNS: " + ns.status().message());
  Err fp_err;
  const bool fastpath = want_fastpath(&fp_err);
  if (fp_err) return fp_err;
  if (ferry_binary().empty()) {
    return error(kErrFerryMissing, "the ferry binary was not found (ferryPath, beside ferry-cni, PATH)");
  }
  CniError mac_err;
  const std::optional<MacAddr> mac = requested_mac(conf_.mac, env_.args, &mac_err);  // podman --mac-address
  if (mac_err.code != 0) return error(mac_err.code, mac_err.msg);
  // A leftover host end (a plugin killed before writing its record): ours
  // by name, so it goes.
  if (link_exists(host)) {
    log("removing leftover " + host);
    (void)ferry_detach(host);
    (void)delete_link_named(host);
  }

  Rollback undo;
  AttachmentRecord rec{conf_.name, env_.container_id, env_.ifname, env_.netns, host, "main", "adding",
                       conf_.ipam.has_value()};
  rec.socket_mark = conf_.socket_mark.value_or(socket_mark_for(key));
  if (Status st = store_.save(key, rec); !st) return error(kErrStateIo, st.message());
  undo.add([this, key] { (void)store_.remove(key); });

  // Addresses: IPAM or ferry's defaults.
  CniResult ipam_res;
  if (conf_.ipam) {
    undo.add([this] { (void)run_ipam(Command::kDel, nullptr); });
    if (Err e = run_ipam(Command::kAdd, &ipam_res)) return e;
  } else {
    ipam_res.ips = {{*InetPrefix::parse("198.18.0.2/24"), InetAddr::parse("198.18.0.1"), std::nullopt},
                    {*InetPrefix::parse("fd00:f::2/64"), InetAddr::parse("fd00:f::1"), std::nullopt}};
  }
  PodAddrs pod;
  for (const CniIp& ip : ipam_res.ips) {
    const bool v4 = ip.address.addr.is_v4();
    std::optional<InetAddr>& gw = v4 ? pod.gw4 : pod.gw6;
    if (gw) continue;  // ferry translates one address per family
    gw = ip.gateway ? *ip.gateway : default_gateway_for(ip.address);
    CniIp mine = ip;
    mine.gateway = gw;
    mine.interface = 1;  // interfaces: [host end, pod end]
    pod.ips.push_back(mine);
  }
  if (pod.ips.empty()) return error(kErrIpamFailed, "IPAM plugin " + conf_.ipam_type + " returned no addresses");
  std::vector<CniRoute> routes = ipam_res.routes;
  for (CniRoute& r : routes) {
    if (!r.gw) r.gw = r.dst.addr.is_v4() ? pod.gw4 : pod.gw6;
    if (!r.gw) return error(kErrInvalidConfig, "route " + r.dst.str() + " has no gateway of its family");
  }
  if (routes.empty()) {
    // ferry is the pod's only way out: default routes via its gateways.
    if (pod.gw4) routes.push_back({*InetPrefix::parse("0.0.0.0/0"), pod.gw4});
    if (pod.gw6) routes.push_back({*InetPrefix::parse("::/0"), pod.gw6});
  }
  const unsigned mtu = conf_.mtu != 0 ? conf_.mtu : kDefaultMtu;

  // The veth: host end here, peer straight into the pod's namespace.
  {
    Result<Netlink> nl = Netlink::open();
    if (!nl) return error(kErrLinkSetup, nl.status().message());
    if (Status st = nl->create_veth(host, env_.ifname, ns->get(), mtu, mac ? &*mac : nullptr); !st) {
      if (st.err() == EEXIST) {
        return error(kErrLinkSetup, "cannot create " + env_.ifname + " in " + env_.netns + ": a link " + host +
                                        " or " + env_.ifname + " already exists");
      }
      return error(kErrLinkSetup, st.message());
    }
    undo.add([host] { (void)delete_link_named(host); });
    Status st = write_sysctl("net/ipv6/conf/" + host + "/disable_ipv6", "1");
    if (!st && st.err() != ENOENT) return error(kErrLinkSetup, st.message());
    Result<int> idx = nl->link_index(host);
    if (!idx) return error(kErrLinkSetup, idx.status().message());
    if (Status up = nl->set_link_up(*idx, true); !up) return error(kErrLinkSetup, up.message());
  }
  std::string host_mac, pod_mac;
  if (Result<Netlink> nl = Netlink::open(); nl) {
    if (Result<LinkInfo> li = nl->get_link(host); li) host_mac = li->mac.str();
  }

  // The pod side, from inside its namespace.
  {
    NetnsGuard guard;
    if (Status st = guard.enter(ns->get()); !st) return error(kErrLinkSetup, st.message());
    auto fail = [](const Status& st) { return error(kErrLinkSetup, "pod interface: " + st.message()); };
    Result<Netlink> nl = Netlink::open();
    if (!nl) return fail(nl.status());
    Result<LinkInfo> li = nl->get_link(env_.ifname);
    if (!li) return fail(li.status());
    pod_mac = li->mac.str();
    if (pod.gw6) {
      if (Status st = quiet_ipv6(env_.ifname); !st && st.err() != ENOENT) return fail(st);
    } else {
      Status st = write_sysctl("net/ipv6/conf/" + env_.ifname + "/disable_ipv6", "1");
      if (!st && st.err() != ENOENT) return fail(st);
    }
    if (conf_.hook == "xdp") {
      if (Status st = disable_tx_checksum(env_.ifname); !st) return fail(st);
    }
    if (Status st = nl->bring_lo_up(); !st) return fail(st);
    if (Status st = nl->set_link_up(li->index, true); !st) return fail(st);
    for (const CniIp& ip : pod.ips) {
      if (Status st = nl->add_address(li->index, ip.address); !st) return fail(st);
      // A gateway outside the prefix (ptp-style /32 addresses) needs an
      // on-link host route first.
      if (!ip.address.addr.same_prefix(*ip.gateway, ip.address.len)) {
        InetPrefix host_route{*ip.gateway, ip.gateway->is_v4() ? 32u : 128u};
        if (Status st = nl->add_route(li->index, host_route, std::nullopt); !st) return fail(st);
      }
    }
    for (const CniRoute& r : routes) {
      if (Status st = nl->add_route(li->index, r.dst, r.gw); !st) return fail(st);
    }
  }

  // The translator.
  AttachPlan plan;
  plan.device = host;
  for (const CniIp& ip : pod.ips) {
    if (ip.address.addr.is_v4()) {
      plan.addr4 = ip.address;
      plan.gw4 = ip.gateway;
    } else {
      plan.addr6 = ip.address;
      plan.gw6 = ip.gateway;
    }
  }
  plan.mtu = mtu;
  plan.tcp_specs = conf_.tcp_ports;
  plan.udp_specs = conf_.udp_ports;
  for (const PortMapping& m : conf_.port_mappings) {
    (m.protocol == "udp" ? plan.udp_specs : plan.tcp_specs).push_back(port_mapping_spec(m));
  }
  plan.fastpath = fastpath;
  plan.hook = conf_.hook;
  apply_policy(key, &plan);
  plan.guest_mac = pod_mac;  // so inbound traffic reaches a pod that has sent nothing
  const Dns& pod_dns = ipam_res.dns.empty() ? conf_.dns : ipam_res.dns;
  plan_guest_services(&plan, conf_, pod_dns, routes);
  plan.max_conns = conf_.max_conns;
  plan.max_udp_flows = conf_.max_udp_flows;
  plan.memory_max = conf_.memory_max;
  if (Err e = ferry_attach(plan)) return e;
  undo.add([this, host] { (void)ferry_detach(host); });  // ours now, and only now

  rec.phase = "ready";
  if (Status st = store_.save(key, rec); !st) return error(kErrStateIo, st.message());
  undo.dismiss();

  CniResult res;
  res.interfaces = {{host, host_mac, "", 0}, {env_.ifname, pod_mac, env_.netns, mtu}};
  res.ips = pod.ips;
  res.routes = routes;
  res.dns = pod_dns;
  *out = res.to_json(conf_.cni_version);
  return std::nullopt;
}

Err Plugin::add_chained(const std::string& key, json* out) {
  std::string why;
  std::optional<CniResult> prev = CniResult::from_json(*conf_.prev_result, &why);
  if (!prev) return error(kErrInvalidConfig, "prevResult: " + why);
  // The host side: the peer of the pod's own veth.
  Result<std::string> peer = pod_veth_peer(env_.netns, env_.ifname);
  if (!peer) return error(kErrNoHostInterface, "chained: no host end of the pod's veth", peer.status().message());
  const std::string host = *peer;
  AttachPlan plan;
  plan.device = host;
  plan.force = true;  // verified above: the pod's own link, even as a bridge port or with an address
  for (const CniIp& ip : prev->ips) {
    // Only addresses of the pod's interface (or unattributed ones).
    if (ip.interface) {
      const CniInterface& i = prev->interfaces[static_cast<size_t>(*ip.interface)];
      if (i.sandbox.empty() || i.name != env_.ifname) continue;
    }
    InetAddr gw = ip.gateway ? *ip.gateway : default_gateway_for(ip.address);
    if (ip.interface) {
      const std::string& mac = prev->interfaces[static_cast<size_t>(*ip.interface)].mac;
      if (plan.guest_mac.empty() && MacAddr::parse(mac)) plan.guest_mac = mac;
    }
    if (ip.address.addr.is_v4() && !plan.addr4) {
      plan.addr4 = ip.address;
      plan.gw4 = gw;
    } else if (!ip.address.addr.is_v4() && !plan.addr6) {
      plan.addr6 = ip.address;
      plan.gw6 = gw;
    }
  }
  if (!plan.addr4 && !plan.addr6) {
    return error(kErrInvalidConfig, "prevResult has no address for " + env_.ifname);
  }
  Err fp_err;
  plan.fastpath = want_fastpath(&fp_err);
  if (fp_err) return fp_err;
  if (conf_.mtu != 0) plan.mtu = conf_.mtu;
  plan.tcp_specs = conf_.tcp_ports;
  plan.udp_specs = conf_.udp_ports;
  for (const PortMapping& m : conf_.port_mappings) {
    (m.protocol == "udp" ? plan.udp_specs : plan.tcp_specs).push_back(port_mapping_spec(m));
  }
  plan.hook = conf_.hook;
  apply_policy(key, &plan);
  plan_guest_services(&plan, conf_, prev->dns.empty() ? conf_.dns : prev->dns, prev->routes);
  plan.max_conns = conf_.max_conns;
  plan.max_udp_flows = conf_.max_udp_flows;
  plan.memory_max = conf_.memory_max;

  if (conf_.hook == "xdp") {
    // The pod's interface is another plugin's, but XDP needs it to send
    // full checksums (see disable_tx_checksum).
    Result<NetnsFd> ns = open_netns(env_.netns);
    if (!ns) return error(kErrInvalidEnv, "CNI_NETNS: " + ns.status().message());
    NetnsGuard guard;
    if (Status st = guard.enter(ns->get()); !st) return error(kErrLinkSetup, st.message());
    if (Status st = disable_tx_checksum(env_.ifname); !st) return error(kErrLinkSetup, "pod interface: " + st.message());
  }

  Rollback undo;
  AttachmentRecord rec{conf_.name, env_.container_id, env_.ifname, env_.netns, host, "chained", "adding", false};
  rec.socket_mark = plan.socket_mark;
  if (Status st = store_.save(key, rec); !st) return error(kErrStateIo, st.message());
  undo.add([this, key] { (void)store_.remove(key); });
  // A failed attach made nothing (and DEV may be another attachment's):
  // only an attach of ours is undone.
  if (Err e = ferry_attach(plan)) return e;
  undo.add([this, host] { (void)ferry_detach(host); });
  rec.phase = "ready";
  if (Status st = store_.save(key, rec); !st) return error(kErrStateIo, st.message());
  undo.dismiss();
  *out = *conf_.prev_result;
  (*out)["cniVersion"] = conf_.cni_version;
  return std::nullopt;
}

// ---- DEL ----------------------------------------------------------------------------------

Err Plugin::del() {
  const std::string key = attachment_key(conf_.name, env_.container_id, env_.ifname);
  if (Err e = lock_attachment(key)) return e;
  std::optional<AttachmentRecord> rec = store_.load(key);
  if (!rec) {
    // No record: either DEL ran already, or ADD never got far. A main-mode
    // link by our deterministic name would still be ours.
    const std::string host = host_ifname_for(key);
    if (link_exists(host)) rec = AttachmentRecord{conf_.name, env_.container_id, env_.ifname, env_.netns, host, "main"};
  }
  if (rec) {
    if (Err e = teardown(*rec)) return e;  // record kept: DEL can be retried
  }
  // IPAM releases by container ID and is idempotent itself; a chained
  // ferry does not own addresses.
  if (conf_.ipam && (!rec || rec->mode == "main")) {
    if (Err e = run_ipam(Command::kDel, nullptr)) return e;
  }
  if (Status st = store_.remove(key); !st) return error(kErrStateIo, st.message());
  store_.unlock(true);  // nothing of the attachment is left, its lock file neither
  return std::nullopt;
}

// ---- CHECK --------------------------------------------------------------------------------

// Reads `ferry status DEV -j` ({"attachments": [{"alive": bool,
// "programs": {"dev": ID|null, ...}, "link_present": bool ...}]}): the
// service must be alive and its program on DEV attached.
Err check_translator(const std::string& ferry, const std::string& dev) {
  Result<ExecResult> r = run_program(ferry, {"status", dev, "-j"}, "", kStatusTimeoutMs);
  if (!r || r->timed_out || r->exit_code != 0) {
    return error(kErrCheckTranslator, "ferry status " + dev + " failed: " + dev + " is not attached",
                 r ? trimmed(r->err) : r.status().message());
  }
  json j = json::parse(r->out, nullptr, false);
  if (j.is_object() && j.contains("attachments")) j = j["attachments"];
  if (j.is_array()) j = j.empty() ? json() : j[0];
  if (!j.is_object()) return error(kErrCheckTranslator, "ferry status " + dev + ": unreadable output");
  auto alive = j.find("alive");
  if (alive == j.end() || !alive->is_boolean() || !alive->get<bool>()) {
    return error(kErrCheckTranslator, "the ferry service of " + dev + " is not running");
  }
  auto progs = j.find("programs");
  bool attached = progs != j.end() && progs->is_object() && progs->contains("dev") && (*progs)["dev"].is_number();
  if (auto lp = j.find("link_present"); lp != j.end() && lp->is_boolean() && !lp->get<bool>()) attached = false;
  if (!attached) return error(kErrCheckTranslator, "ferry's BPF program is not attached to " + dev);
  return std::nullopt;
}

Err Plugin::check() {
  const std::string key = attachment_key(conf_.name, env_.container_id, env_.ifname);
  if (Err e = lock_attachment(key)) return e;
  std::optional<AttachmentRecord> rec = store_.load(key);
  if (!rec || rec->phase != "ready") {
    return error(kErrNoAttachment, "ferry has no attachment for " + env_.container_id + "/" + env_.ifname);
  }
  if (!link_exists(rec->host_dev)) return error(kErrCheckInterface, "host interface " + rec->host_dev + " is gone");
  std::string ferry = ferry_binary();
  if (ferry.empty()) return error(kErrFerryMissing, "the ferry binary was not found");
  if (Err e = check_translator(ferry, rec->host_dev)) return e;
  if (rec->mode != "main") return std::nullopt;

  Result<NetnsFd> ns = open_netns(env_.netns);
  if (!ns) return error(kErrInvalidEnv, "CNI_NETNS: " + ns.status().message());
  {
    NetnsGuard guard;
    if (Status st = guard.enter(ns->get()); !st) return error(kErrCheckInterface, st.message());
    Result<Netlink> nl = Netlink::open();
    if (!nl) return error(kErrCheckInterface, nl.status().message());
    Result<LinkInfo> li = nl->get_link(env_.ifname);
    if (!li) return error(kErrCheckInterface, env_.ifname + " is missing in " + env_.netns);
    if ((li->flags & IFF_UP) == 0) return error(kErrCheckInterface, env_.ifname + " is down");
    if (conf_.mtu != 0 && li->mtu != conf_.mtu) {
      return error(kErrCheckInterface, env_.ifname + " has MTU " + std::to_string(li->mtu) + ", configured " +
                                           std::to_string(conf_.mtu));
    }
    Result<std::vector<AddrInfo>> addrs = nl->addresses(li->index);
    if (!addrs) return error(kErrCheckInterface, addrs.status().message());
    if (conf_.prev_result) {
      std::string why;
      std::optional<CniResult> prev = CniResult::from_json(*conf_.prev_result, &why);
      if (!prev) return error(kErrInvalidConfig, "prevResult: " + why);
      for (const CniIp& ip : prev->ips) {
        if (!ip.interface) continue;
        const CniInterface& i = prev->interfaces[static_cast<size_t>(*ip.interface)];
        if (i.name != env_.ifname || i.sandbox.empty()) continue;
        bool found = false;
        for (const AddrInfo& a : *addrs) {
          if (a.prefix.addr == ip.address.addr && a.prefix.len == ip.address.len) found = true;
        }
        if (!found) return error(kErrCheckInterface, env_.ifname + " lacks " + ip.address.str());
      }
    }
  }
  if (conf_.ipam) return run_ipam(Command::kCheck, nullptr);
  return std::nullopt;
}

// ---- STATUS and GC ------------------------------------------------------------------------

Err Plugin::status() {
  if (!in_initial_user_namespace()) return error(kErrNotAvailable, kInUserNamespace);
  if (!has_net_privileges()) {
    return error(kErrNotAvailable, "ferry-cni lacks CAP_NET_ADMIN/CAP_SYS_ADMIN: it cannot create or attach links");
  }
  if (ferry_binary().empty()) {
    return error(kErrNotAvailable, "the ferry binary was not found (ferryPath, beside ferry-cni, PATH)");
  }
  // ferry attach takes the pod's frames with BPF programs: without BPF no
  // pod can be served at all.
  if (!bpf_available()) {
    return error(kErrNotAvailable, "this node cannot load BPF programs (ferry attach needs them to take pod frames)");
  }
  if (conf_.fastpath == Fastpath::kOff) log("STATUS: fastpath off: pods are translated on the slow path");
  if (conf_.ipam) return run_ipam(Command::kStatus, nullptr);
  return std::nullopt;
}

Err Plugin::gc() {
  if (!conf_.has_valid_attachments) {
    // Without the list, "everything else" would be everything: refuse.
    return error(kErrInvalidConfig, "GC needs cni.dev/valid-attachments");
  }
  std::string failures;
  for (const auto& [key, listed] : store_.list()) {
    if (listed.network != conf_.name) continue;
    bool valid = false;
    for (const Attachment& a : conf_.valid_attachments) {
      if (a.container_id == listed.container_id && a.ifname == listed.ifname) valid = true;
    }
    if (valid) continue;
    // Each attachment under its own lock, read again under it (a DEL may
    // have removed it meanwhile).
    if (Err e = lock_attachment(key)) {
      failures += (failures.empty() ? "" : "; ") + e->msg;
      continue;
    }
    std::optional<AttachmentRecord> again = store_.load(key);
    if (!again) {
      store_.unlock();
      continue;
    }
    const AttachmentRecord& rec = *again;
    log("GC: removing " + rec.container_id + "/" + rec.ifname + " (" + rec.host_dev + ")");
    if (Err e = teardown(rec)) {
      failures += (failures.empty() ? "" : "; ") + e->msg;
      continue;
    }
    // Its addresses too: not every IPAM plugin implements GC (host-local
    // 1.9 does not), all implement DEL.
    if (conf_.ipam && rec.ipam && rec.mode == "main") {
      std::vector<std::string> who = {"CNI_CONTAINERID=" + rec.container_id, "CNI_IFNAME=" + rec.ifname,
                                      "CNI_NETNS=" + rec.netns, "CNI_ARGS="};
      if (Err e = run_ipam(Command::kDel, nullptr, who)) {
        failures += (failures.empty() ? "" : "; ") + e->msg;
        continue;
      }
    }
    (void)store_.remove(key);
    store_.unlock(true);
  }
  store_.unlock();
  if (conf_.ipam) {
    if (Err e = run_ipam(Command::kGc, nullptr)) return e;
  }
  if (!failures.empty()) return error(kErrDetachFailed, "GC: " + failures);
  return std::nullopt;
}

// Prints a JSON value as the plugin's stdout.
// Invalid UTF-8 (a delegate's stderr in details) is replaced, never thrown on.
std::string dump(const json& j) { return j.dump(4, ' ', false, json::error_handler_t::replace) + "\n"; }

}  // namespace

// ---- node checks -----------------------------------------------------------------------

bool bpf_available() {
  // The smallest XDP program: r0 = XDP_PASS; exit.
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = 2;
  insns[1].code = BPF_JMP | BPF_EXIT;
  static const char license[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_XDP;
  attr.insns = reinterpret_cast<uintptr_t>(insns);
  attr.insn_cnt = 2;
  attr.license = reinterpret_cast<uintptr_t>(license);
  long fd = ::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

bool has_net_privileges() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    constexpr unsigned long long kNetAdmin = 1ULL << 12, kSysAdmin = 1ULL << 21;
    return (caps & kNetAdmin) != 0 && (caps & kSysAdmin) != 0;
  }
  return false;
}

PluginRun run_plugin(const std::map<std::string, std::string>& envmap, const std::string& stdin_text,
                     const std::string& self_path) {
  CniError err;
  std::optional<CniEnv> env = parse_env(envmap, &err);
  if (!env) return {1, dump(err.to_json(kSpecVersion))};

  if (env->command == Command::kVersion) {
    // The configuration may be empty or just {"cniVersion": ...}.
    json j = {{"cniVersion", std::string(kSpecVersion)}, {"supportedVersions", supported_versions()}};
    return {0, dump(j)};
  }
  std::optional<NetConf> conf = parse_netconf(stdin_text, &err);
  if (!conf) {
    // Answer in the version asked for, when it is one we speak.
    std::string v = std::string(kSpecVersion);
    json j = json::parse(stdin_text, nullptr, false);
    if (j.is_object() && j.contains("cniVersion") && j["cniVersion"].is_string() &&
        version_supported(j["cniVersion"].get<std::string>())) {
      v = j["cniVersion"].get<std::string>();
    }
    return {1, dump(err.to_json(v))};
  }
  if ((env->command == Command::kStatus || env->command == Command::kGc) &&
      compare_versions(conf->cni_version, "1.1.0") < 0) {
    CniError e{kErrIncompatibleVersion, std::string(command_name(env->command)) + " needs cniVersion 1.1.0", ""};
    return {1, dump(e.to_json(conf->cni_version))};
  }
  if (conf->ipam && env->path.empty() && env->command != Command::kVersion) {
    CniError e{kErrInvalidEnv, "invalid or missing environment variables: CNI_PATH (needed for IPAM)", ""};
    return {1, dump(e.to_json(conf->cni_version))};
  }
  const std::string version = conf->cni_version;
  Plugin p(std::move(*env), std::move(*conf), self_path);
  json out;
  Err e;
  const std::string& cmd = envmap.at("CNI_COMMAND");
  if (cmd == "ADD") e = p.add(&out);
  if (cmd == "DEL") e = p.del();
  if (cmd == "CHECK") e = p.check();
  if (cmd == "STATUS") e = p.status();
  if (cmd == "GC") e = p.gc();
  if (e) return {1, dump(e->to_json(version))};
  return {0, cmd == "ADD" ? dump(out) : ""};
}

}  // namespace ferry::cni

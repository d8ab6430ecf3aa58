// The CNI protocol, without side effects: environment, network
// configuration, results and errors, as CNI spec 1.1.0 defines them (and
// 0.4.0 / 1.0.0, which a runtime may still send).
//
// Theory of operation: a runtime runs the plugin once per operation. The
// operation and the container come in the CNI_* environment (parse_env), the
// network configuration as one JSON object on stdin (parse_netconf), and the
// plugin answers on stdout with a result (CniResult::to_json) or an error
// object (CniError::to_json) and a non-zero exit status. Everything here is a
// pure function of its input, so the unit tests can cover each spec version
// without privileges.
//
// Versions: the configuration's cniVersion picks the format of the answer.
// 0.4.0 results carry "version" in every ips entry; 1.0.0 dropped it; 1.1.0
// adds STATUS, GC and a few optional fields (interface mtu, route mtu ...).
// STATUS and GC are refused for configurations older than 1.1.0 (error 1).
//
// Unknown configuration fields are ignored (the runtime injects some, other
// plugins in a list define their own), but a known field of the wrong type
// or out of range is error 7 naming the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec/addr.h"

namespace ferry::cni {

using json = nlohmann::json;

// The spec version ferry-cni speaks natively, and all it accepts.
inline constexpr std::string_view kSpecVersion = "1.1.0";
std::vector<std::string> supported_versions();
bool version_supported(std::string_view v);
// a < b for dotted versions ("0.4.0" < "1.0.0"); garbage compares as 0.0.0.
int compare_versions(std::string_view a, std::string_view b);

// ---- errors ------------------------------------------------------------------

// Well-known codes of the spec, and ferry's own (100 and up).
enum ErrorCode : unsigned {
  kErrIncompatibleVersion = 1,
  kErrUnsupportedField = 2,
  kErrUnknownContainer = 3,
  kErrInvalidEnv = 4,
  kErrIo = 5,
  kErrDecode = 6,
  kErrInvalidConfig = 7,
  kErrInvalidNetns = 8,
  kErrTryAgain = 11,
  kErrNotAvailable = 50,
  kErrNotAvailableLimited = 51,
  // ferry's own
  kErrFerryMissing = 100,     // the ferry binary is not there or not executable
  kErrAttachFailed = 101,     // `ferry attach` failed
  kErrDetachFailed = 102,     // `ferry detach` failed
  kErrLinkSetup = 103,        // creating or configuring the pod's link failed
  kErrIpamFailed = 104,       // the IPAM plugin failed without a CNI error of its own
  kErrStateIo = 105,          // the state directory could not be read or written
  kErrCheckInterface = 106,   // CHECK: interface or addresses not as ADD left them
  kErrCheckTranslator = 107,  // CHECK: translator dead or its programs not attached
  kErrNoHostInterface = 108,  // chained ADD: prevResult names no host-side interface
  kErrNoAttachment = 109,     // CHECK: ferry has no record of this attachment
};

struct CniError {
  unsigned code = 0;
  std::string msg;
  std::string details;
  // {"cniVersion", "code", "msg", "details"?}
  json to_json(std::string_view cni_version) const;
};

// ---- environment ----------------------------------------------------------------

enum class Command { kAdd, kDel, kCheck, kStatus, kGc, kVersion };
std::string_view command_name(Command c);

struct CniEnv {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string args;                   // CNI_ARGS, raw
  std::vector<std::string> path;      // CNI_PATH, split on ':'
};

// Reads the CNI_* variables from `env` (name -> value) and checks those the
// command needs; the error (code 4) names every bad variable.
std::optional<CniEnv> parse_env(const std::map<std::string, std::string>& env, CniError* err);

// The value of `key` in CNI_ARGS ("K1=V1;K2=V2"; keys are case-sensitive),
// nullopt when absent.
std::optional<std::string> cni_arg(std::string_view args, std::string_view key);
// The MAC a runtime asks for on the pod's interface: runtimeConfig.mac (the
// "mac" capability), else CNI_ARGS MAC= (how Podman 4 passes --mac-address).
// nullopt with *err unset when none is asked for; a CNI_ARGS MAC that is not
// a unicast address sets *err (code 4).
std::optional<MacAddr> requested_mac(const std::optional<MacAddr>& runtime_mac, std::string_view args,
                                     CniError* err);

// Container IDs: alphanumerics, '_', '-', '.', starting alphanumeric (spec).
bool valid_container_id(std::string_view id);
// Interface names: 1-15 bytes, no '/', ':' or whitespace, not "." / "..".
bool valid_ifname(std::string_view name);
// Network names: as container IDs.
bool valid_network_name(std::string_view name);

// ---- configuration ---------------------------------------------------------------

struct PortMapping {
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string protocol = "tcp";  // "tcp" or "udp"
  std::string host_ip;           // empty: all addresses
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const { return nameservers.empty() && domain.empty() && search.empty() && options.empty(); }
  json to_json() const;
  static Dns from_json(const json& j);
};

// How the fast path is used: when available (auto), never (off), or the
// plugin refuses to work without it (require).
enum class Fastpath { kAuto, kOff, kRequire };

struct Attachment {
  std::string container_id;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};

struct NetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  // ferry's fields
  unsigned mtu = 0;            // 0: the default (1500) for a link ferry makes
  // Per-pod limits: a pod is a tenant, so modest by default (ferry attach's
  // own defaults are 131072 and 8192, about 23 MB of BPF maps per pod).
  unsigned max_conns = 4096;      // ferry attach --max-conns
  unsigned max_udp_flows = 512;   // ferry attach --max-udp-flows
  std::string memory_max = "256M";  // ferry attach --memory-max (its own cgroup, on cgroup v2)
  Fastpath fastpath = Fastpath::kAuto;
  std::string hook;            // "", "xdp" or "tc": handed to `ferry attach --hook`
  bool map_gateway = false;    // gateway address -> host loopback (off for pods: the node's loopback is not theirs)
  std::string map_gateway_ports;  // "53,8000-8080": the ports the mapping opens ("" all)
  bool allow_node = false;     // the node's own addresses are reachable
  std::vector<std::string> allow, deny;  // --allow / --deny rules, CIDR[:PORTS]
  std::optional<uint32_t> socket_mark;   // SO_MARK; unset: derived from the attachment (socket_mark_for)
  std::string ferry_path;      // the ferry binary; "" = beside ferry-cni, then PATH
  std::string state_dir = "/run/ferry-cni";  // not under /run/ferry: that holds one dir per attached device
  std::vector<std::string> tcp_ports;  // static -t specs, passt syntax
  std::vector<std::string> udp_ports;  // static -u specs
  Dns dns;
  // guest services (`ferry attach --no-dhcp` ...): on unless false
  bool dhcp = true, ra = true, dhcpv6 = true, dns_forward = true;
  std::string dns_forward_addr;  // "dnsForward": "ADDR" (--dns-forward)
  // delegated IPAM: the object and its type ("" = none: ferry's defaults)
  std::optional<json> ipam;
  std::string ipam_type;
  // capabilities (runtimeConfig)
  std::vector<PortMapping> port_mappings;
  std::optional<MacAddr> mac;  // "mac" (podman --mac-address): the pod interface's, main mode only
  // chaining and GC
  std::optional<json> prev_result;
  std::vector<Attachment> valid_attachments;  // cni.dev/valid-attachments
  bool has_valid_attachments = false;
  json raw;  // the configuration as received (handed to IPAM verbatim)
};

// Parses and validates stdin. Decode errors are code 6, bad values code 7,
// an unsupported cniVersion code 1.
std::optional<NetConf> parse_netconf(std::string_view text, CniError* err);

// ---- results ------------------------------------------------------------------------

struct CniInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // empty: host side
  unsigned mtu = 0;     // 1.1.0 only; 0: not reported
};

struct CniIp {
  InetPrefix address;
  std::optional<InetAddr> gateway;
  std::optional<int> interface;  // index into interfaces
};

struct CniRoute {
  InetPrefix dst;
  std::optional<InetAddr> gw;
};

struct CniResult {
  std::vector<CniInterface> interfaces;
  std::vector<CniIp> ips;
  std::vector<CniRoute> routes;
  Dns dns;
  // In the format of `cni_version`.
  json to_json(std::string_view cni_version) const;
  // Reads a result of any supported version (a prevResult, an IPAM answer).
  static std::optional<CniResult> from_json(const json& j, std::string* error);
};

// ---- ferry specifics (pure) ---------------------------------------------------------

// FNV-1a 64 of network, container ID and ifname, as 16 hex digits: the key
// of an attachment's state file.
std::string attachment_key(std::string_view network, std::string_view container_id, std::string_view ifname);
// The host end of the veth ferry creates for an attachment: "fy" + 13 hex
// digits of the key (15 bytes, IFNAMSIZ-1).
std::string host_ifname_for(std::string_view key);

// What `ferry attach` is told about the pod.
struct AttachPlan {
  std::string device;
  std::optional<InetPrefix> addr4, addr6;
  std::optional<InetAddr> gw4, gw6;
  unsigned mtu = 0;
  unsigned max_conns = 0, max_udp_flows = 0;  // 0: ferry attach's defaults
  std::string memory_max;                     // "": ferry attach's default
  std::vector<std::string> tcp_specs, udp_specs;
  bool fastpath = true;
  std::string hook;
  bool map_gateway = false;
  std::string map_gateway_ports;
  bool allow_node = false;
  std::vector<std::string> allow, deny;
  uint32_t socket_mark = 0;
  bool force = false;  // chained: DEV was verified as the pod's veth peer (it may be a bridge port or hold an address)
  std::string guest_mac;  // the pod interface's MAC ("" unknown): --guest-mac
  // What ferry's DHCP/RA/DHCPv6 hand out: the result's DNS and IPv4 routes.
  bool dhcp = true, ra = true, dhcpv6 = true, dns_forward = true;
  std::string dns_forward_addr;
  std::vector<std::string> dns_servers;  // --dns
  std::vector<std::string> search;       // --search
  std::string domain;                    // --domain
  std::vector<std::string> routes4;      // --route DST/LEN,GW (not the default route)
};

// Fills the plan's guest-service fields from the configuration and what
// the pod is given: its DNS (nameservers that are addresses, search list,
// domain) and its IPv4 routes other than the default.
void plan_guest_services(AttachPlan* plan, const NetConf& conf, const Dns& dns, const std::vector<CniRoute>& routes);

// The default SO_MARK of an attachment: 0x6MMM0000, MMM 12 bits of the key.
// Bits 0-15 stay clear (kube-proxy marks packets with 0x4000 and 0x8000).
uint32_t socket_mark_for(std::string_view key);

// The argv (without the binary) of `ferry attach` for a plan.
std::vector<std::string> attach_argv(const AttachPlan& p);
// A portMappings entry as a passt-style spec: "[HOSTIP/]HOSTPORT:PODPORT".
std::string port_mapping_spec(const PortMapping& m);
// The gateway ferry answers for when IPAM gave none: the first host address
// of the prefix, or the second when the pod has the first.
InetAddr default_gateway_for(const InetPrefix& p);

}  // namespace ferry::cni

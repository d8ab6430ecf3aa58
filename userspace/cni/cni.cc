// The CNI protocol without side effects: see cni.h for the theory of
// operation. Every accessor of the configuration checks the JSON type first
// (nlohmann throws on a type mismatch; nothing here lets it throw).
#include "cni/cni.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <tuple>

#include "policy/rules.h"

namespace ferry::cni {

namespace {

// Splits "1.10.0" into numbers; missing or garbage parts are 0.
std::array<unsigned, 3> version_parts(std::string_view v) {
  std::array<unsigned, 3> out{};
  for (size_t i = 0; i < out.size() && !v.empty(); i++) {
    size_t dot = v.find('.');
    std::string_view part = v.substr(0, dot);
    unsigned n = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (ec == std::errc() && p == part.data() + part.size()) out[i] = n;
    v = dot == std::string_view::npos ? std::string_view{} : v.substr(dot + 1);
  }
  return out;
}

// The error for a configuration field that is present but wrong.
bool bad_field(CniError* err, const std::string& field, const std::string& why) {
  *err = {kErrInvalidConfig, "invalid network configuration: " + field + ": " + why, ""};
  return false;
}

// A string list field (absent is fine, empty list is fine).
bool read_string_list(const json& obj, const char* key, std::vector<std::string>* out, CniError* err,
                      const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_array()) return bad_field(err, where + key, "must be a list of strings");
  for (const json& e : *it) {
    if (!e.is_string()) return bad_field(err, where + key, "must be a list of strings");
    out->push_back(e.get<std::string>());
  }
  return true;
}

// An unsigned integer field in [lo, hi].
bool read_uint(const json& obj, const char* key, unsigned lo, unsigned hi, unsigned* out, CniError* err,
               const std::string& where = "") {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi) {
    return bad_field(err, where + key,
                     "must be an integer in " + std::to_string(lo) + "-" + std::to_string(hi));
  }
  *out = static_cast<unsigned>(it->get<long long>());
  return true;
}

// One runtimeConfig.portMappings entry.
bool read_port_mapping(const json& e, PortMapping* m, CniError* err) {
  const std::string where = "runtimeConfig.portMappings[].";
  if (!e.is_object()) return bad_field(err, "runtimeConfig.portMappings", "entries must be objects");
  unsigned host = 0, pod = 0;
  if (!e.contains("hostPort") || !e.contains("containerPort")) {
    return bad_field(err, "runtimeConfig.portMappings", "entries need hostPort and containerPort");
  }
  if (!read_uint(e, "hostPort", 1, 65535, &host, err, where)) return false;
  if (!read_uint(e, "containerPort", 1, 65535, &pod, err, where)) return false;
  m->host_port = static_cast<uint16_t>(host);
  m->container_port = static_cast<uint16_t>(pod);
  if (auto it = e.find("protocol"); it != e.end() && !it->is_null()) {
    if (!it->is_string()) return bad_field(err, where + "protocol", "must be \"tcp\" or \"udp\"");
    std::string proto = it->get<std::string>();
    for (char& c : proto) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (proto != "tcp" && proto != "udp") return bad_field(err, where + "protocol", "must be \"tcp\" or \"udp\"");
    m->protocol = proto;
  }
  if (auto it = e.find("hostIP"); it != e.end() && !it->is_null()) {
    if (!it->is_string()) return bad_field(err, where + "hostIP", "must be an address");
    std::string ip = it->get<std::string>();
    if (!ip.empty() && !InetAddr::parse(ip)) return bad_field(err, where + "hostIP", "'" + ip + "' is not an address");
    m->host_ip = ip;
  }
  return true;
}

// Parses "addr/len" into a prefix (the address is kept as given, not masked).
std::optional<InetPrefix> prefix_from(const json& j) {
  if (!j.is_string()) return std::nullopt;
  return InetPrefix::parse(j.get<std::string>());
}

// Parses an address string.
std::optional<InetAddr> addr_from(const json& j) {
  if (!j.is_string()) return std::nullopt;
  return InetAddr::parse(j.get<std::string>());
}

// The spec's character set for IDs and names.
bool valid_id(std::string_view s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// The hex digits of a 64-bit number.
std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

// ---- versions ---------------------------------------------------------------------

// 0.4.0 is the first with CHECK; older ones are refused.
std::vector<std::string> supported_versions() { return {"0.4.0", "1.0.0", "1.1.0"}; }

bool version_supported(std::string_view v) {
  for (const std::string& s : supported_versions()) {
    if (s == v) return true;
  }
  return false;
}

int compare_versions(std::string_view a, std::string_view b) {
  auto pa = version_parts(a), pb = version_parts(b);
  if (pa < pb) return -1;
  return pa == pb ? 0 : 1;
}

// ---- errors ---------------------------------------------------------------------------

json CniError::to_json(std::string_view cni_version) const {
  json j = {{"cniVersion", cni_version.empty() ? std::string(kSpecVersion) : std::string(cni_version)},
            {"code", code},
            {"msg", msg}};
  if (!details.empty()) j["details"] = details;
  return j;
}

// ---- environment ------------------------------------------------------------------------

std::string_view command_name(Command c) {
  switch (c) {
    case Command::kAdd: return "ADD";
    case Command::kDel: return "DEL";
    case Command::kCheck: return "CHECK";
    case Command::kStatus: return "STATUS";
    case Command::kGc: return "GC";
    case Command::kVersion: return "VERSION";
  }
  return "?";
}

std::optional<std::string> cni_arg(std::string_view args, std::string_view key) {
  while (!args.empty()) {
    const size_t semi = args.find(';');
    std::string_view kv = args.substr(0, semi);
    args = semi == std::string_view::npos ? std::string_view() : args.substr(semi + 1);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return std::string(kv.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<MacAddr> requested_mac(const std::optional<MacAddr>& runtime_mac, std::string_view args,
                                     CniError* err) {
  if (runtime_mac) return runtime_mac;
  std::optional<std::string> text = cni_arg(args, "MAC");
  if (!text) return std::nullopt;
  std::optional<MacAddr> m = MacAddr::parse(*text);
  if (!m || m->is_multicast() || *m == MacAddr{}) {
    *err = {kErrInvalidEnv, "CNI_ARGS: MAC=" + *text + " is not a unicast MAC address", ""};
    return std::nullopt;
  }
  return m;
}

bool valid_container_id(std::string_view id) { return valid_id(id); }
bool valid_network_name(std::string_view name) { return valid_id(name); }

bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\0') return false;
  }
  return true;
}

// Per-command requirements follow the spec's table of parameters.
std::optional<CniEnv> parse_env(const std::map<std::string, std::string>& env, CniError* err) {
  auto get = [&](const char* k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  CniEnv e;
  std::vector<std::string> bad;
  std::optional<std::string> cmd = get("CNI_COMMAND");
  static const std::pair<const char*, Command> kCommands[] = {
      {"ADD", Command::kAdd},       {"DEL", Command::kDel}, {"CHECK", Command::kCheck},
      {"STATUS", Command::kStatus}, {"GC", Command::kGc},   {"VERSION", Command::kVersion}};
  bool known = false;
  for (auto [name, c] : kCommands) {
    if (cmd && *cmd == name) {
      e.command = c;
      known = true;
    }
  }
  if (!known) {
    *err = {kErrInvalidEnv, "CNI_COMMAND is " + (cmd ? "'" + *cmd + "'" : std::string("unset")) +
                                " (want ADD, DEL, CHECK, STATUS, GC or VERSION)", ""};
    return std::nullopt;
  }
  const bool per_container = e.command == Command::kAdd || e.command == Command::kDel || e.command == Command::kCheck;
  if (per_container) {
    e.container_id = get("CNI_CONTAINERID").value_or("");
    if (!valid_container_id(e.container_id)) bad.push_back("CNI_CONTAINERID");
    e.ifname = get("CNI_IFNAME").value_or("");
    if (!valid_ifname(e.ifname)) bad.push_back("CNI_IFNAME");
    e.netns = get("CNI_NETNS").value_or("");
    // DEL may come after the namespace is gone: then CNI_NETNS may be empty.
    if (e.command != Command::kDel && (e.netns.empty() || e.netns[0] != '/')) bad.push_back("CNI_NETNS");
    if (e.command == Command::kDel && !e.netns.empty() && e.netns[0] != '/') bad.push_back("CNI_NETNS");
    e.args = get("CNI_ARGS").value_or("");
  }
  if (std::optional<std::string> p = get("CNI_PATH")) {
    std::string_view rest = *p;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      if (!dir.empty()) e.path.emplace_back(dir);
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  if (per_container && e.path.empty()) bad.push_back("CNI_PATH");
  if (!bad.empty()) {
    std::string names;
    for (const std::string& b : bad) names += (names.empty() ? "" : ", ") + b;
    *err = {kErrInvalidEnv, "invalid or missing environment variables: " + names, ""};
    return std::nullopt;
  }
  return e;
}

// ---- configuration -------------------------------------------------------------------------

json Dns::to_json() const {
  json j = json::object();
  if (!nameservers.empty()) j["nameservers"] = nameservers;
  if (!domain.empty()) j["domain"] = domain;
  if (!search.empty()) j["search"] = search;
  if (!options.empty()) j["options"] = options;
  return j;
}

// Lenient: fields of the wrong type are skipped (results come from other
// plugins; configuration DNS is checked in parse_netconf).
Dns Dns::from_json(const json& j) {
  Dns d;
  if (!j.is_object()) return d;
  auto list = [&](const char* k, std::vector<std::string>* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_array()) return;
    for (const json& e : *it) {
      if (e.is_string()) out->push_back(e.get<std::string>());
    }
  };
  list("nameservers", &d.nameservers);
  list("search", &d.search);
  list("options", &d.options);
  if (auto it = j.find("domain"); it != j.end() && it->is_string()) d.domain = it->get<std::string>();
  return d;
}

std::optional<NetConf> parse_netconf(std::string_view text, CniError* err) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    *err = {kErrDecode, "cannot decode the network configuration: not JSON", ""};
    return std::nullopt;
  }
  if (!j.is_object()) {
    *err = {kErrDecode, "cannot decode the network configuration: not a JSON object", ""};
    return std::nullopt;
  }
  NetConf c;
  c.raw = j;
  // cniVersion first: it decides how every other error is reported.
  auto ver = j.find("cniVersion");
  if (ver == j.end() || !ver->is_string()) {
    *err = {kErrIncompatibleVersion, "cniVersion is missing (supported: 0.4.0, 1.0.0, 1.1.0)", ""};
    return std::nullopt;
  }
  c.cni_version = ver->get<std::string>();
  if (!version_supported(c.cni_version)) {
    *err = {kErrIncompatibleVersion,
            "incompatible CNI version " + c.cni_version + " (supported: 0.4.0, 1.0.0, 1.1.0)", ""};
    return std::nullopt;
  }
  auto str = [&](const char* k, std::string* out, bool required) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) {
      if (required) return bad_field(err, k, "missing");
      return true;
    }
    if (!it->is_string()) return bad_field(err, k, "must be a string");
    *out = it->get<std::string>();
    return true;
  };
  if (!str("name", &c.name, true) || !str("type", &c.type, false)) return std::nullopt;
  if (!valid_network_name(c.name)) {
    bad_field(err, "name", "'" + c.name + "' must be alphanumerics, '_', '-' or '.'");
    return std::nullopt;
  }
  if (!read_uint(j, "mtu", 0, 65520, &c.mtu, err)) return std::nullopt;  // ferry attach -m: up to 65520
  if (!read_uint(j, "maxConns", 16, 262144, &c.max_conns, err)) return std::nullopt;
  if (!read_uint(j, "maxUdpFlows", 1, 65536, &c.max_udp_flows, err)) return std::nullopt;
  if (auto it = j.find("memoryMax"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty() ||
        it->get<std::string>().find_first_not_of("0123456789KMGkmgax") != std::string::npos) {
      bad_field(err, "memoryMax", "must be a size such as \"256M\", or \"max\"");
      return std::nullopt;
    }
    c.memory_max = it->get<std::string>();
  }
  if (c.mtu != 0 && c.mtu < 1280) {
    bad_field(err, "mtu", "must be at least 1280 (IPv6's minimum)");
    return std::nullopt;
  }
  if (auto it = j.find("fastpath"); it != j.end() && !it->is_null()) {
    if (it->is_boolean()) {
      c.fastpath = it->get<bool>() ? Fastpath::kAuto : Fastpath::kOff;
    } else if (it->is_string() && *it == "auto") {
      c.fastpath = Fastpath::kAuto;
    } else if (it->is_string() && *it == "off") {
      c.fastpath = Fastpath::kOff;
    } else if (it->is_string() && *it == "require") {
      c.fastpath = Fastpath::kRequire;
    } else {
      bad_field(err, "fastpath", "must be true, false, \"auto\", \"off\" or \"require\"");
      return std::nullopt;
    }
  }
  if (!str("hook", &c.hook, false)) return std::nullopt;
  if (!c.hook.empty() && c.hook != "xdp" && c.hook != "tc") {
    bad_field(err, "hook", "must be \"xdp\" or \"tc\"");
    return std::nullopt;
  }
  // The destination policy: mapGateway (false, true or a list of ports),
  // allowNode, allow, deny, socketMark.
  if (auto it = j.find("mapGateway"); it != j.end() && !it->is_null()) {
    if (it->is_boolean()) {
      c.map_gateway = it->get<bool>();
    } else if (it->is_array() && !it->empty()) {
      std::string ports;
      for (const json& p : *it) {
        if (p.is_number_unsigned() && p.get<uint64_t>() >= 1 && p.get<uint64_t>() <= 65535) {
          ports += (ports.empty() ? "" : ",") + std::to_string(p.get<uint64_t>());
        } else if (p.is_string() && !p.get<std::string>().empty() &&
                   p.get<std::string>().find_first_not_of("0123456789-") == std::string::npos) {
          ports += (ports.empty() ? "" : ",") + p.get<std::string>();
        } else {
          bad_field(err, "mapGateway", "ports must be numbers 1-65535 or \"FIRST-LAST\" strings");
          return std::nullopt;
        }
      }
      std::vector<DestinationRule> check;
      if (!parse_destination_rules("0.0.0.0/0:" + ports, true, &check).ok()) {
        bad_field(err, "mapGateway", "bad ports '" + ports + "'");
        return std::nullopt;
      }
      c.map_gateway = true;
      c.map_gateway_ports = ports;
    } else {
      bad_field(err, "mapGateway", "must be true, false or a non-empty list of ports");
      return std::nullopt;
    }
  }
  if (auto it = j.find("allowNode"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      bad_field(err, "allowNode", "must be true or false");
      return std::nullopt;
    }
    c.allow_node = it->get<bool>();
  }
  if (!read_string_list(j, "allow", &c.allow, err, "") || !read_string_list(j, "deny", &c.deny, err, "")) {
    return std::nullopt;
  }
  for (const auto& [field, list, allow] : {std::tuple{"allow", &c.allow, true}, std::tuple{"deny", &c.deny, false}}) {
    for (const std::string& r : *list) {
      std::vector<DestinationRule> check;
      if (Status st = parse_destination_rules(r, allow, &check); !st.ok()) {
        bad_field(err, field, st.message());
        return std::nullopt;
      }
    }
  }
  if (auto it = j.find("socketMark"); it != j.end() && !it->is_null()) {
    if (it->is_boolean() && !it->get<bool>()) {
      c.socket_mark = 0;  // false: no mark
    } else if (it->is_number_unsigned() && it->get<uint64_t>() <= 0xffffffffu) {
      c.socket_mark = static_cast<uint32_t>(it->get<uint64_t>());
    } else {
      bad_field(err, "socketMark", "must be a number 0-4294967295, or false for none");
      return std::nullopt;
    }
  }
  for (auto [field, flag] : {std::pair{"dhcp", &c.dhcp}, {"ra", &c.ra}, {"dhcpv6", &c.dhcpv6}}) {
    if (auto it = j.find(field); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) {
        bad_field(err, field, "must be true or false");
        return std::nullopt;
      }
      *flag = it->get<bool>();
    }
  }
  if (auto it = j.find("dnsForward"); it != j.end() && !it->is_null()) {
    if (it->is_boolean()) {
      c.dns_forward = it->get<bool>();
    } else if (it->is_string() && InetAddr::parse(it->get<std::string>())) {
      c.dns_forward_addr = InetAddr::parse(it->get<std::string>())->str();
    } else {
      bad_field(err, "dnsForward", "must be true, false or an IP address");
      return std::nullopt;
    }
  }
  if (!str("ferryPath", &c.ferry_path, false) || !str("stateDir", &c.state_dir, false)) return std::nullopt;
  if (c.state_dir.empty() || c.state_dir[0] != '/') {
    bad_field(err, "stateDir", "must be an absolute path");
    return std::nullopt;
  }
  if (!c.ferry_path.empty() && c.ferry_path[0] != '/') {
    bad_field(err, "ferryPath", "must be an absolute path");
    return std::nullopt;
  }
  if (!read_string_list(j, "tcpPorts", &c.tcp_ports, err, "") ||
      !read_string_list(j, "udpPorts", &c.udp_ports, err, "")) {
    return std::nullopt;
  }
  if (auto it = j.find("dns"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      bad_field(err, "dns", "must be an object");
      return std::nullopt;
    }
    if (!read_string_list(*it, "nameservers", &c.dns.nameservers, err, "dns.") ||
        !read_string_list(*it, "search", &c.dns.search, err, "dns.") ||
        !read_string_list(*it, "options", &c.dns.options, err, "dns.")) {
      return std::nullopt;
    }
    if (auto d = it->find("domain"); d != it->end() && !d->is_null()) {
      if (!d->is_string()) {
        bad_field(err, "dns.domain", "must be a string");
        return std::nullopt;
      }
      c.dns.domain = d->get<std::string>();
    }
  }
  if (auto it = j.find("ipam"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      bad_field(err, "ipam", "must be an object");
      return std::nullopt;
    }
    // An empty object is "no IPAM", as the reference plugins treat it.
    if (!it->empty()) {
      auto t = it->find("type");
      if (t == it->end() || !t->is_string() || t->get<std::string>().empty()) {
        bad_field(err, "ipam.type", "missing");
        return std::nullopt;
      }
      c.ipam_type = t->get<std::string>();
      if (c.ipam_type.find('/') != std::string::npos || c.ipam_type == "." || c.ipam_type == "..") {
        bad_field(err, "ipam.type", "must be a plugin name, not a path");
        return std::nullopt;
      }
      c.ipam = *it;
    }
  }
  if (auto it = j.find("runtimeConfig"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      bad_field(err, "runtimeConfig", "must be an object");
      return std::nullopt;
    }
    if (auto pm = it->find("portMappings"); pm != it->end() && !pm->is_null()) {
      if (!pm->is_array()) {
        bad_field(err, "runtimeConfig.portMappings", "must be a list");
        return std::nullopt;
      }
      for (const json& e : *pm) {
        PortMapping m;
        if (!read_port_mapping(e, &m, err)) return std::nullopt;
        c.port_mappings.push_back(m);
      }
    }
    // The "mac" capability (as the bridge and tuning plugins take it): a
    // unicast address other than all zeros.
    if (auto mac = it->find("mac"); mac != it->end() && !mac->is_null()) {
      std::optional<MacAddr> m = mac->is_string() ? MacAddr::parse(mac->get<std::string>()) : std::nullopt;
      if (!m || m->is_multicast() || *m == MacAddr{}) {
        bad_field(err, "runtimeConfig.mac", "must be a unicast MAC address (\"02:00:00:00:00:01\")");
        return std::nullopt;
      }
      c.mac = m;
    }
  }
  if (auto it = j.find("prevResult"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      bad_field(err, "prevResult", "must be an object");
      return std::nullopt;
    }
    c.prev_result = *it;
  }
  // 1.1.0 names it cni.dev/valid-attachments; libcni also sends the name
  // an earlier draft used.
  for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null() || c.has_valid_attachments) continue;
    if (!it->is_array()) {
      bad_field(err, key, "must be a list");
      return std::nullopt;
    }
    c.has_valid_attachments = true;
    for (const json& e : *it) {
      auto id = e.is_object() ? e.find("containerID") : e.end();
      auto ifn = e.is_object() ? e.find("ifname") : e.end();
      if (!e.is_object() || id == e.end() || ifn == e.end() || !id->is_string() || !ifn->is_string()) {
        bad_field(err, key, "entries must be {\"containerID\": ..., \"ifname\": ...}");
        return std::nullopt;
      }
      c.valid_attachments.push_back({id->get<std::string>(), ifn->get<std::string>()});
    }
  }
  return c;
}

// ---- results -----------------------------------------------------------------------

json CniResult::to_json(std::string_view cni_version) const {
  const bool v04 = compare_versions(cni_version, "1.0.0") < 0;
  const bool v11 = compare_versions(cni_version, "1.1.0") >= 0;
  json j = {{"cniVersion", std::string(cni_version)}};
  json ifs = json::array();
  for (const CniInterface& i : interfaces) {
    json o = {{"name", i.name}};
    if (!i.mac.empty()) o["mac"] = i.mac;
    if (v11 && i.mtu != 0) o["mtu"] = i.mtu;
    if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
    ifs.push_back(o);
  }
  j["interfaces"] = ifs;
  json ipl = json::array();
  for (const CniIp& ip : ips) {
    json o = json::object();
    if (v04) o["version"] = ip.address.addr.is_v4() ? "4" : "6";
    o["address"] = ip.address.str();
    if (ip.gateway) o["gateway"] = ip.gateway->str();
    if (ip.interface) o["interface"] = *ip.interface;
    ipl.push_back(o);
  }
  j["ips"] = ipl;
  json rl = json::array();
  for (const CniRoute& r : routes) {
    json o = {{"dst", r.dst.str()}};
    if (r.gw) o["gw"] = r.gw->str();
    rl.push_back(o);
  }
  j["routes"] = rl;
  j["dns"] = dns.to_json();
  return j;
}

std::optional<CniResult> CniResult::from_json(const json& j, std::string* error) {
  if (!j.is_object()) {
    *error = "result is not a JSON object";
    return std::nullopt;
  }
  CniResult r;
  if (auto it = j.find("interfaces"); it != j.end() && it->is_array()) {
    for (const json& e : *it) {
      if (!e.is_object()) continue;
      CniInterface i;
      if (auto n = e.find("name"); n != e.end() && n->is_string()) i.name = n->get<std::string>();
      if (auto m = e.find("mac"); m != e.end() && m->is_string()) i.mac = m->get<std::string>();
      if (auto s = e.find("sandbox"); s != e.end() && s->is_string()) i.sandbox = s->get<std::string>();
      if (auto m = e.find("mtu"); m != e.end() && m->is_number_unsigned()) i.mtu = m->get<unsigned>();
      r.interfaces.push_back(i);
    }
  }
  if (auto it = j.find("ips"); it != j.end() && it->is_array()) {
    for (const json& e : *it) {
      if (!e.is_object() || !e.contains("address")) {
        *error = "ips entry without an address";
        return std::nullopt;
      }
      CniIp ip;
      std::optional<InetPrefix> p = prefix_from(e["address"]);
      if (!p) {
        *error = "bad ips address " + e["address"].dump();
        return std::nullopt;
      }
      ip.address = *p;
      if (auto g = e.find("gateway"); g != e.end() && !g->is_null()) {
        ip.gateway = addr_from(*g);
        if (!ip.gateway) {
          *error = "bad ips gateway " + g->dump();
          return std::nullopt;
        }
      }
      if (auto n = e.find("interface"); n != e.end() && n->is_number_integer()) {
        long long idx = n->get<long long>();
        if (idx < 0 || static_cast<size_t>(idx) >= r.interfaces.size()) {
          *error = "ips interface index " + std::to_string(idx) + " out of range";
          return std::nullopt;
        }
        ip.interface = static_cast<int>(idx);
      }
      r.ips.push_back(ip);
    }
  }
  if (auto it = j.find("routes"); it != j.end() && it->is_array()) {
    for (const json& e : *it) {
      if (!e.is_object()) continue;
      CniRoute rt;
      std::optional<InetPrefix> d = e.contains("dst") ? prefix_from(e["dst"]) : std::nullopt;
      if (!d) {
        *error = "route without a valid dst";
        return std::nullopt;
      }
      rt.dst = *d;
      if (auto g = e.find("gw"); g != e.end() && !g->is_null()) {
        rt.gw = addr_from(*g);
        if (!rt.gw) {
          *error = "bad route gw " + g->dump();
          return std::nullopt;
        }
      }
      r.routes.push_back(rt);
    }
  }
  if (auto it = j.find("dns"); it != j.end()) r.dns = Dns::from_json(*it);
  return r;
}

// ---- ferry specifics --------------------------------------------------------------------

std::string attachment_key(std::string_view network, std::string_view container_id, std::string_view ifname) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ULL;
    }
    h ^= 0xff;  // separator: ("ab","c") and ("a","bc") differ
    h *= 0x100000001b3ULL;
  };
  mix(network);
  mix(container_id);
  mix(ifname);
  return hex64(h);
}

std::string host_ifname_for(std::string_view key) { return "fy" + std::string(key.substr(0, 13)); }

uint32_t socket_mark_for(std::string_view key) {
  // The key is 16 hex digits (FNV-1a 64): its last three pick MMM.
  uint32_t v = 0;
  const std::string_view tail = key.size() >= 3 ? key.substr(key.size() - 3) : key;
  (void)std::from_chars(tail.data(), tail.data() + tail.size(), v, 16);
  return 0x60000000u | ((v & 0xfffu) << 16);
}

std::string port_mapping_spec(const PortMapping& m) {
  std::string s;
  if (!m.host_ip.empty()) {
    auto a = InetAddr::parse(m.host_ip);
    if (a && !a->is_unspecified()) s = a->str() + "/";
  }
  return s + std::to_string(m.host_port) + ":" + std::to_string(m.container_port);
}

std::vector<std::string> attach_argv(const AttachPlan& p) {
  std::vector<std::string> a = {"attach", p.device};
  if (p.addr4) a.insert(a.end(), {"-a", p.addr4->str()});
  if (p.gw4) a.insert(a.end(), {"-g", p.gw4->str()});
  if (p.addr6) a.insert(a.end(), {"-a", p.addr6->str()});
  if (p.gw6) a.insert(a.end(), {"-g", p.gw6->str()});
  if (p.addr4 && !p.addr6) a.push_back("-4");
  if (p.addr6 && !p.addr4) a.push_back("-6");
  if (p.mtu != 0) a.insert(a.end(), {"-m", std::to_string(p.mtu)});
  if (p.max_conns != 0) a.insert(a.end(), {"--max-conns", std::to_string(p.max_conns)});
  if (p.max_udp_flows != 0) a.insert(a.end(), {"--max-udp-flows", std::to_string(p.max_udp_flows)});
  if (!p.memory_max.empty()) a.insert(a.end(), {"--memory-max", p.memory_max});
  for (const std::string& t : p.tcp_specs) a.insert(a.end(), {"-t", t});
  for (const std::string& u : p.udp_specs) a.insert(a.end(), {"-u", u});
  if (!p.map_gateway) a.push_back("--no-map-gw");
  if (!p.guest_mac.empty()) a.insert(a.end(), {"--guest-mac", p.guest_mac});
  if (p.map_gateway && !p.map_gateway_ports.empty()) a.insert(a.end(), {"--map-gw-ports", p.map_gateway_ports});
  a.push_back(p.allow_node ? "--node" : "--no-node");
  for (const std::string& r : p.allow) a.insert(a.end(), {"--allow", r});
  for (const std::string& r : p.deny) a.insert(a.end(), {"--deny", r});
  if (p.socket_mark != 0) a.insert(a.end(), {"--mark", std::to_string(p.socket_mark)});
  if (p.force) a.push_back("--force");
  if (!p.fastpath) a.push_back("--no-fastpath");
  if (!p.hook.empty()) a.insert(a.end(), {"--hook", p.hook});
  if (!p.dhcp) a.push_back("--no-dhcp");
  if (!p.ra) a.push_back("--no-ra");
  if (!p.dhcpv6) a.push_back("--no-dhcpv6");
  if (!p.dns_forward) a.push_back("--no-dns");
  if (!p.dns_forward_addr.empty()) a.insert(a.end(), {"--dns-forward", p.dns_forward_addr});
  for (const std::string& d : p.dns_servers) a.insert(a.end(), {"--dns", d});
  if (!p.search.empty()) {
    std::string list;
    for (const std::string& s : p.search) list += (list.empty() ? "" : ",") + s;
    a.insert(a.end(), {"--search", list});
  }
  if (!p.domain.empty()) a.insert(a.end(), {"--domain", p.domain});
  for (const std::string& r : p.routes4) a.insert(a.end(), {"--route", r});
  return a;
}

void plan_guest_services(AttachPlan* plan, const NetConf& conf, const Dns& dns, const std::vector<CniRoute>& routes) {
  plan->dhcp = conf.dhcp;
  plan->ra = conf.ra;
  plan->dhcpv6 = conf.dhcpv6;
  plan->dns_forward = conf.dns_forward;
  plan->dns_forward_addr = conf.dns_forward_addr;
  for (const std::string& n : dns.nameservers) {
    if (auto a = InetAddr::parse(n); a && !a->is_unspecified()) plan->dns_servers.push_back(a->str());
  }
  // A search domain ferry could not hand out (empty, a space, a comma) stays in the result only.
  auto plain = [](const std::string& d) { return !d.empty() && d.find_first_of(" ,\t") == std::string::npos; };
  for (const std::string& s : dns.search)
    if (plain(s)) plan->search.push_back(s);
  if (plain(dns.domain)) plan->domain = dns.domain;
  for (const CniRoute& r : routes) {
    if (!r.dst.addr.is_v4() || r.dst.len == 0 || !r.gw || !r.gw->is_v4()) continue;
    plan->routes4.push_back(r.dst.str() + "," + r.gw->str());
  }
}

InetAddr default_gateway_for(const InetPrefix& p) {
  // Network address of the prefix, then +1 (or +2 when that is the pod).
  InetAddr net = p.addr;
  const unsigned bits = p.addr.is_v4() ? 96 + p.len : p.len;
  for (unsigned i = 0; i < 128; i++) {
    if (i >= bits) net.b[i / 8] = static_cast<uint8_t>(net.b[i / 8] & ~(0x80u >> (i % 8)));
  }
  auto plus = [](InetAddr a, unsigned n) {
    for (int i = 15; i >= 0 && n != 0; i--) {
      unsigned v = a.b[static_cast<size_t>(i)] + n;
      a.b[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
      n = v >> 8;
    }
    return a;
  };
  InetAddr gw = plus(net, 1);
  if (gw == p.addr) gw = plus(net, 2);
  return gw;
}

}  // namespace ferry::cni

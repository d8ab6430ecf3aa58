// ferry-cni's commands: ADD, DEL, CHECK, STATUS, GC and VERSION.
//
// Theory of operation. The runtime calls the plugin once per operation
// (cni.h). run_plugin() decodes the environment and the configuration and
// dispatches:
//
//   main mode (no prevResult on ADD): ferry makes the pod's link itself, a
//   veth pair. The host end is named fy<13 hex digits of the attachment key>
//   (deterministic, so even a DEL without state finds it); the peer is
//   created directly inside CNI_NETNS under CNI_IFNAME, so it never exists
//   in the host namespace under a name that could collide. Addresses come
//   from the delegated IPAM plugin, or ferry's defaults 198.18.0.2/24 via
//   198.18.0.1 and fd00:f::2/64 via fd00:f::1 (the same for every pod: each
//   pod has its own translator, as passt gives each guest its own). Then
//   `ferry attach HOSTDEV ...` starts the translator service on the host end.
//
//   chained mode (prevResult on ADD): a previous plugin (ptp, bridge...) made
//   the link; ferry attaches to the host-side interface named in prevResult
//   and passes prevResult on.
//
// A veth rather than a tap held by the plugin: the plugin is a short-lived
// process, so the fd of a tap would have to be handed to a long-lived one;
// `ferry attach` already is that service for a veth host end, with XDP or TC
// on it, so ADD is "make the veth, configure the pod side, ferry attach".
//
// Every step of ADD is undone in reverse order when a later one fails, and
// the state record (state.h) is written before the first step, so even a
// killed plugin leaves something DEL and GC can clean up. DEL never fails
// because something is already gone (namespace, link, service, record).
// All state-touching commands hold the state lock; a busy lock is error 11.
#pragma once

#include <map>
#include <string>

namespace ferry::cni {

struct PluginRun {
  int exit_code = 0;
  std::string out;  // stdout: the result or the error object
};

// Runs one CNI operation. `self_path` is the plugin's own executable (ferry
// is looked for beside it).
PluginRun run_plugin(const std::map<std::string, std::string>& env, const std::string& stdin_text,
                     const std::string& self_path);

// Node checks used by STATUS and ADD: can this process load a BPF program,
// and does it hold CAP_NET_ADMIN and CAP_SYS_ADMIN?
bool bpf_available();
bool has_net_privileges();

}  // namespace ferry::cni

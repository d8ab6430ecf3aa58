// `ferry run` as an ordinary user (rootless): what differs from root's run.
//
// Theory of operation: cmd_run asks wanted() once. Without CAP_SYS_ADMIN and
// CAP_NET_ADMIN in the initial user namespace (an ordinary user, or root in
// a user namespace of its own as under `unshare -Ur`), ferry cannot make a
// namespace and a tap where its sockets live, so it goes rootless:
//   * prepare() checks and adapts the options before anything is made:
//     --netns, --runas and --mark need root (one line, exit 2); forwards of
//     ports below net.ipv4.ip_unprivileged_port_start (1024) cannot be bound
//     (one line, exit 2; `all` just starts there); the fast path needs BPF
//     privileges (one note: off); the caller's descriptor limit bounds
//     --max-conns and --max-udp-flows (the defaults shrink to fit, say so
//     with -v; explicit values that do not fit are one line, exit 2); when
//     the caller's groups may not open ping sockets
//     (net.ipv4.ping_group_range), a note says pings beyond the gateway go
//     unanswered; the sandbox keeps the caller's user, in a user namespace
//     of its own (sandbox/options.h).
//   * make_guest() makes the guest's user and network namespace (the
//     caller's uid and gid mapped to 0) through a helper process
//     (netns/unprivileged_guest_ns.h), which creates the tap there and
//     configures the link; the tap's fd comes back and ferry keeps its host
//     sockets in the caller's network namespace. With -t/-u auto the
//     helper also opens the guest's socket tables (autofwd/listen_tables.h)
//     and hands them back beside the tap.
//   * CMD enters both namespaces (enter_guest_namespaces) and so runs as
//     root inside, the caller outside, as under pasta.
// Nothing is pinned or written under /run: the counters file and the
// connection view (a file, attach/conn_view_file.h) are in the caller's own
// directory (counters_file.h), where `ferry stats` and `ferry conns` run by
// the same user find them (no BPF rows: there is no fast path); `ferry
// status` (attached devices, root's) does not list them.
#pragma once

#include <memory>
#include <string>

#include "autofwd/listen_tables.h"
#include "common/config.h"
#include "common/status.h"
#include "netns/unprivileged_guest_ns.h"
#include "port/tap.h"
#include "sandbox/options.h"

namespace ferry::cli::rootless {

// True when `ferry run` must go rootless (see above).
bool wanted();

// What the caller said on the command line (not defaults).
struct Given {
  bool netns = false;
  bool runas = false;
  bool quiet = false;
  bool max_conns = false;
  bool max_udp_flows = false;
};

// Checks and adapts config and sandbox options for a rootless run; prints
// one line and returns 2 for a refusal, 0 to go on.
int prepare(Config* config, sandbox::Options* sandbox_options, const Given& given);

// The guest: its namespaces (user, network) and the tap inside them.
struct Guest {
  GuestNamespaces ns;
  std::unique_ptr<TapPort> tap;
  ListenTables tables;  // -t/-u auto: its socket tables, opened inside (else none)
};

// Makes the guest's namespaces, tap and link (addresses, routes) per config;
// with -t/-u auto also opens the guest's socket tables in there.
Result<Guest> make_guest(const Config& config);

// A private directory of the caller's for the guest's resolv.conf
// ($XDG_RUNTIME_DIR, else $TMPDIR, else /tmp; mkdtemp, 0700), removed with
// everything in it when this object goes.
class PrivateTempDir {
 public:
  PrivateTempDir() = default;
  ~PrivateTempDir();
  PrivateTempDir(const PrivateTempDir&) = delete;
  PrivateTempDir& operator=(const PrivateTempDir&) = delete;
  // Makes the directory; false (errno set) on failure.
  bool make();
  const std::string& path() const { return path_; }
  // Writes NAME (mode 0644) in it; returns its path, "" on failure.
  std::string write(const std::string& name, const std::string& text);

 private:
  std::string path_;
  std::vector<std::string> files_;
};

}  // namespace ferry::cli::rootless

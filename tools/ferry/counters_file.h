// The control plane's counters in a small text file, for `ferry stats` and
// `ferry status` to read.
//
// Theory of operation: the BPF classifier's counters live in a pinned map
// that any process can read; what the userspace translator made of the
// frames it was handed (malformed, not for us, TCP connections, bytes,
// retransmissions, UDP flows) lives in the translator's memory. A running
// instance rewrites those as key=value lines (attach::write_state: a
// temporary file renamed over the old one, so a reader never sees half a
// file) once a second. The translator runs sandboxed without a view of
// /run (userspace/sandbox): it sends the lines to its privileged parent
// over their channel once a second, from the event loop's timer (no
// thread, no syscall per frame), and the parent writes the file. `ferry attach` keeps the file in its run dir (/run/ferry/DEV/);
// `ferry run` in /run/ferry-run/run-PID/ and `ferry vm` in
// /run/ferry-run/vm-PID/ (directories of their own, so that `ferry status`,
// which lists /run/ferry/, never takes them for a device).
// The file carries `written_at` (Unix seconds): a reader can tell how old it is.
//
// A rootless `ferry run` (run_rootless.h) cannot write under /run: its
// directory is under the caller's own base (run_base_dir):
// $XDG_RUNTIME_DIR/ferry-run/run-PID/ when $XDG_RUNTIME_DIR is an absolute
// path to a real directory of the caller's, else /tmp/ferry-run-UID/run-PID/;
// the base is made 0700 and refused unless it is the caller's own, real
// directory (sandbox/private_dir.h). It has no pinned `conns` view either, so
// its translator mirrors its TCP table into a file there, `conns`
// (ConnViewFile, attach/conn_view_file.h), which `ferry conns` reads. `ferry
// stats` and `ferry conns` run by that user list the instances under that
// base; run by root, root's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attach/instance.h"
#include "netns/netlink.h"
#include "nsfwd/tcp_relay.h"
#include "nsfwd/udp_relay.h"
#include "port/frame_port.h"
#include "translator/translator.h"

namespace ferry::cli {

// Where this caller's `ferry run` and `ferry vm` instances keep their
// directories: /run/ferry-run when privileged (privileged_for_network_setup),
// else the rootless base above ("" when there is none to be had).
std::string run_base_dir();
// Where `ferry run` instance NAME (run-PID), or `ferry vm` (vm-PID), keeps
// its counters file.
std::string run_counters_dir(const std::string& instance);
// True for vm-<digits>: a `ferry vm` instance, which has no BPF and no pins.
bool is_vm_instance(const std::string& instance);
// True for run-<digits>: a `ferry run` instance.
bool is_run_instance(const std::string& instance);
// The `ferry vm` instances whose process is alive, sorted.
std::vector<std::string> list_vm_instances();
// The `ferry run` and `ferry vm` instances under run_base_dir() whose
// process is alive, sorted.
std::vector<std::string> list_run_dir_instances();
// The counters file of `ferry attach DEV` (in its run dir).
std::string attach_counters_path(const std::string& dev);
// The counters file of an instance as `ferry stats` names it: run-PID is a
// `ferry run`, vm-PID a `ferry vm`, anything else an attached device.
std::string counters_path(const std::string& instance);

// The translator's and the port's counters, plus written_at; with ns_tcp /
// ns_udp (ferry run -T / -U), theirs too (ns_tcp_*, ns_udp_*).
attach::StateMap translator_counters(Translator& tr, const FramePort& port, const NsTcpRelay* ns_tcp = nullptr,
                                     const NsUdpRelay* ns_udp = nullptr);
// The same as key=value lines (what the translator sends its parent), and back.
std::string counters_text(Translator& tr, const FramePort& port, const NsTcpRelay* ns_tcp = nullptr,
                          const NsUdpRelay* ns_udp = nullptr);
attach::StateMap parse_counters_text(std::string_view text);

// Frames the kernel dropped after ferry handed them over, on their way to the
// guest: the tap ferry writes into (`tap_rx_dropped`) and, for `ferry
// attach`, DEV itself (`dev_tx_dropped`: a VM's tap whose reader's ring is
// full, a veth whose peer's backlog is). The other way, `tap_tx_dropped`:
// guest frames the tap's queue dropped before ferry read them (ferry slower
// than the guest for longer than txqueuelen frames). Read by the privileged parent,
// which writes the counters file, with one RTM_GETLINK per device from a
// netlink socket of their namespace, once per rewrite, never per frame.
// Absent keys: not known (no socket, link gone).
class GuestPathDrops {
 public:
  GuestPathDrops() = default;
  GuestPathDrops(std::optional<Netlink> nl, int tap_ifindex, int dev_ifindex)
      : nl_(std::move(nl)), tap_ifindex_(tap_ifindex), dev_ifindex_(dev_ifindex) {}
  // A netlink socket in namespace ns_fd (-1: ours); nullopt when it cannot be had.
  static std::optional<Netlink> open_netlink(int ns_fd);
  // Adds the keys it can read to m.
  void add_to(attach::StateMap& m);

 private:
  std::optional<Netlink> nl_;
  int tap_ifindex_ = 0;
  int dev_ifindex_ = 0;  // 0: `ferry run` (no DEV)
};

// `ferry run`'s writer, in the privileged parent (rootless: the caller's
// process): creates run_base_dir()/<instance>/ (0700, the base checked),
// rewrites its counters file with what the translator sends, and removes the
// directory when destroyed.
class RunCountersFile {
 public:
  explicit RunCountersFile(std::string instance, GuestPathDrops drops = {});
  ~RunCountersFile();
  RunCountersFile(const RunCountersFile&) = delete;
  RunCountersFile& operator=(const RunCountersFile&) = delete;

  // False (with why) when the directory cannot be made: then nothing is written.
  bool open(std::string* error);
  // Rewrites the file from the translator's key=value lines.
  void write(std::string_view text);
  // The instance's directory.
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  GuestPathDrops drops_;
  bool ok_ = false;
};

}  // namespace ferry::cli

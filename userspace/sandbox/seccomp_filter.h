// The translator's system-call allow-list (libseccomp).
//
// Theory of operation: once set up, the translator only moves bytes between
// fds it already holds and sockets it opens: epoll, reads and writes on the
// tap, socket calls on host TCP/UDP/ICMP sockets, memory for its allocator,
// the clock, and bpf() map operations on the fast path's maps (publishing
// and retiring a flow in conn_hash). Nothing else: no open, no exec, no
// fork, no bpf() program or link command, no mount, no ptrace. The filter
// allows exactly those calls (some only with the arguments the data path
// uses: socket() for AF_INET/AF_INET6 only, ioctl() for SIOCINQ/SIOCOUTQ,
// mmap/mprotect without PROT_EXEC, bpf() for map commands only); anything
// else kills the whole process (SECCOMP_RET_KILL_PROCESS: the parent sees
// SIGSYS), or, in log mode, is allowed and logged by the kernel (audit
// "type=1326 ... syscall=N" in the kernel log) so the list can be checked.
// Calls of other ABIs (x32, i386) are killed in both modes. Loading the
// filter needs no_new_privs (credentials.h) or CAP_SYS_ADMIN.
#pragma once

#include "common/status.h"
#include "sandbox/options.h"

namespace ferry::sandbox {

// Loads the filter into the calling process (all its threads). Mode off: nothing.
Status install_seccomp_filter(SeccompMode mode);

}  // namespace ferry::sandbox

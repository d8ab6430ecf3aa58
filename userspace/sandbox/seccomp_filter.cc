// The allow-list: see seccomp_filter.h.
#include "sandbox/seccomp_filter.h"

#include <linux/bpf.h>
#include <linux/sockios.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <initializer_list>
#include <memory>

namespace ferry::sandbox {

namespace {

// Calls allowed with any arguments.
constexpr int kAllowed[] = {
    // the event loop and its clock
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(epoll_ctl),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    // moving bytes: the tap, host sockets, the parent's channel, stderr
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
    SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
    SCMP_SYS(recvmmsg), SCMP_SYS(sendmmsg),
    // -t/-u auto: the guest's socket tables, re-read from offset 0 (autofwd/)
    SCMP_SYS(pread64),
    // host sockets (made by socket(), below)
    SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(accept4), SCMP_SYS(listen), SCMP_SYS(shutdown),
    SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    SCMP_SYS(close), SCMP_SYS(fcntl),
    // the allocator (mmap and mprotect below)
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    // signals, exit, the few identity calls libc and logging make
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
    SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(getpid), SCMP_SYS(gettid),
    SCMP_SYS(futex), SCMP_SYS(getrandom), SCMP_SYS(sched_yield),
};

// Adds one rule; false on failure.
bool allow(scmp_filter_ctx ctx, int nr, std::initializer_list<scmp_arg_cmp> args = {}) {
  return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, static_cast<unsigned>(args.size()),
                                args.size() ? args.begin() : nullptr) == 0;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

}  // namespace

Status install_seccomp_filter(SeccompMode mode) {
  if (mode == SeccompMode::off) return {};
  const uint32_t deny = mode == SeccompMode::log ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(deny));
  if (!ctx) return Status(ENOMEM, "seccomp_init");
  scmp_filter_ctx c = ctx.get();
  // Other ABIs never: the translator is a native binary.
  if (seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0)
    return Status(EINVAL, "seccomp: bad-arch action");
  bool ok = true;
  for (int nr : kAllowed) ok = ok && allow(c, nr);
  // Host sockets of the two IP families only (no netlink, packet, unix).
  ok = ok && allow(c, SCMP_SYS(socket), {SCMP_A0(SCMP_CMP_EQ, AF_INET)});
  ok = ok && allow(c, SCMP_SYS(socket), {SCMP_A0(SCMP_CMP_EQ, AF_INET6)});
  // How much a host socket holds (TCP's acknowledged-data check).
  for (unsigned long req : {static_cast<unsigned long>(SIOCINQ), static_cast<unsigned long>(SIOCOUTQ)})
    ok = ok && allow(c, SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, req)});
  // Memory, never executable.
  ok = ok && allow(c, SCMP_SYS(mmap), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  ok = ok && allow(c, SCMP_SYS(mprotect), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  // bpf(): the fast path's map operations, nothing that loads, attaches or detaches.
  for (int cmd : {BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY})
    ok = ok && allow(c, SCMP_SYS(bpf), {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd))});
  if (!ok) return Status(EINVAL, "seccomp: building the allow-list");
  if (const int rc = seccomp_load(c); rc != 0) return Status(-rc, "seccomp_load");
  return {};
}

}  // namespace ferry::sandbox

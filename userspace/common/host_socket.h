// Host sockets of an instance: every socket ferry opens on the guest's
// behalf (TCP and UDP flows, forwards' listeners, ping and raw ICMP sockets)
// is made here, so that each carries the instance's SO_MARK (--mark,
// Config::socket_mark) and a node's firewall or policy engine can match one
// guest's traffic: it leaves as the node's own otherwise.
#pragma once

#include <cstdint>

namespace ferry {

// socket(family, type, protocol) with SO_MARK = mark when mark != 0. -1 with
// errno set on failure; a mark that cannot be set fails the socket (EPERM
// without CAP_NET_ADMIN) unless the socket already carries it (a sandboxed
// translator's sockets are marked by its cgroup: bpf/mark_cgroup.h):
// traffic never leaves unmarked when a mark was asked.
int open_host_socket(int family, int type, int protocol, uint32_t mark);

// True when this process may set SO_MARK (checked once at start, so that a
// missing capability is one message, not a failure per flow).
bool can_set_socket_mark(uint32_t mark, int* err);

}  // namespace ferry

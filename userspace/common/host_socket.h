// Host sockets of an instance: every socket ferry opens on the guest's
// behalf (TCP and UDP flows, forwards' listeners, ping and raw ICMP sockets)
// is made here, so that each carries the instance's SO_MARK (--mark,
// Config::socket_mark) and a node's firewall or policy engine can match one
// guest's traffic: it leaves as the node's own otherwise.
//
// Outbound sockets (a guest's TCP connection, UDP flow or echo toward a
// host destination, never a forward's listener) also leave the way
// -o ADDR and --outbound-if4/6 IF choose, as pasta's options do: bound to
// ADDR of the socket's family (the source address the peer sees) and to
// interface IF (SO_BINDTODEVICE: the socket's routes are IF's only). A
// destination on the host's loopback (the gateway mapping) is not outbound:
// those sockets stay as they are (a socket tied to IF could not reach it).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "codec/addr.h"
#include "common/status.h"

namespace ferry {

struct Config;

// socket(family, type, protocol) with SO_MARK = mark when mark != 0. -1 with
// errno set on failure; a mark that cannot be set fails the socket (EPERM
// without CAP_NET_ADMIN) unless the socket already carries it (a sandboxed
// translator's sockets are marked by its cgroup: bpf/mark_cgroup.h):
// traffic never leaves unmarked when a mark was asked.
int open_host_socket(int family, int type, int protocol, uint32_t mark);

// True when this process may set SO_MARK (checked once at start, so that a
// missing capability is one message, not a failure per flow).
bool can_set_socket_mark(uint32_t mark, int* err);

// An outbound socket of family v6 toward dest: open_host_socket() with the
// instance's mark, tied to --outbound-if4/6 when dest is not loopback. -1
// with errno set on failure. The caller binds it with outbound_bind() (or
// not at all, when that says there is nothing to bind).
int open_outbound_socket(const Config& c, bool v6, int type, int protocol, const InetAddr& dest);

// True when an outbound socket toward dest has a source address to take
// (-o of its family, dest not loopback).
bool has_outbound_address(const Config& c, bool v6, const InetAddr& dest);

// The local address an outbound socket toward dest binds: -o's address of
// its family (dest not loopback), else the unspecified address; with port.
socklen_t outbound_bind_address(const Config& c, bool v6, const InetAddr& dest, uint16_t port,
                                sockaddr_storage* ss);

// Checks -o and --outbound-if4/6 once at start, in the namespace the host
// sockets will live in: each address must be one of the host's (a socket
// binds it), each interface must exist. A failure is one line.
Status check_outbound(const Config& c);

}  // namespace ferry

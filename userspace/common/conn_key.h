// The flow key of the kernel/userspace contract (ferry_conn_key,
// include/ferry/contract.h) built from addresses: one builder for the TCP
// translator's table, the fast-path maps and the kernel's `conns` view.
#pragma once

#include <cstdint>

#include "codec/addr.h"
#include "ferry/contract.h"

namespace ferry {

// Builds the key of a guest flow: guest = the guest's address and port
// (host-order port), peer = where the guest sends to. IPv4 addresses are kept
// IPv4-mapped, as InetAddr already does; padding is zero (the key is hashed
// as bytes).
ferry_conn_key make_conn_key(const InetAddr& guest, uint16_t guest_port, const InetAddr& peer,
                             uint16_t peer_port, uint8_t protocol = 6 /* TCP */);

}  // namespace ferry

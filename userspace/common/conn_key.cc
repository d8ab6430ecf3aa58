// make_conn_key: see conn_key.h.
#include "common/conn_key.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace ferry {

// Zeroed key: guest side, peer side, network-order ports.
ferry_conn_key make_conn_key(const InetAddr& guest, uint16_t guest_port, const InetAddr& peer,
                             uint16_t peer_port, uint8_t protocol) {
  ferry_conn_key k;
  std::memset(&k, 0, sizeof(k));
  std::memcpy(k.guest_addr, guest.b.data(), 16);
  std::memcpy(k.peer_addr, peer.b.data(), 16);
  k.guest_port = htons(guest_port);
  k.peer_port = htons(peer_port);
  k.family = static_cast<uint8_t>(guest.is_v4() ? AF_INET : AF_INET6);
  k.protocol = protocol;
  return k;
}

}  // namespace ferry

// The kernel's socket tables as text: /proc/net/tcp, tcp6, udp and udp6
// (proc(5)), read into a set of local ports.
//
// Theory of operation: a table is a header line and one line per socket,
//   "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ..."
// slot, local address:port, remote address:port, state, then fields we do
// not read. Addresses are hex words as the kernel prints them (8 digits for
// IPv4, 32 for IPv6: four 32-bit words in host order), ports 4 hex digits.
// SocketTableParser takes the text in chunks of any size (a line may span
// two reads), keeps at most kMaxLine bytes of the line it is in (fixed
// storage, no allocation), and sets the local port of every line that the
// filter admits: a state in `states` (TCP LISTEN is 0x0A; an unconnected
// UDP socket is 0x07, TCP_CLOSE) and, with skip_loopback, a local address
// that is not loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). Lines
// that do not parse (or are longer than kMaxLine) are counted as malformed
// and skipped; nothing in the text can make the parser fail or read out of
// bounds. read_socket_table() feeds a whole table from an fd with pread()
// from offset 0, so one fd opened once (in another network namespace,
// before a sandbox) can be read again and again.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry {

using PortSet = std::bitset<65536>;

// Which lines of a table count (see above).
struct SocketFilter {
  uint32_t states = 0;  // bit N set: state N counts
  bool skip_loopback = false;

  static constexpr uint32_t kTcpListen = 1u << 0x0A;
  static constexpr uint32_t kUdpUnconnected = 1u << 0x07;
  static constexpr uint32_t kAnyState = 0xffffffffu;
};

class SocketTableParser {
 public:
  static constexpr size_t kMaxLine = 256;  // tcp6 lines are about 180 bytes

  // Sets admitted ports in *ports (which it does not clear).
  SocketTableParser(const SocketFilter& filter, PortSet* ports) : filter_(filter), ports_(ports) {}

  // The next bytes of the table.
  void feed(std::string_view chunk);
  // The end of the table (a last line without a newline counts).
  void finish();

  size_t lines() const { return lines_; }          // socket lines seen (not the header)
  size_t matched() const { return matched_; }      // ... admitted by the filter
  size_t malformed() const { return malformed_; }  // ... that did not parse

 private:
  void end_line();
  bool parse_line(std::string_view line, uint16_t* port, unsigned* state, bool* loopback) const;

  SocketFilter filter_;
  PortSet* ports_;
  char line_[kMaxLine];
  size_t len_ = 0;
  bool overlong_ = false;
  bool header_seen_ = false;
  size_t lines_ = 0, matched_ = 0, malformed_ = 0;
};

// Feeds the whole table behind fd (from offset 0, with pread) to parser, in
// chunks through buf. False (errno set) when a read fails: the parser then
// saw only part of the table.
bool read_socket_table(int fd, SocketTableParser* parser, char* buf, size_t buf_size);

}  // namespace ferry

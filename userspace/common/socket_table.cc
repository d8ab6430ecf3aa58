// The kernel's socket tables as text: see socket_table.h.
#include "common/socket_table.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry {

namespace {

// The next blank-separated token of *rest (leading blanks skipped).
std::string_view next_token(std::string_view* rest) {
  size_t b = 0;
  while (b < rest->size() && ((*rest)[b] == ' ' || (*rest)[b] == '\t')) b++;
  size_t e = b;
  while (e < rest->size() && (*rest)[e] != ' ' && (*rest)[e] != '\t') e++;
  const std::string_view tok = rest->substr(b, e - b);
  *rest = rest->substr(e);
  return tok;
}

// Hex digits only, 1..8 of them, into *out.
bool parse_hex32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 8) return false;
  uint32_t v = 0;
  for (char ch : text) {
    uint32_t d;
    if (ch >= '0' && ch <= '9') d = static_cast<uint32_t>(ch - '0');
    else if (ch >= 'A' && ch <= 'F') d = static_cast<uint32_t>(ch - 'A' + 10);
    else if (ch >= 'a' && ch <= 'f') d = static_cast<uint32_t>(ch - 'a' + 10);
    else return false;
    v = (v << 4) | d;
  }
  *out = v;
  return true;
}

// "ADDR:PORT" with ADDR 8 or 32 hex digits: the port, and whether ADDR is
// a loopback address. The kernel prints each 32-bit word of the address
// as a number in host order: its bytes in memory are the address's.
bool parse_endpoint(std::string_view text, uint16_t* port, bool* loopback) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view addr = text.substr(0, colon), p = text.substr(colon + 1);
  uint32_t pv = 0;
  if (p.size() != 4 || !parse_hex32(p, &pv)) return false;
  if (addr.size() != 8 && addr.size() != 32) return false;
  uint8_t bytes[16];
  const size_t words = addr.size() / 8;
  for (size_t w = 0; w < words; w++) {
    uint32_t v = 0;
    if (!parse_hex32(addr.substr(w * 8, 8), &v)) return false;
    std::memcpy(bytes + 4 * w, &v, 4);
  }
  if (words == 1) {
    *loopback = bytes[0] == 127;
  } else {
    static constexpr uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    *loopback = std::memcmp(bytes, kV6Loopback, 16) == 0 ||
                (std::memcmp(bytes, kMappedPrefix, 12) == 0 && bytes[12] == 127);
  }
  *port = static_cast<uint16_t>(pv);
  return true;
}

}  // namespace

// "SLOT: LOCAL REMOTE STATE ...": the local port, the state, loopback or not.
bool SocketTableParser::parse_line(std::string_view line, uint16_t* port, unsigned* state, bool* loopback) const {
  std::string_view rest = line;
  const std::string_view slot = next_token(&rest);
  if (slot.size() < 2 || slot.back() != ':') return false;
  for (size_t i = 0; i + 1 < slot.size(); i++)
    if (slot[i] < '0' || slot[i] > '9') return false;
  const std::string_view local = next_token(&rest), remote = next_token(&rest), st = next_token(&rest);
  uint16_t rport = 0;
  bool rloop = false;
  uint32_t sv = 0;
  if (!parse_endpoint(local, port, loopback) || !parse_endpoint(remote, &rport, &rloop)) return false;
  if (st.size() != 2 || !parse_hex32(st, &sv)) return false;
  *state = sv;
  return true;
}

// One line is complete in line_ (or was too long).
void SocketTableParser::end_line() {
  const bool overlong = overlong_;
  const std::string_view line(line_, len_);
  len_ = 0;
  overlong_ = false;
  if (!header_seen_) {  // "  sl  local_address rem_address   st ..."
    header_seen_ = true;
    return;
  }
  if (!overlong && line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank
  lines_++;
  uint16_t port = 0;
  unsigned state = 0;
  bool loopback = false;
  if (overlong || !parse_line(line, &port, &state, &loopback)) {
    malformed_++;
    return;
  }
  if (port == 0 || state >= 32 || !(filter_.states & (1u << state))) return;
  if (filter_.skip_loopback && loopback) return;
  matched_++;
  ports_->set(port);
}

void SocketTableParser::feed(std::string_view chunk) {
  while (!chunk.empty()) {
    const size_t nl = chunk.find('\n');
    const std::string_view part = chunk.substr(0, nl);
    const size_t room = kMaxLine - len_;
    if (part.size() > room) overlong_ = true;
    const size_t take = part.size() < room ? part.size() : room;
    std::memcpy(line_ + len_, part.data(), take);
    len_ += take;
    if (nl == std::string_view::npos) return;
    end_line();
    chunk = chunk.substr(nl + 1);
  }
}

void SocketTableParser::finish() {
  if (len_ > 0 || overlong_) end_line();
}

bool read_socket_table(int fd, SocketTableParser* parser, char* buf, size_t buf_size) {
  off_t off = 0;
  while (true) {
    const ssize_t n = pread(fd, buf, buf_size, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    parser->feed(std::string_view(buf, static_cast<size_t>(n)));
    off += n;
  }
  parser->finish();
  return true;
}

}  // namespace ferry

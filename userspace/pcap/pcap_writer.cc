// PcapWriter: see pcap_writer.h.
#include "pcap/pcap_writer.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry {

namespace {
// libpcap's record header on disk (struct pcap_sf_pkthdr: seconds,
// microseconds, captured and real length, 32 bits each).
constexpr size_t kRecordHeaderBytes = 16;
// The file's global header.
constexpr size_t kFileHeaderBytes = 24;
}  // namespace

std::unique_ptr<PcapWriter> PcapWriter::open(const std::string& path, uint64_t max_bytes, std::string* error) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  w->max_bytes_ = max_bytes;
  w->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (w->fd_ < 0) {
    *error = "--pcap " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  w->buf_ = std::make_unique<uint8_t[]>(kBufferBytes);
  w->scratch_ = std::make_unique<uint8_t[]>(kSnapLen);
  cookie_io_functions_t io{};
  io.write = &PcapWriter::cookie_write;
  FILE* f = fopencookie(w.get(), "w", io);
  // Unbuffered: each of pcap_dump()'s fwrite()s reaches cookie_write at once,
  // so the buffer's accounting is exact.
  if (f == nullptr || setvbuf(f, nullptr, _IONBF, 0) != 0) {
    if (f) std::fclose(f);
    *error = "--pcap " + path + ": cannot make its stream";
    return nullptr;
  }
  w->pcap_ = pcap_open_dead(DLT_EN10MB, static_cast<int>(kSnapLen));
  if (w->pcap_ == nullptr) {
    std::fclose(f);
    *error = "--pcap " + path + ": pcap_open_dead failed";
    return nullptr;
  }
  w->dumper_ = pcap_dump_fopen(w->pcap_, f);  // writes the global header
  if (w->dumper_ == nullptr) {
    *error = "--pcap " + path + ": " + pcap_geterr(w->pcap_);
    std::fclose(f);
    return nullptr;
  }
  if (w->used_ != kFileHeaderBytes) {
    *error = "--pcap " + path + ": unexpected file header";
    return nullptr;
  }
  w->committed_ = w->used_;
  w->flush();
  if (w->stopped_) {
    *error = "--pcap " + path + ": cannot write";
    return nullptr;
  }
  return w;
}

PcapWriter::~PcapWriter() {
  flush();
  if (dumper_) pcap_dump_close(dumper_);  // fclose()s the cookie stream: no write
  if (pcap_) pcap_close(pcap_);
  if (fd_ >= 0) close(fd_);
}

ssize_t PcapWriter::cookie_write(void* cookie, const char* data, size_t size) {
  auto* w = static_cast<PcapWriter*>(cookie);
  if (size > kBufferBytes - w->used_) {  // capture() checked: never here
    errno = ENOSPC;
    return -1;
  }
  std::memcpy(w->buf_.get() + w->used_, data, size);
  w->used_ += size;
  return static_cast<ssize_t>(size);
}

// Checks both bounds, makes a frame in pieces whole, hands it to pcap_dump().
void PcapWriter::capture(const iovec* iov, int iovcnt) {
  if (stopped_) {
    counters_.over_limit++;
    return;
  }
  size_t len = 0;
  for (int i = 0; i < iovcnt; i++) len += iov[i].iov_len;
  const size_t caplen = len < kSnapLen ? len : kSnapLen;
  const size_t record = kRecordHeaderBytes + caplen;
  if (committed_ + record > max_bytes_) {
    counters_.over_limit++;
    stop("reached --pcap-size (" + std::to_string(max_bytes_) + " bytes): capture stopped, the file keeps " +
         std::to_string(counters_.frames) + " frames");
    return;
  }
  if (record > kBufferBytes - used_) {
    counters_.dropped_buffer_full++;
    return;
  }
  const uint8_t* data = static_cast<const uint8_t*>(iov[0].iov_base);
  if (iovcnt > 1) {  // the record wants one contiguous frame
    size_t off = 0;
    for (int i = 0; i < iovcnt && off < caplen; i++) {
      const size_t n = iov[i].iov_len < caplen - off ? iov[i].iov_len : caplen - off;
      std::memcpy(scratch_.get() + off, iov[i].iov_base, n);
      off += n;
    }
    data = scratch_.get();
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  pcap_pkthdr h{};
  h.ts.tv_sec = ts.tv_sec;
  h.ts.tv_usec = static_cast<suseconds_t>(ts.tv_nsec / 1000);
  h.caplen = static_cast<uint32_t>(caplen);
  h.len = static_cast<uint32_t>(len);
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, data);
  committed_ += record;
  counters_.frames++;
}

// One write() of the buffer (a short write is continued; an error stops).
void PcapWriter::flush() {
  size_t off = 0;
  while (off < used_ && fd_ >= 0) {
    const ssize_t n = write(fd_, buf_.get() + off, used_ - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      counters_.write_errors++;
      stop(std::string("write: ") + (n < 0 ? std::strerror(errno) : "no progress") + ": capture stopped");
      break;
    }
    off += static_cast<size_t>(n);
  }
  counters_.bytes += off;
  used_ = 0;
}

void PcapWriter::stop(const std::string& why) {
  if (stopped_) return;
  stopped_ = true;
  std::fprintf(stderr, "ferry: --pcap %s: %s\n", path_.c_str(), why.c_str());
}

}  // namespace ferry

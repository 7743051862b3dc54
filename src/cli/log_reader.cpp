#include "log_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
#include <emmintrin.h>
#endif

namespace relayban {
namespace {

constexpr size_t kReleaseEvery = size_t{4} << 20;
constexpr size_t kScanAhead = 2048;  // bytes the newline scan prefetches ahead of itself

// Calls on_newline(offset) for every '\n' in data[0, size), in order. Sixty-four bytes are
// compared at a time into a bit mask whose set bits are then walked: one pass over the data
// instead of a memchr call per line.
template <typename F>
void ForEachNewline(const char* data, size_t size, F&& on_newline) {
  size_t i = 0;
#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
  const __m128i nl = _mm_set1_epi8('\n');
  for (; i + 64 <= size; i += 64) {
    // The map's pages come from the page cache, not from any CPU cache, and the hardware's
    // prefetcher stops at each 4 KiB page: ask for the bytes a little ahead.
    if (i + kScanAhead < size) __builtin_prefetch(data + i + kScanAhead);
    uint64_t mask = 0;
    for (int k = 0; k < 4; ++k) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 16 * k));
      mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)))) << (16 * k);
    }
    while (mask != 0) {
      on_newline(i + static_cast<size_t>(__builtin_ctzll(mask)));
      mask &= mask - 1;
    }
  }
#endif
  for (; i < size; ++i)
    if (data[i] == '\n') on_newline(i);
}

}  // namespace

Result<void> ReadLogLines(const std::string& path, size_t max_line,
                          const std::function<void(std::string_view, uint64_t)>& on_line) {
  int fd = path == "-" ? 0 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(Error{std::string("cannot open log: ") + std::strerror(errno), {path, 0, 0}});
  // A regular file is mapped: no copy through read(2), and lines are views into the map.
  struct stat st {};
  if (fd != 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    size_t size = static_cast<size_t>(st.st_size);
    void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      madvise(map, size, MADV_SEQUENTIAL);
      const char* base = static_cast<const char*>(map);
      uint64_t number = 0;
      size_t start = 0;     // of the current line
      size_t released = 0;  // pages before this were given back
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      auto emit = [&](size_t end) {
        // An overlong line is handed out cut to max_line + 1 bytes: the engine skips it.
        on_line(std::string_view(base + start, std::min(end - start, max_line + 1)), ++number);
        start = end + 1;
        // Pages behind the current line are done with: give them back, so a log of
        // gigabytes costs a window of resident memory, not its size.
        if (start - released >= kReleaseEvery) {
          size_t upto = start / page * page;
          madvise(const_cast<char*>(base) + released, upto - released, MADV_DONTNEED);
          released = upto;
        }
      };
      ForEachNewline(base, size, emit);
      if (start < size) emit(size);  // a last line without a newline
      munmap(map, size);
      close(fd);
      return {};
    }
  }
  constexpr size_t kBlock = 1 << 20;
  std::vector<char> buf(kBlock + max_line + 2);
  size_t have = 0;        // bytes in buf
  bool discarding = false;  // inside an overlong line, waiting for its newline
  uint64_t number = 0;
  Result<void> result;
  for (;;) {
    ssize_t n = read(fd, buf.data() + have, buf.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = Fail(Error{std::string("read error: ") + std::strerror(errno), {path, 0, 0}});
      break;
    }
    size_t end = have + static_cast<size_t>(n);
    size_t start = 0;
    // The carried-over bytes [0, have) hold no newline: only the new ones are scanned.
    ForEachNewline(buf.data() + have, end - have, [&](size_t offset) {
      size_t nl = have + offset;
      if (!discarding) on_line(std::string_view(buf.data() + start, nl - start), ++number);
      discarding = false;
      start = nl + 1;
    });
    if (n == 0) {
      if (start < end && !discarding) on_line(std::string_view(buf.data() + start, end - start), ++number);
      break;
    }
    size_t rest = end - start;
    if (rest > max_line) {
      // Hand the engine a piece that is certainly too long, then drop the rest of the line.
      if (!discarding) on_line(std::string_view(buf.data() + start, max_line + 1), ++number);
      discarding = true;
      rest = 0;
    }
    std::memmove(buf.data(), buf.data() + start, rest);
    have = rest;
  }
  if (fd != 0) close(fd);
  return result;
}

}  // namespace relayban

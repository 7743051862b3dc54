#include "relayban/core/text.hpp"

#include <cstring>

#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
#include <emmintrin.h>
#endif

namespace relayban {

bool IsCleanText(std::string_view line) {
  const auto* p = reinterpret_cast<const unsigned char*>(line.data());
  size_t n = line.size();
  size_t i = 0;
  // Fast path, sixteen bytes at a time: is any byte below 0x20 or at/above 0x7f? Compared as
  // signed bytes, 0x80..0xff are negative and so "below 0x20" too. A TAB or any non-ASCII byte
  // sends the line to the exact check below.
  unsigned bad = 0;
#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
  const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
  __m128i flagged = _mm_setzero_si128();
  auto check = [&](size_t at) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
    flagged = _mm_or_si128(flagged, _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
  };
  for (; i + 16 <= n; i += 16) check(i);
  if (n >= 16 && i < n) {
    check(n - 16);  // the last sixteen bytes, overlapping: no byte-by-byte tail
    i = n;
  }
  bad = _mm_movemask_epi8(flagged) != 0 ? 4u : 0u;
#else
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  uint64_t flagged = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    flagged |= ((w - kOnes * 0x20) & ~w) | w | (w + kOnes);
  }
  bad = (flagged & kHigh) ? 4u : 0u;
#endif
  for (; i < n; ++i) {
    unsigned char c = p[i];
    bad |= static_cast<unsigned>(c < 0x20 || c >= 0x7f) << 2;
  }
  if (bad == 0) return true;
  // Non-ASCII present: validate UTF-8 strictly (no overlongs, no surrogates).
  for (i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
      ++i;
      continue;
    }
    int len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += len;
  }
  return true;
}

std::string ToLowerAscii(std::string_view s) {
  std::string out(s.size(), '\0');
  LowerAsciiInto(s, out.data());
  return out;
}

namespace {

// The high bit of each byte of `w` that is an ASCII capital, eight bytes at once. Per byte,
// on its low seven bits (no carry leaves a byte): the high bit of `from_a` is set from 'A'
// up, that of `past_z` past 'Z'; bytes with their own high bit set (not ASCII) are left out.
uint64_t CapitalBits(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  uint64_t low7 = w & ~kHigh;
  uint64_t from_a = low7 + kOnes * (0x80 - 'A');
  uint64_t past_z = low7 + kOnes * (0x80 - 'Z' - 1);
  return (from_a & ~past_z) & ~w & kHigh;
}

}  // namespace

void LowerAsciiInto(std::string_view s, char* out) {
  size_t n = s.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    w |= CapitalBits(w) >> 2;  // 0x80 >> 2 is the 0x20 between 'A' and 'a'
    std::memcpy(out + i, &w, 8);
  }
  for (; i < n; ++i) {
    char c = s[i];
    out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
}

bool HasUpperAscii(std::string_view s) {
  size_t n = s.size();
  if (n < 8) {
    bool any = false;
    for (char c : s) any |= c >= 'A' && c <= 'Z';
    return any;
  }
  uint64_t any = 0, w;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    std::memcpy(&w, s.data() + i, 8);
    any |= CapitalBits(w);
  }
  std::memcpy(&w, s.data() + n - 8, 8);  // the last eight bytes (some seen already)
  return (any | CapitalBits(w)) != 0;
}

void AppendPrintable(std::string& out, std::string_view s, size_t max_len) {
  const size_t at = out.size();
  out.append(s.substr(0, std::min(s.size(), max_len)));
  for (size_t k = at; k < out.size(); ++k) {  // one pass the compiler vectorises
    auto u = static_cast<unsigned char>(out[k]);
    out[k] = (u < 0x20 || u >= 0x7f) ? '?' : out[k];
  }
  if (s.size() > max_len) out += "...";
}

std::string Printable(std::string_view s, size_t max_len) {
  std::string out;
  AppendPrintable(out, s, max_len);
  return out;
}

namespace {
// Length of the valid UTF-8 sequence starting at s[i] (1-4), or 0 when it is invalid.
size_t Utf8Length(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;   // no overlong forms
    if (c == 0xED) hi = 0x9F;   // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;   // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}
}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    // Runs of plain ASCII are copied at once.
    size_t run = i;
    while (run < s.size()) {
      auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
      continue;
    }
    size_t n = Utf8Length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for the bad byte; decoding goes on at the next
      ++i;
      continue;
    }
    out.append(s.data() + i, n);
    i += n;
  }
  out += '"';
}

uint64_t Hash64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace relayban

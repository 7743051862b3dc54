// Small text routines shared by the stages: validation of untrusted log bytes and safe
// display of attacker-controlled text.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace relayban {

// True if `line` is valid UTF-8 without NUL or other C0 control characters except TAB.
// ASCII lines take a fast path.
bool IsCleanText(std::string_view line);
// ASCII lower-case copy.
std::string ToLowerAscii(std::string_view s);
// Writes `s` lower-cased (ASCII letters only; other bytes as they are) to out[0, s.size()),
// eight bytes at a time: every event's account and addresses are keyed lower-case.
void LowerAsciiInto(std::string_view s, char* out);
// Whether `s` has an ASCII capital letter (what LowerAsciiInto would change).
bool HasUpperAscii(std::string_view s);
// For output meant for people: control and non-ASCII bytes become '?', length capped.
std::string Printable(std::string_view s, size_t max_len = 256);
// The same, appended to `out` (a text built in one string: no string of its own).
void AppendPrintable(std::string& out, std::string_view s, size_t max_len = 256);
// Appends `s` as a quoted JSON string: quotes, backslashes and control characters escaped
// (as nlohmann::json writes them), each invalid UTF-8 sequence replaced by U+FFFD, so any
// bytes an attacker logs make valid JSON. For records written by the million (the decision
// log under a botnet), where building a json object per record costs more than the work.
void AppendJsonString(std::string& out, std::string_view s);
// 64-bit FNV-1a; used to keep distinct values without storing them.
uint64_t Hash64(std::string_view s);

// A hash of a short text for in-memory keys (not stable across versions: never stored or
// sent): up to 16 bytes from two loads and a few multiplies, whose inputs (the loads and the
// length) tell the text exactly; up to 32 (an IPv6 address as logged) from four loads, the
// last two scattered into the first; longer texts by std::hash.
inline uint64_t ShortTextHash(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t a = 0, b = 0;
  if (n > 32) return std::hash<std::string_view>{}(s);
  if (n > 16) {
    uint64_t c, d;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&c, p + n - 16, 8);
    std::memcpy(&d, p + n - 8, 8);
    // Scattered whole first: a product alone carries a change only towards the higher bits,
    // where a change in a or b at the same place would cancel it.
    auto scatter = [](uint64_t x, uint64_t k) {
      x = (x ^ (x >> 32)) * k;
      x ^= x >> 29;
      return x * 0xBF58476D1CE4E5B9ull;
    };
    a ^= scatter(c, 0xC2B2AE3D27D4EB4Full);
    b ^= scatter(d, 0x165667B19E3779F9ull);
  } else if (n >= 8) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t x, y;
    std::memcpy(&x, p, 4);
    std::memcpy(&y, p + n - 4, 4);
    a = x;
    b = y;
  } else if (n > 0) {
    a = static_cast<unsigned char>(p[0]) | uint64_t{static_cast<unsigned char>(p[n / 2])} << 8 |
        uint64_t{static_cast<unsigned char>(p[n - 1])} << 16;
  }
  // Each input mixed in after the previous ones were scattered, so that no simple relation
  // between two texts' words (a byte apart, a length apart) carries through to the hash.
  uint64_t h = (a ^ (n * 0xA0761D6478BD642Full)) * 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  h = (h ^ b) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  h *= 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 32);
}

// Hash for unordered containers keyed by std::string that are looked up with string_view
// (use with std::equal_to<>), so a lookup never builds a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace relayban

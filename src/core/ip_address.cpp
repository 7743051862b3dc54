#include "relayban/core/ip_address.hpp"

#include <endian.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

#include "relayban/core/result.hpp"

namespace relayban {

std::string SourceLocation::ToString() const {
  std::string out = file.empty() ? std::string("<input>") : file;
  if (line > 0) out += ":" + std::to_string(line);
  if (line > 0 && column > 0) out += ":" + std::to_string(column);
  return out;
}

std::string Error::ToString() const {
  if (where.file.empty() && where.line == 0) return message;
  return where.ToString() + ": " + message;
}

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress ip;
  ip.family_ = Family::kV4;
  ip.bytes_[0] = static_cast<uint8_t>(host_order >> 24);
  ip.bytes_[1] = static_cast<uint8_t>(host_order >> 16);
  ip.bytes_[2] = static_cast<uint8_t>(host_order >> 8);
  ip.bytes_[3] = static_cast<uint8_t>(host_order);
  return ip;
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  IpAddress ip;
  ip.family_ = Family::kV6;
  ip.bytes_ = bytes;
  return ip;
}

namespace {

// A dotted quad exactly as inet_pton(AF_INET) takes it: four decimal parts of 0 to 255,
// without a leading zero, and nothing else. By hand: every IPv4 event's address is parsed,
// and inet_pton's copy to a terminated string and its loop cost five times this.
bool ParseQuad(std::string_view t, uint8_t* out) {
  size_t i = 0, n = t.size();
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= n || t[i] != '.') return false;
      ++i;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && i - start < 3 && t[i] >= '0' && t[i] <= '9') v = v * 10 + static_cast<unsigned>(t[i++] - '0');
    if (i == start || (i - start > 1 && t[start] == '0') || v > 255) return false;
    out[part] = static_cast<uint8_t>(v);
  }
  return i == n;
}

// An IPv6 address exactly as glibc's inet_pton(AF_INET6) takes it: up to eight groups of
// one to four hex digits separated by ':', one "::" standing for at least one zero group, a
// dotted quad in place of the last two groups, and nothing else. By hand for the same
// reason as ParseQuad: inet_pton6 cost as much as the rest of an IPv6 line's parsing.
bool ParseHextets(std::string_view t, uint8_t* out) {
  size_t n = t.size(), i = 0;
  int groups = 0;   // 16-bit groups written to out
  int gap = -1;     // where "::" stands, in groups
  if (n >= 1 && t[0] == ':') {
    if (n < 2 || t[1] != ':') return false;
    i = 1;  // the second ':' starts the gap below
  }
  while (i < n) {
    size_t start = i;
    unsigned v = 0;
    while (i < n) {
      unsigned c = static_cast<unsigned char>(t[i]);
      unsigned d;
      if (c - '0' <= 9) d = c - '0';
      else if ((c | 0x20) - 'a' <= 5) d = (c | 0x20) - 'a' + 10;
      else break;
      if (i - start == 4) return false;
      v = v << 4 | d;
      ++i;
    }
    if (i == n) {  // the last group
      if (i == start) break;  // the text ended with "::"
      if (groups == 8) return false;
      out[2 * groups] = static_cast<uint8_t>(v >> 8);
      out[2 * groups + 1] = static_cast<uint8_t>(v);
      ++groups;
      break;
    }
    if (t[i] == ':') {
      if (i == start) {  // an empty group: the gap, once
        if (gap >= 0) return false;
        gap = groups;
        ++i;
        continue;
      }
      if (i + 1 == n) return false;  // a single ':' at the end
      if (groups == 8) return false;
      out[2 * groups] = static_cast<uint8_t>(v >> 8);
      out[2 * groups + 1] = static_cast<uint8_t>(v);
      ++groups;
      ++i;
      continue;
    }
    // A dotted quad for the last two groups: the whole rest of the text, from the group's start.
    if (t[i] == '.' && groups <= 6 && ParseQuad(t.substr(start), out + 2 * groups)) {
      groups += 2;
      break;
    }
    return false;
  }
  if (gap >= 0) {
    if (groups == 8) return false;  // "::" must stand for one group at least
    int tail = groups - gap;
    std::memmove(out + 16 - 2 * tail, out + 2 * gap, static_cast<size_t>(2 * tail));
    std::memset(out + 2 * gap, 0, static_cast<size_t>(16 - 2 * groups));
    return true;
  }
  return groups == 8;
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  IpAddress ip;
  if (ParseQuad(text, ip.bytes_.data())) {
    ip.family_ = Family::kV4;
    return ip;
  }
  if (!ParseHextets(text, ip.bytes_.data())) return std::nullopt;
  ip.family_ = Family::kV6;
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket: key it as IPv4.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes_.data(), kMapped, 12) == 0) {
    std::array<uint8_t, 16> v4{};
    std::copy_n(ip.bytes_.begin() + 12, 4, v4.begin());
    ip.bytes_ = v4;
    ip.family_ = Family::kV4;
  }
  return ip;
}

std::optional<IpAddress> IpAddress::ParseLogged(std::string_view t) {
  if (t.size() > 2 && t.front() == '[') {
    size_t close = t.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = t.substr(close + 1);
    if (!rest.empty()) {
      // "[addr]:port" is fine; anything else after the bracket is not one address.
      if (rest.front() != ':' || rest.size() < 2 ||
          !std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    }
    t = t.substr(1, close - 1);
  }
  if (t.size() > 5 && (t.substr(0, 5) == "IPv6:" || t.substr(0, 5) == "ipv6:")) t = t.substr(5);
  if (size_t pct = t.find('%'); pct != std::string_view::npos) t = t.substr(0, pct);
  if (auto ip = Parse(t)) return ip;
  // "a.b.c.d:port": exactly one colon after a dotted quad.
  if (size_t colon = t.rfind(':'); colon != std::string_view::npos && t.find(':') == colon) {
    std::string_view port = t.substr(colon + 1);
    if (!port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return Parse(t.substr(0, colon));
  }
  // vpopmail's get_remote_ip() turns every ':' of an IPv6 address into '_'.
  if (t.find('_') != std::string_view::npos && t.find(':') == std::string_view::npos) {
    std::string fixed(t);
    std::replace(fixed.begin(), fixed.end(), '_', ':');
    auto ip = Parse(fixed);
    if (ip && !ip->is_v4()) return ip;
  }
  return std::nullopt;
}

bool IpAddress::IsLoopback() const {
  if (is_v4()) return bytes_[0] == 127;
  for (int i = 0; i < 15; ++i)
    if (bytes_[i] != 0) return false;
  return bytes_[15] == 1;
}

IpAddress IpAddress::Masked(int length) const {
  int total = max_prefix();
  if (length >= total) return *this;
  IpAddress out = *this;
  length = std::max(length, 0);
  if (!is_v4()) {  // two words, the first byte the most significant (every IPv6 event is masked)
    for (size_t w = 0; w < 2; ++w, length -= 64) {
      uint64_t v;
      std::memcpy(&v, out.bytes_.data() + 8 * w, 8);
      uint64_t keep = length >= 64 ? ~uint64_t{0} : length <= 0 ? 0 : ~(~uint64_t{0} >> length);
      v = htobe64(be64toh(v) & keep);
      std::memcpy(out.bytes_.data() + 8 * w, &v, 8);
    }
    return out;
  }
  int full = length / 8;
  if (length % 8) out.bytes_[static_cast<size_t>(full++)] &= static_cast<uint8_t>(0xFF00u >> (length % 8));
  for (int i = full; i < total / 8; ++i) out.bytes_[static_cast<size_t>(i)] = 0;
  return out;
}

namespace {
// Each byte value's decimal digits and a '.', four bytes, and how many digits it has.
struct Octet {
  char text[4];
  uint8_t digits;
};
constexpr std::array<Octet, 256> MakeOctets() {
  std::array<Octet, 256> t{};
  for (unsigned v = 0; v < 256; ++v) {
    Octet& o = t[v];
    unsigned n = 0;
    if (v >= 100) o.text[n++] = static_cast<char>('0' + v / 100);
    if (v >= 10) o.text[n++] = static_cast<char>('0' + v / 10 % 10);
    o.text[n++] = static_cast<char>('0' + v % 10);
    o.text[n] = '.';
    o.digits = static_cast<uint8_t>(n);
  }
  return t;
}
constexpr std::array<Octet, 256> kOctets = MakeOctets();

// A dotted quad of four bytes at `p`, written at `out` (which has room for a byte past its
// end: each part is written with a '.' after it); returns its end. A part is one copy from
// a table: a botnet's report writes a million addresses.
char* WriteQuad(const uint8_t* b, char* out) {
  for (int i = 0; i < 4; ++i) {
    const Octet& o = kOctets[b[i]];
    std::memcpy(out, o.text, 4);
    out += o.digits + (i < 3 ? 1 : 0);
  }
  return out;
}
}  // namespace

namespace {
// One group of an IPv6 address: lower-case hex without leading zeros. The four digits are
// one word (two two-digit halves from a table), shifted past the leading zeros and copied
// whole: writes four bytes at `p` whatever the length (every caller's buffer has room), with
// no branch on the digits (a botnet's /64s are printed a million times).
constexpr std::array<uint16_t, 256> MakeHexPairs() {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<uint16_t, 256> t{};
  for (unsigned v = 0; v < 256; ++v)  // the first digit in the first byte of memory
    t[v] = static_cast<uint16_t>(std::endian::native == std::endian::little
                                     ? unsigned(kHex[v >> 4]) | unsigned(kHex[v & 0xF]) << 8
                                     : unsigned(kHex[v >> 4]) << 8 | unsigned(kHex[v & 0xF]));
  return t;
}
constexpr std::array<uint16_t, 256> kHexPairs = MakeHexPairs();
[[gnu::always_inline]] inline char* WriteGroup(unsigned v, char* p) {
  unsigned digits = std::max(1u, (static_cast<unsigned>(std::bit_width(v)) + 3) / 4);
  unsigned skip = 8 * (4 - digits);
  uint32_t text;
  if constexpr (std::endian::native == std::endian::little)
    text = (uint32_t{kHexPairs[v >> 8]} | uint32_t{kHexPairs[v & 0xFF]} << 16) >> skip;
  else
    text = (uint32_t{kHexPairs[v >> 8]} << 16 | uint32_t{kHexPairs[v & 0xFF]}) << skip;
  std::memcpy(p, &text, 4);
  return p + digits;
}
}  // namespace

size_t IpAddress::WriteText(char* buf) const {
  // By hand, not inet_ntop (which formats through printf, a group at a time): a botnet's
  // burst writes a million addresses, and that cost more than the rest of a ban's record.
  // The text is inet_ntop's (RFC 5952): lower-case hex without leading zeros, the longest
  // run of two or more zero groups (the first of equal ones) as "::", and the IPv4
  // compatible and mapped forms (::a.b.c.d, ::ffff:a.b.c.d) with a dotted quad.
  if (is_v4()) return static_cast<size_t>(WriteQuad(bytes_.data(), buf) - buf);
  unsigned w[8];
  unsigned zeros = 0;  // bit i: group i is zero
  for (unsigned i = 0; i < 8; ++i) {
    w[i] = unsigned{bytes_[2 * i]} << 8 | bytes_[2 * i + 1];
    zeros |= unsigned{w[i] == 0} << i;
  }
  // The longest run of zero groups, the first of equal ones: runs taken off the mask in turn.
  int best = -1, best_len = 0;
  for (unsigned m = zeros; m != 0;) {
    int i = std::countr_zero(m);
    int len = std::countr_one(m >> i);
    if (len > best_len) {
      best = i;
      best_len = len;
    }
    m &= ~(((1u << len) - 1) << i);
  }
  char* p = buf;
  if (best_len < 2) {
    for (int i = 0; i < 8; ++i) {
      if (i != 0) *p++ = ':';
      p = WriteGroup(w[i], p);
    }
    return static_cast<size_t>(p - buf);
  }
  for (int i = 0; i < best; ++i) {
    p = WriteGroup(w[i], p);
    *p++ = ':';
  }
  if (best == 0) *p++ = ':';
  int after = best + best_len;
  if (best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff))) {
    if (best_len == 5) {
      std::memcpy(p, ":ffff:", 6);
      p += 6;
    } else {
      *p++ = ':';
    }
    return static_cast<size_t>(WriteQuad(bytes_.data() + 12, p) - buf);
  }
  if (after == 8) *p++ = ':';
  for (int i = after; i < 8; ++i) {
    *p++ = ':';
    p = WriteGroup(w[i], p);
  }
  return static_cast<size_t>(p - buf);
}

std::string IpAddress::ToString() const {
  char buf[kMaxText];
  return std::string(buf, WriteText(buf));
}

Prefix::Prefix(const IpAddress& address, int length)
    : address_(address.Masked(length)), length_(static_cast<uint8_t>(std::clamp(length, 0, address.max_prefix()))) {}

std::optional<Prefix> Prefix::Parse(std::string_view text, bool allow_host_bits) {
  size_t slash = text.find('/');
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  if (slash == std::string_view::npos) return Prefix(*ip);
  std::string_view len_text = text.substr(slash + 1);
  int len = -1;
  auto [p, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || p != len_text.data() + len_text.size() || len < 0 || len > ip->max_prefix())
    return std::nullopt;
  // An IPv4-mapped IPv6 prefix (::ffff:0:0/96 and longer) becomes the IPv4 prefix.
  if (ip->is_v4() && text.find(':') != std::string_view::npos) {
    if (len < 96) return std::nullopt;
    len -= 96;
  }
  if (!allow_host_bits && ip->Masked(len) != *ip) return std::nullopt;
  return Prefix(*ip, len);
}

bool Prefix::Contains(const IpAddress& ip) const {
  if (ip.family() != address_.family()) return false;
  // The first length_ bits must be equal: compared 64 at a time, the first byte the most
  // significant, without building a masked copy (this runs for every event).
  int len = length_;
  for (size_t w = 0; w < 2 && len > 0; ++w, len -= 64) {
    uint64_t a, b;
    std::memcpy(&a, ip.bytes().data() + 8 * w, 8);
    std::memcpy(&b, address_.bytes().data() + 8 * w, 8);
    uint64_t mask = len >= 64 ? ~uint64_t{0} : ~(~uint64_t{0} >> len);
    if ((be64toh(a ^ b) & mask) != 0) return false;
  }
  return true;
}

size_t Prefix::WriteText(char* buf) const {
  size_t n = address_.WriteText(buf);
  if (!is_single()) {
    buf[n++] = '/';
    n = static_cast<size_t>(std::to_chars(buf + n, buf + kMaxText, unsigned{length_}).ptr - buf);
  }
  return n;
}

std::string Prefix::ToString() const {
  char buf[kMaxText];
  return std::string(buf, WriteText(buf));
}

}  // namespace relayban

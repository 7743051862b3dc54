// IpAddress and Prefix: the domain types for every address relayban reads from a log, keys
// a score on, or bans. Parsing is strict (inet_pton); ParseLogged() first undoes the
// decorations mail daemons add around addresses (brackets, ports, ::ffff:, IPv6:, zone ids,
// vpopmail's '_' form of IPv6).
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstring>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace relayban {

class IpAddress {
 public:
  enum class Family : uint8_t { kV4, kV6 };

  IpAddress() = default;
  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);
  // An IPv6 address from its two halves as numbers (the first byte the most significant).
  static IpAddress V6Words(uint64_t high, uint64_t low) {
    IpAddress a;
    a.family_ = Family::kV6;
    high = ToBigEndian(high);
    low = ToBigEndian(low);
    std::memcpy(a.bytes_.data(), &high, 8);
    std::memcpy(a.bytes_.data() + 8, &low, 8);
    return a;
  }

  // Exactly one address in canonical or non-canonical text form; nothing else.
  static std::optional<IpAddress> Parse(std::string_view text);
  // An address as a mail daemon logged it: tolerates "[a.b.c.d]", "a.b.c.d:port",
  // "[v6]:port", "IPv6:v6", "::ffff:a.b.c.d" (returned as IPv4), "fe80::1%eth0" (zone
  // dropped) and vpopmail's "2001_db8__1". Returns nullopt for anything that is not exactly
  // one address after that.
  static std::optional<IpAddress> ParseLogged(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // Network byte order; IPv4 uses the first 4 bytes.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  int max_prefix() const { return is_v4() ? 32 : 128; }
  // The first and the last eight bytes as numbers (the first byte the most significant).
  uint64_t high() const { return Word(0); }
  uint64_t low() const { return Word(8); }
  bool IsLoopback() const;
  // The address with every bit past `length` cleared.
  IpAddress Masked(int length) const;
  std::string ToString() const;
  // Room WriteText needs (the longest text is 45; a dotted quad is written a byte past).
  static constexpr size_t kMaxText = 48;
  // ToString's text written at `buf` (kMaxText bytes), without allocating; returns its length.
  size_t WriteText(char* buf) const;

  // Two words and the family, compared inline: addresses are compared on every event.
  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.bytes_.data(), 8);
    std::memcpy(&a1, a.bytes_.data() + 8, 8);
    std::memcpy(&b0, b.bytes_.data(), 8);
    std::memcpy(&b1, b.bytes_.data() + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0 && a.family_ == b.family_;
  }
  // The bytes in order (as big-endian words), then the family; inline, without a memcmp call
  // (ordered maps of a million bans compare addresses tens of millions of times).
  friend std::strong_ordering operator<=>(const IpAddress& a, const IpAddress& b) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.bytes_.data(), 8);
    std::memcpy(&a1, a.bytes_.data() + 8, 8);
    std::memcpy(&b0, b.bytes_.data(), 8);
    std::memcpy(&b1, b.bytes_.data() + 8, 8);
    if constexpr (std::endian::native == std::endian::little) {
      a0 = __builtin_bswap64(a0);
      a1 = __builtin_bswap64(a1);
      b0 = __builtin_bswap64(b0);
      b1 = __builtin_bswap64(b1);
    }
    if (a0 != b0) return a0 <=> b0;
    if (a1 != b1) return a1 <=> b1;
    return a.family_ <=> b.family_;
  }

 private:
  static uint64_t ToBigEndian(uint64_t v) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
    return v;
  }
  uint64_t Word(size_t at) const {
    uint64_t v;
    std::memcpy(&v, bytes_.data() + at, 8);
    return ToBigEndian(v);
  }
  std::array<uint8_t, 16> bytes_{};
  Family family_ = Family::kV4;
};

// An address and a prefix length; a single address is a Prefix of full length.
class Prefix {
 public:
  Prefix() = default;
  // Masks the host bits, so Prefix(192.0.2.7, 24) is 192.0.2.0/24.
  Prefix(const IpAddress& address, int length);
  // A single address: nothing to mask (inline: every event's ban target is one).
  explicit Prefix(const IpAddress& address)
      : address_(address), length_(static_cast<uint8_t>(address.max_prefix())) {}
  // A network whose bits past `length` are clear already (not checked: the caller masked
  // them), with 0 <= length <= its family's maximum.
  static Prefix OfNetwork(const IpAddress& network, int length) {
    Prefix p(network);
    p.length_ = static_cast<uint8_t>(length);
    return p;
  }

  // "a.b.c.d", "a.b.c.d/len", "v6", "v6/len". Rejects host bits set past len unless
  // `allow_host_bits`, so a typo such as 10.0.0.1/8 is caught in configuration.
  static std::optional<Prefix> Parse(std::string_view text, bool allow_host_bits = false);

  const IpAddress& address() const { return address_; }
  int length() const { return length_; }
  bool is_single() const { return length_ == address_.max_prefix(); }
  bool Contains(const IpAddress& ip) const;
  // "a.b.c.d" for a single address, "a.b.c.d/len" otherwise.
  std::string ToString() const;
  // Room WriteText needs.
  static constexpr size_t kMaxText = IpAddress::kMaxText + 4;
  // ToString's text written at `buf` (kMaxText bytes), without allocating; returns its length.
  size_t WriteText(char* buf) const;

  friend bool operator==(const Prefix&, const Prefix&) = default;
  friend auto operator<=>(const Prefix&, const Prefix&) = default;

 private:
  IpAddress address_;
  uint8_t length_ = 32;  // one byte: a ban table's slot is 28 bytes, not 36
};

// Inline: a table's erase and eviction hash the keys they pass over, millions of times
// under a botnet.
struct IpAddressHash {
  size_t operator()(const IpAddress& ip) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, ip.bytes().data(), 8);
    std::memcpy(&b, ip.bytes().data() + 8, 8);
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
    h ^= static_cast<uint64_t>(ip.family());
    h ^= h >> 31;
    return static_cast<size_t>(h * 0xBF58476D1CE4E5B9ull);
  }
};
struct PrefixHash {
  size_t operator()(const Prefix& p) const noexcept {
    return IpAddressHash{}(p.address()) ^ (static_cast<size_t>(p.length()) * 0x9E3779B97F4A7C15ull);
  }
};

}  // namespace relayban

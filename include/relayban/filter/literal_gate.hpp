// LiteralGate: does a line contain any of a set of literals? Each filter pattern requires one
// (RequiredLiteral); a line that contains none of them cannot match, and RE2 is not asked.
// Every literal is looked for by one of its byte pairs, chosen rare (from the bytes of the lines
// seen, or a table for mail logs). With AVX2 a pass looks up the nibbles of 32 positions and
// of the byte after each in bucket tables; otherwise it compares sixteen positions at a time
// against the pairs' first bytes. Where that finds a candidate, a bit table of the pairs and
// then the literal itself decide.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relayban {

class LiteralGate {
 public:
  // Bucket bits by nibble, of the first and of the second byte of the pairs (see nibbles_).
  struct NibbleTables {
    std::array<unsigned char, 16> first_low{}, first_high{}, second_low{}, second_high{};
  };

  // Literals of at least two bytes each, whose pairs start with at most kMaxFirstBytes
  // different bytes (the cost of the pass); nullopt otherwise (then every line goes to RE2).
  static constexpr size_t kMaxFirstBytes = 48;
  // How often each byte value occurs in the lines to be checked; which pairs are looked for
  // depends on it (never which lines pass). Without one, a rough table for mail logs is used.
  using ByteCounts = std::array<uint64_t, 256>;
  // `allow_avx2` false keeps to SSE2 even where AVX2 is there (so tests cover both paths).
  static std::optional<LiteralGate> Build(std::vector<std::string> literals, bool allow_avx2 = true,
                                          const ByteCounts* counts = nullptr);

  bool MayMatch(std::string_view text) const;
  // Which literals occur in `text`: bit i for literals()[i]. Only for at most 64 literals.
  uint64_t Found(std::string_view text) const;
  // The index of `literal` in literals(), or -1.
  int IndexOf(std::string_view literal) const;
  const std::vector<std::string>& literals() const { return literals_; }

 private:
  struct Pair {
    uint16_t key;     // first byte << 8 | second byte
    uint16_t literal; // index into literals_
    uint32_t offset;  // where the pair sits in the literal
  };
  std::vector<std::string> literals_;
  std::vector<unsigned char> first_bytes_;  // distinct
  // Each first byte repeated 32 times, for the vector compares (loaded, not rebuilt per block).
  std::vector<std::array<unsigned char, 32>> rows_;
  bool avx2_ = false;  // the CPU has AVX2: 32 positions per step instead of 16
  // For AVX2: the pairs in 8 buckets. A position is a candidate when the bucket bits looked
  // up for both nibbles of its byte and both nibbles of the next byte meet: four table
  // lookups per 32 positions, whatever the number of literals (a bucket with several pairs
  // lets a few others through, which the pair table then drops).
  NibbleTables nibbles_;
  std::vector<Pair> pairs_;                 // sorted by key
  std::array<uint64_t, 1024> pair_bits_{};  // one bit per possible pair
  // The literals whose pair is the one at text[at] and which occur there, as bits; with
  // `first` it stops at the first one.
  uint64_t Verify(std::string_view text, size_t at, bool first) const;
  template <bool kFirst>
  uint64_t Scan(std::string_view text) const;
};

}  // namespace relayban

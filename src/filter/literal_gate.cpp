#include "relayban/filter/literal_gate.hpp"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && !defined(RELAYBAN_NO_SIMD)
#include <immintrin.h>
#endif

namespace relayban {
namespace {

// Rough frequency of a byte in mail log text, used to pick the rarest pair of each literal
// (fewer places to check). Only the ranking matters.
unsigned Frequency(unsigned char c) {
  if (c == ' ') return 150;
  if (c >= 'a' && c <= 'z') {
    static constexpr unsigned char kLower[26] = {50, 10, 30, 30, 60, 12, 15, 15, 40, 1, 5, 35, 25,
                                                 40, 45, 25, 1,  40, 40, 45, 25, 8,  8,  5, 10, 1};
    return kLower[c - 'a'];
  }
  if (c >= '0' && c <= '9') return 20;
  if (c >= 'A' && c <= 'Z') return 3;
  switch (c) {
    case '.': return 25;
    case ':': return 15;
    case '=': case ',': return 10;
    case '[': case ']': case '-': return 8;
    case '<': case '>': case '@': case '/': return 5;
    case '_': return 3;
    case '(': case ')': return 2;
    default: return 1;
  }
}

}  // namespace

std::optional<LiteralGate> LiteralGate::Build(std::vector<std::string> literals, [[maybe_unused]] bool allow_avx2,
                                              const ByteCounts* counts) {
  // Per mille of the bytes seen, at least 1 (a byte never seen may still come).
  std::array<unsigned, 256> freq{};
  uint64_t total = 0;
  if (counts != nullptr)
    for (uint64_t c : *counts) total += c;
  for (unsigned b = 0; b < 256; ++b)
    freq[b] = total >= 4096 ? static_cast<unsigned>(std::max<uint64_t>(1, (*counts)[b] * 1000 / total))
                            : Frequency(static_cast<unsigned char>(b));
  std::sort(literals.begin(), literals.end());
  literals.erase(std::unique(literals.begin(), literals.end()), literals.end());
  if (literals.empty() || literals.size() > 0xffff) return std::nullopt;
  LiteralGate g;
  for (const std::string& lit : literals)
    if (lit.size() < 2) return std::nullopt;
  // Each literal is looked for by one of its pairs: the one with the rarest first byte, then
  // the rarest second. Without AVX2 every distinct first byte costs a compare per block, so a
  // first byte that another literal uses already is worth kNewRow per mille of frequency;
  // chosen twice over, so the first literals can take up first bytes later ones brought in.
  bool avx2 = false;
#if defined(__x86_64__) && !defined(RELAYBAN_NO_SIMD)
  avx2 = allow_avx2 && __builtin_cpu_supports("avx2");
#endif
  const uint64_t kNewRow = avx2 ? 0 : 6;
  std::vector<size_t> choice(literals.size(), 0);
  std::vector<unsigned char> rows;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<unsigned char> next_rows;
    for (size_t k = 0; k < literals.size(); ++k) {
      const std::string& lit = literals[k];
      uint64_t best_score = ~uint64_t{0};
      for (size_t i = 0; i + 1 < lit.size(); ++i) {
        auto a = static_cast<unsigned char>(lit[i]), b = static_cast<unsigned char>(lit[i + 1]);
        bool shared = std::find(rows.begin(), rows.end(), a) != rows.end() ||
                      std::find(next_rows.begin(), next_rows.end(), a) != next_rows.end();
        uint64_t score = (uint64_t{freq[a]} + (shared ? 0 : kNewRow)) * 1000 + freq[b];
        if (score < best_score) {
          best_score = score;
          choice[k] = i;
        }
      }
      auto a = static_cast<unsigned char>(lit[choice[k]]);
      if (std::find(next_rows.begin(), next_rows.end(), a) == next_rows.end()) next_rows.push_back(a);
    }
    rows = std::move(next_rows);
  }
  for (size_t k = 0; k < literals.size(); ++k) {
    auto a = static_cast<unsigned char>(literals[k][choice[k]]), b = static_cast<unsigned char>(literals[k][choice[k] + 1]);
    uint16_t key = static_cast<uint16_t>(a << 8 | b);
    g.pairs_.push_back({key, static_cast<uint16_t>(k), static_cast<uint32_t>(choice[k])});
    g.pair_bits_[key >> 6] |= uint64_t{1} << (key & 63);
    if (std::find(g.first_bytes_.begin(), g.first_bytes_.end(), a) == g.first_bytes_.end()) g.first_bytes_.push_back(a);
  }
  if (g.first_bytes_.size() > kMaxFirstBytes) return std::nullopt;
  for (unsigned char a : g.first_bytes_) {
    g.rows_.emplace_back();
    g.rows_.back().fill(a);
  }
  g.avx2_ = avx2;
  // Pairs go to the bucket that lets the fewest other pairs through with them: a bucket
  // passes a byte whose low and high nibbles both occur among its pairs' first bytes (and
  // likewise for the next byte), so similar pairs share one well. Rarest pairs first.
  std::vector<uint16_t> keys;
  for (const Pair& p : g.pairs_) keys.push_back(p.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::sort(keys.begin(), keys.end(), [&](uint16_t x, uint16_t y) {
    return uint64_t{freq[x >> 8]} * freq[x & 0xff] < uint64_t{freq[y >> 8]} * freq[y & 0xff];
  });
  // How often a byte passes nibble sets (lo, hi) as bits, in per mille of all bytes.
  auto passing = [&](unsigned lo, unsigned hi) {
    uint64_t sum = 0;
    for (unsigned x = 0; x < 256; ++x)
      if ((lo >> (x & 15) & 1) && (hi >> (x >> 4) & 1)) sum += freq[x];
    return sum;
  };
  struct Bucket {
    unsigned first_lo = 0, first_hi = 0, second_lo = 0, second_hi = 0;
  };
  auto cost = [&](const Bucket& bk) { return passing(bk.first_lo, bk.first_hi) * passing(bk.second_lo, bk.second_hi); };
  std::array<Bucket, 8> buckets{};
  for (uint16_t key : keys) {
    unsigned a = key >> 8, b = key & 0xff;
    size_t best = 0;
    uint64_t best_increase = ~uint64_t{0};
    for (size_t k = 0; k < buckets.size(); ++k) {
      Bucket with = buckets[k];
      with.first_lo |= 1u << (a & 15);
      with.first_hi |= 1u << (a >> 4);
      with.second_lo |= 1u << (b & 15);
      with.second_hi |= 1u << (b >> 4);
      uint64_t increase = cost(with) - cost(buckets[k]);
      if (increase < best_increase) {
        best_increase = increase;
        best = k;
      }
    }
    Bucket& bk = buckets[best];
    bk.first_lo |= 1u << (a & 15);
    bk.first_hi |= 1u << (a >> 4);
    bk.second_lo |= 1u << (b & 15);
    bk.second_hi |= 1u << (b >> 4);
  }
  for (size_t k = 0; k < buckets.size(); ++k) {
    auto bit = static_cast<unsigned char>(1u << k);
    for (unsigned x = 0; x < 16; ++x) {
      if (buckets[k].first_lo >> x & 1) g.nibbles_.first_low[x] |= bit;
      if (buckets[k].first_hi >> x & 1) g.nibbles_.first_high[x] |= bit;
      if (buckets[k].second_lo >> x & 1) g.nibbles_.second_low[x] |= bit;
      if (buckets[k].second_hi >> x & 1) g.nibbles_.second_high[x] |= bit;
    }
  }
  std::sort(g.pairs_.begin(), g.pairs_.end(), [](const Pair& x, const Pair& y) { return x.key < y.key; });
  g.literals_ = std::move(literals);
  return g;
}

uint64_t LiteralGate::Verify(std::string_view text, size_t at, bool first) const {
  if (at + 1 >= text.size()) return 0;
  uint16_t key = static_cast<uint16_t>(static_cast<unsigned char>(text[at]) << 8 | static_cast<unsigned char>(text[at + 1]));
  if ((pair_bits_[key >> 6] >> (key & 63) & 1) == 0) return 0;
  uint64_t bits = 0;
  auto it = std::lower_bound(pairs_.begin(), pairs_.end(), key, [](const Pair& p, uint16_t k) { return p.key < k; });
  for (; it != pairs_.end() && it->key == key; ++it) {
    if (at < it->offset) continue;
    size_t start = at - it->offset;
    const std::string& lit = literals_[it->literal];
    if (start + lit.size() <= text.size() && std::memcmp(text.data() + start, lit.data(), lit.size()) == 0) {
      bits |= uint64_t{1} << (it->literal & 63);
      if (first) return bits;
    }
  }
  return bits;
}

namespace {

using LiteralGateTables = LiteralGate::NibbleTables;

#if defined(__x86_64__) && !defined(RELAYBAN_NO_SIMD)
// One pass over text[0, n) (n >= 16): where a byte equals one of the rows' bytes, on_candidate
// (position) is called; it returns true to stop. The last block overlaps the one before.
template <typename F>
void ScanSse2(const char* p, size_t n, const std::vector<std::array<unsigned char, 32>>& rows, F&& on_candidate) {
  for (size_t i = 0;; i += 16) {
    size_t b = std::min(i, n - 16);
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b));
    __m128i hit = _mm_setzero_si128();
    for (const auto& row : rows)
      hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row.data()))));
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0; mask &= mask - 1)
      if (on_candidate(b + static_cast<size_t>(__builtin_ctz(mask)))) return;
    if (b == n - 16) return;
  }
}

// 32 positions at a time (n >= 33, a pair needs the byte after): a position is a candidate
// when the buckets of its byte's nibbles and of the next byte's nibbles meet.
template <typename F>
__attribute__((target("avx2"))) void ScanAvx2(const char* p, size_t n, const LiteralGateTables& t, F&& on_candidate) {
  const __m256i first_low = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.first_low.data())));
  const __m256i first_high = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.first_high.data())));
  const __m256i second_low = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.second_low.data())));
  const __m256i second_high = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.second_high.data())));
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  for (size_t i = 0;; i += 32) {
    size_t b = std::min(i, n - 33);
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + b));
    __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + b + 1));
    __m256i first = _mm256_and_si256(_mm256_shuffle_epi8(first_low, _mm256_and_si256(v, nibble)),
                                     _mm256_shuffle_epi8(first_high, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)));
    __m256i second = _mm256_and_si256(_mm256_shuffle_epi8(second_low, _mm256_and_si256(w, nibble)),
                                      _mm256_shuffle_epi8(second_high, _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble)));
    __m256i none = _mm256_cmpeq_epi8(_mm256_and_si256(first, second), _mm256_setzero_si256());
    for (unsigned mask = ~static_cast<unsigned>(_mm256_movemask_epi8(none)); mask != 0; mask &= mask - 1)
      if (on_candidate(b + static_cast<size_t>(__builtin_ctz(mask)))) return;
    if (b == n - 33) return;
  }
}
#endif

}  // namespace

// kFirst: stop at the first literal found (any nonzero result); else collect them all.
template <bool kFirst>
uint64_t LiteralGate::Scan(std::string_view text) const {
  uint64_t found = 0;
#if defined(__x86_64__) && !defined(RELAYBAN_NO_SIMD)
  size_t n = text.size();
  auto candidate = [&](size_t at) {
    // Most candidates end at the pair table, checked here without a call.
    if (at + 1 >= n) return false;
    unsigned key = static_cast<unsigned>(static_cast<unsigned char>(text[at])) << 8 | static_cast<unsigned char>(text[at + 1]);
    if ((pair_bits_[key >> 6] >> (key & 63) & 1) == 0) return false;
    found |= Verify(text, at, kFirst);
    return kFirst && found != 0;
  };
  if (avx2_ && n >= 33) {
    ScanAvx2(text.data(), n, nibbles_, candidate);
    return found;
  }
  if (n >= 16) {
    ScanSse2(text.data(), n, rows_, candidate);
    return found;
  }
#endif
  for (size_t k = 0; k < literals_.size(); ++k) {
    if (text.find(literals_[k]) == std::string_view::npos) continue;
    found |= uint64_t{1} << (k & 63);
    if (kFirst) return found;
  }
  return found;
}

bool LiteralGate::MayMatch(std::string_view text) const { return Scan<true>(text) != 0; }

uint64_t LiteralGate::Found(std::string_view text) const { return Scan<false>(text); }

int LiteralGate::IndexOf(std::string_view literal) const {
  auto it = std::lower_bound(literals_.begin(), literals_.end(), literal);
  return it != literals_.end() && *it == literal ? static_cast<int>(it - literals_.begin()) : -1;
}

}  // namespace relayban

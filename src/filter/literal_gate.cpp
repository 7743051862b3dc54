#include "relayban/filter/literal_gate.hpp"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
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

std::optional<LiteralGate> LiteralGate::Build(std::vector<std::string> literals) {
  std::sort(literals.begin(), literals.end());
  literals.erase(std::unique(literals.begin(), literals.end()), literals.end());
  if (literals.empty() || literals.size() > kMaxLiterals) return std::nullopt;
  LiteralGate g;
  for (const std::string& lit : literals) {
    if (lit.size() < 2) return std::nullopt;
    size_t best = 0;
    unsigned best_score = ~0u;
    for (size_t i = 0; i + 1 < lit.size(); ++i) {
      unsigned score = Frequency(static_cast<unsigned char>(lit[i])) * Frequency(static_cast<unsigned char>(lit[i + 1]));
      if (score < best_score) {
        best_score = score;
        best = i;
      }
    }
    g.pairs_.push_back({static_cast<unsigned char>(lit[best]), static_cast<unsigned char>(lit[best + 1]),
                        static_cast<uint32_t>(best)});
  }
  g.literals_ = std::move(literals);
  return g;
}

// Does some literal whose pair matches the bytes at `at`, at+1 occur there?
bool LiteralGate::Verify(std::string_view text, size_t at) const {
  for (size_t k = 0; k < pairs_.size(); ++k) {
    const Pair& p = pairs_[k];
    if (static_cast<unsigned char>(text[at]) != p.a || static_cast<unsigned char>(text[at + 1]) != p.b) continue;
    if (at < p.offset) continue;
    size_t start = at - p.offset;
    const std::string& lit = literals_[k];
    if (start + lit.size() <= text.size() && std::memcmp(text.data() + start, lit.data(), lit.size()) == 0) return true;
  }
  return false;
}

bool LiteralGate::MayMatch(std::string_view text) const {
  size_t n = text.size();
#if defined(__SSE2__)
  if (n >= 17) {
    const char* p = text.data();
    // A block covers the pairs starting at b..b+15; the last one overlaps the one before.
    for (size_t i = 0;; i += 16) {
      size_t b = std::min(i, n - 17);
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b));
      __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b + 1));
      __m128i hit = _mm_setzero_si128();
      for (const Pair& pr : pairs_)
        hit = _mm_or_si128(hit, _mm_and_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(pr.a))),
                                              _mm_cmpeq_epi8(w, _mm_set1_epi8(static_cast<char>(pr.b)))));
      for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0; mask &= mask - 1)
        if (Verify(text, b + static_cast<size_t>(__builtin_ctz(mask)))) return true;
      if (b == n - 17) return false;
    }
  }
#endif
  for (const std::string& lit : literals_)
    if (text.find(lit) != std::string_view::npos) return true;
  return false;
}

}  // namespace relayban

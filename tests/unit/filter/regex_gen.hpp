// A generator of random regexes and texts for tests that compare a matcher with RE2.
#pragma once

#include <re2/re2.h>

#include <random>
#include <string>

namespace relayban::testing {
// Random regexes over a small alphabet, so that random texts often match and the ambiguous
// cases (a head with several possible ends, lazy and greedy repeats) come up all the time.
struct RegexGen {
  std::mt19937 rng;
  int groups = 0;
  // Wide: more of RE2's syntax (Perl classes, ranges, counted and unbounded repeats, '^'),
  // and texts with '\n' and Latin-1 bytes.
  bool wide = false;
  explicit RegexGen(unsigned seed, bool wide_syntax = false) : rng(seed), wide(wide_syntax) {}
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  std::string Atom(int depth) {
    static const char* kAtoms[] = {"a", "b", ":", " ", ".", "[ab]", "[^a]", "[^ :]", R"(\[)", "a", "b", "ab"};
    static const char* kWide[] = {R"(\d)", R"(\s)", R"(\W)", "[a-]", "[-:b]", R"([\-a])", "[^]a]", "[]b]",
                                  "[ -a]", "\xe9", R"([\d:])", "^"};
    int k = Pick(depth > 0 ? 16 : 12);
    if (wide && Pick(4) == 0) return kWide[Pick(12)];
    if (k < 12) return kAtoms[k];
    std::string inner = Seq(depth - 1, 1 + Pick(3));
    if (Pick(3) == 0) inner += "|" + Seq(depth - 1, 1 + Pick(2));
    switch (k) {
      case 12: return "(?:" + inner + ")";
      case 13: return "(?P<g" + std::to_string(++groups) + ">" + inner + ")";
      default: ++groups; return "(" + inner + ")";
    }
  }
  std::string Item(int depth) {
    static const char* kQuant[] = {"", "", "", "*", "+", "?", "{1,3}", "*?", "+?", "??", "{0,2}",
                                   "{2}", "{2,}", "{0,}", "{1,}?", "{3,5}?"};
    int e = Pick(20);
    if (e == 0) return "$";
    if (e == 1) return R"(\b)";
    return Atom(depth) + kQuant[Pick(wide ? 16 : 11)];
  }
  std::string Seq(int depth, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += Item(depth);
    return s;
  }
  // Calls f(regex) for `count` random regexes that RE2 accepts.
  template <typename F>
  void ForEachRegex(int count, int max_items, F&& f) {
    for (int r = 0; r < count; ++r) {
      groups = 0;
      std::string re = Seq(2, 2 + Pick(max_items));
      RE2::Options o;
      o.set_log_errors(false);
      if (wide) o.set_encoding(RE2::Options::EncodingLatin1);  // its texts hold Latin-1 bytes
      if (RE2(re, o).ok()) f(re);
    }
  }
  std::string Text() {
    static const char kChars[] = "ab: [";
    static const char kWideChars[] = "ab: [-1\n\xe9";
    std::string t;
    for (int n = Pick(14); n > 0; --n) t += wide ? kWideChars[Pick(9)] : kChars[Pick(5)];
    return t;
  }
};
}  // namespace relayban::testing
